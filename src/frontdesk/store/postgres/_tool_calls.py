"""PostgreSQL's statements for starting a tool call and storing an item segment (see
:mod:`frontdesk.store._tool_calls`): each is one statement, so one round trip, and the records
are shared by every worker on every machine that has the database's URL. The journal's other
statements are the shared ones of :class:`~frontdesk.store._sqlstore.SQLStore`."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from .._tool_calls import TOOL_CALL_COLUMNS, ToolCallRecord, tool_call_from_row

Run = Callable[[str, Any], list[tuple[Any, ...]]]
"""Runs one statement (its parameters a sequence or a mapping) in a transaction of its own and
returns its rows."""

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


def start_tool_call(
    run: Run, idempotency_key: str, upsert: str, params: Sequence[Any]
) -> ToolCallRecord:
    """Run the upsert that starts the call and read the call's record, in one statement."""
    # The upsert's RETURNING gives the inserted row, or the started one it counted an attempt
    # of; a call already done is left alone, and read from the snapshot the statement began
    # with.
    rows = run(
        f"WITH started AS ({upsert} RETURNING {TOOL_CALL_COLUMNS})"
        f" SELECT {TOOL_CALL_COLUMNS} FROM started"
        f" UNION ALL SELECT {TOOL_CALL_COLUMNS} FROM tool_calls"
        " WHERE idempotency_key = %s AND NOT EXISTS (SELECT 1 FROM started)",
        (*params, idempotency_key),
    )
    return tool_call_from_row(rows[0])


def save_item_segment(run: Run, ref: str, parent: str | None, items_json: str, count: int) -> bool:
    """Store a segment after its parent's; False when the parent is not stored."""
    params = {"ref": ref, "parent": parent, "count": count, "items": items_json}
    rows = run(_SAVE, params)
    return bool(rows[0][0])


__all__ = ["Run", "save_item_segment", "start_tool_call"]
