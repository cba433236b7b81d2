"""Durable conversations in the store: turns, history lines and compacted input items.

A conversation keeps the input items its agents see (``result.to_input_list()`` after each
turn) as a snapshot plus an append-only log of the items added since. Every
``compact_every`` turns the log is folded into a new snapshot, the way Temporal's
continue-as-new starts a fresh history carrying the state over: what the agents see does not
change, but what a turn stores and reads stays bounded.

A turn is a run whose stored input is a reference (conversation, position, message), never
the item list itself. Its history lines, new items, context and current agent are written in
the same transaction that completes the run, so a turn interrupted by a crash is completed
exactly once: no duplicated line, no re-run tool.

With a memory policy (:mod:`._memory`) the reference also says where the turn's window of
items starts and which summary goes before it; the log is then never folded into a snapshot,
since a turn reads only its window, by index.
"""

from __future__ import annotations

import json
import time
from typing import Any, NamedTuple

from agents import ItemHelpers
from agents.items import HandoffOutputItem, MessageOutputItem, ToolCallItem, ToolCallOutputItem

from ..errors import StaleConversation
from ..store import Op, Store
from ._memory import Policy, Summary, Window, load_range, plan_window, record_turn_op, summary_item

CONVERSATION_KEY = "$conversation"


def turn_input(
    conversation_id: str, base_len: int, message: str, window: Window | None = None
) -> dict[str, Any]:
    """The stored input of a turn: where in the conversation it starts, and the message;
    under a memory policy, also where its window starts and the summary sent before it."""
    ref: dict[str, Any] = {CONVERSATION_KEY: conversation_id, "base_len": base_len}
    if window is not None:
        ref["start"] = window.start
        if window.summary is not None:
            ref["summary"] = window.summary
    ref["message"] = message
    return ref


def is_turn_input(value: Any) -> bool:
    """Whether a stored run input is a conversation turn reference."""
    return isinstance(value, dict) and CONVERSATION_KEY in value


def load_items(store: Store, conversation_id: str) -> list[Any]:
    """The conversation's input items: the snapshot followed by the log."""
    rows = store.query(
        "SELECT items_json FROM conversations WHERE conversation_id = ?", (conversation_id,)
    )
    if not rows:
        return []
    items: list[Any] = json.loads(rows[0][0])
    items.extend(
        json.loads(r[0])
        for r in store.query(
            "SELECT item_json FROM conversation_items WHERE conversation_id = ? ORDER BY idx",
            (conversation_id,),
        )
    )
    return items


def resolve_turn_input(store: Store, value: dict[str, Any]) -> list[Any]:
    """The Runner input of a turn: the items before it (its window of them, after its
    summary, under a memory policy) plus the user's message."""
    conversation_id, base_len = value[CONVERSATION_KEY], value["base_len"]
    start = value.get("start", 0)
    if start:
        items = load_range(store, conversation_id, start, base_len)
    else:
        items = load_items(store, conversation_id)[:base_len]
    summary = value.get("summary")
    prefix = [summary_item(summary)] if summary is not None else []
    return [*prefix, *items, {"content": value["message"], "role": "user"}]


def history_lines(result: Any) -> list[str]:
    """The printable lines for the items a turn produced."""
    lines: list[str] = []
    for item in result.new_items:
        agent_name = item.agent.name
        if isinstance(item, MessageOutputItem):
            lines.append(f"{agent_name}: {ItemHelpers.text_message_output(item)}")
        elif isinstance(item, HandoffOutputItem):
            lines.append(f"Handed off from {item.source_agent.name} to {item.target_agent.name}")
        elif isinstance(item, ToolCallItem):
            lines.append(f"{agent_name}: Calling a tool")
        elif isinstance(item, ToolCallOutputItem):
            lines.append(f"{agent_name}: Tool call output: {item.output}")
    return lines


class Claim(NamedTuple):
    """A turn reserved by :func:`claim_turn`."""

    turn: int
    """Its number (1 for the first)."""
    base_len: int
    """Input items before it."""
    current_agent: str
    """The agent that answers it."""
    context_type: str | None
    """The stored context's type."""
    context_json: str | None
    """The stored context."""
    window: Window | None
    """What it sends of the items before it, under a memory policy; None: all of them."""


