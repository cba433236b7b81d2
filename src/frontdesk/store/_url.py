"""Choosing a store: a database URL, or a frontdesk home's SQLite file.

``open_store()`` reads ``$FRONTDESK_DATABASE_URL`` when given no URL. ``sqlite:///path`` is a
SQLite file (a path not ending in ``.db`` is a home directory holding ``frontdesk.db``);
``postgresql://user:password@host:port/dbname`` is a PostgreSQL database, through the
``postgres`` extra; no URL at all is the home's SQLite file, the default. A URL that cannot be
parsed, or names a backend frontdesk does not have, raises :class:`InvalidDatabaseURL` before
anything is opened or created.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any
from urllib.parse import SplitResult, urlsplit, urlunsplit

from ..errors import InvalidDatabaseURL, StoreUnavailable
from ._base import Store

DATABASE_URL_ENV = "FRONTDESK_DATABASE_URL"
"""The environment variable naming the database, when no URL is given."""
SQLITE_SCHEMES = frozenset({"sqlite"})
"""URL schemes of the SQLite backend."""
POSTGRES_SCHEMES = frozenset({"postgresql", "postgres"})
"""URL schemes of the PostgreSQL backend."""
POSTGRES_EXTRA = "pip install 'frontdesk[postgres]'"
"""How to install what the PostgreSQL backend needs."""


def database_url(url: str | None = None) -> str | None:
    """``url``, else ``$FRONTDESK_DATABASE_URL``, else None (the home's SQLite file)."""
    if url is None:
        url = os.environ.get(DATABASE_URL_ENV) or None
    return url


def parse_url(url: str) -> SplitResult:
    """The parts of a database URL; :class:`InvalidDatabaseURL` for one that is malformed or
    names an unknown backend."""
    if not isinstance(url, str):
        raise InvalidDatabaseURL(f"the database URL must be a string, got {type(url).__name__}")
    shown = redact_url(url)
    if not url.strip() or url != url.strip() or any(ord(c) < 32 or ord(c) == 127 for c in url):
        raise InvalidDatabaseURL(
            f"malformed database URL {shown!r}: it is empty or holds spaces or control "
            "characters; nothing was created"
        )
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 (parsing the port is the check)
    except ValueError as exc:
        raise InvalidDatabaseURL(
            f"malformed database URL {shown!r} ({exc}); nothing was created"
        ) from None
    scheme = parts.scheme.lower()
    if not scheme or "://" not in url:
        raise InvalidDatabaseURL(
            f"malformed database URL {shown!r}: expected sqlite:///path/to/frontdesk.db or "
            "postgresql://user:password@host:port/dbname; nothing was created"
        )
    if scheme not in SQLITE_SCHEMES | POSTGRES_SCHEMES:
        raise InvalidDatabaseURL(
            f"unknown database URL scheme {parts.scheme!r} in {shown!r}: frontdesk stores runs "
            "in sqlite:// or postgresql:// databases; nothing was created"
        )
    if scheme in SQLITE_SCHEMES:
        if parts.netloc not in ("", "localhost") or not parts.path.strip("/"):
            raise InvalidDatabaseURL(
                f"malformed SQLite URL {shown!r}: expected sqlite:///path/to/frontdesk.db "
                "(a file, or a frontdesk home directory); nothing was created"
            )
        if parts.query or parts.fragment:
            raise InvalidDatabaseURL(
                f"malformed SQLite URL {shown!r}: it takes no query or fragment; nothing was "
                "created"
            )
    elif not parts.hostname and "host=" not in parts.query:
        raise InvalidDatabaseURL(
            f"malformed PostgreSQL URL {shown!r}: it names no host; expected "
            "postgresql://user:password@host:port/dbname; nothing was created"
        )
    return parts


def redact_url(url: str) -> str:
    """``url`` with its password (if any) replaced by ``***``."""
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        return url.split("@", 1)[-1] if "@" in url else url
    if not password:
        return url
    user = parts.username or ""
    host = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))


def open_store(
    url: str | None = None,
    *,
    home: str | os.PathLike[str] | None = None,
    migrate: bool = True,
    busy_timeout: float = 10.0,
    background_checkpoints: bool = False,
) -> Store:
    """The store ``url`` names (else ``$FRONTDESK_DATABASE_URL``, else the SQLite file of
    ``home`` or the default home).

    Without ``migrate`` an older schema is not upgraded. ``busy_timeout`` and
    ``background_checkpoints`` are SQLite's (see :class:`~.sqlite.SQLiteStore`). Raises :class:`InvalidDatabaseURL` for
    a malformed URL or an unknown scheme and :class:`~frontdesk.errors.StoreUnavailable` when
    the backend cannot be loaded here (a PostgreSQL URL without the ``postgres`` extra); in
    both cases nothing is created.
    """
    from .sqlite import SQLiteStore

    url = database_url(url)
    if url is None:
        from .._home import resolve_home

        path = resolve_home(home)
    else:
        parts = parse_url(url)
        if parts.scheme.lower() not in SQLITE_SCHEMES:
            return _postgres_store(url, migrate=migrate)
        path = Path(_sqlite_path(parts))
    return SQLiteStore(path, busy_timeout, background_checkpoints, migrate=migrate)


def _sqlite_path(parts: SplitResult) -> str:
    path = parts.path
    # sqlite:////abs and sqlite:///abs both name /abs.
    return "/" + path.lstrip("/")


def require_backend(url: str | None) -> None:
    """Check, before anything is opened or created, that ``url`` (a database URL, or None for
    the home's SQLite file) is well formed and that its backend can be loaded here.

    Raises :class:`InvalidDatabaseURL` or :class:`~frontdesk.errors.StoreUnavailable`.
    """
    if url is None:
        return
    if parse_url(url).scheme.lower() in POSTGRES_SCHEMES:
        _postgres_backend(url)


def _postgres_backend(url: str) -> type[Store]:
    try:
        import psycopg  # noqa: F401
        import psycopg_pool  # noqa: F401

        from .postgres._store import PostgresStore
    except ImportError as exc:
        raise StoreUnavailable(
            f"{redact_url(url)} is a PostgreSQL database, but the PostgreSQL driver is not "
            f"installed ({exc.name or exc}): {POSTGRES_EXTRA}; nothing was created"
        ) from None
    return PostgresStore


def _postgres_store(url: str, **options: Any) -> Store:
    backend: Any = _postgres_backend(url)
    store: Store = backend(url, **options)
    return store
