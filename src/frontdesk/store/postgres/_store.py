"""The PostgreSQL backend: runs, journal, events, approvals and conversations in a database
shared by every process and machine that has its URL.

:class:`PostgresStore` implements :class:`~frontdesk.store.Store` on a bounded connection
pool (:mod:`._connect`), in the ``frontdesk`` schema (:mod:`._schema`). Writes are typed
(:mod:`frontdesk.store._writes`) and compiled into one transaction each, sent whole as one
query, its guards checked by the server (:mod:`._compile`); a read is one statement. A connection lost before a transaction commits
runs it once more; otherwise every failure is frontdesk's error, never psycopg's.

Read-check-write sections (:meth:`PostgresStore.transaction`) lock what they read: a run's row
is the lock for everything about the run (its status, approvals and events), a conversation's
row for the conversation. Every section and every driver's fence takes the run's row first,
so sections about one run follow each other and never deadlock.

A :class:`~._notify.Listener` wakes :attr:`changes` when another process commits something
waiters care about (a run settled, an approval decided, a run became claimable); polling
stays the fallback.

:func:`frontdesk.store.open_store` opens it for a ``postgresql://`` URL.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from typing import Any, ClassVar

import psycopg

from ...errors import InvalidInput
from ...events import Event, decode_event
from .._approvals import APPROVAL_COLUMNS, ApprovalRecord, approval_from_row
from .._base import Store, StoreTransaction
from .._forks import ForkLink, Lineage, StoredEvent
from .._listing import ConversationRow, Page, RunFilter
from .._records import ConversationState, JournalRow, RunRow, StoreInfo
from .._tool_calls import ItemSegment, ToolCallRecord
from .._usage import UsageRow
from .._values import hydrate
from .._writes import Write
from . import _reads as reads
from . import _tool_calls as calls
from ._clock import ServerClock
from ._compile import RUN_COLUMNS, compile_writes
from ._connect import ANSWER_TIMEOUT, CONNECT_TIMEOUT, POOL_TIMEOUT, PostgresPool, translate
from ._notify import NEW_RUN_CHANNEL, Listener, Notification
from ._schema import SCHEMA_VERSION, migrate, schema_version
from ._transaction import (
    CONVERSATION_COLUMNS,
    PostgresTransaction,
    commit_whole,
    lines,
    prepare,
    turn_start,
)

_JOURNAL_COLUMNS = (
    "key, kind, state, agent, name, args_json, data_json, context_json, attempts, started_at, "
    "finished_at, ordinal"
)
_APP_SCHEMA = re.compile(r"[a-z_][a-z0-9_]{0,62}")
_APP_POOL_SIZE = 4
"""Connections each app's pool holds at most: apps' tools hold one briefly per call."""
_DUE = (
    f"SELECT {APPROVAL_COLUMNS} FROM approvals "
    "WHERE status = 'pending' AND deadline IS NOT NULL AND escalated_at IS NULL "
    "AND deadline <= %s ORDER BY deadline LIMIT %s"
)


class PostgresStore(Store):
    """A frontdesk database on PostgreSQL, safe to share between threads and processes.

    ``url`` is a ``postgresql://`` URL. The pool holds ``min_size`` to ``max_size``
    connections; ``connect_timeout``, ``pool_timeout`` and ``answer_timeout`` bound how long
    a call waits for the server to connect, for a free connection and for each answer (then
    :class:`~frontdesk.errors.StoreUnavailable`). Without ``migrate`` the schema
    is not created or upgraded (``frontdesk db info`` reads it as it is); with ``listen``, a
    thread listens for other processes' notifications.
    """

    backend: ClassVar[str] = "postgresql"

    def __init__(
        self,
        url: str,
        *,
        migrate: bool = True,
        listen: bool = True,
        min_size: int = 1,
        max_size: int = 10,
        connect_timeout: int = CONNECT_TIMEOUT,
        pool_timeout: float = POOL_TIMEOUT,
        answer_timeout: float = ANSWER_TIMEOUT,
    ) -> None:
        super().__init__()
        self._pool = PostgresPool(
            url,
            min_size=min_size,
            max_size=max_size,
            connect_timeout=connect_timeout,
            pool_timeout=pool_timeout,
            answer_timeout=answer_timeout,
            autocommit=True,
        )
        self._pool.open()
        self._clock: ServerClock | None = None
        self._app_pools: dict[str, PostgresPool] = {}
        self._app_lock = threading.Lock()
        self.listener: Listener | None = None
        """The thread listening for other processes' changes, if ``listen``."""
        try:
            if migrate:
                self.migrate()
            self._clock = ServerClock(self._server_time)
            if listen:
                self.listener = Listener(self._pool).start()
                self.listener.subscribe(self._heard)
        except BaseException:
            self.close()
            raise

    def clock(self) -> float:
        """The database server's time (see :mod:`._clock`), so that hosts whose clocks differ
        agree on when a lease or a deadline passes."""
        return time.time() if self._clock is None else self._clock.now()

    def _server_time(self) -> float:
        rows = self._query("SELECT extract(epoch FROM clock_timestamp())::float8")
        return float(rows[0][0])

    def _heard(self, note: Notification) -> None:
        self.changes.notify()
        if note.channel == NEW_RUN_CHANNEL or note.execution_id is None:
            # A run to claim, or anything may have changed while nobody listened.
            self.runnable.announce()

    # -- running statements ------------------------------------------------------------------

    def _query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """One statement, its own transaction, run again on a fresh connection if the
        connection is lost (reads, and the claim, which may be repeated)."""

        def read(conn: psycopg.Connection[Any]) -> list[tuple[Any, ...]]:
            return conn.execute(sql, tuple(params)).fetchall()

        if self._pool.closed:
            return self._read_after_close(read)
        return self._pool.transaction(read, read_only=True)

    def _read_after_close(
        self, read: Callable[[psycopg.Connection[Any]], list[tuple[Any, ...]]]
    ) -> list[tuple[Any, ...]]:
        """A read once the store is closed (a result's events, loaded when first asked for):
        on a connection of its own, closed straight after, as on SQLite."""
        conn = self._pool.connect(autocommit=True, doing="reading from a closed store")
        try:
            return read(conn)
        except psycopg.Error as exc:
            raise translate(exc, self._pool.url) from exc
        finally:
            conn.close()

    # -- the database itself -----------------------------------------------------------------

    @property
    def url(self) -> str:
        """The database's URL, its password hidden."""
        return self._pool.url.shown

    def info(self) -> StoreInfo:
        """The backend, the URL and the schema versions (0: nothing created yet)."""
        version = self._pool.transaction(schema_version, read_only=True)
        return StoreInfo(self.backend, self.url, version, SCHEMA_VERSION)

    def migrate(self) -> tuple[int, int]:
        """Create or upgrade the ``frontdesk`` schema; returns the versions before and after.
        Safe while other processes do the same (see :func:`._schema.migrate`)."""
        where = f"the store's PostgreSQL database at {self.url}"
        before = self._pool.transaction(lambda conn: migrate(conn, where=where))
        return before, SCHEMA_VERSION

    def close(self) -> None:
        """Stop listening and close every connection."""
        if self.listener is not None:
            self.listener.close()
            self.listener = None
        with self._app_lock:
            pools, self._app_pools = list(self._app_pools.values()), {}
        for pool in pools:
            pool.close()
        self._pool.close()

    def app_connection(self, schema: str) -> AbstractContextManager[Any]:
        """A pooled autocommit connection to this database with ``schema`` alone on its
        search path (see :meth:`Store.app_connection`); each schema has a small pool of its
        own, opened on first use, so apps never take the store's connections."""
        if not isinstance(schema, str) or not _APP_SCHEMA.fullmatch(schema):
            raise InvalidInput(f"schema name {schema!r} must be a lowercase SQL identifier")
        with self._app_lock:
            pool = self._app_pools.get(schema)
            if pool is None:
                pool = PostgresPool(
                    self._pool.url,
                    min_size=1,
                    max_size=_APP_POOL_SIZE,
                    search_path=schema,
                    autocommit=True,
                    name=f"frontdesk-{schema}",
                ).open()
                self._app_pools[schema] = pool
        return pool.connection()

    # -- writing -----------------------------------------------------------------------------

    def write(self, writes: Iterable[Write]) -> None:
        """Apply ``writes`` in one transaction: all of them or none (see :meth:`Store.write`)."""
        compiled = compile_writes(writes, server_guards=True)
        if not compiled.statements:
            return
        url = self._pool.url
        # BEGIN, the statements, the guards and COMMIT in one round trip.
        self._pool.transaction(
            lambda conn: commit_whole(conn, compiled, url),
            commits=True,
            prepare=lambda conn: prepare(conn, compiled),
        )
        self.changes.notify()

    @contextmanager
    def transaction(self) -> Iterator[StoreTransaction]:
        """A transaction for a read-check-write section; its reads lock what they read."""
        with self._pool.session() as conn:
            yield PostgresTransaction(conn, self._pool.url)
        self.changes.notify()

    def claim(
        self, execution_id: str, owner: str, expires: float, now: float, *, steal_from: str | None
    ) -> int | None:
        """Take the run's lease (see :meth:`Store.claim`); one statement, its own transaction
        (run again after a lost connection: claiming a lease already ours is harmless)."""
        rows = self._query(
            "UPDATE runs SET lease_owner = %s, lease_expires = %s, updated_at = %s, "
            "lease_epoch = lease_epoch + 1 "
            "WHERE execution_id = %s AND status = 'running' AND (lease_owner IS NULL "
            "OR lease_expires < %s OR lease_owner = %s OR lease_owner = %s) "
            "RETURNING lease_epoch",
            (owner, expires, now, execution_id, now, owner, steal_from or owner),
        )
        return int(rows[0][0]) if rows else None

    # -- runs --------------------------------------------------------------------------------

    def get_run(self, execution_id: str) -> RunRow | None:
        """The run with this id, or None."""
        rows = self._query(
            f"SELECT {RUN_COLUMNS} FROM runs WHERE execution_id = %s", (execution_id,)
        )
        return RunRow(*rows[0]) if rows else None

    def runs_page(
        self, where: RunFilter = RunFilter(), *, limit: int = 50, cursor: str | None = None
    ) -> Page[RunRow]:
        """Runs newest first, filtered; every filter is served by an index."""
        return reads.runs_page(self._query, where, limit=limit, cursor=cursor)

    def run_ids(self, prefix: str) -> list[str]:
        """The ids of every run whose id starts with ``prefix`` (taken literally)."""
        rows = self._query(
            "SELECT execution_id FROM runs WHERE starts_with(execution_id, %s)", (prefix,)
        )
        return [row[0] for row in rows]

    def claimable_runs(self, now: float, limit: int = 100) -> list[RunRow]:
        """Running runs whose lease is free or expired, oldest first."""
        rows = self._query(
            f"SELECT {RUN_COLUMNS} FROM runs WHERE status = 'running' "
            "AND (lease_owner IS NULL OR lease_expires < %s) ORDER BY created_at LIMIT %s",
            (now, limit),
        )
        return [RunRow(*r) for r in rows]

    def running_leases(self) -> list[tuple[str, str | None, float | None]]:
        """``(execution_id, lease_owner, lease_expires)`` of every running run."""
        rows = self._query(
            "SELECT execution_id, lease_owner, lease_expires FROM runs WHERE status = 'running'"
        )
        return [(r[0], r[1], r[2]) for r in rows]

    def cancel_requests(self, owner: str) -> list[str]:
        """The runs leased by ``owner`` that someone asked to cancel."""
        rows = self._query(
            "SELECT execution_id FROM runs WHERE lease_owner = %s AND cancel_requested = 1",
            (owner,),
        )
        return [row[0] for row in rows]

    # -- journal and events ------------------------------------------------------------------

    def journal(self, execution_id: str) -> list[JournalRow]:
        """The run's durable steps in the order they started."""
        rows = self._query(
            f"SELECT {_JOURNAL_COLUMNS} FROM journal WHERE execution_id = %s ORDER BY ordinal",
            (execution_id,),
        )
        return [JournalRow(*r) for r in rows]

    def events(self, execution_id: str, after: int = 0, limit: int | None = None) -> list[Event]:
        """The run's events with ``seq > after``, in order, completed from the journal."""
        rows = self._query(
            "SELECT e.seq, e.type, e.at, e.agent, e.data_json, j.data_json, r.output_json "
            "FROM events e "
            "LEFT JOIN journal j ON j.execution_id = e.execution_id AND j.key = e.ref "
            "LEFT JOIN runs r ON r.execution_id = e.execution_id AND e.type = 'done' "
            "WHERE e.execution_id = %s AND e.seq > %s ORDER BY e.seq LIMIT %s",
            (execution_id, after, limit),
        )
        return [
            decode_event(
                execution_id, seq, type_, at, agent, hydrate(type_, json.loads(payload), step, out)
            )
            for seq, type_, at, agent, payload, step, out in rows
        ]

    def event_keys(self, execution_id: str) -> set[str]:
        """The keys of the run's events."""
        rows = self._query("SELECT key FROM events WHERE execution_id = %s", (execution_id,))
        return {r[0] for r in rows}

    def last_event_seq(self, execution_id: str) -> int:
        """The number of the run's last event (0 if it has none)."""
        rows = self._query(
            "SELECT COALESCE(MAX(seq), 0) FROM events WHERE execution_id = %s", (execution_id,)
        )
        return int(rows[0][0])

    def stored_events(self, execution_id: str) -> list[StoredEvent]:
        """The run's events as stored, their payloads not completed from the journal."""
        rows = self._query(
            "SELECT seq, key, type, agent, data_json, ref FROM events WHERE execution_id = %s "
            "ORDER BY seq",
            (execution_id,),
        )
        return [StoredEvent(*row) for row in rows]

    # -- forks -------------------------------------------------------------------------------

    def lineage(self, execution_id: str) -> Lineage:
        """The run's parent (if it is a fork) and the runs forked from it."""
        parent = self._query(
            "SELECT p.execution_id, r.fork_step, p.status, p.created_at FROM runs r "
            "JOIN runs p ON p.execution_id = r.parent_id WHERE r.execution_id = %s",
            (execution_id,),
        )
        forks = self._query(
            "SELECT execution_id, fork_step, status, created_at FROM runs WHERE parent_id = %s "
            "ORDER BY created_at, row_id",
            (execution_id,),
        )
        return Lineage(
            execution_id,
            ForkLink(*parent[0]) if parent else None,
            [ForkLink(*row) for row in forks],
        )

    def start_context(self, execution_id: str) -> tuple[bool, str | None] | None:
        """The context the run started with, once completing it replaced it."""
        rows = self._query(
            "SELECT known, context_json FROM run_start_context WHERE execution_id = %s",
            (execution_id,),
        )
        return (bool(rows[0][0]), rows[0][1]) if rows else None

    # -- approvals ---------------------------------------------------------------------------

    def approvals(
        self, *, execution_id: str | None = None, status: str | None = None, limit: int = 200
    ) -> list[ApprovalRecord]:
        """Approvals, oldest first, optionally filtered by run and status."""
        where, params = [], []
        if execution_id is not None:
            where.append("execution_id = %s")
            params.append(execution_id)
        if status is not None:
            where.append("status = %s")
            params.append(status)
        clause = f"WHERE {' AND '.join(where)}" if where else ""
        rows = self._query(
            f"SELECT {APPROVAL_COLUMNS} FROM approvals {clause} "
            "ORDER BY requested_at, row_id LIMIT %s",
            (*params, limit),
        )
        return [approval_from_row(r) for r in rows]

    def approvals_page(
        self,
        *,
        status: str | None = "pending",
        execution_id: str | None = None,
        newest_first: bool = False,
        limit: int = 50,
        cursor: str | None = None,
    ) -> Page[ApprovalRecord]:
        """Approvals by request time, one page at a time."""
        return reads.approvals_page(
            self._query,
            status=status,
            execution_id=execution_id,
            newest_first=newest_first,
            limit=limit,
            cursor=cursor,
        )

    def due_approvals(self, now: float, limit: int = 100) -> list[ApprovalRecord]:
        """Pending requests past their deadline not escalated yet, earliest first."""
        return [approval_from_row(r) for r in self._query(_DUE, (now, limit))]

    # -- conversations -----------------------------------------------------------------------

    def conversation(self, conversation_id: str) -> ConversationState | None:
        """The conversation's state, or None."""
        rows = self._query(
            f"SELECT {CONVERSATION_COLUMNS} FROM conversations WHERE conversation_id = %s",
            (conversation_id,),
        )
        return ConversationState(*rows[0]) if rows else None

    def conversation_lines(self, conversation_id: str, start: int = 0) -> list[str]:
        """The conversation's history lines from line ``start`` on, oldest first."""
        return lines(self._query, conversation_id, start)

    def conversation_item_range(self, conversation_id: str, start: int, end: int) -> list[Any]:
        """Items ``start`` to ``end`` (excluded), reading only those: the part in the
        compacted snapshot, then the logged ones by index."""
        items: list[Any] = [
            json.loads(r[0])
            for r in self._query(
                "SELECT j.item::text FROM conversations c, "
                "json_array_elements(c.items_json::json) WITH ORDINALITY AS j(item, n) "
                "WHERE c.conversation_id = %s AND j.n > %s AND j.n <= %s ORDER BY j.n",
                (conversation_id, start, end),
            )
        ]
        logged = self._query(
            "SELECT item_json FROM conversation_items WHERE conversation_id = %s "
            "AND idx >= %s AND idx < %s ORDER BY idx",
            (conversation_id, start + len(items), end),
        )
        items.extend(json.loads(r[0]) for r in logged)
        return items

    def turn_start(self, conversation_id: str, turn: int) -> int:
        """The item index ``turn`` starts at."""
        return turn_start(self._query, conversation_id, turn)

    def conversation_items(self, conversation_id: str) -> list[Any]:
        """The conversation's input items: the snapshot followed by the log."""
        rows = self._query(
            "SELECT items_json FROM conversations WHERE conversation_id = %s", (conversation_id,)
        )
        if not rows:
            return []
        items: list[Any] = json.loads(rows[0][0])
        logged = self._query(
            "SELECT item_json FROM conversation_items WHERE conversation_id = %s ORDER BY idx",
            (conversation_id,),
        )
        items.extend(json.loads(r[0]) for r in logged)
        return items

    def conversations_page(
        self, *, limit: int = 50, cursor: str | None = None
    ) -> Page[ConversationRow]:
        """Conversations, most recently active first, with their token totals."""
        return reads.conversations_page(self._query, limit=limit, cursor=cursor)

    # -- usage -------------------------------------------------------------------------------

    def run_usage(self, execution_ids: Sequence[str]) -> list[UsageRow]:
        """The model usage of these runs."""
        return reads.run_usage(self._query, execution_ids)

    def conversation_usage(self, conversation_id: str) -> list[UsageRow]:
        """The model usage of every turn of a conversation so far."""
        return reads.conversation_usage(self._query, conversation_id)

    def window_usage(self, since: float | None, until: float | None) -> list[UsageRow]:
        """The model usage of the runs created in ``[since, until)``."""
        return reads.window_usage(self._query, since, until)

    def window_statuses(self, since: float | None, until: float | None) -> dict[str, int]:
        """How many runs created in ``[since, until)`` have each status."""
        return reads.window_statuses(self._query, since, until)

    # -- the tool calls journal and item segments (one statement each: ._tool_calls) -------

    def _run(self, sql: str, params: Any) -> list[tuple[Any, ...]]:
        """One writing statement, its own transaction; its rows, if it returns any."""

        def work(conn: psycopg.Connection[Any]) -> list[tuple[Any, ...]]:
            cursor = conn.execute(sql, params)
            return cursor.fetchall() if cursor.description is not None else []

        return self._pool.transaction(work)

    def start_tool_call(
        self,
        *,
        idempotency_key: str,
        workflow_id: str,
        call_id: str,
        agent_name: str,
        tool_name: str,
        args_json: str,
        now: float,
    ) -> ToolCallRecord:
        """Record that a tool starts running for one call (see :meth:`Store.start_tool_call`)."""
        return calls.start_tool_call(
            self._run,
            idempotency_key=idempotency_key,
            workflow_id=workflow_id,
            call_id=call_id,
            agent_name=agent_name,
            tool_name=tool_name,
            args_json=args_json,
            now=now,
        )

    def finish_tool_call(
        self,
        idempotency_key: str,
        *,
        output_json: str,
        context_type: str | None,
        context_json: str | None,
        now: float,
    ) -> None:
        """Record the call done: its output and the context after it."""
        calls.finish_tool_call(
            self._run,
            idempotency_key,
            output_json=output_json,
            context_type=context_type,
            context_json=context_json,
            now=now,
        )

    def tool_call(self, idempotency_key: str) -> ToolCallRecord | None:
        """The journal's record of one tool call, or None."""
        found = calls.tool_calls(self._query, "idempotency_key", idempotency_key)
        return found[0] if found else None

    def tool_calls(self, workflow_id: str) -> list[ToolCallRecord]:
        """Every journaled tool call of a workflow, in the order they were first started."""
        return calls.tool_calls(self._query, "workflow_id", workflow_id)

    def save_item_segment(self, ref: str, parent: str | None, items_json: str, count: int) -> bool:
        """Store a segment of items after ``parent``'s; False when ``parent`` is not stored."""
        return calls.save_item_segment(self._run, ref, parent, items_json, count)

    def item_chain(self, ref: str) -> list[ItemSegment]:
        """The segment ``ref`` and every segment before it, oldest first."""
        return calls.item_chain(self._query, ref)


__all__ = ["PostgresStore"]
