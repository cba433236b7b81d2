"""SQLite's queries for listing runs, approvals and conversations a page at a time.

Every filter has an index ending in its sort key (``created_at`` for runs, ``requested_at``
for approvals), so a page is read in its order without a sort. Text search uses the FTS5 index
of the runs' input and output (migration 8 keeps it current with triggers). Rows end with
their ``rowid``, the cursor's tie-breaker.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from typing import Any

from .._approvals import APPROVAL_COLUMNS, ApprovalRecord, approval_from_row
from .._listing import (
    _WORD,
    ConversationRow,
    Page,
    RunFilter,
    decode_cursor,
    encode_cursor,
    page_size,
)
from .._records import RunRow
from ._compile import RUN_COLUMNS

Query = Callable[[str, Sequence[Any]], list[tuple[Any, ...]]]
"""Runs a read query and returns its rows."""
Locked = Callable[[], AbstractContextManager[sqlite3.Connection]]
"""Opens a write transaction (``BEGIN IMMEDIATE``) on a connection."""


def fts_query(text: str) -> str | None:
    """An FTS5 query matching every word of ``text`` (the last one as a prefix), or None
    when ``text`` has no word to search for. Operators in ``text`` are never interpreted."""
    words = _WORD.findall(text)
    if not words:
        return None
    quoted = ['"' + word.replace('"', '""') + '"' for word in words[:32]]
    quoted[-1] += "*"
    return " ".join(quoted)


def runs_page(
    query: Query,
    locked: Locked,
    where: RunFilter = RunFilter(),
    *,
    limit: int = 50,
    cursor: str | None = None,
) -> Page[RunRow]:
    """Runs newest first, filtered; every filter is served by an index.

    ``agent`` matches the starting or the last agent; ``q`` every word in the input or the
    output; ``since``/``until`` bound ``created_at`` (Unix seconds, inclusive/exclusive).
    """
    limit = page_size(limit)
    if where.q is not None and where.q.strip():
        index_pending(locked)
    statement = runs_query(where, limit=limit + 1, cursor=cursor)
    if statement is None:
        return Page([], None)
    rows = query(*statement)
    items = [RunRow(*r[:-1]) for r in rows[:limit]]
    if len(rows) <= limit:
        return Page(items, None)
    return Page(items, encode_cursor(items[-1].created_at, rows[limit - 1][-1]))


INDEX_BATCH = 2000
"""How many queued runs one transaction adds to the full-text index."""


def index_pending(locked: Locked) -> int:
    """Add the runs queued since the last search to the full-text index; returns how many.

    Writes to ``runs`` only queue the run (migration 8's triggers), so running a run never pays
    for the index. A run indexed before (at its start) is taken out with the values it was
    indexed with: its input never changes, and its output only once, from nothing to the
    final output, so ``with_output`` says which. Each batch is one short transaction.
    """
    done = 0
    while True:
        with locked() as tx:
            rows = tx.execute(
                "SELECT p.run_rowid, r.input, r.output_json, d.with_output "
                "FROM runs_fts_pending p JOIN runs r ON r.rowid = p.run_rowid "
                "LEFT JOIN runs_fts_docs d ON d.run_rowid = p.run_rowid "
                "ORDER BY p.run_rowid LIMIT ?",
                (INDEX_BATCH,),
            ).fetchall()
            for rowid, text, output, with_output in rows:
                if with_output is not None:
                    tx.execute(
                        "INSERT INTO runs_fts (runs_fts, rowid, input, output_json) "
                        "VALUES ('delete', ?, ?, ?)",
                        (rowid, text, output if with_output else None),
                    )
                tx.execute(
                    "INSERT INTO runs_fts (rowid, input, output_json) VALUES (?, ?, ?)",
                    (rowid, text, output),
                )
                tx.execute(
                    "INSERT OR REPLACE INTO runs_fts_docs (run_rowid, with_output) VALUES (?, ?)",
                    (rowid, int(output is not None)),
                )
            if rows:
                last = rows[-1][0]
                tx.execute("DELETE FROM runs_fts_pending WHERE run_rowid <= ?", (last,))
            else:  # only runs that no longer exist, if anything
                tx.execute("DELETE FROM runs_fts_pending")
        done += len(rows)
        if len(rows) < INDEX_BATCH:
            return done


def runs_query(
    filters: RunFilter, *, limit: int = 50, cursor: str | None = None
) -> tuple[str, list[Any]] | None:
    """The SQL of :func:`runs_page` (rows end with their rowid), or None when ``q`` has no
    word to search for."""
    status, app, agent, q = filters.status, filters.app, filters.agent, filters.q
    since, until, conversation_id = filters.since, filters.until, filters.conversation_id
    where: list[str] = []
    params: list[Any] = []
    for column, value in (("status", status), ("app", app), ("conversation_id", conversation_id)):
        if value is not None:
            where.append(f"{column} = ?")
            params.append(value)
    if since is not None:
        where.append("created_at >= ?")
        params.append(float(since))
    if until is not None:
        where.append("created_at < ?")
        params.append(float(until))
    if q is not None and q.strip():
        match = fts_query(q)
        if match is None:
            return None
        # The unary + keeps SQLite walking an index in page order and checking each run
        # against the matches, instead of fetching and sorting every match of a common word.
        where.append("+rowid IN (SELECT rowid FROM runs_fts WHERE runs_fts MATCH ?)")
        params.append(match)
    if cursor is not None:
        created, rowid = decode_cursor(cursor, ((float, int), int))
        where.append("created_at <= ? AND (created_at < ? OR rowid < ?)")
        params += [created, created, rowid]
    order = "ORDER BY created_at DESC, rowid DESC LIMIT ?"
    select = f"SELECT {RUN_COLUMNS}, rowid FROM runs"
    if agent is None:
        clause = f"WHERE {' AND '.join(where)}" if where else ""
        return f"{select} {clause} {order}", [*params, limit]
    # One ordered index walk per agent column, merged: never a sort of every match.
    parts = []
    for column in ("agent_name", "last_agent"):
        clause = " AND ".join([f"{column} = ?", *where])
        parts.append(f"SELECT * FROM ({select} WHERE {clause} {order})")
    sql = f"SELECT * FROM ({' UNION '.join(parts)}) ORDER BY created_at DESC, rowid DESC LIMIT ?"
    return sql, [agent, *params, limit, agent, *params, limit, limit]


# -- approvals ------------------------------------------------------------------------------------


def approvals_page(
    query: Query,
    *,
    status: str | None = "pending",
    execution_id: str | None = None,
    newest_first: bool = False,
    limit: int = 50,
    cursor: str | None = None,
) -> Page[ApprovalRecord]:
    """Approvals by request time (oldest first unless ``newest_first``), filtered by status
    and run; served by the ``(status, requested_at)`` and ``(execution_id, ...)`` indexes."""
    limit = page_size(limit)
    where: list[str] = []
    params: list[Any] = []
    if status is not None:
        where.append("status = ?")
        params.append(status)
    if execution_id is not None:
        where.append("execution_id = ?")
        params.append(execution_id)
    direction, compare = ("DESC", "<") if newest_first else ("ASC", ">")
    if cursor is not None:
        requested, rowid = decode_cursor(cursor, ((float, int), int))
        where.append(
            f"requested_at {compare}= ? AND (requested_at {compare} ? OR rowid {compare} ?)"
        )
        params += [requested, requested, rowid]
    clause = f"WHERE {' AND '.join(where)}" if where else ""
    rows = query(
        f"SELECT {APPROVAL_COLUMNS}, rowid FROM approvals {clause} "
        f"ORDER BY requested_at {direction}, rowid {direction} LIMIT ?",
        (*params, limit + 1),
    )
    items = [approval_from_row(r[:-1]) for r in rows[:limit]]
    if len(rows) <= limit:
        return Page(items, None)
    return Page(items, encode_cursor(items[-1].requested_at, rows[limit - 1][-1]))


# -- conversations ----------------------------------------------------------------------------------


def conversations_page(
    query: Query, *, limit: int = 50, cursor: str | None = None
) -> Page[ConversationRow]:
    """Conversations, most recently active first, with their token totals."""
    limit = page_size(limit)
    where, params = "", []
    if cursor is not None:
        updated, rowid = decode_cursor(cursor, ((float, int), int))
        where = "WHERE updated_at <= ? AND (updated_at < ? OR rowid < ?)"
        params = [updated, updated, rowid]
    rows = query(
        "SELECT conversation_id, agent_ref, current_agent, turns, history_len, pending_run, "
        f"created_at, updated_at, rowid FROM conversations {where} "
        "ORDER BY updated_at DESC, rowid DESC LIMIT ?",
        (*params, limit + 1),
    )
    page = rows[:limit]
    totals: dict[str, list[int]] = {}
    models: dict[str, dict[str, tuple[int, int]]] = {}
    if page:
        marks = ", ".join("?" for _ in page)
        for cid, model, last_agent, req, inp, out, tot in query(
            "SELECT conversation_id, model_override, last_agent, SUM(requests), "
            "SUM(input_tokens), SUM(output_tokens), SUM(total_tokens) FROM runs "
            f"WHERE conversation_id IN ({marks}) "
            "GROUP BY conversation_id, model_override, last_agent",
            [r[0] for r in page],
        ):
            sums = totals.setdefault(cid, [0, 0, 0, 0])
            for i, value in enumerate((req, inp, out, tot)):
                sums[i] += int(value or 0)
            key = model or f"agent:{last_agent}"
            by_model = models.setdefault(cid, {})
            before = by_model.get(key, (0, 0))
            by_model[key] = (before[0] + int(inp or 0), before[1] + int(out or 0))
    items = []
    for r in page:
        requests, input_tokens, output_tokens, total_tokens = totals.get(r[0], [0, 0, 0, 0])
        items.append(
            ConversationRow(
                conversation_id=r[0],
                agent_ref=r[1],
                current_agent=r[2],
                turns=r[3],
                history_len=r[4],
                pending_run=r[5],
                created_at=r[6],
                updated_at=r[7],
                requests=requests,
                input_tokens=input_tokens,
                output_tokens=output_tokens,
                total_tokens=total_tokens,
                models=models.get(r[0], {}),
            )
        )
    last = rows[limit - 1] if len(rows) > limit else None
    return Page(items, encode_cursor(last[7], last[-1]) if last is not None else None)
