"""The SQLite database an app keeps beside the runtime's store.

Each reference app (support, disputes, airline) has one: a file under the home of the runtime
driving the run (:func:`frontdesk._home.current_home`), created and seeded from the app's
fixtures on first use. Seeding happens in one ``BEGIN IMMEDIATE`` transaction that also sets
``PRAGMA user_version``, so a process that loses the race waits, then finds the data there;
nothing is ever half-seeded.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from contextlib import closing, contextmanager
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from .._home import current_home, resolve_home
from ..errors import SchemaTooNew

BUSY_TIMEOUT_SECONDS = 30.0


def read_fixture(package: str, name: str) -> Any:
    """The JSON fixture ``data/<name>`` shipped in an app's ``package`` (its ``__package__``)."""
    return json.loads(resources.files(package).joinpath("data", name).read_text("utf-8"))


@contextmanager
def write_transaction(conn: sqlite3.Connection) -> Iterator[None]:
    """One write transaction that takes the write lock up front (all or nothing)."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


@dataclass(frozen=True)
class AppDatabase:
    """An app's database: where it lives, its schema, and how to seed it."""

    name: str
    """Used in messages, e.g. ``"airline"``."""
    filename: str
    schema: Sequence[str]
    """``CREATE`` statements, in order."""
    tables: Sequence[str]
    """Tables to drop on reset, dependents first."""
    seed: Callable[[sqlite3.Connection], None]
    version: int = 1
    rows_as_dicts: bool = True
    """Use ``sqlite3.Row`` rows (by name and by index)."""

    def path(self, home: str | os.PathLike[str] | None = None) -> Path:
        """``<home>/<filename>``, ``home`` defaulting to the runtime driving the current run."""
        return (current_home() if home is None else resolve_home(home)) / self.filename

    def init(self, home: str | os.PathLike[str] | None = None, reset: bool = False) -> Path:
        """Create and seed the database if missing (``reset`` reseeds it); returns its path."""
        path = self.path(home)
        with closing(self._open(path)) as conn:
            self._ensure_seeded(conn, reset=reset)
        return path

    @contextmanager
    def connect(self, home: str | os.PathLike[str] | None = None) -> Iterator[sqlite3.Connection]:
        """An autocommit connection to the seeded database; use :func:`write_transaction`."""
        with closing(self._open(self.path(home))) as conn:
            self._ensure_seeded(conn, reset=False)
            yield conn

    def _open(self, path: Path) -> sqlite3.Connection:
        # isolation_level=None: transactions are opened explicitly with BEGIN IMMEDIATE, so a
        # check-then-write is never interleaved with another writer.
        conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT_SECONDS, isolation_level=None)
        if self.rows_as_dicts:
            conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA foreign_keys = ON")
        return conn

    def _version(self, conn: sqlite3.Connection) -> int:
        version: int = conn.execute("PRAGMA user_version").fetchone()[0]
        if version > self.version:
            raise SchemaTooNew(
                f"the {self.name} database has schema version {version}; this frontdesk knows "
                f"{self.version}: upgrade frontdesk to open it"
            )
        return version

    def _ensure_seeded(self, conn: sqlite3.Connection, *, reset: bool) -> None:
        if not reset and self._version(conn) == self.version:
            return
        try:
            # WAL is a property of the file: if another process holds it open right now the
            # switch fails at once (no busy wait), and that process (or a later one) makes it.
            conn.execute("PRAGMA journal_mode = WAL")
        except sqlite3.OperationalError:
            pass
        with write_transaction(conn):
            # Another process may have seeded the database while this one waited for the lock.
            if not reset and self._version(conn) == self.version:
                return
            for table in self.tables:
                conn.execute(f'DROP TABLE IF EXISTS "{table}"')
            for statement in self.schema:
                conn.execute(statement)
            self.seed(conn)
            # user_version lives in the database header, so it commits with the seed data.
            conn.execute(f"PRAGMA user_version = {self.version}")
