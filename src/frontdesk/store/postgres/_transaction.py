"""Transactions of the PostgreSQL store: applying compiled writes and checking their guards,
and the read-check-write sections' transaction.

A write's transaction goes to the server whole, ``BEGIN`` to ``COMMIT``, as one query, the
server checking its guards (:func:`commit_whole`): one round trip, and, its statements
prepared once per connection (:func:`prepare`), no planning and little of psycopg's work per
statement; a section's writes go in a pipeline of
their own inside the section's transaction, their guards checked from the results
(:func:`apply`; see :mod:`._compile`). In a section
(:class:`PostgresTransaction`), a run's row is locked before anything about the run is read,
and a conversation's row before anything about the conversation: every section and every
driver's fence takes the run's row first, so sections about one run follow each other and
never deadlock. Each read is a statement of its own, so under READ COMMITTED it sees
everything committed before its lock was granted.
"""

from __future__ import annotations

import hashlib
import itertools
import re
from collections.abc import Iterable, Sequence
from typing import Any

import psycopg
from psycopg.adapt import Transformer

from .._approvals import APPROVAL_COLUMNS, ApprovalRecord, approval_from_row
from .._base import StoreTransaction
from .._fence import lease_refused, run_exists, step_refused  # type: ignore[attr-defined]
from .._queries import CONVERSATION_COLUMNS, conversation_lines, turn_start
from .._records import ConversationState
from .._writes import Fence, InsertRun, RecordStep, Write
from ._compile import Compiled, compile_writes
from ._connect import BoundedConnection, DatabaseURL, translate
from ._reads import POSTGRES
from ._schema import GUARD_REFUSED

MAX_PREPARED = 256
"""The most statements prepared on one connection; more are sent as they are."""
_PLACEHOLDER = re.compile(r"%[s%]")
LOCK_RUN = "SELECT 1 FROM runs WHERE execution_id = %s FOR NO KEY UPDATE"
"""Lock a run's row for the rest of the transaction."""


def apply(conn: psycopg.Connection[Any], compiled: Compiled) -> None:
    """Send the compiled statements in one pipeline inside the transaction the caller began,
    then check their guards from their results (a refused guard rolls it back)."""
    guarded: list[tuple[Write, psycopg.Cursor[Any]]] = []
    try:
        with conn.pipeline():
            for statement in compiled.statements:
                cursor = conn.execute(statement.sql, statement.params)
                if statement.guard is not None:
                    guarded.append((statement.guard, cursor))
    except psycopg.Error:
        # A statement failed, maybe only because a guard before it refused (a fork's
        # copied approvals clash once its id is taken): the guard's refusal explains it.
        answered = [(g, c) for g, c in guarded if c.pgresult is not None]
        if not any(c.rowcount == 0 for _, c in answered):
            raise
        guarded = answered
    for guard, cursor in guarded:
        if cursor.rowcount == 0:
            raise _refused(conn, guard)


def prepare(conn: psycopg.Connection[Any], compiled: Compiled) -> None:
    """Prepare on ``conn``'s session each statement of ``compiled`` it has not prepared yet,
    so that :func:`commit_whole` sends an ``EXECUTE`` of it: the server plans it once per
    connection, not once per transaction. One round trip per new statement, the first time
    a connection meets it; a statement the server cannot prepare (a parameter whose type it
    cannot tell) is sent as it is."""
    if not isinstance(conn, BoundedConnection):  # pragma: no cover - the pool's own class
        return
    known = conn.prepared
    for sql in dict.fromkeys(s.sql for s in compiled.statements if s.sql not in known):
        if len(known) >= MAX_PREPARED:
            return  # the rest is sent as it is
        name = "frontdesk_" + hashlib.blake2b(sql.encode(), digest_size=8).hexdigest()
        try:
            conn.execute(f"PREPARE {name} AS {_numbered(sql)}")
        except psycopg.errors.DuplicatePreparedStatement:
            pass  # the same SQL under the same name
        except psycopg.errors.IndeterminateDatatype:
            known[sql] = None
            continue
        known[sql] = f"EXECUTE {name}".encode()


def _numbered(sql: str) -> str:
    """``sql`` with its ``%s`` placeholders numbered ``$1``, ``$2``... as ``PREPARE`` takes
    them (``%%`` a plain ``%``)."""
    numbers = itertools.count(1)
    return _PLACEHOLDER.sub(lambda m: "%" if m[0] == "%%" else f"${next(numbers)}", sql)


