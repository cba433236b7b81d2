"""SQLite's statements for the tool calls journal and conversation item segments (see
:mod:`frontdesk.store._tool_calls`), in the store's own file beside runs."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from contextlib import AbstractContextManager

from .._tool_calls import TOOL_CALL_COLUMNS, ItemSegment, ToolCallRecord, tool_call_from_row
from ._listing import Query

Locked = Callable[[], AbstractContextManager[sqlite3.Connection]]
"""Opens a ``BEGIN IMMEDIATE`` transaction (the store's ``_locked``)."""

_START = (
    "INSERT INTO tool_calls (idempotency_key, workflow_id, call_id, agent_name, tool_name, "
    "args_json, state, attempts, started_at) VALUES (?, ?, ?, ?, ?, ?, 'started', 1, ?) "
    "ON CONFLICT (idempotency_key) DO UPDATE SET attempts = tool_calls.attempts + 1, "
    "started_at = excluded.started_at WHERE tool_calls.state = 'started'"
)
_FINISH = (
    "UPDATE tool_calls SET state = 'done', output_json = ?, context_type = ?, context_json = ?, "
    "finished_at = ? WHERE idempotency_key = ?"
)
_CHAIN = (
    "WITH RECURSIVE chain(ref, parent, length, items_json) AS ("
    " SELECT ref, parent, length, items_json FROM item_segments WHERE ref = ?"
    " UNION ALL"
    " SELECT s.ref, s.parent, s.length, s.items_json FROM item_segments s"
    " JOIN chain c ON s.ref = c.parent"
    ") SELECT ref, parent, length, items_json FROM chain ORDER BY length"
)


def start_tool_call(
    locked: Locked,
    *,
    idempotency_key: str,
    workflow_id: str,
    call_id: str,
    agent_name: str,
    tool_name: str,
    args_json: str,
    now: float,
) -> ToolCallRecord:
    """Insert the call, or count one more attempt of a started one; its record."""
    with locked() as conn:
        conn.execute(
            _START,
            (idempotency_key, workflow_id, call_id, agent_name, tool_name, args_json, now),
        )
        row = conn.execute(
            f"SELECT {TOOL_CALL_COLUMNS} FROM tool_calls WHERE idempotency_key = ?",
            (idempotency_key,),
        ).fetchone()
    return tool_call_from_row(row)


def finish_tool_call(
    locked: Locked,
    idempotency_key: str,
    *,
    output_json: str,
    context_type: str | None,
    context_json: str | None,
    now: float,
) -> None:
    """Record the call done."""
    with locked() as conn:
        conn.execute(_FINISH, (output_json, context_type, context_json, now, idempotency_key))


def tool_calls(query: Query, column: str, value: str) -> list[ToolCallRecord]:
    """The calls whose ``column`` (``idempotency_key`` or ``workflow_id``) is ``value``."""
    rows = query(
        f"SELECT {TOOL_CALL_COLUMNS} FROM tool_calls WHERE {column} = ? ORDER BY rowid", (value,)
    )
    return [tool_call_from_row(row) for row in rows]


def save_item_segment(
    locked: Locked, ref: str, parent: str | None, items_json: str, count: int
) -> bool:
    """Store a segment after its parent's; False when the parent is not stored."""
    with locked() as conn:
        base = 0
        if parent is not None:
            row = conn.execute(
                "SELECT length FROM item_segments WHERE ref = ?", (parent,)
            ).fetchone()
            if row is None:
                return False
            base = int(row[0])
        conn.execute(
            "INSERT INTO item_segments (ref, parent, length, items_json) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (ref) DO NOTHING",
            (ref, parent, base + count, items_json),
        )
    return True


def item_chain(query: Query, ref: str) -> list[ItemSegment]:
    """The segment and those before it, oldest first."""
    return [ItemSegment(r[0], r[1], int(r[2]), r[3]) for r in query(_CHAIN, (ref,))]
