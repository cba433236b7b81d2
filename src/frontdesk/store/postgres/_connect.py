"""Connecting to PostgreSQL: a bounded connection pool whose every failure is frontdesk's error.

:class:`PostgresPool` is a ``psycopg_pool.ConnectionPool`` opened from a checked database URL
(:mod:`._dburl`) with every wait bounded, so each failure is one of frontdesk's errors
(:mod:`._errors`) within a bounded time, never psycopg's:

- the server refuses connections, or does not answer within ``connect_timeout``:
  :class:`~frontdesk.errors.StoreUnavailable`;
- it refuses the credentials: :class:`~frontdesk.errors.StoreAuthFailed`;
- the database does not exist: :class:`~frontdesk.errors.StoreError`;
- the server takes a statement and does not answer within ``answer_timeout`` (a hung server,
  a frozen network path): the connection is closed and the caller gets a
  ``StoreUnavailable`` at once, without a retry that would wait as long again;
- the connection is lost in the middle of a transaction: :meth:`PostgresPool.transaction`
  runs the transaction once more on a fresh connection, since nothing of it was committed; a
  connection lost while committing, or lost again, is a ``StoreUnavailable`` (the caller
  retries later: the work is not lost, only not done yet).

Connections carry TCP keepalives and a TCP user timeout, so a server that vanishes from the
network is noticed within about half a minute rather than the operating system's hours, and
a server-side ``statement_timeout`` ends a statement that runs too long before the client
gives up on the server.
"""

from __future__ import annotations

import logging
import select
import threading
import time
from collections.abc import Callable, Generator, Iterator
from contextlib import contextmanager
from types import TracebackType
from typing import Any, TypeVar

import psycopg
import psycopg_pool

from ...errors import StoreError
from ._dburl import SCHEMES, DatabaseURL, hide_password, is_postgres_url, parse_url
from ._errors import (
    RETRY_STATES,
    AnswerTimeout,
    CommitUnknown,
    is_connection_lost,
    server_says,
    translate,
)

log = logging.getLogger("frontdesk.store.postgres")

T = TypeVar("T")

CONNECT_TIMEOUT = 10
"""Seconds a new connection may take before the server counts as not answering."""
POOL_TIMEOUT = 30.0
"""Seconds a caller waits for a connection from the pool before the store is unavailable."""
RECONNECT_TIMEOUT = 30.0
"""Seconds the pool keeps trying to replace a lost connection in the background before it
gives the slot up (a later request opens a new one at once)."""
SEARCH_PATH = "frontdesk"
"""The PostgreSQL schema (namespace) that holds frontdesk's tables."""
TCP_SETTINGS = {
    "keepalives": "1",
    "keepalives_idle": "10",
    "keepalives_interval": "3",
    "keepalives_count": "3",
    "tcp_user_timeout": "30000",
}
"""libpq settings that bound how long a connection to a vanished server stays open; a
setting given in the URL wins."""
LOCK_TIMEOUT = 10
"""Seconds a statement waits for a row another transaction locked before the store counts as
locked (:class:`~frontdesk.errors.StoreLocked`, as SQLite's busy timeout)."""
ANSWER_TIMEOUT = 30.0
"""Seconds the server may take to answer a statement or a commit before the connection counts
as lost (a server that accepts and never answers, a network path that went silent)."""
STATEMENT_TIMEOUT = 20
"""Seconds the server lets one statement run before it cancels it itself (below
:data:`ANSWER_TIMEOUT`, so a slow statement is told apart from a hung server)."""


LEND_WAIT = 0.001
"""Seconds :meth:`PostgresPool.lend` waits for a free connection (the pool takes no less
than a moment to hand one over), so that an event loop sending a write hardly ever waits."""


class BoundedConnection(psycopg.Connection[Any]):
    """A connection that waits at most :attr:`answer_timeout` for each answer of the server,
    then closes itself and raises :class:`~._errors.AnswerTimeout`."""

    answer_timeout: float = ANSWER_TIMEOUT
    """Seconds to wait for an answer (set per connection by the pool that opens it)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.prepared: dict[str, bytes | None] = {}
        """The statements prepared on this connection (its session), by their SQL: the
        ``EXECUTE`` to send in their place, or None for one sent as it is (see
        :func:`._transaction.prepare`)."""

    def wait(
        self,
        gen: Generator[Any, Any, Any],
        interval: float = 0.1,
        timeout: float | None = None,
    ) -> Any:
        """psycopg's wait, bounded by :attr:`answer_timeout` when no timeout is given."""
        limit = self.answer_timeout if timeout is None else timeout
        started = time.monotonic()
        try:
            return super().wait(gen, interval, limit)
        except psycopg.OperationalError as exc:
            waited = time.monotonic() - started
            if exc.sqlstate is not None or timeout is not None or waited < limit:
                raise
            self.close()  # what the server does with this connection now is unknown
            raise AnswerTimeout(
                f"the server did not answer within {limit:g}s (answer timeout)"
            ) from None


