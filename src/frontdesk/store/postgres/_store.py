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

import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from typing import Any, ClassVar

import psycopg

from ...errors import InvalidInput
from .._base import SentWrite, StoreTransaction
from .._queries import Dialect
from .._records import StoreInfo
from .._sqlstore import SQLStore
from .._tool_calls import ToolCallRecord
from .._writes import Write
from . import _tool_calls as calls
from ._clock import ServerClock
from ._compile import compile_writes
from ._connect import ANSWER_TIMEOUT, CONNECT_TIMEOUT, POOL_TIMEOUT, PostgresPool, translate
from ._notify import NEW_RUN_CHANNEL, Listener, Notification
from ._reads import POSTGRES
from ._schema import SCHEMA_VERSION, migrate, schema_version
from ._sent import send
from ._transaction import PostgresTransaction, commit_whole, prepare

_APP_SCHEMA = re.compile(r"[a-z_][a-z0-9_]{0,62}")
_APP_POOL_SIZE = 4
"""Connections each app's pool holds at most: apps' tools hold one briefly per call."""


class PostgresStore(SQLStore):
    """A frontdesk database on PostgreSQL, safe to share between threads and processes.

    ``url`` is a ``postgresql://`` URL. The pool holds ``min_size`` to ``max_size``
    connections; ``connect_timeout``, ``pool_timeout`` and ``answer_timeout`` bound how long
    a call waits for the server to connect, for a free connection and for each answer (then
    :class:`~frontdesk.errors.StoreUnavailable`). Without ``migrate`` the schema
    is not created or upgraded (``frontdesk db info`` reads it as it is); with ``listen``, a
    thread listens for other processes' notifications.
    """

    backend: ClassVar[str] = "postgresql"
    dialect: ClassVar[Dialect] = POSTGRES

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

    def send(self, writes: Iterable[Write]) -> SentWrite | None:
        """Send ``writes`` whole, ``BEGIN`` to ``COMMIT``, and return without waiting for the
        server's answer (see :mod:`._sent`); None when nothing needs writing or the send did
        not go through (then :meth:`write` them)."""
        compiled = compile_writes(writes, server_guards=True)
        if not compiled.statements or self._pool.closed:
            return None
        sent = send(self._pool, compiled)
        if sent is not None:
            sent.on_commit = self.changes.notify
        return sent

    @contextmanager
    def transaction(self) -> Iterator[StoreTransaction]:
        """A transaction for a read-check-write section; its reads lock what they read."""
        with self._pool.session() as conn:
            yield PostgresTransaction(conn, self._pool.url)
        self.changes.notify()

    # -- one writing statement, and the tool calls journal (one statement each: ._tool_calls)

    def _run(self, sql: str, params: Any) -> list[tuple[Any, ...]]:
        """One writing statement, its own transaction; its rows, if it returns any."""

        def work(conn: psycopg.Connection[Any]) -> list[tuple[Any, ...]]:
            cursor = conn.execute(sql, params)
            return cursor.fetchall() if cursor.description is not None else []

        return self._pool.transaction(work)

    def _statement(
        self, sql: str, params: Sequence[Any], *, repeatable: bool = False
    ) -> list[tuple[Any, ...]]:
        """One writing statement, its own transaction; a ``repeatable`` one (the claim) runs
        again on a fresh connection if the connection is lost."""
        return self._query(sql, params) if repeatable else self._run(sql, params)

    def _start_tool_call(
        self, idempotency_key: str, upsert: str, params: Sequence[Any]
    ) -> ToolCallRecord:
        return calls.start_tool_call(self._run, idempotency_key, upsert, params)

    def save_item_segment(self, ref: str, parent: str | None, items_json: str, count: int) -> bool:
        """Store a segment of items after ``parent``'s; False when ``parent`` is not stored."""
        return calls.save_item_segment(self._run, ref, parent, items_json, count)


__all__ = ["PostgresStore"]
