"""What frontdesk's Temporal activities keep outside Temporal's history, in one SQLite file.

Two things live here, under the worker's home (``<home>/temporal-worker.db``):

* **Conversation items, by content.** A model call's input is stored as a chain of segments:
  each segment holds the items a call added after its parent's, under a reference that hashes
  the parent's reference and the items (:func:`segment_ref`). A workflow sends a model activity
  the reference of the items the store already has plus only the new ones, so what a model
  call adds to Temporal's history does not grow with the conversation. The same items always
  give the same reference: storing them again is a no-op.
* **The tool calls journal.** One row per tool call, by idempotency key: started, then done
  with its output and the context after it. An activity retried after the tool finished
  (its worker died before Temporal heard of it) returns the journaled result instead of
  running the tool again.

Everything goes through :class:`WorkerStore`, one small class, so the storage can move (to
the project's ``Store`` for PostgreSQL) without touching the activities.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..._home import resolve_home
from ...errors import FrontdeskError

FILENAME = "temporal-worker.db"
BUSY_TIMEOUT_MS = 30_000

_SCHEMA = (
    """
    CREATE TABLE IF NOT EXISTS item_segments (
        ref TEXT PRIMARY KEY,
        parent TEXT,
        length INTEGER NOT NULL,
        items_json TEXT NOT NULL
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS tool_calls (
        idempotency_key TEXT PRIMARY KEY,
        workflow_id TEXT NOT NULL,
        call_id TEXT NOT NULL,
        agent_name TEXT NOT NULL,
        tool_name TEXT NOT NULL,
        args_json TEXT NOT NULL,
        state TEXT NOT NULL CHECK (state IN ('started', 'done')),
        attempts INTEGER NOT NULL,
        output_json TEXT,
        context_type TEXT,
        context_json TEXT,
        started_at REAL NOT NULL,
        finished_at REAL
    )
    """,
    "CREATE INDEX IF NOT EXISTS tool_calls_by_workflow ON tool_calls (workflow_id)",
)


class ItemsMissing(FrontdeskError, LookupError):
    """The store has no items under a reference (another machine stored them, or they were
    removed); the caller sends the whole list instead."""


def canonical_json(value: Any) -> str:
    """The one JSON text of ``value`` that references are computed from."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def segment_ref(parent: str | None, items: Sequence[Any]) -> str:
    """The reference of ``items`` stored after the segment ``parent`` (None: the start)."""
    digest = hashlib.sha256()
    digest.update((parent or "").encode())
    digest.update(b"\n")
    digest.update(canonical_json(list(items)).encode("utf-8", "surrogatepass"))
    return "items:" + digest.hexdigest()


@dataclass(frozen=True)
class ToolCallRecord:
    """One tool call in the journal."""

    idempotency_key: str
    """Derived from the workflow id and the call id; the key the tool passes on."""
    workflow_id: str
    """The workflow (conversation) the call belongs to."""
    call_id: str
    """The model's id for this call."""
    agent_name: str
    """The agent whose tool it is."""
    tool_name: str
    """The tool's name."""
    args_json: str
    """The arguments as the model sent them."""
    state: str
    """``started`` (running, or its worker died) or ``done``."""
    attempts: int
    """How many times the tool started running for this call."""
    output: Any
    """What the tool returned, once done (as JSON data)."""
    context_type: str | None
    """The context's type reference after the call, once done."""
    context_json: str | None
    """The context after the call, once done."""


class WorkerStore:
    """The worker's SQLite file: conversation item segments and the tool calls journal.

    Safe to share between threads and between the worker processes of one home.
    """

    def __init__(self, home: str | os.PathLike[str] | None = None) -> None:
        self.path: Path = resolve_home(home) / FILENAME
        """The database file."""
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self._conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        self._conn.execute("PRAGMA journal_mode = WAL")
        with self._write():
            for statement in _SCHEMA:
                self._conn.execute(statement)

    def close(self) -> None:
        """Close the connection."""
        with self._lock:
            self._conn.close()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def _query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            return list(self._conn.execute(sql, params).fetchall())

    # -- conversation items ----------------------------------------------------------------

    def save_items(self, parent: str | None, items: Sequence[Any]) -> str:
        """Store ``items`` after the segment ``parent``; return their reference.

        :class:`ItemsMissing` when ``parent`` is not stored.
        """
        ref = segment_ref(parent, items)
        with self._write() as conn:
            if conn.execute("SELECT 1 FROM item_segments WHERE ref = ?", (ref,)).fetchone():
                return ref
            base = 0
            if parent is not None:
                row = conn.execute(
                    "SELECT length FROM item_segments WHERE ref = ?", (parent,)
                ).fetchone()
                if row is None:
                    raise ItemsMissing(f"no stored conversation items under {parent!r}")
                base = int(row[0])
            conn.execute(
                "INSERT INTO item_segments (ref, parent, length, items_json) VALUES (?, ?, ?, ?)",
                (ref, parent, base + len(items), canonical_json(list(items))),
            )
        return ref

    def load_items(self, ref: str) -> list[Any]:
        """Every item up to and including the segment ``ref``, oldest first.

        :class:`ItemsMissing` when ``ref`` (or a segment before it) is not stored.
        """
        rows = self._query(
            "WITH RECURSIVE chain(ref, parent, length, items_json) AS ("
            " SELECT ref, parent, length, items_json FROM item_segments WHERE ref = ?"
            " UNION ALL"
            " SELECT s.ref, s.parent, s.length, s.items_json FROM item_segments s"
            " JOIN chain c ON s.ref = c.parent"
            ") SELECT parent, length, items_json FROM chain ORDER BY length",
            (ref,),
        )
        if not rows or rows[0][0] is not None:
            raise ItemsMissing(f"no stored conversation items under {ref!r}")
        items: list[Any] = []
        for _parent, _length, items_json in rows:
            items.extend(json.loads(items_json))
        if len(items) != rows[-1][1]:
            raise ItemsMissing(f"the stored conversation items under {ref!r} are incomplete")
        return items

    # -- tool calls journal ------------------------------------------------------------------

    def start_tool_call(
        self,
        *,
        idempotency_key: str,
        workflow_id: str,
        call_id: str,
        agent_name: str,
        tool_name: str,
        args_json: str,
    ) -> ToolCallRecord:
        """Record that the tool starts running for this call; the record as it now is.

        A call already done is returned as is (state ``done``): do not run it again.
        """
        with self._write() as conn:
            row = conn.execute(
                "SELECT state FROM tool_calls WHERE idempotency_key = ?", (idempotency_key,)
            ).fetchone()
            if row is None:
                conn.execute(
                    "INSERT INTO tool_calls (idempotency_key, workflow_id, call_id, agent_name,"
                    " tool_name, args_json, state, attempts, started_at)"
                    " VALUES (?, ?, ?, ?, ?, ?, 'started', 1, ?)",
                    (
                        idempotency_key,
                        workflow_id,
                        call_id,
                        agent_name,
                        tool_name,
                        args_json,
                        time.time(),
                    ),
                )
            elif row[0] == "started":
                conn.execute(
                    "UPDATE tool_calls SET attempts = attempts + 1, started_at = ?"
                    " WHERE idempotency_key = ?",
                    (time.time(), idempotency_key),
                )
        record = self.tool_call(idempotency_key)
        assert record is not None
        return record

    def finish_tool_call(
        self,
        idempotency_key: str,
        output: Any,
        context_type: str | None,
        context_json: str | None,
    ) -> None:
        """Record the tool's output and the context after it."""
        with self._write() as conn:
            conn.execute(
                "UPDATE tool_calls SET state = 'done', output_json = ?, context_type = ?,"
                " context_json = ?, finished_at = ? WHERE idempotency_key = ?",
                (json.dumps(output), context_type, context_json, time.time(), idempotency_key),
            )

    def tool_call(self, idempotency_key: str) -> ToolCallRecord | None:
        """The journal's record of one call, if any."""
        rows = self._query(_TOOL_CALL_SQL + " WHERE idempotency_key = ?", (idempotency_key,))
        return _record(rows[0]) if rows else None

    def tool_calls(self, workflow_id: str) -> list[ToolCallRecord]:
        """Every journaled tool call of a workflow, in the order they started."""
        rows = self._query(_TOOL_CALL_SQL + " WHERE workflow_id = ? ORDER BY rowid", (workflow_id,))
        return [_record(row) for row in rows]


_TOOL_CALL_SQL = (
    "SELECT idempotency_key, workflow_id, call_id, agent_name, tool_name, args_json, state,"
    " attempts, output_json, context_type, context_json FROM tool_calls"
)


def _record(row: Sequence[Any]) -> ToolCallRecord:
    output_json = row[8]
    return ToolCallRecord(
        idempotency_key=row[0],
        workflow_id=row[1],
        call_id=row[2],
        agent_name=row[3],
        tool_name=row[4],
        args_json=row[5],
        state=row[6],
        attempts=int(row[7]),
        output=json.loads(output_json) if output_json is not None else None,
        context_type=row[9],
        context_json=row[10],
    )


__all__ = [
    "FILENAME",
    "ItemsMissing",
    "ToolCallRecord",
    "WorkerStore",
    "canonical_json",
    "segment_ref",
]