def bounded(answer_timeout: float) -> Callable[[psycopg.Connection[Any]], None]:
    """A pool's ``configure`` callback that sets each new connection's answer timeout."""

    def configure(conn: psycopg.Connection[Any]) -> None:
        if isinstance(conn, BoundedConnection):
            conn.answer_timeout = answer_timeout

    return configure


# -- the pool -----------------------------------------------------------------------------------


class PostgresPool:
    """A pool of connections to one PostgreSQL database, every wait bounded.

    Connections use the ``frontdesk`` schema first on their search path. :meth:`open`
    connects once directly before filling the pool, so a wrong URL fails at once with the
    reason (refused, not answering, wrong credentials, no such database).
    """

    def __init__(
        self,
        url: str | DatabaseURL,
        *,
        min_size: int = 1,
        max_size: int = 10,
        connect_timeout: int = CONNECT_TIMEOUT,
        pool_timeout: float = POOL_TIMEOUT,
        reconnect_timeout: float = RECONNECT_TIMEOUT,
        search_path: str | None = SEARCH_PATH,
        lock_timeout: float = LOCK_TIMEOUT,
        answer_timeout: float = ANSWER_TIMEOUT,
        statement_timeout: float = STATEMENT_TIMEOUT,
        autocommit: bool = False,
        name: str = "frontdesk",
    ) -> None:
        self.url = url if isinstance(url, DatabaseURL) else parse_url(url)
        self.autocommit = autocommit
        """Whether pooled connections run each statement as its own transaction (work that
        needs several then begins its transaction itself, with ``BEGIN``)."""
        self.connect_timeout = max(1, int(connect_timeout))
        self.pool_timeout = pool_timeout
        self.answer_timeout = answer_timeout
        """Seconds each connection waits for an answer of the server (see
        :class:`BoundedConnection`)."""
        settings: dict[str, str | int] = {
            "connect_timeout": self.connect_timeout,
            "application_name": name,
            **TCP_SETTINGS,
        }
        # The URL's own options are kept, with the search path and timeouts added.
        options = [self.url.params.get("options", "")]
        if search_path:
            options.append(f"-c search_path={search_path}")
        if lock_timeout:
            options.append(f"-c lock_timeout={int(lock_timeout * 1000)}")
        if statement_timeout:
            options.append(f"-c statement_timeout={int(statement_timeout * 1000)}")
        if any(options):
            settings["options"] = " ".join(o for o in options if o)
        self.conninfo = self.url.conninfo(**settings)
        self._pool: psycopg_pool.ConnectionPool[psycopg.Connection[Any]] = (
            psycopg_pool.ConnectionPool(
                self.conninfo,
                min_size=min_size,
                max_size=max(min_size, max_size),
                open=False,
                timeout=pool_timeout,
                reconnect_timeout=reconnect_timeout,
                kwargs={"autocommit": autocommit},
                connection_class=BoundedConnection,
                configure=bounded(answer_timeout),
                name=name,
            )
        )
        self._open = False
        self._lock = threading.Lock()

    # -- opening and closing ----------------------------------------------------------------

    def open(self) -> PostgresPool:
        """Connect once to check the URL, then fill the pool; errors are frontdesk's."""
        with self._lock:
            if self._open:
                return self
            self.connect(doing="opening the store").close()
            try:
                self._pool.open(wait=True, timeout=self.pool_timeout)
            except psycopg_pool.PoolTimeout as exc:
                self._pool.close()
                raise self._diagnose(exc, "opening the store") from None
            self._open = True
        return self

    def close(self) -> None:
        """Close every connection of the pool (waiting briefly for those in use)."""
        with self._lock:
            self._open = False
            self._pool.close(timeout=5.0)

    @property
    def closed(self) -> bool:
        """Whether the pool is closed (or was never opened)."""
        return not self._open

    def __enter__(self) -> PostgresPool:
        return self.open()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def connect(self, *, autocommit: bool = False, doing: str = "") -> psycopg.Connection[Any]:
        """A new connection of its own, outside the pool (to listen, or to migrate), its
        answers bounded as the pool's are."""
        try:
            return self.connect_raw(self.conninfo, autocommit=autocommit)
        except psycopg.Error as exc:
            raise translate(exc, self.url, doing=doing) from None

    def connect_raw(self, conninfo: str, *, autocommit: bool = False) -> BoundedConnection:
        """A connection to ``conninfo`` with this pool's answer timeout; psycopg's errors
        are the caller's to translate."""
        conn = BoundedConnection.connect(conninfo, autocommit=autocommit)
        conn.answer_timeout = self.answer_timeout
        return conn

    # -- work ---------------------------------------------------------------------------------

    @contextmanager
    def connection(self) -> Iterator[psycopg.Connection[Any]]:
        """A pooled connection for the block (no retry, no commit: the caller's to do); a
        failure to get one is frontdesk's error, and the connection goes back afterwards."""
        conn = self._getconn()
        try:
            yield conn
        finally:
            self._pool.putconn(conn)

    @contextmanager
    def session(self) -> Iterator[psycopg.Connection[Any]]:
        """A pooled connection in an open transaction for the block, committed when the block
        ends and rolled back if it raises.

        A connection found dead when the transaction begins is replaced once (nothing was
        done on it yet). A connection lost later raises :class:`StoreUnavailable`, and one lost
        while committing :class:`CommitUnknown`: the block cannot be run again from here.
        Errors psycopg raises are frontdesk's; those the block raises itself propagate.
        """
        for attempt in (1, 2):
            conn = self._getconn()
            try:
                if self.autocommit:
                    conn.execute("BEGIN")
                else:
                    conn.execute("SELECT 1")  # begins, and finds a dead connection now
                break
            except psycopg.Error as exc:
                self._pool.putconn(conn)
                hung = isinstance(exc, AnswerTimeout)  # another wait would be as long
                if attempt == 2 or hung or not is_connection_lost(exc, conn):
                    raise translate(exc, self.url, doing="beginning a transaction") from exc
                self._check_idle()
        committing = False
        try:
            yield conn
            committing = True
            conn.commit()
        except psycopg.Error as exc:
            rollback_quietly(conn)
            if committing and is_connection_lost(exc, conn):
                raise self._commit_unknown(exc) from None
            raise translate(exc, self.url, doing="running a transaction") from exc
        except BaseException:
            rollback_quietly(conn)
            raise
        finally:
            self._pool.putconn(conn)

    def lend(self) -> psycopg.Connection[Any] | None:
        """A pooled connection free right now, which the server has not ended while it sat
        idle, for the caller to send a whole transaction on and read its answer later (it must
        come back through :meth:`give_back`); None when none comes free within
        :data:`LEND_WAIT`."""
        if not self._open:
            return None
        for _ in range(self._pool.max_size):
            try:
                conn = self._pool.getconn(timeout=LEND_WAIT)
            except (psycopg_pool.PoolTimeout, psycopg_pool.PoolClosed):
                return None
            if not ended_while_idle(conn):
                return conn
            conn.close()
            self._pool.putconn(conn)
        return None

    def give_back(self, conn: psycopg.Connection[Any]) -> None:
        """Return a connection :meth:`lend` gave (a broken one is replaced by the pool)."""
        self._pool.putconn(conn)

    def commit_unknown(self, exc: BaseException) -> CommitUnknown:
        """The error for a connection lost while a transaction committed."""
        return self._commit_unknown(exc)

    def _commit_unknown(self, exc: BaseException) -> CommitUnknown:
        return CommitUnknown(
            f"the connection to the store's PostgreSQL database at {self.url.shown} was "
            f"lost while a transaction committed ({server_says(exc)}): it committed "
            "whole or not at all; try again once the server is back"
        )

    def transaction(
        self,
        work: Callable[[psycopg.Connection[Any]], T],
        *,
        read_only: bool = False,
        commits: bool = False,
        prepare: Callable[[psycopg.Connection[Any]], None] | None = None,
    ) -> T:
        """Run ``work(conn)`` in one transaction and commit it; returns what ``work`` returns.

        If the connection is lost before the commit (a restarted server, a connection the
        server ended), nothing of the transaction happened, so it runs once more on a fresh
        connection; so does a transaction the server rolled back to break a deadlock or a
        serialization conflict. ``work`` must therefore only touch the database through
        ``conn``; on an :attr:`autocommit` pool it begins the transaction itself (a statement
        outside one commits at once, and runs again on a retry). A connection lost while committing raises :class:`CommitUnknown` (except
        for a ``read_only`` transaction, which is simply run again); a second loss, or no
        connection within the pool timeout, :class:`StoreUnavailable`. An exception
        ``work`` raises itself rolls the transaction back and propagates as it is.

        With ``commits``, ``work`` sends its transaction whole, ``COMMIT`` included, in one
        round trip: a connection lost while it runs may have committed it
        (:class:`CommitUnknown`), so it is never run again then. A pooled connection the
        server already ended (a restarted server) is told from the unanswered bytes waiting
        on it and replaced before ``work`` runs; an error the server answered with (a
        deadlock, a refused statement) means nothing was committed, as without ``commits``.
        ``prepare(conn)``, if given, runs before ``work``, outside its transaction (to prepare
        statements): a connection lost there is replaced as before any commit.
        """
        for attempt in (1, 2):
            try:
                return self._attempt(work, read_only=read_only, commits=commits, prepare=prepare)
            except _Retry as retry:
                if attempt == 2:
                    raise retry.error from retry.cause
                log.info("retrying a transaction on %s: %s", self.url.shown, retry.error)
                self._check_idle()
        raise AssertionError("unreachable")  # pragma: no cover

    def _attempt(
        self,
        work: Callable[[psycopg.Connection[Any]], T],
        *,
        read_only: bool,
        commits: bool,
        prepare: Callable[[psycopg.Connection[Any]], None] | None,
    ) -> T:
        conn = self._getconn_live() if commits else self._getconn()
        committing = False
        try:
            try:
                if prepare is not None:
                    prepare(conn)
                committing = commits
                result = work(conn)
                committing = True
                conn.commit()
                return result
            except BaseException:
                rollback_quietly(conn)
                raise
        except psycopg.Error as exc:
            state = getattr(exc, "sqlstate", None)
            lost = is_connection_lost(exc, conn)
            if lost and committing and not read_only:
                raise self._commit_unknown(exc) from None
            if isinstance(exc, AnswerTimeout):
                raise translate(exc, self.url, doing="running a transaction") from None
            if lost or state in RETRY_STATES:
                raise _Retry(translate(exc, self.url, doing="running a transaction"), exc) from None
            raise translate(exc, self.url) from exc
        finally:
            self._pool.putconn(conn)

    def _getconn(self) -> psycopg.Connection[Any]:
        if not self._open:
            raise StoreError(f"the store's connection pool for {self.url.shown} is closed")
        try:
            return self._pool.getconn()
        except psycopg_pool.PoolTimeout as exc:
            raise self._diagnose(exc, "waiting for a connection") from None
        except psycopg_pool.PoolClosed:
            raise StoreError(
                f"the store's connection pool for {self.url.shown} is closed"
            ) from None

    def _getconn_live(self) -> psycopg.Connection[Any]:
        """A pooled connection that the server has not ended while it sat idle (see
        :func:`ended_while_idle`); ended ones are closed, and the pool replaces them."""
        for _ in range(self._pool.max_size):
            conn = self._getconn()
            if not ended_while_idle(conn):
                return conn
            conn.close()
            self._pool.putconn(conn)
        return self._getconn()  # the pool opens new connections to replace the ended ones

    def _check_idle(self) -> None:
        """Drop the idle connections that the same loss broke, so a retry gets a live one."""
        try:
            self._pool.check()
        except psycopg.Error:  # pragma: no cover - check() disposes of broken ones itself
            pass

    def _diagnose(self, exc: psycopg_pool.PoolTimeout, doing: str) -> StoreError:
        """Why no connection came: one direct attempt says whether the server is there."""
        try:
            self.connect_raw(self.conninfo).close()
        except psycopg.Error as direct:
            return translate(direct, self.url, doing=doing)
        return translate(exc, self.url, doing=doing)

    def stats(self) -> dict[str, int]:
        """The pool's counters (connections, requests, waits), for diagnostics."""
        return dict(self._pool.get_stats())


