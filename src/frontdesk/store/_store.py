"""The run store: runs, journal, events and approvals in one SQLite file.

Reads may come from any thread: each thread gets its own connection (WAL lets them read while
another process writes). Writes are short ``BEGIN IMMEDIATE`` transactions. The engine's event
loop writes through :class:`GroupCommitter`, which folds the writes of concurrent runs into one
transaction, so a thousand runs do not pay for a thousand commits.
"""

from __future__ import annotations

import itertools
import json
import sqlite3
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import RunNotFound
from ..events import Event, Usage, decode_event
from ._approvals import APPROVAL_COLUMNS as _APPROVAL_COLUMNS
from ._approvals import ApprovalRecord
from ._approvals import approval_from_row as _approval
from ._db import connect, rollback, store_path, translate
from ._fence import Guarded, refusal
from ._values import hydrate

if TYPE_CHECKING:
    from ._forks import ForkSeed, Lineage, StoredEvent

Op = tuple[str, Sequence[Any]]
"""One SQL statement with its parameters."""

EVENT_INSERT = (
    "INSERT INTO events (execution_id, seq, key, type, at, agent, data_json, ref) "
    "SELECT ?1, COALESCE(MAX(seq), 0) + 1, ?2, ?3, ?4, ?5, ?6, ?7 FROM events "
    "WHERE execution_id = ?1"
)
"""Append an event to its run, numbered after the run's last event by the transaction that
writes it: every writer (the run's driver, a cancel, an approval decision) numbers the same way,
so no two of them can ever pick the same ``seq``."""


def event_insert(
    execution_id: str,
    key: str,
    type_: str,
    agent: str | None,
    payload_json: str,
    *,
    at: float,
    ref: str | None = None,
) -> Op:
    """The statement that appends one event (``seq`` is given by :data:`EVENT_INSERT`)."""
    return (EVENT_INSERT, (execution_id, key, type_, at, agent, payload_json, ref))


TERMINAL_STATUSES = frozenset({"completed", "failed", "cancelled", "budget_exceeded"})
"""Statuses a run ends with: nothing drives it any more (a retry makes a failed or
``budget_exceeded`` run ``running`` again)."""
SETTLED_STATUSES = TERMINAL_STATUSES | {"waiting_approval"}

_RUN_COLUMNS = (
    "execution_id, agent_ref, agent_name, status, input, context_type, context_json, "
    "output_json, last_agent, error, note, model_label, requests, input_tokens, "
    "output_tokens, total_tokens, created_at, started_at, finished_at, updated_at, "
    "lease_owner, lease_expires, cancel_requested, attempt, conversation_id, turn, model_override, "
    "lease_epoch, budget_json"
)


@dataclass(frozen=True)
class RunRow:
    """A run as stored."""

    execution_id: str
    """The run's id, unique in the store."""
    agent_ref: str
    """How any process finds the starting agent again (``module:attr`` or a registered name)."""
    agent_name: str
    """The starting agent's name."""
    status: str
    """``running``, ``waiting_approval``, ``completed``, ``failed``, ``cancelled`` or
    ``budget_exceeded``."""
    input: str
    """The run's input as JSON: a message, input items, or a conversation turn reference."""
    context_type: str | None
    """The import path of the context's type, to rebuild it on resume."""
    context_json: str | None
    """The context as JSON: the initial one, the final one once the run completed."""
    output_json: str | None
    """The final output as JSON, once completed."""
    last_agent: str | None
    """The agent that produced the final output, or that is waiting for approval."""
    error: str | None
    """Why the run failed."""
    note: str | None
    """Why a runnable run is not progressing (e.g. no process can find its agent)."""
    model_label: str | None
    """The model override the run was started with, as shown to people."""
    requests: int
    """Model requests made so far."""
    input_tokens: int
    """Input tokens used so far."""
    output_tokens: int
    """Output tokens used so far."""
    total_tokens: int
    """Tokens used so far."""
    created_at: float
    """When the run was stored (Unix time)."""
    started_at: float | None
    """When a driver first started it."""
    finished_at: float | None
    """When it completed, failed or was cancelled."""
    updated_at: float
    """When its row last changed."""
    lease_owner: str | None
    """The process driving the run, or None when nobody does."""
    lease_expires: float | None
    """When the owner's lease runs out unless renewed."""
    cancel_requested: int
    """1 once someone asked to cancel the run; its driver cancels it at its next heartbeat."""
    attempt: int
    """1, plus one per retry of a failed run."""
    conversation_id: str | None
    """The conversation this run is a turn of."""
    turn: int | None
    """Which turn of its conversation it is."""
    model_override: str | None
    """The model the run was started with, so whichever process resumes it uses the same."""
    lease_epoch: int
    """The fencing token: increased by every claim; a driver's writes land only under its own."""
    budget_json: str | None = None
    """The run's budget (``_budget.BudgetPlan`` as JSON), or None for no limits."""

    @property
    def usage(self) -> Usage:
        """Token usage summed over the run's model calls."""
        return Usage(self.requests, self.input_tokens, self.output_tokens, self.total_tokens)


