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
from .engine._conversation import claim_turn, load_items, turn_input
from .engine._memory import BUILTIN_SUMMARIZER, Memory, Policy, Summary, plan_window, summary_item
from .engine._memory import load_range as load_item_range
from .engine.local._spec import RunSpec, new_execution_id
from .engine.local._waiting import wait_for
from .errors import (
    BudgetExceeded,
    EmptyMessage,
    InvalidInput,
    MessageTooLong,
    RunFailed,
    TurnTimedOut,
)
from .store import Op

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

    def _row(self) -> tuple[Any, ...]:
        rows = self._runtime.store.query(
            "SELECT agent_ref, current_agent, context_type, context_json, turns, history_len, "
            "pending_run, generation, budget_json, memory_json, summary_json FROM conversations "
            "WHERE conversation_id = ?",
            (self.conversation_id,),
        )
        return rows[0]

    def history(self, start: int = 0) -> list[str]:
        """Every line of the conversation from line ``start`` on, oldest first."""
        return [
            r[0]
            for r in self._runtime.store.query(
                "SELECT line FROM conversation_lines WHERE conversation_id = ? AND idx >= ? "
                "ORDER BY idx",
                (self.conversation_id, start),
            )
        ]

    @property
    def current_agent(self) -> str:
        """Name of the agent that answers the next message."""
        return str(self._row()[1])

    @property
    def context(self) -> Any:
        """The conversation's context as of the last completed turn."""
        row = self._row()
        return load_context(row[2], row[3])

    @property
    def turns(self) -> int:
        """Completed turns."""
        return int(self._row()[4])

    @property
    def pending_run(self) -> str | None:
        """Execution id of a turn in progress, if any."""
        return self._row()[6]

    @property
    def budget(self) -> Budget | None:
        """The budget counted over all the turns: the conversation's own, else the runtime's."""
        stored = self._row()[8]
        return Budget.from_dict(json.loads(stored)) if stored else self._runtime.budget

    @property
    def memory(self) -> Memory | None:
        """The stored memory policy; None: the agents see every item of the conversation."""
        policy = Policy.from_json(self._row()[9])
        if policy is None:
            return None
        if policy.summarizer is None or policy.summarizer == BUILTIN_SUMMARIZER:
            return Memory(policy.last_turns, policy.summarizer is not None)
        return Memory(policy.last_turns, self._runtime.registry.resolve(policy.summarizer))

    @property
    def summary(self) -> str | None:
        """What the summariser wrote of the turns before the memory window, if anything."""
        stored = Summary.from_json(self._row()[10])
        return stored.text if stored is not None else None

    @property
    def compactions(self) -> int:
        """How many times the stored input items were compacted."""
        return int(self._row()[7])

    def input_items(self) -> list[Any]:
        """The input items the agents see on the next turn (before the new message): all of
        them, or under a memory policy the stored summary and the window after it (sending
        the message may first bring the summary up to date)."""
        store = self._runtime.store
        row = self._row()
        policy = Policy.from_json(row[9])
        if policy is None:
            return load_items(store, self.conversation_id)
        base_len = len(load_items(store, self.conversation_id))
        window = plan_window(
            store, self.conversation_id, policy, int(row[4]), base_len, Summary.from_json(row[10])
        )
        prefix = [summary_item(window.summary)] if window.summary is not None else []
        return [*prefix, *load_item_range(store, self.conversation_id, window.start, base_len)]

    def stored_items(self) -> list[Any]:
        """Every input item of the conversation, whatever its memory policy sends."""
        return load_items(self._runtime.store, self.conversation_id)

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
        if chat_length is None or chat_length == int(self._row()[5]):
            # Before the turn is claimed: a summariser run may take a while.
            update_summary(runtime, self.conversation_id, self.turn_timeout, self.budget)
        execution_id = new_execution_id()
        claim = claim_turn(runtime.store, self.conversation_id, chat_length, execution_id)
        row = self._row()
        history_len = int(row[5])
        try:
            agent_ref = str(row[0])
            current = claim.current_agent
            agent = runtime.registry.resolve(
                agent_ref if current is None else f"{agent_ref}#{current}"
            )
            context = load_context(claim.context_type, claim.context_json)
            spec = RunSpec(
                agent=agent,
                agent_ref=f"{agent_ref}#{agent.name}",
                input=turn_input(self.conversation_id, claim.base_len, user_input, claim.window),
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
            from .engine._conversation import release_ops

            runtime.store.write(release_ops(self.conversation_id, execution_id))
            raise
        answer = runtime._engine.submit(runtime._run_and_wait(spec))
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
        engine = self._runtime._engine
        engine.call(engine.resume(pending))

        def settled() -> bool | None:
            row = self._runtime.store.get_run(pending)
            if row is None or row.status != "running" or self.pending_run != pending:
                return True
            return None

        wait_for(engine, settled, timeout)


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
    exists = store.query(
        "SELECT 1 FROM conversations WHERE conversation_id = ?", (conversation_id,)
    )
    ops: list[Op] = []
    if not exists:
        if agent is None:
            raise InvalidInput(
                f"conversation {conversation_id!r} does not exist; pass agent= to create it"
            )
        agent_ref = runtime.registry.reference(agent)
        context_type, context_json = dump_context(context)
        now = time.time()
        ops.append(
            (
                "INSERT OR IGNORE INTO conversations (conversation_id, agent_ref, current_agent,"
                " context_type, context_json, items_json, created_at, updated_at) "
                "VALUES (?, ?, ?, ?, ?, '[]', ?, ?)",
                (conversation_id, agent_ref, agent.name, context_type, context_json, now, now),
            )
        )
    if budget is not None:
        ops.append(
            (
                "UPDATE conversations SET budget_json = ? WHERE conversation_id = ?",
                (json.dumps(budget.to_dict()), conversation_id),
            )
        )
    if memory is not None:
        ops.append(
            (
                "UPDATE conversations SET memory_json = ? WHERE conversation_id = ?",
                (_policy(runtime, memory).to_json(), conversation_id),
            )
        )
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
