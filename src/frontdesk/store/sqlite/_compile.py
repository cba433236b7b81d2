"""Typed writes compiled into SQLite's SQL, and applied inside one transaction.

Each write kind of :mod:`frontdesk.store._writes` becomes one or more statements. Runs of the
same statement go through ``executemany``: one call into SQLite for a batch of events. Guards
are statements that must match exactly one row each time they run; one that does not refuses
the whole transaction (:class:`LeaseLost`, :class:`StepAlreadyRecorded`), as does a new run
whose id is taken (:class:`RunAlreadyExists`).
"""

from __future__ import annotations

import itertools
import json
import sqlite3
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from .._approvals import APPROVAL_COLUMNS
from .._fence import lease_refused, run_exists, step_refused
from .._records import TERMINAL_STATUSES
from .._writes import (
    AppendEvent,
    CancelRun,
    CopyApproval,
    DecideApproval,
    EscalateApproval,
    Fence,
    InsertRun,
    RecordStep,
    ReleaseLease,
    ReleaseLeases,
    RenewLeases,
    RequestApproval,
    RequestCancel,
    ResumeRun,
    RetryRun,
    SetNote,
    SettleRun,
    Write,
)
from ._conversations import CONVERSATION_COMPILERS, Statement


class Guarded(str):
    """SQL whose every execution must match exactly one row, or the transaction is refused.

    ``what`` names the guard: ``"lease"`` for a fence, ``"step"`` for a journal write,
    ``"run"`` for a new run (refused when its id is taken).
    """

    what: str

    def __new__(cls, sql: str, what: str) -> Guarded:
        guarded = super().__new__(cls, sql)
        guarded.what = what
        return guarded


RUN_COLUMNS = (
    "execution_id, agent_ref, agent_name, status, input, context_type, context_json, "
    "output_json, last_agent, error, note, model_label, requests, input_tokens, "
    "output_tokens, total_tokens, created_at, started_at, finished_at, updated_at, "
    "lease_owner, lease_expires, cancel_requested, attempt, conversation_id, turn, model_override, "
    "lease_epoch, budget_json"
)
"""The run row's columns, in :class:`~frontdesk.store.RunRow`'s field order."""

_RUN_PLACES = ", ".join("?" * len(RUN_COLUMNS.split(",")))
RUN_INSERT = Guarded(f"INSERT INTO runs ({RUN_COLUMNS}) VALUES ({_RUN_PLACES})", "run")
FORK_INSERT = Guarded(
    f"INSERT INTO runs ({RUN_COLUMNS}, parent_id, fork_step) VALUES ({_RUN_PLACES}, ?, ?)", "run"
)

FENCE = Guarded(
    "SELECT 1 FROM runs WHERE execution_id = ? AND lease_owner = ? AND lease_epoch = ? "
    "AND status = 'running'",
    "lease",
)

JOURNAL_WRITE = Guarded(
    "INSERT INTO journal (execution_id, key, kind, state, agent, name, args_json, data_json, "
    "context_json, attempts, started_at, finished_at, ordinal) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (execution_id, key) DO UPDATE SET kind = excluded.kind, "
    "state = excluded.state, agent = excluded.agent, name = excluded.name, "
    "args_json = excluded.args_json, data_json = excluded.data_json, "
    "context_json = excluded.context_json, attempts = excluded.attempts, "
    "started_at = excluded.started_at, finished_at = excluded.finished_at "
    "WHERE journal.state <> 'done'",
    "step",
)
"""Insert a journal row, or update one whose step has not completed; a done row is kept."""

EVENT_INSERT = (
    "INSERT INTO events (execution_id, seq, key, type, at, agent, data_json, ref) "
    "SELECT ?1, COALESCE(MAX(seq), 0) + 1, ?2, ?3, ?4, ?5, ?6, ?7 FROM events "
    "WHERE execution_id = ?1"
)
"""Append an event to its run, numbered after the run's last event by the transaction that
writes it: every writer (the run's driver, a cancel, an approval decision) numbers the same way,
so no two of them can ever pick the same ``seq``."""

_TERMINAL = ", ".join(f"'{status}'" for status in sorted(TERMINAL_STATUSES))
_NOT_ENDED = f"status NOT IN ({_TERMINAL})"
_COPIED = ", ".join(
    c.strip()
    for c in APPROVAL_COLUMNS.split(",")
    if c.strip() not in ("approval_id", "execution_id")
)