def claim_turn(
    store: Store,
    conversation_id: str,
    chat_length: int | None,
    execution_id: str,
) -> Claim:
    """Reserve the next turn for ``execution_id``, or raise :class:`StaleConversation`."""
    with store.transaction() as tx:
        rows = tx.query(
            "SELECT history_len, pending_run, turns, current_agent, context_type, context_json, "
            "memory_json, summary_json FROM conversations WHERE conversation_id = ?",
            (conversation_id,),
        )
        history_len, pending, turns, current_agent, context_type, context_json = rows[0][:6]
        policy = Policy.from_json(rows[0][6])
        if pending is not None or (chat_length is not None and chat_length != history_len):
            lines = [r[0] for r in tx.query(_LINES_SQL, (conversation_id,))]
            why = (
                "another message is being answered"
                if pending is not None
                else f"chat_length {chat_length} does not match the history ({history_len} lines)"
            )
            raise StaleConversation(
                f"stale conversation {conversation_id!r}: {why}; refresh the history and retry",
                history=lines,
            )
        base_len = _item_count(tx, conversation_id)
        window = (
            None
            if policy is None
            else plan_window(
                tx, conversation_id, policy, turns, base_len, Summary.from_json(rows[0][7])
            )
        )
        tx.execute(
            "UPDATE conversations SET pending_run = ?, updated_at = ? WHERE conversation_id = ?",
            (execution_id, time.time(), conversation_id),
        )
    return Claim(turns + 1, base_len, current_agent, context_type, context_json, window)


_LINES_SQL = "SELECT line FROM conversation_lines WHERE conversation_id = ? ORDER BY idx"


def _item_count(tx: Any, conversation_id: str) -> int:
    # Logged items are numbered from the conversation's first item on, after the snapshot's.
    logged = tx.query(
        "SELECT MAX(idx) FROM conversation_items WHERE conversation_id = ?", (conversation_id,)
    )[0][0]
    if logged is not None:
        return int(logged) + 1
    snapshot = tx.query(
        "SELECT json_array_length(items_json) FROM conversations WHERE conversation_id = ?",
        (conversation_id,),
    )[0][0]
    return int(snapshot)


def release_ops(conversation_id: str, execution_id: str) -> list[Op]:
    """Free the conversation after a turn that failed or was cancelled (nothing recorded)."""
    return [
        (
            "UPDATE conversations SET pending_run = NULL, updated_at = ? "
            "WHERE conversation_id = ? AND pending_run = ?",
            (time.time(), conversation_id, execution_id),
        )
    ]


def completion_ops(
    store: Store,
    conversation_id: str,
    execution_id: str,
    turn_message: str,
    base_len: int,
    result: Any,
    context_json: str | None,
    compact_every: int,
) -> list[Op]:
    """Record a finished turn: its lines, its new items and the conversation's new state."""
    rows = store.query(
        "SELECT history_len, turns, memory_json FROM conversations WHERE conversation_id = ?",
        (conversation_id,),
    )
    history_len, turns, memory_json = rows[0]
    lines = [f"User: {turn_message}", *history_lines(result)]
    # The run's input ends with the user's message; what follows it is new. Under a memory
    # policy the input is the turn's window, not all of the ``base_len`` items before it.
    sent = len(ItemHelpers.input_to_new_input_list(result.input))
    new_items = result.to_input_list()[sent - 1 :]
    now = time.time()
    ops: list[Op] = [
        (
            "INSERT INTO conversation_lines (conversation_id, idx, line, run_id) VALUES (?, ?, ?, ?)",
            (conversation_id, history_len + i, line, execution_id),
        )
        for i, line in enumerate(lines)
    ]
    ops.append(record_turn_op(conversation_id, turns + 1, base_len))
    # A turn under a memory policy reads only its window, by index: nothing to compact.
    if compact_every > 0 and memory_json is None and (turns + 1) % compact_every == 0:
        items = [*load_items(store, conversation_id)[:base_len], *new_items]
        ops += [
            ("DELETE FROM conversation_items WHERE conversation_id = ?", (conversation_id,)),
            (
                "UPDATE conversations SET items_json = ?, generation = generation + 1 "
                "WHERE conversation_id = ?",
                (json.dumps(items, separators=(",", ":")), conversation_id),
            ),
        ]
    else:
        ops += [
            (
                "INSERT INTO conversation_items (conversation_id, idx, item_json) VALUES (?, ?, ?)",
                (conversation_id, base_len + i, json.dumps(item, separators=(",", ":"))),
            )
            for i, item in enumerate(new_items)
        ]
    ops.append(
        (
            "UPDATE conversations SET current_agent = ?, context_json = COALESCE(?, context_json), "
            "turns = turns + 1, history_len = history_len + ?, pending_run = NULL, updated_at = ? "
            "WHERE conversation_id = ? AND pending_run = ?",
            (
                result.last_agent.name,
                context_json,
                len(lines),
                now,
                conversation_id,
                execution_id,
            ),
        )
    )
    return ops
