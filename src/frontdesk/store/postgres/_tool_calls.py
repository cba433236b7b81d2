"""PostgreSQL's statements for the tool calls journal and conversation item segments (see
:mod:`frontdesk.store._tool_calls`): each call is one statement, so one round trip, and the
records are shared by every worker on every machine that has the database's URL."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .._tool_calls import TOOL_CALL_COLUMNS, ItemSegment, ToolCallRecord, tool_call_from_row

Run = Callable[[str, Any], list[tuple[Any, ...]]]
"""Runs one statement (its parameters a sequence or a mapping) in a transaction of its own and
returns its rows."""

# The upsert's RETURNING gives the inserted row, or the started one it counted an attempt of;
# a call already done is left alone, and read from the snapshot the statement began with.
_START = (
    "WITH started AS ("
    " INSERT INTO tool_calls (idempotency_key, workflow_id, call_id, agent_name, tool_name,"
    " args_json, state, attempts, started_at)"
    " VALUES (%(key)s, %(workflow)s, %(call)s, %(agent)s, %(tool)s, %(args)s, 'started', 1,"
    " %(now)s)"
    " ON CONFLICT (idempotency_key) DO UPDATE SET attempts = tool_calls.attempts + 1,"
    " started_at = excluded.started_at WHERE tool_calls.state = 'started'"
    f" RETURNING {TOOL_CALL_COLUMNS})"
    f" SELECT {TOOL_CALL_COLUMNS} FROM started"
    f" UNION ALL SELECT {TOOL_CALL_COLUMNS} FROM tool_calls"
    " WHERE idempotency_key = %(key)s AND NOT EXISTS (SELECT 1 FROM started)"
)
_FINISH = (
    "UPDATE tool_calls SET state = 'done', output_json = %s, context_type = %s,"
    " context_json = %s, finished_at = %s WHERE idempotency_key = %s"
)
# Inserts the segment when its parent is stored (or it has none); the row says whether the
# parent was found, whether or not the segment was new.
_SAVE = (
    "WITH parent AS (SELECT length FROM item_segments WHERE ref = %(parent)s),"
    " saved AS ("
    " INSERT INTO item_segments (ref, parent, length, items_json)"
    " SELECT %(ref)s, %(parent)s, COALESCE((SELECT length FROM parent), 0) + %(count)s,"
    " %(items)s"
    " WHERE %(parent)s::text IS NULL OR EXISTS (SELECT 1 FROM parent)"
    " ON CONFLICT (ref) DO NOTHING)"
    " SELECT %(parent)s::text IS NULL OR EXISTS (SELECT 1 FROM parent)"
)
_CHAIN = (
    "WITH RECURSIVE chain(ref, parent, length, items_json) AS ("
    " SELECT ref, parent, length, items_json FROM item_segments WHERE ref = %s"
    " UNION ALL"
    " SELECT s.ref, s.parent, s.length, s.items_json FROM item_segments s"
    " JOIN chain c ON s.ref = c.parent"
    ") SELECT ref, parent, length, items_json FROM chain ORDER BY length"
)


def start_tool_call(
    run: Run,
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
    rows = run(
        _START,
        {
            "key": idempotency_key,
            "workflow": workflow_id,
            "call": call_id,
            "agent": agent_name,
            "tool": tool_name,
            "args": args_json,
            "now": now,
        },
    )
    return tool_call_from_row(rows[0])


def finish_tool_call(
    run: Run,
    idempotency_key: str,
    *,
    output_json: str,
    context_type: str | None,
    context_json: str | None,
    now: float,
) -> None:
    """Record the call done."""
    run(_FINISH, (output_json, context_type, context_json, now, idempotency_key))


def tool_calls(query: Run, column: str, value: str) -> list[ToolCallRecord]:
    """The calls whose ``column`` (``idempotency_key`` or ``workflow_id``) is ``value``."""
    rows = query(
        f"SELECT {TOOL_CALL_COLUMNS} FROM tool_calls WHERE {column} = %s ORDER BY row_id",
        (value,),
    )
    return [tool_call_from_row(row) for row in rows]


def save_item_segment(run: Run, ref: str, parent: str | None, items_json: str, count: int) -> bool:
    """Store a segment after its parent's; False when the parent is not stored."""
    params = {"ref": ref, "parent": parent, "count": count, "items": items_json}
    rows = run(_SAVE, params)
    return bool(rows[0][0])


def item_chain(query: Run, ref: str) -> list[ItemSegment]:
    """The segment and those before it, oldest first."""
    return [ItemSegment(r[0], r[1], int(r[2]), r[3]) for r in query(_CHAIN, (ref,))]