def _fence(w: Fence) -> list[Statement]:
    return [(FENCE, (w.execution_id, w.owner, w.epoch))]


def _insert_run(w: InsertRun) -> list[Statement]:
    r = w.row
    values = (
        r.execution_id,
        r.agent_ref,
        r.agent_name,
        r.status,
        r.input,
        r.context_type,
        r.context_json,
        r.output_json,
        r.last_agent,
        r.error,
        r.note,
        r.model_label,
        r.requests,
        r.input_tokens,
        r.output_tokens,
        r.total_tokens,
        r.created_at,
        r.started_at,
        r.finished_at,
        r.updated_at,
        r.lease_owner,
        r.lease_expires,
        r.cancel_requested,
        r.attempt,
        r.conversation_id,
        r.turn,
        r.model_override,
        r.lease_epoch,
        r.budget_json,
    )
    if w.parent_id is None:
        return [(RUN_INSERT, values)]
    return [(FORK_INSERT, (*values, w.parent_id, w.fork_step))]


def _settle(w: SettleRun) -> list[Statement]:
    assignments = ", ".join(f"{name} = ?" for name in w.columns)
    return [
        (
            f"UPDATE runs SET {assignments} WHERE execution_id = ? AND {_NOT_ENDED}",
            (*w.columns.values(), w.execution_id),
        )
    ]


def _retry(w: RetryRun) -> list[Statement]:
    return [
        (
            "UPDATE runs SET status = 'running', error = NULL, finished_at = NULL, "
            "attempt = attempt + 1, lease_owner = NULL, lease_expires = NULL, "
            "budget_json = COALESCE(?, budget_json), updated_at = ? "
            "WHERE execution_id = ? AND status IN ('failed', 'budget_exceeded')",
            (w.budget_json, w.at, w.execution_id),
        )
    ]


def _cancel(w: CancelRun) -> list[Statement]:
    return [
        (
            "UPDATE runs SET status = 'cancelled', cancel_requested = 1, finished_at = ?, "
            "updated_at = ?, lease_owner = NULL, lease_expires = NULL "
            f"WHERE execution_id = ? AND {_NOT_ENDED}",
            (w.at, w.at, w.execution_id),
        ),
        (
            "UPDATE approvals SET status = 'cancelled' WHERE execution_id = ? "
            "AND status = 'pending'",
            (w.execution_id,),
        ),
    ]


def _resume(w: ResumeRun) -> list[Statement]:
    return [
        (
            "UPDATE runs SET status = 'running', lease_owner = NULL, lease_expires = NULL, "
            "updated_at = ? WHERE execution_id = ? AND status = 'waiting_approval'",
            (w.at, w.execution_id),
        )
    ]


def _request_cancel(w: RequestCancel) -> list[Statement]:
    return [("UPDATE runs SET cancel_requested = 1 WHERE execution_id = ?", (w.execution_id,))]


def _note(w: SetNote) -> list[Statement]:
    return [("UPDATE runs SET note = ? WHERE execution_id = ?", (w.note, w.execution_id))]


def _renew(w: RenewLeases) -> list[Statement]:
    return [
        (
            "UPDATE runs SET lease_expires = ? WHERE lease_owner = ? AND status = 'running' "
            "AND execution_id IN (SELECT value FROM json_each(?))",
            (w.expires, w.owner, json.dumps(sorted(w.execution_ids))),
        )
    ]


def _release(w: ReleaseLease) -> list[Statement]:
    return [
        (
            "UPDATE runs SET lease_owner = NULL, lease_expires = NULL "
            "WHERE execution_id = ? AND lease_owner = ? AND status = 'running' "
            "AND lease_epoch = COALESCE(?, lease_epoch)",
            (w.execution_id, w.owner, w.epoch),
        )
    ]


def _release_all(w: ReleaseLeases) -> list[Statement]:
    return [
        (
            "UPDATE runs SET lease_owner = NULL, lease_expires = NULL "
            "WHERE lease_owner = ? AND status = 'running'",
            (w.owner,),
        )
    ]


def _step(w: RecordStep) -> list[Statement]:
    s = w.step
    return [
        (
            JOURNAL_WRITE,
            (
                w.execution_id,
                s.key,
                s.kind,
                s.state,
                s.agent,
                s.name,
                s.args_json,
                s.data_json,
                s.context_json,
                s.attempts,
                s.started_at,
                s.finished_at,
                s.ordinal,
            ),
        )
    ]


