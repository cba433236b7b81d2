"""SQLite's statements for starting a tool call and storing an item segment (see
:mod:`frontdesk.store._tool_calls`), in the store's own file beside runs; the journal's other
statements are the shared ones of :class:`~frontdesk.store._sqlstore.SQLStore`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .._tool_calls import TOOL_CALL_COLUMNS, ToolCallRecord, tool_call_from_row
from ._listing import Locked


def start_tool_call(
    locked: Locked, idempotency_key: str, upsert: str, params: Sequence[Any]
) -> ToolCallRecord:
    """Run the upsert that starts the call, then read the call's record, in one
    ``BEGIN IMMEDIATE`` transaction."""
    with locked() as conn:
        conn.execute(upsert, params)
        row = conn.execute(
            f"SELECT {TOOL_CALL_COLUMNS} FROM tool_calls WHERE idempotency_key = ?",
            (idempotency_key,),
        ).fetchone()
    return tool_call_from_row(row)


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


__all__ = ["save_item_segment", "start_tool_call"]