def ended_while_idle(conn: psycopg.Connection[Any]) -> bool:
    """Whether an idle connection is known to be unusable before anything is sent on it.

    The server says nothing on an idle connection of the pool (it listens on no channel):
    bytes waiting there are the server ending it (a restart, a terminated backend, then the
    end of the stream), or at least something unexpected, so it is not trusted with a
    transaction that cannot be run again. One ``poll`` with no wait, no round trip."""
    if conn.closed or conn.broken:
        return True
    try:
        poller = select.poll()
        poller.register(conn.pgconn.socket, select.POLLIN | select.POLLERR | select.POLLHUP)
        return bool(poller.poll(0))
    except (OSError, psycopg.Error):
        return True


def rollback_quietly(conn: psycopg.Connection[Any]) -> None:
    """Roll back the connection's transaction, if the connection still works."""
    if not conn.broken:
        try:
            conn.rollback()
        except psycopg.Error:
            pass


class _Retry(Exception):
    """Internal: the transaction did not commit and can run again."""

    def __init__(self, error: StoreError, cause: BaseException) -> None:
        super().__init__(str(error))
        self.error = error
        self.cause = cause


__all__ = [
    "ANSWER_TIMEOUT",
    "CONNECT_TIMEOUT",
    "POOL_TIMEOUT",
    "SCHEMES",
    "SEARCH_PATH",
    "STATEMENT_TIMEOUT",
    "BoundedConnection",
    "CommitUnknown",
    "DatabaseURL",
    "PostgresPool",
    "bounded",
    "ended_while_idle",
    "hide_password",
    "is_connection_lost",
    "is_postgres_url",
    "parse_url",
    "rollback_quietly",
    "translate",
]