def commit_whole(conn: psycopg.Connection[Any], compiled: Compiled, url: DatabaseURL) -> None:
    """Send the compiled transaction whole, ``BEGIN`` to ``COMMIT``, as one query: one round
    trip, its parameters bound by the client (psycopg's literals), each statement an
    ``EXECUTE`` of what :func:`prepare` prepared. ``compiled`` has its guards checked by the
    server (``server_guards``): a refused one makes the server skip the rest, ``COMMIT``
    included, and raises here as frontdesk's error for it
    (:class:`~frontdesk.store.LeaseLost`, ...), the transaction rolled back. ``conn`` is an
    autocommit connection outside any transaction.

    psycopg deallocates every prepared statement of a connection when it rolls a transaction
    back there (``DEALLOCATE ALL``, for its own): a write that finds its statements gone
    failed before its ``COMMIT``, so it prepares them again and is sent once more."""
    try:
        _send_whole(conn, compiled, url)
    except psycopg.errors.InvalidSqlStatementName:
        if not isinstance(conn, BoundedConnection):  # pragma: no cover - nothing prepared
            raise
        conn.rollback()
        conn.prepared.clear()
        prepare(conn, compiled)
        _send_whole(conn, compiled, url)


def _send_whole(conn: psycopg.Connection[Any], compiled: Compiled, url: DatabaseURL) -> None:
    try:
        # No parameters: psycopg sends the text as it is, in one simple query.
        psycopg.ClientCursor(conn).execute(whole_query(conn, compiled))
    except psycopg.Error as exc:
        refused = refusal(conn, compiled, exc, url)
        if refused is None:
            raise
        raise refused from None


def whole_query(conn: psycopg.Connection[Any], compiled: Compiled) -> bytes:
    r"""The compiled transaction as one query, ``BEGIN`` to ``COMMIT``, its parameters bound
    by the client (psycopg's literals) into ``EXECUTE``\ s of the statements prepared on
    ``conn``, the others written out."""
    known = conn.prepared if isinstance(conn, BoundedConnection) else {}
    literal = Transformer.from_context(conn).as_literal
    parts = [b"BEGIN"]
    for statement in compiled.statements:
        values = tuple(b"NULL" if p is None else literal(p) for p in statement.params)
        execute = known.get(statement.sql)
        if execute is None:
            parts.append(statement.sql.encode() % values)
        elif values:
            parts.append(b"%s(%s)" % (execute, b", ".join(values)))
        else:
            parts.append(execute)
    parts.append(b"COMMIT")
    return b";".join(parts)


def prepared_on(conn: psycopg.Connection[Any], compiled: Compiled) -> bool:
    """Whether every statement of ``compiled`` was met on ``conn`` already (prepared, or
    known not to be), so that sending it needs no round trip of :func:`prepare` first."""
    known = conn.prepared if isinstance(conn, BoundedConnection) else {}
    return all(s.sql in known for s in compiled.statements)


def refusal(
    conn: psycopg.Connection[Any], compiled: Compiled, exc: psycopg.Error, url: DatabaseURL
) -> Exception | None:
    """frontdesk's error for a whole transaction the server refused with ``exc`` because one
    of its guards failed (see :func:`commit_whole`), or None for any other error."""
    if exc.sqlstate != GUARD_REFUSED:
        return None
    guard = compiled.statements[int(exc.diag.message_detail or "")].guard
    if guard is None:  # pragma: no cover - only guarded statements call the function
        return None
    try:
        return _refused(conn, guard)
    except psycopg.Error as lost:
        return translate(lost, url, doing="reading why a write was refused")


def _refused(conn: psycopg.Connection[Any], guard: Write) -> Exception:
    """frontdesk's error for the transaction ``guard`` refused on ``conn``; a lost lease
    rolls the transaction back first, then reads the run's status to say why."""
    if isinstance(guard, Fence):
        conn.rollback()
        row = conn.execute(
            "SELECT status FROM runs WHERE execution_id = %s", (guard.execution_id,)
        ).fetchone()
        return lease_refused(guard, row[0] if row else None)
    if isinstance(guard, RecordStep):
        return step_refused(guard.execution_id, guard.step.key)
    if isinstance(guard, InsertRun):
        return run_exists(guard.row.execution_id)
    raise AssertionError(f"unguarded write {guard!r}")  # pragma: no cover


