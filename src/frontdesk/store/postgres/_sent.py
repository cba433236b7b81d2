"""A write sent to the server whole without waiting for its answer, read once it has come.

:meth:`PostgresStore.send <frontdesk.store.postgres.PostgresStore.send>` compiles the writes
into one transaction (as :meth:`~frontdesk.store.Store.write` does), sends it, ``BEGIN`` to
``COMMIT``, on a connection lent by the pool, and returns a :class:`SentWrite`. The caller goes
on; the server executes the transaction meanwhile. An event loop waits for the answer on the
connection's socket (:meth:`SentWrite.fileno`, :meth:`SentWrite.ready`) without blocking and
without a thread, then reads it with :meth:`SentWrite.finish`, which raises what the write
would have raised: the guard that refused it (:class:`~frontdesk.store.LeaseLost`, ...),
:class:`~frontdesk.store.postgres.CommitUnknown` for a connection lost while it ran, or the
store's error. A deadlock the server broke rolled the transaction back: it is written again.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import psycopg
from psycopg import generators
from psycopg.pq import ExecStatus

from ...errors import StoreError
from .._base import SentWrite
from ._connect import (
    BoundedConnection,
    PostgresPool,
    is_connection_lost,
    rollback_quietly,
    translate,
)
from ._errors import RETRY_STATES, AnswerTimeout
from ._statements import Compiled
from ._transaction import (
    commit_whole,
    prepare,
    prepared_on,
    refusal,
    whole_query,
)


def send(pool: PostgresPool, compiled: Compiled) -> PostgresSent | None:
    """Send ``compiled`` whole on a lent connection; None, with nothing sent, when that would
    wait: no connection is free at once, or the one lent has statements of ``compiled`` to
    prepare first (a round trip each; the waiting way prepares them), or the send did not go
    through."""
    conn = pool.lend()
    if conn is None:
        return None
    if not prepared_on(conn, compiled):
        pool.give_back(conn)
        return None
    try:
        conn.pgconn.send_query(whole_query(conn, compiled))
        conn.wait(generators.send(conn.pgconn))
    except psycopg.Error:
        # Nothing of an unsent query runs: the caller writes it the waiting way, which
        # replaces a lost connection and says why it failed.
        pool.give_back(conn)
        return None
    except BaseException:
        pool.give_back(conn)
        raise
    return PostgresSent(pool, conn, compiled)


class PostgresSent(SentWrite):
    """A whole transaction sent on ``conn``, its answer not read yet."""

    def __init__(
        self, pool: PostgresPool, conn: psycopg.Connection[Any], compiled: Compiled
    ) -> None:
        self._pool = pool
        self._conn = conn
        self._compiled = compiled
        self._done = False
        self.timeout = pool.answer_timeout
        self.on_commit: Callable[[], None] | None = None
        """Called once the write committed (the store notifies its waiters)."""

    def fileno(self) -> int:
        return self._conn.pgconn.socket

    def ready(self) -> bool:
        pgconn = self._conn.pgconn
        try:
            pgconn.consume_input()
        except psycopg.Error:
            return True  # lost: finish says so
        return not pgconn.is_busy()

    def finish(self) -> None:
        if self._done:
            return
        self._done = True
        conn = self._conn
        try:
            try:
                self._read_answer()
            except psycopg.Error as exc:
                self._failed(exc)
        finally:
            self._pool.give_back(conn)
        if self.on_commit is not None:
            self.on_commit()

    def abandon(self) -> StoreError:
        lost = AnswerTimeout(f"the server did not answer within {self.timeout:g}s (answer timeout)")
        if not self._done:
            self._done = True
            self._conn.close()  # what the server does with this transaction now is unknown
            self._pool.give_back(self._conn)
        return translate(lost, self._pool.url, doing="writing")

    def _read_answer(self) -> None:
        conn = self._conn
        results = conn.wait(generators.fetch_many(conn.pgconn))
        for result in results:
            if result.status == ExecStatus.FATAL_ERROR:
                raise psycopg.errors.error_from_result(result, encoding=conn.info.encoding)

    def _failed(self, exc: psycopg.Error) -> None:
        """Raise frontdesk's error for the failed transaction (or write it once more)."""
        conn, url, compiled = self._conn, self._pool.url, self._compiled
        refused = refusal(conn, compiled, exc, url)
        if refused is not None:
            raise refused from None
        rollback_quietly(conn)
        if isinstance(exc, psycopg.errors.InvalidSqlStatementName) or (
            exc.sqlstate in RETRY_STATES
        ):
            # Nothing was committed: its statements were deallocated, or the server broke a
            # deadlock by rolling it back. Written again, the waiting way.
            if isinstance(conn, BoundedConnection):
                conn.prepared.clear()
            try:
                prepare(conn, compiled)
                commit_whole(conn, compiled, url)
            except psycopg.Error as again:
                if is_connection_lost(again, conn):
                    raise self._pool.commit_unknown(again) from None
                raise translate(again, url, doing="writing") from again
            return
        if is_connection_lost(exc, conn):
            raise self._pool.commit_unknown(exc) from None
        raise translate(exc, url, doing="writing") from exc


__all__ = ["PostgresSent", "send"]
