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
"""

from __future__ import annotations

import json
import time
from typing import Any

from agents import ItemHelpers
from agents.items import HandoffOutputItem, MessageOutputItem, ToolCallItem, ToolCallOutputItem

from ..errors import StaleConversation
from ..store import Op, Store

CONVERSATION_KEY = "$conversation"


def turn_input(conversation_id: str, base_len: int, message: str) -> dict[str, Any]:
    """The stored input of a turn: where in the conversation it starts, and the message."""
    return {CONVERSATION_KEY: conversation_id, "base_len": base_len, "message": message}


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
    """The Runner input of a turn: the items before it plus the user's message."""
    items = load_items(store, value[CONVERSATION_KEY])[: value["base_len"]]
    return [*items, {"content": value["message"], "role": "user"}]


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


def claim_turn(
    store: Store,
    conversation_id: str,
    chat_length: int | None,
    execution_id: str,
) -> tuple[int, int, str, str | None, str | None]:
    """Reserve the next turn for ``execution_id``, or raise :class:`StaleConversation`.

    Returns ``(turn, base_len, current_agent, context_type, context_json)``.
    """
    with store.transaction() as tx:
        rows = tx.query(
            "SELECT history_len, pending_run, turns, current_agent, context_type, context_json "
            "FROM conversations WHERE conversation_id = ?",
            (conversation_id,),
        )
        history_len, pending, turns, current_agent, context_type, context_json = rows[0]
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
        tx.execute(
            "UPDATE conversations SET pending_run = ?, updated_at = ? WHERE conversation_id = ?",
            (execution_id, time.time(), conversation_id),
        )
    return turns + 1, base_len, current_agent, context_type, context_json


_LINES_SQL = "SELECT line FROM conversation_lines WHERE conversation_id = ? ORDER BY idx"


def _item_count(tx: Any, conversation_id: str) -> int:
    snapshot = tx.query(
        "SELECT json_array_length(items_json) FROM conversations WHERE conversation_id = ?",
        (conversation_id,),
    )[0][0]
    logged = tx.query(
        "SELECT COUNT(*) FROM conversation_items WHERE conversation_id = ?", (conversation_id,)
    )[0][0]
    return int(snapshot) + int(logged)


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
        "SELECT history_len, turns, json_array_length(items_json) FROM conversations "
        "WHERE conversation_id = ?",
        (conversation_id,),
    )
    history_len, turns, _snapshot_len = rows[0]
    lines = [f"User: {turn_message}", *history_lines(result)]
    new_items = result.to_input_list()[base_len:]
    now = time.time()
    ops: list[Op] = [
        (
            "INSERT INTO conversation_lines (conversation_id, idx, line, run_id) VALUES (?, ?, ?, ?)",
            (conversation_id, history_len + i, line, execution_id),
        )
        for i, line in enumerate(lines)
    ]
    if compact_every > 0 and (turns + 1) % compact_every == 0:
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
