"""The SQLite backend: runs, journal, events, approvals and conversations in one file per home.

Reads may come from any thread: each thread gets its own connection (WAL lets them read while
another process writes). Writes are short ``BEGIN IMMEDIATE`` transactions, which take the
database's write lock up front: a read-check-write section (:meth:`SQLiteStore.transaction`)
sees nothing change under it. Every ``sqlite3`` error is translated into frontdesk's.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ClassVar

from ...events import Event, decode_event
from .._approvals import APPROVAL_COLUMNS, ApprovalRecord, approval_from_row
from .._base import Store, StoreTransaction
from .._forks import ForkLink, Lineage, StoredEvent
from .._listing import ConversationRow, Page, RunFilter
from .._records import ConversationState, JournalRow, RunRow, StoreInfo
from .._tool_calls import ItemSegment, ToolCallRecord
from .._usage import UsageRow
from .._values import hydrate
from .._writes import Write
from . import _conversations as conversations
from . import _listing as listing
from . import _tool_calls as calls
from . import _usage as usage
from ._checkpoint import Checkpointer
from ._compile import RUN_COLUMNS, apply
from ._errors import BUSY_TIMEOUT_MS, is_busy, rollback, translate
from ._schema import SCHEMA_VERSION, connect, read_version, store_path

_JOURNAL_COLUMNS = (
    "key, kind, state, agent, name, args_json, data_json, context_json, attempts, started_at, "
    "finished_at, ordinal"
)
_DUE = (
    f"SELECT {APPROVAL_COLUMNS} FROM approvals INDEXED BY approvals_due "
    "WHERE status = 'pending' AND deadline IS NOT NULL AND escalated_at IS NULL "
    "AND deadline <= ? ORDER BY deadline LIMIT ?"
)


class SQLiteStore(Store):
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

    def claim(
        self, execution_id: str, owner: str, expires: float, now: float, *, steal_from: str | None
    ) -> int | None:
        """Take the run's lease (see :meth:`Store.claim`)."""
        with self._locked() as conn:
            rows = conn.execute(
                "UPDATE runs SET lease_owner = ?, lease_expires = ?, updated_at = ?, "
                "lease_epoch = lease_epoch + 1 "
                "WHERE execution_id = ? AND status = 'running' AND (lease_owner IS NULL "
                "OR lease_expires < ? OR lease_owner = ? OR lease_owner = ?) "
                "RETURNING lease_epoch",
                (owner, expires, now, execution_id, now, owner, steal_from or owner),
            ).fetchall()
        return int(rows[0][0]) if rows else None

    # -- runs --------------------------------------------------------------------------------

    def get_run(self, execution_id: str) -> RunRow | None:
        """The run with this id, or None."""
        rows = self._query(
            f"SELECT {RUN_COLUMNS} FROM runs WHERE execution_id = ?", (execution_id,)
        )
        return RunRow(*rows[0]) if rows else None

    def runs_page(
        self, where: RunFilter = RunFilter(), *, limit: int = 50, cursor: str | None = None
    ) -> Page[RunRow]:
        """Runs newest first, filtered; every filter is served by an index."""
        return listing.runs_page(self._query, self._locked, where, limit=limit, cursor=cursor)

    def run_ids(self, prefix: str) -> list[str]:
        """The ids of every run whose id starts with ``prefix``."""
        rows = self._query(
            "SELECT execution_id FROM runs WHERE substr(execution_id, 1, ?) = ?",
            (len(prefix), prefix),
        )
        return [row[0] for row in rows]

    def claimable_runs(self, now: float, limit: int = 100) -> list[RunRow]:
        """Running runs whose lease is free or expired (candidates for recovery)."""
        rows = self._query(
            f"SELECT {RUN_COLUMNS} FROM runs WHERE status = 'running' "
            "AND (lease_owner IS NULL OR lease_expires < ?) ORDER BY created_at LIMIT ?",
            (now, limit),
        )
        return [RunRow(*r) for r in rows]

    def running_leases(self) -> list[tuple[str, str | None, float | None]]:
        """(execution_id, lease_owner, lease_expires) of every running run."""
        rows = self._query(
            "SELECT execution_id, lease_owner, lease_expires FROM runs WHERE status = 'running'"
        )
        return [(r[0], r[1], r[2]) for r in rows]

    def cancel_requests(self, owner: str) -> list[str]:
        """The runs leased by ``owner`` that someone asked to cancel."""
        rows = self._query(
            "SELECT execution_id FROM runs WHERE lease_owner = ? AND cancel_requested = 1",
            (owner,),
        )
        return [row[0] for row in rows]

    # -- journal and events ------------------------------------------------------------------

    def journal(self, execution_id: str) -> list[JournalRow]:
        """The run's durable steps in the order they started."""
        rows = self._query(
            f"SELECT {_JOURNAL_COLUMNS} FROM journal WHERE execution_id = ? ORDER BY ordinal",
            (execution_id,),
        )
        return [JournalRow(*r) for r in rows]

    def events(self, execution_id: str, after: int = 0, limit: int | None = None) -> list[Event]:
        """The run's events with ``seq > after``, in order."""
        rows = self._query(
            "SELECT e.seq, e.type, e.at, e.agent, e.data_json, j.data_json, r.output_json "
            "FROM events e "
            "LEFT JOIN journal j ON j.execution_id = e.execution_id AND j.key = e.ref "
            "LEFT JOIN runs r ON r.execution_id = e.execution_id AND e.type = 'done' "
            "WHERE e.execution_id = ? AND e.seq > ? ORDER BY e.seq LIMIT ?",
            (execution_id, after, -1 if limit is None else limit),
        )
        return [
            decode_event(
                execution_id, seq, type_, at, agent, hydrate(type_, json.loads(payload), step, out)
            )
            for seq, type_, at, agent, payload, step, out in rows
        ]

    def event_keys(self, execution_id: str) -> set[str]:
        """The keys of the run's events (its driver records each key once)."""
        rows = self._query("SELECT key FROM events WHERE execution_id = ?", (execution_id,))
        return {r[0] for r in rows}

    def last_event_seq(self, execution_id: str) -> int:
        """The number of the run's last event (0 if it has none)."""
        rows = self._query(
            "SELECT COALESCE(MAX(seq), 0) FROM events WHERE execution_id = ?", (execution_id,)
        )
        return int(rows[0][0])

    def stored_events(self, execution_id: str) -> list[StoredEvent]:
        """The run's events as stored, their payloads not completed from the journal."""
        rows = self._query(
            "SELECT seq, key, type, agent, data_json, ref FROM events WHERE execution_id = ? "
            "ORDER BY seq",
            (execution_id,),
        )
        return [StoredEvent(*row) for row in rows]

    # -- forks -------------------------------------------------------------------------------

    def lineage(self, execution_id: str) -> Lineage:
        """The run's parent (if it is a fork) and the runs forked from it."""
        parent = self._query(
            "SELECT p.execution_id, r.fork_step, p.status, p.created_at FROM runs r "
            "JOIN runs p ON p.execution_id = r.parent_id WHERE r.execution_id = ?",
            (execution_id,),
        )
        forks = self._query(
            "SELECT execution_id, fork_step, status, created_at FROM runs WHERE parent_id = ? "
            "ORDER BY created_at, rowid",
            (execution_id,),
        )
        return Lineage(
            execution_id,
            ForkLink(*parent[0]) if parent else None,
            [ForkLink(*row) for row in forks],
        )

    def start_context(self, execution_id: str) -> tuple[bool, str | None] | None:
        """The context the run started with, once completing it replaced it."""
        rows = self._query(
            "SELECT known, context_json FROM run_start_context WHERE execution_id = ?",
            (execution_id,),
        )
        return (bool(rows[0][0]), rows[0][1]) if rows else None

    # -- approvals ---------------------------------------------------------------------------

    def approvals(
        self, *, execution_id: str | None = None, status: str | None = None, limit: int = 200
    ) -> list[ApprovalRecord]:
        """Approvals, oldest first, optionally filtered by run and status."""
        where, params = [], []
        if execution_id is not None:
            where.append("execution_id = ?")
            params.append(execution_id)
        if status is not None:
            where.append("status = ?")
            params.append(status)
        clause = f"WHERE {' AND '.join(where)}" if where else ""
        rows = self._query(
            f"SELECT {APPROVAL_COLUMNS} FROM approvals {clause} ORDER BY requested_at LIMIT ?",
            (*params, limit),
        )
        return [approval_from_row(r) for r in rows]

    def approvals_page(
        self,
        *,
        status: str | None = "pending",
        execution_id: str | None = None,
        newest_first: bool = False,
        limit: int = 50,
        cursor: str | None = None,
    ) -> Page[ApprovalRecord]:
        """Approvals by request time, one page at a time."""
        return listing.approvals_page(
            self._query,
            status=status,
            execution_id=execution_id,
            newest_first=newest_first,
            limit=limit,
            cursor=cursor,
        )

    def due_approvals(self, now: float, limit: int = 100) -> list[ApprovalRecord]:
        """Pending requests past their deadline that were not escalated yet, earliest first."""
        return [approval_from_row(r) for r in self._query(_DUE, (now, limit))]

    # -- conversations -----------------------------------------------------------------------

    def conversation(self, conversation_id: str) -> ConversationState | None:
        """The conversation's state, or None."""
        return conversations.conversation(self._query, conversation_id)

    def conversation_lines(self, conversation_id: str, start: int = 0) -> list[str]:
        """The conversation's history lines from line ``start`` on, oldest first."""
        return conversations.lines(self._query, conversation_id, start)

    def conversation_item_range(self, conversation_id: str, start: int, end: int) -> list[Any]:
        """Items ``start`` to ``end`` (excluded), reading only those."""
        return conversations.item_range(self._query, conversation_id, start, end)

    def turn_start(self, conversation_id: str, turn: int) -> int:
        """The item index ``turn`` starts at."""
        return conversations.turn_start(self._query, conversation_id, turn)

    def conversation_items(self, conversation_id: str) -> list[Any]:
        """The conversation's input items: the snapshot followed by the log."""
        return conversations.items(self._query, conversation_id)

    def conversations_page(
        self, *, limit: int = 50, cursor: str | None = None
    ) -> Page[ConversationRow]:
        """Conversations, most recently active first, with their token totals."""
        return listing.conversations_page(self._query, limit=limit, cursor=cursor)

    # -- usage -------------------------------------------------------------------------------

    def run_usage(self, execution_ids: Sequence[str]) -> list[UsageRow]:
        """The model usage of these runs."""
        return usage.run_usage(self._query, execution_ids)

    def conversation_usage(self, conversation_id: str) -> list[UsageRow]:
        """The model usage of every turn of a conversation so far."""
        return usage.conversation_usage(self._query, conversation_id)

    def window_usage(self, since: float | None, until: float | None) -> list[UsageRow]:
        """The model usage of the runs created in ``[since, until)``."""
        return usage.window_usage(self._query, since, until)

    def window_statuses(self, since: float | None, until: float | None) -> dict[str, int]:
        """How many runs created in ``[since, until)`` have each status."""
        return usage.window_statuses(self._query, since, until)

    # -- the tool calls journal and item segments --------------------------------------------

    def start_tool_call(
        self,
        *,
        idempotency_key: str,
        workflow_id: str,
        call_id: str,
        agent_name: str,
        tool_name: str,
        args_json: str,
        now: float,
    ) -> ToolCallRecord:
        """Record that a tool starts running for one call (see :meth:`Store.start_tool_call`)."""
        return calls.start_tool_call(
            self._locked,
            idempotency_key=idempotency_key,
            workflow_id=workflow_id,
            call_id=call_id,
            agent_name=agent_name,
            tool_name=tool_name,
            args_json=args_json,
            now=now,
        )

    def finish_tool_call(
        self,
        idempotency_key: str,
        *,
        output_json: str,
        context_type: str | None,
        context_json: str | None,
        now: float,
    ) -> None:
        """Record the call done: its output and the context after it."""
        calls.finish_tool_call(
            self._locked,
            idempotency_key,
            output_json=output_json,
            context_type=context_type,
            context_json=context_json,
            now=now,
        )

    def tool_call(self, idempotency_key: str) -> ToolCallRecord | None:
        """The journal's record of one tool call, or None."""
        found = calls.tool_calls(self._query, "idempotency_key", idempotency_key)
        return found[0] if found else None

    def tool_calls(self, workflow_id: str) -> list[ToolCallRecord]:
        """Every journaled tool call of a workflow, in the order they were first started."""
        return calls.tool_calls(self._query, "workflow_id", workflow_id)

    def save_item_segment(self, ref: str, parent: str | None, items_json: str, count: int) -> bool:
        """Store a segment of items after ``parent``'s; False when ``parent`` is not stored."""
        return calls.save_item_segment(self._locked, ref, parent, items_json, count)

    def item_chain(self, ref: str) -> list[ItemSegment]:
        """The segment ``ref`` and every segment before it, oldest first."""
        return calls.item_chain(self._query, ref)


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
        return conversations.conversation(self._query, conversation_id)

    def conversation_lines(self, conversation_id: str) -> list[str]:
        return conversations.lines(self._query, conversation_id)

    def conversation_item_count(self, conversation_id: str) -> int:
        return conversations.item_count(self._query, conversation_id)

    def turn_start(self, conversation_id: str, turn: int) -> int:
        return conversations.turn_start(self._query, conversation_id, turn)

    def write(self, writes: Iterable[Write]) -> None:
        apply(self._conn, writes)
