"""Connecting to PostgreSQL: database URLs, a bounded connection pool, and clear errors.

:func:`parse_url` checks a ``postgresql://`` URL before anything connects, and
:attr:`DatabaseURL.shown` is the URL with its password hidden, for messages and
``frontdesk db info``. :class:`PostgresPool` is a ``psycopg_pool.ConnectionPool`` opened from
such a URL with every wait bounded, so each failure is one of frontdesk's errors within a
bounded time, never psycopg's:

- the server refuses connections, or does not answer within ``connect_timeout``:
  :class:`~frontdesk.errors.StoreUnavailable`;
- it refuses the credentials: :class:`~frontdesk.errors.StoreAuthFailed`;
- the database does not exist: :class:`~frontdesk.errors.StoreError`;
- the connection is lost in the middle of a transaction: :meth:`PostgresPool.transaction`
  runs the transaction once more on a fresh connection, since nothing of it was committed; a
  connection lost while committing, or lost again, is a ``StoreUnavailable`` (the caller
  retries later: the work is not lost, only not done yet).

Connections carry TCP keepalives and a TCP user timeout, so a server that vanishes from the
network is noticed within about half a minute rather than the operating system's hours.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, TypeVar
from urllib.parse import parse_qsl, quote, urlsplit

import psycopg
import psycopg_pool
from psycopg import conninfo as _conninfo

from ...errors import (
    InvalidDatabaseURL,
    StoreAuthFailed,
    StoreError,
    StoreLocked,
    StoreUnavailable,
)

log = logging.getLogger("frontdesk.store.postgres")

T = TypeVar("T")

SCHEMES = ("postgresql", "postgres")
"""The URL schemes of a PostgreSQL database."""
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
RETRY_STATES = frozenset({"40001", "40P01"})
"""SQLSTATEs of a transaction the server rolled back to break a conflict (serialization
failure, deadlock): running it again is safe."""
_LOST = (
    "server closed the connection",
    "terminating connection",
    "connection not open",
    "the connection is closed",
    "the connection is lost",
    "consuming input failed",
    "could not receive data",
    "could not send data",
    "no connection to the server",
    "ssl syscall",
    "ssl connection has been closed",
    "connection timed out",
    "broken pipe",
    "connection reset",
)
_AUTH = (
    "password authentication failed",
    "authentication failed",
    "no password supplied",
    "no pg_hba.conf entry",
    "pg_hba.conf rejects",
)
_ROLE = re.compile(r'role "[^"]*" does not exist')
_DATABASE = re.compile(r'database "[^"]*" does not exist')
_SERVER_LINE = re.compile(r"^(?:.*?failed: )?(?:FATAL|ERROR):\s+", re.IGNORECASE)


@dataclass(frozen=True)
class DatabaseURL:
    """A checked ``postgresql://`` URL and the libpq parameters it holds."""

    url: str = field(repr=False)
    """The URL as given, with its password."""
    params: dict[str, str] = field(repr=False)
    """libpq's connection parameters parsed from it (host, port, dbname, user, ...)."""

    @property
    def shown(self) -> str:
        """The URL with its password hidden, for messages and ``db info``."""
        return hide_password(self.url)

    @property
    def database(self) -> str:
        """The database's name (libpq's default, the user's name, when the URL has none)."""
        return self.params.get("dbname") or self.params.get("user") or "(default)"

    def conninfo(self, **settings: str | int) -> str:
        """A libpq connection string for this URL, with ``settings`` added where the URL
        does not set them itself (``options`` always comes from ``settings`` when given)."""
        params: dict[str, Any] = {**settings, **self.params}
        if "options" in settings:
            params["options"] = settings["options"]
        return _conninfo.make_conninfo("", **params)

    def __str__(self) -> str:
        return self.shown

    def __repr__(self) -> str:
        return f"DatabaseURL({self.shown!r})"


def is_postgres_url(url: str) -> bool:
    """Whether ``url`` names a PostgreSQL database (by its scheme alone)."""
    return url.strip().lower().startswith(tuple(f"{s}://" for s in SCHEMES))


