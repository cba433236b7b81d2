"""PostgreSQL database URLs: checked before anything connects, shown without their password.

:func:`parse_url` checks a ``postgresql://`` URL and returns its libpq parameters;
:attr:`DatabaseURL.shown` is the URL with its password hidden, for messages and
``frontdesk db info``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, quote, urlsplit

import psycopg
from psycopg import conninfo as _conninfo

from ...errors import InvalidDatabaseURL

SCHEMES = ("postgresql", "postgres")
"""The URL schemes of a PostgreSQL database."""


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


__all__ = ["SCHEMES", "DatabaseURL", "hide_password", "is_postgres_url", "parse_url"]