_RUN_INSERT = (
    f"INSERT INTO runs ({_RUN_COLUMNS}) VALUES ({', '.join('?' * len(_RUN_COLUMNS.split(',')))})"
)


def run_insert(row: RunRow) -> Op:
    """The statement that stores a new run exactly as ``row`` describes it."""
    return (_RUN_INSERT, tuple(getattr(row, f.name) for f in fields(RunRow)))


@dataclass(frozen=True)
class JournalRow:
    """One durable step: a model call, a tool call or a handoff."""

    key: str
    """The step's key in its run: ``model:<k>``, ``tool:<k>:<call id>`` or ``handoff:<k>``."""
    kind: str
    """``model``, ``tool`` or ``handoff``."""
    state: str
    """``started`` (a tool whose result is not committed) or ``done``; done rows never change."""
    agent: str | None
    """The agent that took the step."""
    name: str | None
    """The tool's name, the agent handed off to, or the model a model call ran on."""
    args_json: str | None
    """A tool call's arguments as JSON."""
    data_json: str | None
    """The step's result: the model response or the tool's encoded output."""
    context_json: str | None
    """The context right after the step, when the step changed it."""
    attempts: int
    """How many times the step was started (a tool interrupted by a crash runs again)."""
    started_at: float
    """When the step (its last attempt) started."""
    finished_at: float | None
    """When it completed."""
    ordinal: int
    """The step's position in its run, in the order steps started."""