def parse_url(url: str) -> DatabaseURL:
    """Check a database URL; :class:`InvalidDatabaseURL` says what is wrong with it.

    Nothing connects: a well-formed URL may still name a server that is down.
    """
    if not isinstance(url, str):
        raise InvalidDatabaseURL(f"a database URL must be a string, got {type(url).__name__}")
    text = url.strip()
    scheme, sep, _rest = text.partition("://")
    if not sep or not scheme:
        raise InvalidDatabaseURL(
            f"{hide_password(text)!r} is not a database URL: expected "
            "postgresql://USER:PASSWORD@HOST:PORT/DATABASE"
        )
    if scheme.lower() not in SCHEMES:
        raise InvalidDatabaseURL(
            f"unknown database URL scheme {scheme + '://'!r} in {hide_password(text)!r}: "
            "frontdesk stores runs in PostgreSQL (postgresql://USER:PASSWORD@HOST:PORT/DATABASE) "
            "or, without a URL, in SQLite under FRONTDESK_HOME"
        )
    try:
        params = {k: str(v) for k, v in _conninfo.conninfo_to_dict(text).items() if v is not None}
    except psycopg.Error as exc:
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        detail = detail.replace(text, hide_password(text))
        raise InvalidDatabaseURL(
            f"malformed database URL {hide_password(text)!r}: {detail}"
        ) from None
    for port in params.get("port", "").split(","):
        if port and not (port.isdigit() and 0 < int(port) < 65536):
            raise InvalidDatabaseURL(
                f"malformed database URL {hide_password(text)!r}: port {port!r} is not a "
                "number between 1 and 65535"
            )
    return DatabaseURL(text, params)


def hide_password(url: str) -> str:
    """``url`` with the password in its user part and in its query replaced by ``***``."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return re.sub(r"(://[^/@:]*:)[^@/]*@", r"\1***@", url)
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, hosts = netloc.rpartition("@")
        if ":" in userinfo:
            userinfo = userinfo.split(":", 1)[0] + ":***"
        netloc = f"{userinfo}@{hosts}"
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        query = "&".join(
            f"{quote(k, safe='')}={'***' if k == 'password' else quote(v, safe='')}"
            for k, v in pairs
        )
    shown = f"{parts.scheme}://{netloc}{parts.path}"
    return shown + (f"?{query}" if query else "") + (f"#{parts.fragment}" if parts.fragment else "")


# -- errors ------------------------------------------------------------------------------------


def _server_says(exc: BaseException) -> str:
    """The most telling line of a psycopg error, without libpq's connection preamble."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    if not lines:
        return type(exc).__name__
    first = lines[0]
    for line in lines:
        if _SERVER_LINE.match(line):
            return _SERVER_LINE.sub("", line)
    return first


def is_connection_lost(exc: BaseException, conn: psycopg.Connection[Any] | None = None) -> bool:
    """Whether ``exc`` means the connection to the server is gone (not a refused statement)."""
    if conn is not None and conn.broken:
        return True
    if not isinstance(exc, psycopg.OperationalError):
        return False
    state = getattr(exc, "sqlstate", None) or ""
    if state.startswith(("08", "57P")):
        return True
    text = str(exc).lower()
    return any(marker in text for marker in _LOST)


def translate(exc: BaseException, url: DatabaseURL, *, doing: str = "") -> StoreError:
    """The frontdesk error that explains a psycopg (or pool) error met talking to ``url``."""
    where = f"the store's PostgreSQL database at {url.shown}"
    what = f" while {doing}" if doing else ""
    said = _server_says(exc)
    text = str(exc).lower()
    if isinstance(exc, psycopg.errors.ConnectionTimeout) or "timeout expired" in text:
        return StoreUnavailable(
            f"{where} did not answer{what} (no connection within the connect timeout): the "
            "host may be down or a firewall drops the traffic; nothing was changed, try again "
            "once it answers"
        )
    if isinstance(exc, psycopg_pool.PoolTimeout):
        return StoreUnavailable(
            f"no connection to {where} came free{what} ({exc}): every connection of the pool "
            "is busy or the server stopped answering; nothing was changed, try again"
        )
    if any(marker in text for marker in _AUTH) or _ROLE.search(str(exc)):
        user = url.params.get("user", "(default user)")
        return StoreAuthFailed(
            f"{where} refused the credentials of user {user!r}: {said}; check the user and "
            "password in the database URL (FRONTDESK_DATABASE_URL)"
        )
    if _DATABASE.search(str(exc)):
        return StoreError(
            f"{where}: {said}; create it (createdb {url.database}) or name an existing "
            "database in the URL"
        )
    if "connection refused" in text:
        return StoreUnavailable(
            f"{where} refused the connection{what}: is PostgreSQL running there and "
            "accepting TCP connections? Nothing was changed, try again once it is up"
        )
    if "resolve host" in text or "translate host name" in text:
        return StoreUnavailable(
            f"{where}: the host name could not be resolved ({said}); check the URL's host"
        )
    if "too many clients" in text or getattr(exc, "sqlstate", None) == "53300":
        return StoreUnavailable(
            f"{where} has no connection slot left ({said}); nothing was changed, try again or "
            "raise the server's max_connections"
        )
    state = getattr(exc, "sqlstate", None) or ""
    if state in RETRY_STATES or state == "55P03":
        return StoreLocked(
            f"{where} is busy: {said} (rows this needs stayed locked by another transaction); "
            "nothing was changed, try again"
        )
    if state in ("42P01", "3F000"):
        return StoreError(
            f"{where} does not hold frontdesk's tables ({said}): run frontdesk db migrate"
        )
    if isinstance(exc, psycopg.OperationalError) and (
        is_connection_lost(exc) or "connection" in text
    ):
        return StoreUnavailable(
            f"the connection to {where} was lost{what} ({said}); nothing was changed, "
            "try again once the server is back"
        )
    return StoreError(f"store error at {url.shown}{what}: {said}")