class PostgresTransaction(StoreTransaction):
    """Reads and writes inside one transaction on ``conn``, locking what they read.

    A run's row is locked before anything about the run is read; a conversation's row before
    anything about the conversation. Each read is a statement of its own, so under READ
    COMMITTED it sees everything committed before the lock was granted.
    """

    def __init__(self, conn: psycopg.Connection[Any], url: DatabaseURL) -> None:
        self._conn = conn
        self._url = url
        self._locked: set[str] = set()

    def _query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        try:
            return self._conn.execute(sql, tuple(params)).fetchall()
        except psycopg.Error as exc:
            raise translate(exc, self._url, doing="reading in a transaction") from exc

    def _lock_run(self, execution_id: str) -> bool:
        """Lock the run's row; whether the run exists."""
        if execution_id in self._locked:
            return True
        found = bool(self._query(LOCK_RUN, (execution_id,)))
        if found:
            self._locked.add(execution_id)
        return found

    def run_status(self, execution_id: str) -> str | None:
        if not self._lock_run(execution_id):
            return None
        rows = self._query("SELECT status FROM runs WHERE execution_id = %s", (execution_id,))
        return str(rows[0][0]) if rows else None

    def approval(self, approval_id: str) -> ApprovalRecord | None:
        owner = self._query(
            "SELECT execution_id FROM approvals WHERE approval_id = %s", (approval_id,)
        )
        if not owner:
            return None
        self._lock_run(owner[0][0])
        rows = self._query(
            f"SELECT {APPROVAL_COLUMNS} FROM approvals WHERE approval_id = %s", (approval_id,)
        )
        return approval_from_row(rows[0]) if rows else None

    def run_approvals(self, execution_id: str) -> list[ApprovalRecord]:
        self._lock_run(execution_id)
        rows = self._query(
            f"SELECT {APPROVAL_COLUMNS} FROM approvals WHERE execution_id = %s "
            "ORDER BY requested_at, row_id",
            (execution_id,),
        )
        return [approval_from_row(r) for r in rows]

    def pending_approvals(self, execution_id: str) -> int:
        self._lock_run(execution_id)
        rows = self._query(
            "SELECT COUNT(*) FROM approvals WHERE execution_id = %s AND status = 'pending'",
            (execution_id,),
        )
        return int(rows[0][0])

    def conversation(self, conversation_id: str) -> ConversationState | None:
        rows = self._query(
            f"SELECT {CONVERSATION_COLUMNS} FROM conversations WHERE conversation_id = %s "
            "FOR NO KEY UPDATE",
            (conversation_id,),
        )
        return ConversationState(*rows[0]) if rows else None

    def _marked(self, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        """Run a shared statement (:mod:`frontdesk.store._queries`, written with marks)."""
        return self._query(POSTGRES.sql(sql), params)

    def conversation_lines(self, conversation_id: str) -> list[str]:
        return conversation_lines(self._marked, conversation_id)

    def conversation_item_count(self, conversation_id: str) -> int:
        # Logged items are numbered from the conversation's first item on, after the snapshot's.
        logged = self._query(
            "SELECT MAX(idx) FROM conversation_items WHERE conversation_id = %s",
            (conversation_id,),
        )[0][0]
        if logged is not None:
            return int(logged) + 1
        snapshot = self._query(
            "SELECT json_array_length(items_json::json) FROM conversations "
            "WHERE conversation_id = %s",
            (conversation_id,),
        )
        return int(snapshot[0][0]) if snapshot else 0

    def turn_start(self, conversation_id: str, turn: int) -> int:
        return turn_start(self._marked, conversation_id, turn)

    def write(self, writes: Iterable[Write]) -> None:
        compiled = compile_writes(writes, locked=self._locked)
        try:
            apply(self._conn, compiled)
        except psycopg.Error as exc:
            raise translate(exc, self._url, doing="writing in a transaction") from exc
        self._locked |= compiled.locked


__all__ = [
    "MAX_PREPARED",
    "PostgresTransaction",
    "apply",
    "commit_whole",
    "prepare",
    "prepared_on",
    "refusal",
    "whole_query",
]
