"""The SQLite backend: runs, journal, events, approvals and conversations in one file per home.

Reads may come from any thread: each thread gets its own connection (WAL lets them read while
another process writes). Writes are short ``BEGIN IMMEDIATE`` transactions, which take the
database's write lock up front: a read-check-write section (:meth:`SQLiteStore.transaction`)
sees nothing change under it. Every ``sqlite3`` error is translated into frontdesk's.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ClassVar

from .. import _queries as queries
from .._approvals import APPROVAL_COLUMNS, ApprovalRecord, approval_from_row
from .._base import StoreTransaction
from .._queries import Dialect
from .._records import ConversationState, StoreInfo
from .._sqlstore import SQLStore
from .._tool_calls import ToolCallRecord
from .._writes import Write
from . import _conversations as conversations
from . import _tool_calls as calls
from ._checkpoint import Checkpointer
from ._compile import apply
from ._dialect import SQLITE
from ._errors import BUSY_TIMEOUT_MS, is_busy, rollback, translate
from ._listing import index_pending
from ._schema import SCHEMA_VERSION, connect, read_version, store_path


class SQLiteStore(SQLStore):
    """A frontdesk home's SQLite store (``<home>/frontdesk.db``), safe to share between threads.

    ``path`` is the home directory or the database file itself (a path ending in ``.db``).
    ``busy_timeout`` is how long a write waits for another process's lock before failing
    with :class:`~frontdesk.errors.StoreLocked`. With ``background_checkpoints`` a thread of
    its own folds the WAL back into the database, so no commit stalls on it. Without
    ``migrate`` an older schema is not upgraded: using the store then fails, saying to run
    ``frontdesk db migrate``.
    """

    backend: ClassVar[str] = "sqlite"
    local_writes: ClassVar[bool] = True
    dialect: ClassVar[Dialect] = SQLITE

    def __init__(
        self,
        path: Path,
        busy_timeout: float = BUSY_TIMEOUT_MS / 1000,
        background_checkpoints: bool = False,
        *,
        migrate: bool = True,
    ) -> None:
        super().__init__()
        path = Path(path)
        self.path = path if path.suffix == ".db" else store_path(path)
        """The database file."""
        self.busy_timeout_ms = int(busy_timeout * 1000)
        """How long a write waits for another process's lock, in milliseconds."""
        self._migrate = migrate
        self._background_checkpoints = background_checkpoints
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._checkpointer: Checkpointer | None = None
        if migrate:
            self._conn()  # open now so a bad store fails at construction
            if background_checkpoints:
                self._checkpointer = Checkpointer(self.path, self.busy_timeout_ms)

    # -- connections -------------------------------------------------------------------------

    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = connect(self.path, migrate=self._migrate, busy_timeout_ms=self.busy_timeout_ms)
            if self._background_checkpoints:
                # A Checkpointer thread folds the WAL back in, so no commit stalls on it.
                conn.execute("PRAGMA wal_autocheckpoint = 0")
            self._local.conn = conn
            with self._lock:
                self._all.append(conn)
        return conn

    def _query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        try:
            return self._conn().execute(sql, params).fetchall()
        except sqlite3.Error as exc:
            raise translate(exc, self.path, self.busy_timeout_ms) from exc

    @contextmanager
    def _locked(self) -> Iterator[sqlite3.Connection]:
        """A ``BEGIN IMMEDIATE`` transaction: committed when the block ends, rolled back if
        it raises; sqlite3 errors are translated."""
        conn = self._conn()
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise translate(exc, self.path, self.busy_timeout_ms) from exc
        try:
            yield conn
        except sqlite3.Error as exc:
            rollback(conn)
            raise translate(exc, self.path, self.busy_timeout_ms) from exc
        except BaseException:
            rollback(conn)
            raise
        try:
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            rollback(conn)
            raise translate(exc, self.path, self.busy_timeout_ms) from exc

    # -- the database itself -----------------------------------------------------------------

    @property
    def url(self) -> str:
        """``sqlite://`` and the database file's absolute path."""
        return f"sqlite://{self.path.resolve()}"

    def info(self) -> StoreInfo:
        """The backend, the file's URL and its schema version (0 if it does not exist yet)."""
        try:
            version = read_version(self.path)
        except sqlite3.Error as exc:
            raise translate(exc, self.path, self.busy_timeout_ms) from exc
        return StoreInfo(self.backend, self.url, version, SCHEMA_VERSION)

    def migrate(self) -> tuple[int, int]:
        """Create or upgrade the schema; returns the versions before and after."""
        before = self.info().schema_version
        conn = connect(self.path, migrate=True, busy_timeout_ms=self.busy_timeout_ms)
        conn.close()
        return before, SCHEMA_VERSION

    def close(self) -> None:
        """Close every connection this store opened, and stop its checkpoints."""
        if self._checkpointer is not None:
            self._checkpointer.close()
            self._checkpointer = None
        with self._lock:
            conns, self._all = self._all, []
            # Results read lazily after close() get a fresh connection.
            self._local = threading.local()
        for conn in conns:
            try:
                conn.close()
            except sqlite3.Error:
                pass

    # -- writing -----------------------------------------------------------------------------

    def write(self, writes: Iterable[Write]) -> None:
        """Apply ``writes`` in one transaction: all of them or none (see :meth:`Store.write`)."""
        with self._locked() as conn:
            apply(conn, writes)
        self.changes.notify()

    def try_write(self, writes: Iterable[Write]) -> bool:
        """Apply ``writes`` unless another connection holds the write lock (then False, with
        nothing written): a commit that may not wait for a lock, such as one on an event loop."""
        conn = self._conn()
        try:
            conn.execute("PRAGMA busy_timeout = 0")
            try:
                conn.execute("BEGIN IMMEDIATE")
            finally:
                conn.execute(f"PRAGMA busy_timeout = {self.busy_timeout_ms}")
        except sqlite3.OperationalError as exc:
            if is_busy(exc):
                return False
            raise translate(exc, self.path, self.busy_timeout_ms) from exc
        except sqlite3.Error as exc:
            raise translate(exc, self.path, self.busy_timeout_ms) from exc
        try:
            apply(conn, writes)
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            rollback(conn)
            raise translate(exc, self.path, self.busy_timeout_ms) from exc
        except BaseException:
            rollback(conn)
            raise
        self.changes.notify()
        return True

    @contextmanager
    def transaction(self) -> Iterator[StoreTransaction]:
        """A ``BEGIN IMMEDIATE`` transaction for a read-check-write section."""
        with self._locked() as conn:
            yield _Transaction(conn)
        self.changes.notify()

    def _statement(
        self, sql: str, params: Sequence[Any], *, repeatable: bool = False
    ) -> list[tuple[Any, ...]]:
        """One writing statement in a ``BEGIN IMMEDIATE`` transaction of its own; its rows."""
        with self._locked() as conn:
            return conn.execute(sql, params).fetchall()

    def _before_search(self) -> None:
        """Add the runs queued since the last search to the full-text index."""
        index_pending(self._locked)

    # -- the tool calls journal and item segments --------------------------------------------

    def _start_tool_call(
        self, idempotency_key: str, upsert: str, params: Sequence[Any]
    ) -> ToolCallRecord:
        return calls.start_tool_call(self._locked, idempotency_key, upsert, params)

    def save_item_segment(self, ref: str, parent: str | None, items_json: str, count: int) -> bool:
        """Store a segment of items after ``parent``'s; False when ``parent`` is not stored."""
        return calls.save_item_segment(self._locked, ref, parent, items_json, count)


