"""SQLite's own part of listing runs: the full-text index, brought up to date before a search.

The listings' queries are the shared ones (:mod:`frontdesk.store._queries`) in SQLite's
dialect (:mod:`._dialect`); text search uses the FTS5 index of the runs' input and output,
which migration 8 queues runs for with triggers and :func:`index_pending` fills.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

from .._listing import RunFilter
from .._queries import runs_query as shared_runs_query
from ._dialect import SQLITE, fts_query

Locked = Callable[[], AbstractContextManager[sqlite3.Connection]]
"""Opens a write transaction (``BEGIN IMMEDIATE``) on a connection."""


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
    """The SQL of a page of runs in SQLite (rows end with their rowid), or None when ``q``
    has no word to search for (see :func:`frontdesk.store._queries.runs_query`)."""
    return shared_runs_query(SQLITE, filters, limit=limit, cursor=cursor)


__all__ = ["INDEX_BATCH", "Locked", "fts_query", "index_pending", "runs_query"]
