"""Durable multi-turn conversations: ``runtime.conversation(id, agent=..., context=...)``.

    conv = runtime.conversation("c-42", agent=triage_agent, context=AirlineAgentContext())
    new_lines = conv.send("I'd like to change my seat", chat_length=len(conv.history()))

The current agent, the context, the input items and the history are persisted. A conversation
reopened from another process continues exactly where it was; a turn interrupted by a crash is
completed exactly once when the conversation is next opened. Each turn is a run in the history
(``frontdesk runs show``), linked to its conversation.

``memory=Memory(last_turns=N)`` bounds what the agents are sent to the last N turns (and, with
``summarize``, a summary of the turns before them); see :mod:`frontdesk.engine._memory`.
"""

from __future__ import annotations

import concurrent.futures
import json
import time
from typing import TYPE_CHECKING, Any

from agents import Agent

from ._budget import Budget, turn_plan_json
from ._summarizer import update_summary
from ._text import require_text
from .engine._context import dump_context, load_context
from .engine._conversation import claim_turn, release_ops, turn_input
from .engine._memory import BUILTIN_SUMMARIZER, Memory, Policy, Summary, plan_window, summary_item
from .engine._types import RunSpec, new_execution_id
from .errors import (
    BudgetExceeded,
    EmptyMessage,
    InvalidInput,
    MessageTooLong,
    RunFailed,
    TurnTimedOut,
)
from .store import (
    ConversationState,
    CreateConversation,
    SetConversationBudget,
    SetConversationMemory,
    Write,
)

if TYPE_CHECKING:
    from .runtime import AgentRuntime, RunResult

DEFAULT_MAX_INPUT_CHARS = 1000


class Conversation:
    """One persisted conversation. Safe to use from several threads and processes."""

    def __init__(
        self,
        runtime: AgentRuntime,
        conversation_id: str,
        *,
        max_input_chars: int = DEFAULT_MAX_INPUT_CHARS,
        turn_timeout: float | None = None,
    ) -> None:
        self._runtime = runtime
        self.conversation_id = conversation_id
        self.max_input_chars = max_input_chars
        self.turn_timeout = turn_timeout

    def __repr__(self) -> str:
        return f"Conversation({self.conversation_id!r}, turns={self.turns})"

    # -- state -------------------------------------------------------------------------------

    def _row(self) -> ConversationState:
        state = self._runtime.store.conversation(self.conversation_id)
        assert state is not None  # opened or created by open_conversation; never deleted
        return state

    def history(self, start: int = 0) -> list[str]:
        """Every line of the conversation from line ``start`` on, oldest first."""
        return self._runtime.store.conversation_lines(self.conversation_id, start)

    @property
    def current_agent(self) -> str:
        """Name of the agent that answers the next message."""
        return self._row().current_agent

    @property
    def context(self) -> Any:
        """The conversation's context as of the last completed turn."""
        row = self._row()
        return load_context(row.context_type, row.context_json)

    @property
    def turns(self) -> int:
        """Completed turns."""
        return int(self._row().turns)

    @property
    def pending_run(self) -> str | None:
        """Execution id of a turn in progress, if any."""
        return self._row().pending_run

    @property
    def budget(self) -> Budget | None:
        """The budget counted over all the turns: the conversation's own, else the runtime's."""
        stored = self._row().budget_json
        return Budget.from_dict(json.loads(stored)) if stored else self._runtime.budget

    @property
    def memory(self) -> Memory | None:
        """The stored memory policy; None: the agents see every item of the conversation."""
        policy = Policy.from_json(self._row().memory_json)
        if policy is None:
            return None
        if policy.summarizer is None or policy.summarizer == BUILTIN_SUMMARIZER:
            return Memory(policy.last_turns, policy.summarizer is not None)
        return Memory(policy.last_turns, self._runtime.registry.resolve(policy.summarizer))

    @property
    def summary(self) -> str | None:
        """What the summariser wrote of the turns before the memory window, if anything."""
        stored = Summary.from_json(self._row().summary_json)
        return stored.text if stored is not None else None

    @property
    def compactions(self) -> int:
        """How many times the stored input items were compacted."""
        return int(self._row().generation)

    def input_items(self) -> list[Any]:
        """The input items the agents see on the next turn (before the new message): all of
        them, or under a memory policy the stored summary and the window after it (sending
        the message may first bring the summary up to date)."""
        store = self._runtime.store
        row = self._row()
        policy = Policy.from_json(row.memory_json)
        if policy is None:
            return store.conversation_items(self.conversation_id)
        base_len = len(store.conversation_items(self.conversation_id))
        window = plan_window(
            store,
            self.conversation_id,
            policy,
            int(row.turns),
            base_len,
            Summary.from_json(row.summary_json),
        )
        prefix = [summary_item(window.summary)] if window.summary is not None else []
        items = store.conversation_item_range(self.conversation_id, window.start, base_len)
        return [*prefix, *items]

    def stored_items(self) -> list[Any]:
        """Every input item of the conversation, whatever its memory policy sends."""
        return self._runtime.store.conversation_items(self.conversation_id)

    def runs(self) -> list[RunResult]:
        """The runs of this conversation's turns, newest first."""
        return self._runtime.runs(conversation_id=self.conversation_id, limit=10_000)

    # -- sending ------------------------------------------------------------------------------

    def validate(self, user_input: str) -> None:
        """Raise a ``ValueError`` subclass for empty, over-long or invalid input."""
        if not isinstance(user_input, str):
            raise InvalidInput(f"user input must be a str, got {type(user_input).__name__}")
        if not user_input.strip():
            raise EmptyMessage("the message is empty")
        if len(user_input) > self.max_input_chars:
            raise MessageTooLong(len(user_input), self.max_input_chars)
        require_text(user_input, "the message")

    def send(self, user_input: str, chat_length: int | None = None) -> list[str]:
        """Answer ``user_input``; returns the new history lines (the ``User:`` line first).

        ``chat_length`` is how many lines the caller has seen; if the conversation moved on
        (or another message is being answered) :class:`StaleConversation` is raised with the
        current history and nothing is stored. A turn that outlasts ``turn_timeout`` raises
        :class:`TurnTimedOut` and goes on in the background.
        """
        self.validate(user_input)
        runtime = self._runtime
        self.resume_pending()
        if chat_length is None or chat_length == int(self._row().history_len):
            # Before the turn is claimed: a summariser run may take a while.
            update_summary(runtime, self.conversation_id, self.turn_timeout, self.budget)
        execution_id = new_execution_id()
        claim = claim_turn(runtime.store, self.conversation_id, chat_length, execution_id)
        row = self._row()
        history_len = int(row.history_len)
        try:
            agent_ref = str(row.agent_ref)
            current = claim.current_agent
            agent = runtime.registry.resolve(
                agent_ref if current is None else f"{agent_ref}#{current}"
            )
            context = load_context(claim.context_type, claim.context_json)
            spec = RunSpec(
                agent=agent,
                agent_ref=f"{agent_ref}#{agent.name}",
                input=turn_input(claim.base_len, user_input, claim.window),
                context=context,
                conversation_id=self.conversation_id,
                turn=claim.turn,
                execution_id=execution_id,
                budget_json=turn_plan_json(
                    runtime.store,
                    self.conversation_id,
                    self.budget,
                    agent,
                    runtime.selector,
                    runtime.prices,
                ),
            )
        except BaseException:
            runtime.store.write(release_ops(self.conversation_id, execution_id))
            raise
        answer = runtime.submit_spec(spec)
        try:
            result = answer.result(self.turn_timeout)
        except concurrent.futures.TimeoutError:
            if answer.done():
                raise
            raise TurnTimedOut(execution_id, self.turn_timeout or 0) from None
        if result.status == "failed":
            raise RunFailed(execution_id, result.error)
        if result.status == "budget_exceeded":
            raise BudgetExceeded(execution_id, result.error)
        return self.history(history_len)

    def resume_pending(self, timeout: float | None = 60.0) -> None:
        """Finish a turn left in progress by a process that died, before anything else."""
        pending = self.pending_run
        if pending is None:
            return
        self._runtime.resume(pending)

        def settled() -> bool | None:
            row = self._runtime.store.get_run(pending)
            if row is None or row.status != "running" or self.pending_run != pending:
                return True
            return None

        self._runtime.wait_until(settled, timeout)


