"""An app's own database, on whichever backend the runtime's store is.

Each reference app (support, disputes, airline) keeps tables of its own, created and seeded
from its fixtures on first use. Where they live follows the store of the runtime driving the
code (:func:`frontdesk.current_runtime`; without one, the store ``$FRONTDESK_DATABASE_URL``
names, the way a runtime would choose it):

* on SQLite, a file of its own in the runtime's home, ``<home>/<app>.db``;
* on PostgreSQL, a schema named after the app (``support``, ``disputes``, ``airline``) in the
  store's database, reached through :meth:`frontdesk.store.Store.app_connection`.

An app writes its SQL once, in a portable subset: ``?`` and ``:name`` placeholders,
``INSERT OR IGNORE``, ``INTEGER PRIMARY KEY AUTOINCREMENT`` and ``REAL`` are translated for
PostgreSQL (:func:`portable`). Rows read by position and by column name (:class:`Row`).

Seeding happens in one transaction that also records the schema's version, so a process that
loses the race waits, then finds the data there; nothing is ever half-seeded. SQLite takes the
database's write lock (``BEGIN IMMEDIATE``) and keeps the version in ``PRAGMA user_version``;
PostgreSQL takes a transaction-level advisory lock on the app's key and keeps the version in a
table of the schema. A write transaction (:meth:`AppConnection.transaction`) runs as if alone
on both: SQLite's write lock, or the same advisory lock on PostgreSQL.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import closing, contextmanager
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._home import current_home, resolve_home
from .._scope import current_runtime_or_none
from ..errors import SchemaTooNew
from ..store import Store, database_url, open_store, parse_url

if TYPE_CHECKING:
    from ..runtime import AgentRuntime

BUSY_TIMEOUT_SECONDS = 30.0
"""How long SQLite waits for another connection's write lock."""
SQLITE = "sqlite"
"""The backend name of an app database in a SQLite file."""
POSTGRESQL = "postgresql"
"""The backend name of an app database in a PostgreSQL schema."""
VERSION_TABLE = "app_schema_version"
"""The table holding an app schema's version on PostgreSQL (SQLite uses ``user_version``)."""

Params = Sequence[Any] | Mapping[str, Any]


def read_fixture(package: str, name: str) -> Any:
    """The JSON fixture ``data/<name>`` shipped in an app's ``package`` (its ``__package__``)."""
    return json.loads(resources.files(package).joinpath("data", name).read_text("utf-8"))


class Row:
    """A result row: ``row[0]`` by position, ``row["name"]`` by column name, iterable, and
    ``dict(row)`` maps column names to values."""

    __slots__ = ("_index", "_values")

    def __init__(self, index: Mapping[str, int], values: Sequence[Any]) -> None:
        self._index = index
        self._values = tuple(values)

    def __getitem__(self, key: int | str) -> Any:
        if isinstance(key, str):
            return self._values[self._index[key]]
        return self._values[key]

    def __iter__(self) -> Iterator[Any]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def keys(self) -> list[str]:
        """The column names, in order."""
        return list(self._index)

    def __repr__(self) -> str:
        return f"Row({dict(zip(self._index, self._values, strict=True))!r})"


class Result:
    """The rows a statement returned (all fetched at once)."""

    def __init__(self, rows: list[Row]) -> None:
        self.rows = rows
        """Every row, in order."""

    def fetchone(self) -> Row | None:
        """The first row, or None."""
        return self.rows[0] if self.rows else None

    def one(self) -> Row:
        """The first row, of a statement sure to return one (``LookupError`` if none did)."""
        if not self.rows:
            raise LookupError("the statement returned no row")
        return self.rows[0]

    def fetchall(self) -> list[Row]:
        """Every row."""
        return self.rows

    def __iter__(self) -> Iterator[Row]:
        return iter(self.rows)


# -- portable SQL ----------------------------------------------------------------------------