# -- the pool -----------------------------------------------------------------------------------


class CommitUnknown(StoreUnavailable):
    """The connection was lost while a transaction committed: it committed whole or not at
    all, and the server cannot say which until it is back."""


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
        autocommit: bool = False,
        name: str = "frontdesk",
    ) -> None:
        self.url = url if isinstance(url, DatabaseURL) else parse_url(url)
        self.autocommit = autocommit
        """Whether pooled connections run each statement as its own transaction (work that
        needs several then begins its transaction itself, with ``BEGIN``)."""
        self.connect_timeout = max(1, int(connect_timeout))
        self.pool_timeout = pool_timeout
        settings: dict[str, str | int] = {
            "connect_timeout": self.connect_timeout,
            "application_name": name,
            **TCP_SETTINGS,
        }
        # The URL's own options are kept, with the search path and lock timeout added.
        options = [self.url.params.get("options", "")]
        if search_path:
            options.append(f"-c search_path={search_path}")
        if lock_timeout:
            options.append(f"-c lock_timeout={int(lock_timeout * 1000)}")
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
        """A new connection of its own, outside the pool (to listen, or to migrate)."""
        try:
            return psycopg.connect(self.conninfo, autocommit=autocommit)
        except psycopg.Error as exc:
            raise translate(exc, self.url, doing=doing) from None

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
                if attempt == 2 or not is_connection_lost(exc, conn):
                    raise translate(exc, self.url, doing="beginning a transaction") from exc
                self._check_idle()
        committing = False
        try:
            yield conn
            committing = True
            conn.commit()
        except psycopg.Error as exc:
            _rollback(conn)
            if committing and is_connection_lost(exc, conn):
                raise self._commit_unknown(exc) from None
            raise translate(exc, self.url, doing="running a transaction") from exc
        except BaseException:
            _rollback(conn)
            raise
        finally:
            self._pool.putconn(conn)

    def _commit_unknown(self, exc: BaseException) -> CommitUnknown:
        return CommitUnknown(
            f"the connection to the store's PostgreSQL database at {self.url.shown} was "
            f"lost while a transaction committed ({_server_says(exc)}): it committed "
            "whole or not at all; try again once the server is back"
        )

    def transaction(
        self, work: Callable[[psycopg.Connection[Any]], T], *, read_only: bool = False
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
        """
        for attempt in (1, 2):
            try:
                return self._attempt(work, read_only=read_only)
            except _Retry as retry:
                if attempt == 2:
                    raise retry.error from retry.cause
                log.info("retrying a transaction on %s: %s", self.url.shown, retry.error)
                self._check_idle()
        raise AssertionError("unreachable")  # pragma: no cover

    def _attempt(self, work: Callable[[psycopg.Connection[Any]], T], *, read_only: bool) -> T:
        conn = self._getconn()
        committing = False
        try:
            try:
                result = work(conn)
                committing = True
                conn.commit()
                return result
            except BaseException:
                _rollback(conn)
                raise
        except psycopg.Error as exc:
            state = getattr(exc, "sqlstate", None)
            lost = is_connection_lost(exc, conn)
            if lost and committing and not read_only:
                raise self._commit_unknown(exc) from None
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

    def _check_idle(self) -> None:
        """Drop the idle connections that the same loss broke, so a retry gets a live one."""
        try:
            self._pool.check()
        except psycopg.Error:  # pragma: no cover - check() disposes of broken ones itself
            pass

    def _diagnose(self, exc: psycopg_pool.PoolTimeout, doing: str) -> StoreError:
        """Why no connection came: one direct attempt says whether the server is there."""
        try:
            psycopg.connect(self.conninfo).close()
        except psycopg.Error as direct:
            return translate(direct, self.url, doing=doing)
        return translate(exc, self.url, doing=doing)

    def stats(self) -> dict[str, int]:
        """The pool's counters (connections, requests, waits), for diagnostics."""
        return dict(self._pool.get_stats())


def _rollback(conn: psycopg.Connection[Any]) -> None:
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
    "CONNECT_TIMEOUT",
    "POOL_TIMEOUT",
    "SCHEMES",
    "SEARCH_PATH",
    "CommitUnknown",
    "DatabaseURL",
    "PostgresPool",
    "hide_password",
    "is_connection_lost",
    "is_postgres_url",
    "parse_url",
    "translate",
]
