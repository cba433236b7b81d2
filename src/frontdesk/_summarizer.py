"""Summaries of the turns that drop out of a conversation's memory window.

Before a turn is claimed, the turns that its window no longer holds are added to the
conversation's summary by a summariser agent, at most :data:`CHUNK_TURNS` turns per run. Each
summariser run is an ordinary durable run whose execution id names the conversation and the
turns it adds, so a crashed summary is recovered from its journal and a summary once written
is never written again differently: the next turn finds the run (or the stored summary) and
reuses it. The summary is stored with the conversation and then copied into each turn's input
reference, which is what a turn replays.

The built-in :data:`summarizer` runs on the runtime's model; on the offline rules model it
writes a short deterministic digest (the number of customer messages, the latest ones, and
the tools called) that stays bounded however long the conversation grows.
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any

from agents import Agent

from ._budget import Budget, turn_plan_json
from .engine._memory import (
    BUILTIN_SUMMARIZER,
    Policy,
    Summary,
    load_range,
    store_summary_op,
    summariser_input,
    turn_start,
)
from .engine._types import RunSpec
from .models._rules_conversation import strip_label
from .models.rules import Conversation, Reply, Rules, attach_rules
from .store import summary_run_prefix

if TYPE_CHECKING:
    from .runtime import AgentRuntime

CHUNK_TURNS = 20
"""The most turns one summariser run adds to a summary."""
LATEST_MESSAGES = 3
"""Customer messages the rules digest quotes."""
QUOTE_LIMIT = 100
"""Characters of a quoted customer message in the rules digest."""

summarizer = Agent(
    name="Conversation summariser",
    instructions=(
        "You keep the running summary of a customer-service conversation for the agents that "
        "continue it. You get the summary so far and the turns to add to it. Answer with the "
        "updated summary only, in at most 150 words: what the customer wants, the facts "
        "established (names, booking and order numbers, amounts, seats, decisions), what "
        "the tools returned that still matters, and what is still open."
    ),
)
"""The built-in summariser agent (``Memory(summarize=True)``)."""

_TURNS = re.compile(r"^Turns (\d+)-(\d+):$", re.M)
_COUNT = re.compile(r"(\d+) customer messages")
_LATEST = re.compile(r"the latest (\[.*?\]);")
_TOOLS = re.compile(r"tools called (\{.*?\})\.")


def rules_digest(conversation: Conversation) -> str:
    """The offline summary: the earlier digest (if any) updated with the new turns."""
    text = conversation.last_user
    so_far, _, added = text.partition("\n\nTurns ")
    added = "Turns " + added
    span = _TURNS.search(added)
    last = int(span.group(2)) if span else 0
    count, latest, tools = _parse_digest(strip_label(so_far))
    for line in added.splitlines():
        if line.startswith("User: "):
            count += 1
            message = line[6:].strip()
            latest.append(message if len(message) <= QUOTE_LIMIT else message[:QUOTE_LIMIT] + "...")
        elif line.startswith("Tool call: "):
            name = line[11:].split(" ", 1)[0]
            tools[name] = tools.get(name, 0) + 1
    quoted = json.dumps(latest[-LATEST_MESSAGES:], ensure_ascii=False)
    return (
        f"Turns 1-{last} in a digest by the offline rules model: {count} customer messages, "
        f"the latest {quoted}; tools called {json.dumps(dict(sorted(tools.items())))}."
    )


def _parse_digest(text: str) -> tuple[int, list[str], dict[str, int]]:
    count = _COUNT.search(text)
    latest = _LATEST.search(text)
    tools = _TOOLS.search(text)
    try:
        return (
            int(count.group(1)) if count else 0,
            list(json.loads(latest.group(1))) if latest else [],
            dict(json.loads(tools.group(1))) if tools else {},
        )
    except ValueError:
        return 0, [], {}


attach_rules(summarizer, Rules([Reply(rules_digest)]))


def summary_run_id(conversation_id: str, first: int, last: int) -> str:
    """The execution id of the run that adds turns ``first``-``last`` to the summary; its
    usage counts toward the conversation's (see :func:`summary_run_prefix`)."""
    return f"{summary_run_prefix(conversation_id)}{first}-{last}"


def update_summary(
    runtime: AgentRuntime, conversation_id: str, timeout: float | None, budget: Budget | None
) -> None:
    """Bring the conversation's summary up to the turn before its memory window.

    Each summariser run is held to ``budget``, the conversation's, counted over its turns and
    earlier summaries, and what it spends counts toward the turns after it.

    Turns are added :data:`CHUNK_TURNS` at a time, each by a durable run. If a summariser run
    does not complete, the summary stays where it was; the next turn's window then starts
    after it, so the agents see more turns rather than lose any.
    """
    store = runtime.store
    state = store.conversation(conversation_id)
    if state is None:
        return
    policy = Policy.from_json(state.memory_json)
    if policy is None or policy.summarizer is None:
        return
    summary = Summary.from_json(state.summary_json)
    target = int(state.turns) - policy.last_turns
    agent = (
        summarizer
        if policy.summarizer == BUILTIN_SUMMARIZER
        else runtime.registry.resolve(policy.summarizer)
    )
    while (covered := summary.turns if summary is not None else 0) < target:
        last = min(target, covered + CHUNK_TURNS)
        items = load_range(
            store,
            conversation_id,
            turn_start(store, conversation_id, covered + 1),
            turn_start(store, conversation_id, last + 1),
        )
        plan = turn_plan_json(
            store, conversation_id, budget, agent, runtime.selector, runtime.prices
        )
        text = _summarise(
            runtime,
            agent,
            summariser_input(summary, covered + 1, last, items),
            summary_run_id(conversation_id, covered + 1, last),
            timeout,
            plan,
        )
        if text is None:
            return
        summary = Summary(last, text)
        store.write([store_summary_op(conversation_id, summary)])


def _summarise(
    runtime: AgentRuntime,
    agent: Agent[Any],
    message: str,
    execution_id: str,
    timeout: float | None,
    budget_json: str | None,
) -> str | None:
    """The summary the run ``execution_id`` wrote: started here if new, recovered from its
    journal if a process died running it, retried if it failed. None if it did not complete."""
    row = runtime.store.get_run(execution_id)
    if row is None:
        # Not runtime.run: the transcript is allowed to be longer than a customer's message.
        spec = RunSpec(
            agent=agent,
            agent_ref=runtime.registry.reference(agent),
            input=message,
            context=None,
            execution_id=execution_id,
            budget_json=budget_json,
        )
        result = runtime.run_spec(spec)
    else:
        if row.status == "failed":
            runtime.retry(execution_id)
        elif row.status == "running":
            runtime.resume(execution_id)

        def settled() -> bool | None:
            current = runtime.store.get_run(execution_id)
            return True if current is None or current.status != "running" else None

        runtime.wait_until(settled, timeout)
        result = runtime.get(execution_id)
    if result.status != "completed" or not isinstance(result.output, str):
        return None
    return result.output.strip() or None