class _Transaction(StoreTransaction):
    """Reads and writes inside one ``BEGIN IMMEDIATE`` transaction on ``conn``."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def _query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return self._conn.execute(sql, params).fetchall()

    def run_status(self, execution_id: str) -> str | None:
        rows = self._query("SELECT status FROM runs WHERE execution_id = ?", (execution_id,))
        return str(rows[0][0]) if rows else None

    def approval(self, approval_id: str) -> ApprovalRecord | None:
        rows = self._query(
            f"SELECT {APPROVAL_COLUMNS} FROM approvals WHERE approval_id = ?", (approval_id,)
        )
        return approval_from_row(rows[0]) if rows else None

    def run_approvals(self, execution_id: str) -> list[ApprovalRecord]:
        rows = self._query(
            f"SELECT {APPROVAL_COLUMNS} FROM approvals WHERE execution_id = ? "
            "ORDER BY requested_at",
            (execution_id,),
        )
        return [approval_from_row(r) for r in rows]

    def pending_approvals(self, execution_id: str) -> int:
        rows = self._query(
            "SELECT COUNT(*) FROM approvals WHERE execution_id = ? AND status = 'pending'",
            (execution_id,),
        )
        return int(rows[0][0])

    def conversation(self, conversation_id: str) -> ConversationState | None:
        return queries.conversation(self._query, conversation_id)

    def conversation_lines(self, conversation_id: str) -> list[str]:
        return queries.conversation_lines(self._query, conversation_id)

    def conversation_item_count(self, conversation_id: str) -> int:
        return conversations.item_count(self._query, conversation_id)

    def turn_start(self, conversation_id: str, turn: int) -> int:
        return queries.turn_start(self._query, conversation_id, turn)

    def write(self, writes: Iterable[Write]) -> None:
        apply(self._conn, writes)
