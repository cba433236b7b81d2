"""What went wrong talking to PostgreSQL, in frontdesk's errors.

:func:`translate` turns a psycopg (or pool) error into the frontdesk error that explains it:
:class:`~frontdesk.errors.StoreUnavailable` for a server that refuses, does not answer, is
starting up or was lost; :class:`~frontdesk.errors.StoreAuthFailed` for refused credentials;
:class:`~frontdesk.errors.StoreLocked` for rows locked too long; a plain
:class:`~frontdesk.errors.StoreError` otherwise. :func:`is_connection_lost` tells a lost
connection from a refused statement.
"""

from __future__ import annotations

import re
from typing import Any

import psycopg
import psycopg_pool

from ...errors import StoreAuthFailed, StoreError, StoreLocked, StoreUnavailable
from ._dburl import DatabaseURL

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


class AnswerTimeout(psycopg.OperationalError):
    """The server took a connection's statement but did not answer within the answer timeout:
    the connection was closed, since whatever the server does with it is unknown."""


class CommitUnknown(StoreUnavailable):
    """The connection was lost while a transaction committed: it committed whole or not at
    all, and the server cannot say which until it is back."""


def server_says(exc: BaseException) -> str:
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
    if isinstance(exc, AnswerTimeout) or (conn is not None and conn.broken):
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
    said = server_says(exc)
    text = str(exc).lower()
    if isinstance(exc, psycopg.errors.ConnectionTimeout) or "timeout expired" in text:
        return StoreUnavailable(
            f"{where} did not answer{what} (no connection within the connect timeout): the "
            "host may be down or a firewall drops the traffic; nothing was changed, try again "
            "once it answers"
        )
    if isinstance(exc, AnswerTimeout):
        return StoreUnavailable(
            f"{where} did not answer{what}: {said}; it accepted the connection but stopped "
            "answering (a hung server or a network path that went silent). The connection "
            "was closed; whatever was not committed is not lost, try again once it answers"
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
    if (
        state == "57P03"
        or "the database system is starting up" in text
        or ("not yet accepting connections" in text)
    ):
        return StoreUnavailable(
            f"{where} is starting up or shutting down and takes no connections yet{what} "
            f"({said}); nothing was changed, try again in a moment"
        )
    if state == "57014" and "statement timeout" in text:
        return StoreUnavailable(
            f"{where} cancelled a statement that ran past its statement timeout{what} "
            f"({said}): the server is overloaded or a statement is far too slow; nothing was "
            "changed, try again"
        )
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


__all__ = [
    "RETRY_STATES",
    "AnswerTimeout",
    "CommitUnknown",
    "is_connection_lost",
    "server_says",
    "translate",
]