class Store:
    """Typed access to a frontdesk home's SQLite store, safe to share between threads."""

    def __init__(
        self, home: Path, busy_timeout: float = 10.0, background_checkpoints: bool = False
    ) -> None:
        self.home = home
        self.busy_timeout_ms = int(busy_timeout * 1000)
        self.background_checkpoints = background_checkpoints
        self.path = store_path(home)
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._closed = False
        self._conn()  # open now so a bad store fails at construction

    # -- connections -------------------------------------------------------------------

    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = connect(self.path, busy_timeout_ms=self.busy_timeout_ms)
            if self.background_checkpoints:
                # A Checkpointer thread folds the WAL back in, so no commit stalls on it.
                conn.execute("PRAGMA wal_autocheckpoint = 0")
            self._local.conn = conn
            with self._lock:
                self._all.append(conn)
        return conn

    def close(self) -> None:
        """Close every connection this store opened."""
        with self._lock:
            conns, self._all = self._all, []
            self._closed = True
            # Results read lazily after close() get a fresh connection.
            self._local = threading.local()
        for conn in conns:
            try:
                conn.close()
            except sqlite3.Error:
                pass

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Run a read query and return all rows."""
        try:
            return self._conn().execute(sql, params).fetchall()
        except sqlite3.Error as exc:
            raise translate(exc, self.path, self.busy_timeout_ms) from exc

    def write(self, ops: Iterable[Op]) -> None:
        """Apply ``ops`` in one transaction: all of them or none.

        A :class:`Guarded` statement that matches no row refuses the whole transaction: a
        fence with :class:`LeaseLost`, a journal write with :class:`StepAlreadyRecorded`.
        """
        conn = self._conn()
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                # Runs of the same statement go through executemany: one call into SQLite.
                for sql, group in itertools.groupby(ops, key=lambda op: op[0]):
                    params = [p for _, p in group]
                    if isinstance(sql, Guarded):
                        _apply_guarded(conn, sql, params)
                    elif len(params) == 1:
                        conn.execute(sql, params[0])
                    else:
                        conn.executemany(sql, params)
                conn.execute("COMMIT")
            except BaseException:
                rollback(conn)
                raise
        except sqlite3.IntegrityError:
            raise
        except sqlite3.Error as exc:
            raise translate(exc, self.path, self.busy_timeout_ms) from exc

    def transaction(self) -> _Transaction:
        """A ``BEGIN IMMEDIATE`` transaction for read-check-write sequences."""
        return _Transaction(self)

    # -- runs --------------------------------------------------------------------------

    def get_run(self, execution_id: str) -> RunRow | None:
        """The run with this id, or None."""
        rows = self.query(
            f"SELECT {_RUN_COLUMNS} FROM runs WHERE execution_id = ?", (execution_id,)
        )
        return RunRow(*rows[0]) if rows else None

    def require_run(self, execution_id: str) -> RunRow:
        """The run with this id; :class:`RunNotFound` if there is none."""
        row = self.get_run(execution_id)
        if row is None:
            raise RunNotFound(execution_id)
        return row

    def claimable_runs(self, now: float, limit: int = 100) -> list[RunRow]:
        """Running runs whose lease is free or expired (candidates for recovery)."""
        rows = self.query(
            f"SELECT {_RUN_COLUMNS} FROM runs WHERE status = 'running' "
            "AND (lease_owner IS NULL OR lease_expires < ?) ORDER BY created_at LIMIT ?",
            (now, limit),
        )
        return [RunRow(*r) for r in rows]

    def running_leases(self) -> list[tuple[str, str | None, float | None]]:
        """(execution_id, lease_owner, lease_expires) of every running run."""
        return [
            (r[0], r[1], r[2])
            for r in self.query(
                "SELECT execution_id, lease_owner, lease_expires FROM runs WHERE status = 'running'"
            )
        ]

    def claim(
        self, execution_id: str, owner: str, expires: float, now: float, *, steal_from: str | None
    ) -> int | None:
        """Take the run's lease if it is free, expired, ours, or held by ``steal_from``.

        Returns the lease's new fencing token (every claim increases it), or None if the
        lease could not be taken.
        """
        conn = self._conn()
        try:
            rows = conn.execute(
                "UPDATE runs SET lease_owner = ?, lease_expires = ?, updated_at = ?, "
                "lease_epoch = lease_epoch + 1 "
                "WHERE execution_id = ? AND status = 'running' AND (lease_owner IS NULL "
                "OR lease_expires < ? OR lease_owner = ? OR lease_owner = ?) "
                "RETURNING lease_epoch",
                (owner, expires, now, execution_id, now, owner, steal_from or owner),
            ).fetchall()
        except sqlite3.Error as exc:
            raise translate(exc, self.path, self.busy_timeout_ms) from exc
        return int(rows[0][0]) if rows else None

    # -- journal and events --------------------------------------------------------------

    def journal(self, execution_id: str) -> list[JournalRow]:
        """The run's durable steps in the order they started."""
        rows = self.query(
            "SELECT key, kind, state, agent, name, args_json, data_json, context_json, "
            "attempts, started_at, finished_at, ordinal FROM journal "
            "WHERE execution_id = ? ORDER BY ordinal",
            (execution_id,),
        )
        return [JournalRow(*r) for r in rows]

    def events(self, execution_id: str, after: int = 0, limit: int | None = None) -> list[Event]:
        """The run's events with ``seq > after``, in order."""
        rows = self.query(
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
        return {
            r[0]
            for r in self.query("SELECT key FROM events WHERE execution_id = ?", (execution_id,))
        }

    # -- forks ---------------------------------------------------------------------------

    def insert_fork(self, seed: ForkSeed) -> None:
        """Store a fork: its run, its copied steps, their approvals and events, all in one
        transaction (see :mod:`._forks`). ``sqlite3.IntegrityError`` if its id is taken; then
        nothing is written."""
        from ._forks import fork_ops

        columns = [row[1] for row in self.query("PRAGMA table_info(approvals)")]
        self.write(fork_ops(seed, columns))

    def lineage(self, execution_id: str) -> Lineage:
        """The run's parent (if it is a fork) and the runs forked from it."""
        from ._forks import ForkLink, Lineage, forks_query, parent_query

        parent = self.query(*parent_query(execution_id))
        forks = self.query(*forks_query(execution_id))
        return Lineage(
            execution_id,
            ForkLink(*parent[0]) if parent else None,
            [ForkLink(*row) for row in forks],
        )

    def start_context(self, execution_id: str) -> tuple[bool, str | None] | None:
        """``(known, context_json)``: the context the run started with, when completing the
        run replaced it (``known`` is False for runs completed before it was kept); None
        when the run's stored context is still the one it started with."""
        from ._forks import start_context_query

        rows = self.query(*start_context_query(execution_id))
        return (bool(rows[0][0]), rows[0][1]) if rows else None

    def stored_events(self, execution_id: str) -> list[StoredEvent]:
        """The run's events as stored, their payloads not completed from the journal."""
        from ._forks import StoredEvent, events_query

        return [StoredEvent(*row) for row in self.query(*events_query(execution_id))]

    # -- approvals -----------------------------------------------------------------------

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
        rows = self.query(
            f"SELECT {_APPROVAL_COLUMNS} FROM approvals {clause} ORDER BY requested_at LIMIT ?",
            (*params, limit),
        )
        return [_approval(r) for r in rows]


def _apply_guarded(conn: sqlite3.Connection, sql: Guarded, params: list[Sequence[Any]]) -> None:
    for values in params:
        cur = conn.execute(sql, values)
        matched = cur.fetchone() is not None if sql.what == "lease" else cur.rowcount == 1
        if not matched:
            status = conn.execute(
                "SELECT status FROM runs WHERE execution_id = ?", (values[0],)
            ).fetchone()
            raise refusal(sql, values, status[0] if status else None)


class _Transaction:
    def __init__(self, store: Store) -> None:
        self._store = store
        self._conn = store._conn()

    def __enter__(self) -> _Transaction:
        try:
            self._conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise translate(exc, self._store.path, self._store.busy_timeout_ms) from exc
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is not None:
            rollback(self._conn)
            if isinstance(exc, sqlite3.Error) and not isinstance(exc, sqlite3.IntegrityError):
                raise translate(exc, self._store.path, self._store.busy_timeout_ms) from exc
            return
        try:
            self._conn.execute("COMMIT")
        except sqlite3.Error as err:
            rollback(self._conn)
            raise translate(err, self._store.path, self._store.busy_timeout_ms) from err

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return self._conn.execute(sql, params).fetchall()

    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        return self._conn.execute(sql, params).rowcount