def _event(w: AppendEvent) -> list[Statement]:
    return [(EVENT_INSERT, (w.execution_id, w.key, w.type, w.at, w.agent, w.data_json, w.ref))]


def _request(w: RequestApproval) -> list[Statement]:
    r = w.record
    return [
        (
            "INSERT OR IGNORE INTO approvals (approval_id, execution_id, call_key, call_id, "
            "agent, tool_name, args_json, status, requested_at, deadline, on_timeout, "
            "args_schema_json) VALUES (?, ?, ?, ?, ?, ?, ?, 'pending', ?, ?, ?, ?)",
            (
                r.approval_id,
                r.execution_id,
                r.call_key,
                r.call_id,
                r.agent,
                r.tool_name,
                json.dumps(r.args),
                r.requested_at,
                r.deadline,
                r.on_timeout,
                None if r.args_schema is None else json.dumps(r.args_schema),
            ),
        )
    ]


def _decide(w: DecideApproval) -> list[Statement]:
    edited = None if w.edited_args is None else json.dumps(dict(w.edited_args))
    return [
        (
            "UPDATE approvals SET status = ?, decided_at = ?, decided_by = ?, note = ?, "
            "reason = ?, edited_args_json = ? WHERE approval_id = ?",
            (w.status, w.at, w.by, w.note, w.reason, edited, w.approval_id),
        )
    ]


def _escalate(w: EscalateApproval) -> list[Statement]:
    return [("UPDATE approvals SET escalated_at = ? WHERE approval_id = ?", (w.at, w.approval_id))]


def _copy_approval(w: CopyApproval) -> list[Statement]:
    return [
        (
            f"INSERT INTO approvals (approval_id, execution_id, {_COPIED}) "
            f"SELECT ?, ?, {_COPIED} FROM approvals WHERE approval_id = ?",
            (w.approval_id, w.execution_id, w.source_id),
        )
    ]


_COMPILERS: dict[type, Callable[[Any], list[Statement]]] = {
    **CONVERSATION_COMPILERS,
    Fence: _fence,
    InsertRun: _insert_run,
    SettleRun: _settle,
    RetryRun: _retry,
    CancelRun: _cancel,
    ResumeRun: _resume,
    RequestCancel: _request_cancel,
    SetNote: _note,
    RenewLeases: _renew,
    ReleaseLease: _release,
    ReleaseLeases: _release_all,
    RecordStep: _step,
    AppendEvent: _event,
    RequestApproval: _request,
    DecideApproval: _decide,
    EscalateApproval: _escalate,
    CopyApproval: _copy_approval,
}


def compile_writes(writes: Iterable[Write]) -> list[Statement]:
    """The statements that apply ``writes``, in order."""
    statements: list[Statement] = []
    for write in writes:
        try:
            compiler = _COMPILERS[type(write)]
        except KeyError:
            raise TypeError(f"not a store write: {write!r}") from None
        statements.extend(compiler(write))
    return statements


def apply(conn: sqlite3.Connection, writes: Iterable[Write]) -> None:
    """Apply ``writes`` on ``conn``, inside the transaction the caller opened (and rolls back
    if this raises)."""
    for sql, group in itertools.groupby(compile_writes(writes), key=lambda s: s[0]):
        params = [p for _, p in group]
        if isinstance(sql, Guarded):
            _apply_guarded(conn, sql, params)
        elif len(params) == 1:
            conn.execute(sql, params[0])
        else:
            conn.executemany(sql, params)


def _apply_guarded(conn: sqlite3.Connection, sql: Guarded, params: list[Sequence[Any]]) -> None:
    for values in params:
        if sql.what == "run":
            try:
                conn.execute(sql, values)
            except sqlite3.IntegrityError:
                raise run_exists(values[0]) from None
            continue
        cur = conn.execute(sql, values)
        if sql.what == "step":
            if cur.rowcount != 1:
                raise step_refused(values[0], values[1])
            continue
        if cur.fetchone() is None:
            status = conn.execute(
                "SELECT status FROM runs WHERE execution_id = ?", (values[0],)
            ).fetchone()
            guard = Fence(values[0], values[1], values[2])
            raise lease_refused(guard, status[0] if status else None)