_LITERAL = re.compile(r"('(?:[^']|'')*')")
_NAMED = re.compile(r"(?<![:\w]):([A-Za-z_]\w*)")
_OR_IGNORE = re.compile(r"\bINSERT\s+OR\s+IGNORE\s+INTO\b", re.IGNORECASE)
_AUTOINCREMENT = re.compile(r"\bINTEGER\s+PRIMARY\s+KEY\s+AUTOINCREMENT\b", re.IGNORECASE)
_REAL = re.compile(r"\bREAL\b", re.IGNORECASE)


@lru_cache(maxsize=512)
def portable(sql: str, backend: str) -> str:
    """``sql``, written for SQLite in the portable subset, as ``backend`` runs it.

    For PostgreSQL: ``?`` becomes ``%s`` and ``:name`` ``%(name)s`` (a ``%`` is doubled),
    ``INSERT OR IGNORE INTO ...`` becomes ``INSERT INTO ... ON CONFLICT DO NOTHING``, ``INTEGER
    PRIMARY KEY AUTOINCREMENT`` an identity column and ``REAL`` ``DOUBLE PRECISION``. Quoted
    literals are left as they are. SQLite runs ``sql`` unchanged.
    """
    if backend == SQLITE:
        return sql
    parts = _LITERAL.split(sql)
    ignore = False
    for i in range(0, len(parts), 2):  # the even parts are outside quotes
        text = parts[i].replace("%", "%%").replace("?", "%s")
        text = _NAMED.sub(r"%(\1)s", text)
        text, found = _OR_IGNORE.subn("INSERT INTO", text)
        ignore = ignore or bool(found)
        text = _AUTOINCREMENT.sub("BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY", text)
        parts[i] = _REAL.sub("DOUBLE PRECISION", text)
    for i in range(1, len(parts), 2):
        parts[i] = parts[i].replace("%", "%%")
    text = "".join(parts)
    if ignore:
        text = text.rstrip().rstrip(";") + " ON CONFLICT DO NOTHING"
    return text


def _rows(description: Sequence[Any] | None, values: Iterable[Sequence[Any]]) -> list[Row]:
    if description is None:
        return []
    index = {column[0]: i for i, column in enumerate(description)}
    return [Row(index, row) for row in values]


class AppConnection:
    """A connection to one app's tables, in autocommit mode: each statement commits unless a
    :meth:`transaction` is open. SQL is written once for both backends (see :func:`portable`).
    """

    def __init__(self, raw: Any, backend: str, lock_key: int, where: Path | str) -> None:
        self.raw = raw
        """The driver's connection (``sqlite3`` or ``psycopg``)."""
        self.backend = backend
        """``sqlite`` or ``postgresql``."""
        self.lock_key = lock_key
        """The advisory lock key a write transaction takes on PostgreSQL."""
        self.where = where
        """Where the data is: the SQLite file, or ``schema <app> of <URL>`` (no password)."""

    def execute(self, sql: str, params: Params = ()) -> Result:
        """Run one statement; its rows (none for a statement that returns none)."""
        cursor = self.raw.execute(portable(sql, self.backend), params)
        return Result(_rows(cursor.description, cursor.fetchall() if cursor.description else ()))

    def executemany(self, sql: str, rows: Iterable[Params]) -> None:
        """Run one statement once per parameter set."""
        if self.backend == SQLITE:
            self.raw.executemany(sql, rows)
        else:
            with self.raw.cursor() as cursor:
                cursor.executemany(portable(sql, self.backend), list(rows))

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """One write transaction, all or nothing, that runs as if no other writer of this app's
        data were there: its check-then-write sections see no one else's writes meanwhile."""
        if self.backend == SQLITE:
            self.raw.execute("BEGIN IMMEDIATE")
            try:
                yield
            except BaseException:
                self.raw.execute("ROLLBACK")
                raise
            self.raw.execute("COMMIT")
        else:
            with self.raw.transaction():
                self.raw.execute("SELECT pg_advisory_xact_lock(%s)", (self.lock_key,))
                yield