def open_conversation(
    runtime: AgentRuntime,
    conversation_id: str,
    agent: Agent[Any] | None,
    context: Any,
    **options: Any,
) -> Conversation:
    """Create the conversation, or reopen it (the stored agent and context win)."""
    if not isinstance(conversation_id, str) or not conversation_id.strip():
        raise InvalidInput("conversation_id must be a non-empty string")
    if len(conversation_id) > 200:
        raise InvalidInput("conversation_id is longer than 200 characters")
    require_text(conversation_id, "conversation_id")
    budget: Budget | None = options.pop("budget", None)
    memory: Memory | None = options.pop("memory", None)
    store = runtime.store
    exists = store.conversation(conversation_id) is not None
    ops: list[Write] = []
    if not exists:
        if agent is None:
            raise InvalidInput(
                f"conversation {conversation_id!r} does not exist; pass agent= to create it"
            )
        agent_ref = runtime.registry.reference(agent)
        context_type, context_json = dump_context(context)
        ops.append(
            CreateConversation(
                conversation_id, agent_ref, agent.name, context_type, context_json, time.time()
            )
        )
    if budget is not None:
        ops.append(SetConversationBudget(conversation_id, json.dumps(budget.to_dict())))
    if memory is not None:
        ops.append(SetConversationMemory(conversation_id, _policy(runtime, memory).to_json()))
    if ops:
        store.write(ops)
    conversation = Conversation(runtime, conversation_id, **options)
    conversation.resume_pending()
    return conversation


def _policy(runtime: AgentRuntime, memory: Memory) -> Policy:
    """The stored form of ``memory``; a summariser agent of the caller's is registered."""
    if isinstance(memory.summarize, Agent):
        runtime.registry.register(memory.summarize)
        return Policy(memory.last_turns, runtime.registry.reference(memory.summarize))
    return Policy(memory.last_turns, BUILTIN_SUMMARIZER if memory.summarize else None)