# -- where an app's data is -------------------------------------------------------------------


@dataclass(frozen=True)
class AppDatabase:
    """An app's database: what it is called, its schema, and how to seed it."""

    name: str
    """The app's name: its SQLite file's stem and its PostgreSQL schema, e.g. ``"airline"``."""
    filename: str
    """The SQLite file's name in the home, e.g. ``"airline.db"``."""
    schema: Sequence[str]
    """``CREATE`` statements, in order, in the portable subset."""
    tables: Sequence[str]
    """Tables to drop on reset, dependents first."""
    seed: Callable[[AppConnection], None]
    """Inserts the fixtures (inside the seeding transaction)."""
    version: int = 1
    """The schema's version; a database with a newer one is refused."""

    @property
    def lock_key(self) -> int:
        """The PostgreSQL advisory lock key of this app's seeding and write transactions."""
        digest = hashlib.blake2b(f"frontdesk.app:{self.name}".encode(), digest_size=8)
        return int.from_bytes(digest.digest(), "big", signed=True)

    def path(self, home: str | os.PathLike[str] | None = None) -> Path:
        """The SQLite file: ``<home>/<filename>``, ``home`` defaulting to the runtime's."""
        return _home(home) / self.filename

    def init(
        self,
        home: str | os.PathLike[str] | None = None,
        reset: bool = False,
        *,
        runtime: AgentRuntime | None = None,
    ) -> Path | str:
        """Create and seed the database if missing (``reset`` seeds it again); where it is
        (:attr:`AppConnection.where`). ``runtime`` is the runtime whose store decides where
        the data is, when the calling code does not run inside one of its runs. A database a
        newer frontdesk wrote raises :class:`SchemaTooNew`, reset or not, and is left as is."""
        with self._raw(home, runtime) as conn:
            self._ensure_seeded(conn, reset=reset)
            return conn.where

    def seed_once(
        self,
        home: str | os.PathLike[str] | None = None,
        reset: bool = False,
        *,
        runtime: AgentRuntime | None = None,
    ) -> bool:
        """Create and seed the database unless another call did (``reset``: seed it again
        anyway). Whether this call seeded it: of several processes racing, exactly one."""
        with self._raw(home, runtime) as conn:
            return self._ensure_seeded(conn, reset=reset)

    @contextmanager
    def connect(
        self, home: str | os.PathLike[str] | None = None, *, runtime: AgentRuntime | None = None
    ) -> Iterator[AppConnection]:
        """An autocommit connection to the seeded database; use :meth:`AppConnection.transaction`
        for writes that must be all or nothing. ``runtime`` as for :meth:`init`."""
        with self._raw(home, runtime) as conn:
            self._ensure_seeded(conn, reset=False)
            yield conn

    @contextmanager
    def _raw(
        self, home: str | os.PathLike[str] | None, runtime: AgentRuntime | None
    ) -> Iterator[AppConnection]:
        runtime = runtime if runtime is not None else current_runtime_or_none()
        with _store_for(runtime) as store:
            pooled = store.app_connection(self.name) if store is not None else None
            if pooled is not None:
                where = f"schema {self.name} of {store.url}" if store is not None else ""
                with pooled as raw:
                    yield AppConnection(raw, POSTGRESQL, self.lock_key, where)
                return
        path = self.path(home if home is not None or runtime is None else runtime.home)
        # isolation_level=None: transactions are opened explicitly with BEGIN IMMEDIATE, so a
        # check-then-write is never interleaved with another writer.
        raw = sqlite3.connect(path, timeout=BUSY_TIMEOUT_SECONDS, isolation_level=None)
        with closing(raw):
            raw.execute("PRAGMA foreign_keys = ON")
            yield AppConnection(raw, SQLITE, self.lock_key, path)

    # -- seeding ----------------------------------------------------------------------------

    def _version(self, conn: AppConnection) -> int:
        if conn.backend == SQLITE:
            version = int(conn.raw.execute("PRAGMA user_version").fetchone()[0])
        else:
            exists = conn.raw.execute("SELECT to_regclass(%s)", (VERSION_TABLE,)).fetchone()[0]
            row = (
                conn.raw.execute(f"SELECT max(version) FROM {VERSION_TABLE}").fetchone()
                if exists is not None
                else None
            )
            version = int(row[0]) if row is not None and row[0] is not None else 0
        if version > self.version:
            raise SchemaTooNew(
                f"the {self.name} database has schema version {version}; this frontdesk knows "
                f"{self.version}: upgrade frontdesk to open it"
            )
        return version

    def _ensure_seeded(self, conn: AppConnection, *, reset: bool) -> bool:
        # A newer frontdesk's data is refused, even to reset it: this code cannot tell what it
        # would throw away.
        if self._version(conn) == self.version and not reset:
            return False
        if conn.backend == SQLITE:
            return self._seed_sqlite(conn, reset=reset)
        return self._seed_postgres(conn, reset=reset)

    def _seed_sqlite(self, conn: AppConnection, *, reset: bool) -> bool:
        try:
            # WAL is a property of the file: if another process holds it open right now the
            # switch fails at once (no busy wait), and that process (or a later one) makes it.
            conn.raw.execute("PRAGMA journal_mode = WAL")
        except sqlite3.OperationalError:
            pass
        with conn.transaction():
            # Another process may have seeded the database while this one waited for the lock.
            if self._version(conn) == self.version and not reset:
                return False
            self._create(conn)
            # user_version lives in the database header, so it commits with the seed data.
            conn.raw.execute(f"PRAGMA user_version = {self.version}")
        return True

    def _seed_postgres(self, conn: AppConnection, *, reset: bool) -> bool:
        raw = conn.raw
        with raw.transaction():
            # Wait for another process's seeding however long it takes: it is working, and
            # this one needs its result.
            raw.execute("SET LOCAL lock_timeout = 0")
            raw.execute("SELECT pg_advisory_xact_lock(%s)", (self.lock_key,))
            raw.execute(f'CREATE SCHEMA IF NOT EXISTS "{self.name}"')
            if self._version(conn) == self.version and not reset:
                return False
            raw.execute(f"DROP TABLE IF EXISTS {VERSION_TABLE}")
            self._create(conn)
            raw.execute(f"CREATE TABLE {VERSION_TABLE} (version INTEGER NOT NULL)")
            raw.execute(f"INSERT INTO {VERSION_TABLE} VALUES (%s)", (self.version,))
        return True

    def _create(self, conn: AppConnection) -> None:
        for table in self.tables:
            conn.execute(f'DROP TABLE IF EXISTS "{table}"')
        for statement in self.schema:
            conn.execute(statement)
        self.seed(conn)


def _home(home: str | os.PathLike[str] | None) -> Path:
    """``home``, else the home of the runtime driving the code, else :func:`current_home`."""
    if home is not None:
        return resolve_home(home)
    runtime = current_runtime_or_none()
    return runtime.home if runtime is not None else current_home()


@contextmanager
def _store_for(runtime: AgentRuntime | None) -> Iterator[Store | None]:
    """The store whose database may hold the apps' data: ``runtime``'s, else one opened for
    the block on ``$FRONTDESK_DATABASE_URL`` when that names a server (a SQLite store keeps no
    app data, so none is opened for it)."""
    if runtime is not None:
        yield runtime.store
        return
    url = database_url()
    if url is None or parse_url(url).scheme.lower() == SQLITE:
        yield None
        return
    store = open_store(url, migrate=False)
    try:
        yield store
    finally:
        store.close()


__all__ = [
    "BUSY_TIMEOUT_SECONDS",
    "POSTGRESQL",
    "SQLITE",
    "VERSION_TABLE",
    "AppConnection",
    "AppDatabase",
    "Params",
    "Result",
    "Row",
    "portable",
    "read_fixture",
]
