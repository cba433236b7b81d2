"""Typed writes compiled into PostgreSQL's SQL, and applied in one pipelined transaction.

Each write kind of :mod:`frontdesk.store._writes` becomes one or more statements. A
transaction's statements go to the server in one pipeline (one round trip, whatever their
number). A write's transaction goes whole, from ``BEGIN`` to ``COMMIT``, its guards checked by
the server (a guard that fails raises there, and nothing of the transaction lands); a
read-check-write section's writes check them from their results instead. The guards:

- a :class:`~frontdesk.store.Fence` is ``SELECT ... FOR NO KEY UPDATE`` of the run's row under
  the writer's owner and token: it matches no row once the lease is lost, and it holds the row
  locked until the commit, so no claim can take the lease between the check and the commit
  (:class:`~frontdesk.store.LeaseLost`);
- a journal write is ``INSERT ... ON CONFLICT DO UPDATE ... WHERE journal.state <> 'done'
  RETURNING``: no row back means the step was done already
  (:class:`~frontdesk.store.StepAlreadyRecorded`);
- a new run is ``INSERT ... ON CONFLICT DO NOTHING RETURNING``: no row back means its id is
  taken (:class:`~frontdesk.store.RunAlreadyExists`).

Events are numbered ``MAX(seq) + 1`` by the statement that appends them, as in SQLite. Since
PostgreSQL lets transactions run side by side, a transaction appending to a run first locks the
run's row (a fence already has, and a run inserted in the same transaction is seen by no other
until it commits), so two writers of one run number one after the other.

Writes that others wait for also notify (see :mod:`._notify`): a settled, resumed or cancelled
run on ``frontdesk_run``, a requested or decided approval on ``frontdesk_approval``, a run
that became claimable on ``frontdesk_new_run``, appended events on ``frontdesk_event``. Notifications are sent in the same
transaction, so they are delivered only if it commits.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any

from .._approvals import APPROVAL_COLUMNS
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
from ._compile_conversations import CONVERSATION_COMPILERS
from ._notify import APPROVAL_CHANNEL, EVENT_CHANNEL, NEW_RUN_CHANNEL, RUN_CHANNEL
from ._statements import Compiled, Statement

RUN_COLUMNS = (
    "execution_id, agent_ref, agent_name, status, input, context_type, context_json, "
    "output_json, last_agent, error, note, model_label, requests, input_tokens, "
    "output_tokens, total_tokens, created_at, started_at, finished_at, updated_at, "
    "lease_owner, lease_expires, cancel_requested, attempt, conversation_id, turn, model_override, "
    "lease_epoch, budget_json"
)
"""The run row's columns, in :class:`~frontdesk.store.RunRow`'s field order."""
_RUN_PLACES = ", ".join(["%s"] * len(RUN_COLUMNS.split(",")))


_TERMINAL = ", ".join(f"'{status}'" for status in sorted(TERMINAL_STATUSES))
_NOT_ENDED = f"status NOT IN ({_TERMINAL})"
_COPIED = ", ".join(
    c.strip()
    for c in APPROVAL_COLUMNS.split(",")
    if c.strip() not in ("approval_id", "execution_id")
)
_NOTIFY_EACH = "SELECT pg_notify('{channel}', execution_id) FROM changed"

FENCE = (
    "SELECT 1 FROM runs WHERE execution_id = %s AND lease_owner = %s AND lease_epoch = %s "
    "AND status = 'running' FOR NO KEY UPDATE"
)
RUN_INSERT = (
    f"INSERT INTO runs ({RUN_COLUMNS}, parent_id, fork_step) VALUES ({_RUN_PLACES}, %s, %s) "
    "ON CONFLICT (execution_id) DO NOTHING RETURNING 1"
)
JOURNAL_WRITE = (
    "INSERT INTO journal (execution_id, key, kind, state, agent, name, args_json, data_json, "
    "context_json, attempts, started_at, finished_at, ordinal) "
    "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) "
    "ON CONFLICT (execution_id, key) DO UPDATE SET kind = excluded.kind, "
    "state = excluded.state, agent = excluded.agent, name = excluded.name, "
    "args_json = excluded.args_json, data_json = excluded.data_json, "
    "context_json = excluded.context_json, attempts = excluded.attempts, "
    "started_at = excluded.started_at, finished_at = excluded.finished_at "
    "WHERE journal.state <> 'done' RETURNING 1"
)
EVENT_INSERT = (
    "INSERT INTO events (execution_id, seq, key, type, at, agent, data_json, ref) "
    "SELECT %s, COALESCE(MAX(seq), 0) + 1, %s, %s, %s, %s, %s, %s FROM events "
    "WHERE execution_id = %s"
)


def _fence(c: Compiled, w: Fence) -> None:
    c.locked.add(w.execution_id)
    c.add(FENCE, w.execution_id, w.owner, w.epoch, guard=w)


def _insert_run(c: Compiled, w: InsertRun) -> None:
    r = w.row
    values = [getattr(r, name.strip()) for name in RUN_COLUMNS.split(",")]
    c.add(RUN_INSERT, *values, w.parent_id, w.fork_step, guard=w)
    # No other transaction sees the new row before this one commits: it needs no lock.
    c.locked.add(r.execution_id)
    c.notify(RUN_CHANNEL, r.execution_id)
    if r.status == "running" and r.lease_owner is None:
        c.notify(NEW_RUN_CHANNEL, r.execution_id)


def _settle(c: Compiled, w: SettleRun) -> None:
    if not w.columns:
        return
    assignments = ", ".join(f"{name} = %s" for name in w.columns)
    c.add(
        f"UPDATE runs SET {assignments} WHERE execution_id = %s AND {_NOT_ENDED}",
        *w.columns.values(),
        w.execution_id,
    )
    if "status" in w.columns:
        c.notify(RUN_CHANNEL, w.execution_id)


def _retry(c: Compiled, w: RetryRun) -> None:
    c.add(
        "UPDATE runs SET status = 'running', error = NULL, finished_at = NULL, "
        "attempt = attempt + 1, lease_owner = NULL, lease_expires = NULL, "
        "budget_json = COALESCE(%s, budget_json), updated_at = %s "
        "WHERE execution_id = %s AND status IN ('failed', 'budget_exceeded')",
        w.budget_json,
        w.at,
        w.execution_id,
    )
    c.notify(RUN_CHANNEL, w.execution_id)
    c.notify(NEW_RUN_CHANNEL, w.execution_id)


def _cancel(c: Compiled, w: CancelRun) -> None:
    c.add(
        "UPDATE runs SET status = 'cancelled', cancel_requested = 1, finished_at = %s, "
        "updated_at = %s, lease_owner = NULL, lease_expires = NULL "
        f"WHERE execution_id = %s AND {_NOT_ENDED}",
        w.at,
        w.at,
        w.execution_id,
    )
    c.add(
        "UPDATE approvals SET status = 'cancelled' WHERE execution_id = %s AND status = 'pending'",
        w.execution_id,
    )
    c.notify(RUN_CHANNEL, w.execution_id)
    c.notify(APPROVAL_CHANNEL, w.execution_id)


def _resume(c: Compiled, w: ResumeRun) -> None:
    c.add(
        "UPDATE runs SET status = 'running', lease_owner = NULL, lease_expires = NULL, "
        "updated_at = %s WHERE execution_id = %s AND status = 'waiting_approval'",
        w.at,
        w.execution_id,
    )
    c.notify(RUN_CHANNEL, w.execution_id)
    c.notify(NEW_RUN_CHANNEL, w.execution_id)


def _request_cancel(c: Compiled, w: RequestCancel) -> None:
    c.add("UPDATE runs SET cancel_requested = 1 WHERE execution_id = %s", w.execution_id)
    c.notify(RUN_CHANNEL, w.execution_id)


def _note(c: Compiled, w: SetNote) -> None:
    c.add("UPDATE runs SET note = %s WHERE execution_id = %s", w.note, w.execution_id)


def _renew(c: Compiled, w: RenewLeases) -> None:
    c.add(
        "UPDATE runs SET lease_expires = %s WHERE lease_owner = %s AND status = 'running' "
        "AND execution_id = ANY(%s)",
        w.expires,
        w.owner,
        sorted(w.execution_ids),
    )


def _release(c: Compiled, w: ReleaseLease) -> None:
    c.add(
        "UPDATE runs SET lease_owner = NULL, lease_expires = NULL "
        "WHERE execution_id = %s AND lease_owner = %s AND status = 'running' "
        "AND lease_epoch = COALESCE(%s, lease_epoch)",
        w.execution_id,
        w.owner,
        w.epoch,
    )
    c.notify(NEW_RUN_CHANNEL, w.execution_id)


def _release_all(c: Compiled, w: ReleaseLeases) -> None:
    c.add(
        "WITH changed AS (UPDATE runs SET lease_owner = NULL, lease_expires = NULL "
        "WHERE lease_owner = %s AND status = 'running' RETURNING execution_id) "
        + _NOTIFY_EACH.format(channel=NEW_RUN_CHANNEL),
        w.owner,
    )


def _step(c: Compiled, w: RecordStep) -> None:
    s = w.step
    c.add(
        JOURNAL_WRITE,
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
        guard=w,
    )


def _event(c: Compiled, w: AppendEvent) -> None:
    c.lock_run(w.execution_id)
    c.add(
        EVENT_INSERT,
        w.execution_id,
        w.key,
        w.type,
        w.at,
        w.agent,
        w.data_json,
        w.ref,
        w.execution_id,
    )
    c.notify(EVENT_CHANNEL, w.execution_id)


def _request(c: Compiled, w: RequestApproval) -> None:
    r = w.record
    c.add(
        "INSERT INTO approvals (approval_id, execution_id, call_key, call_id, agent, tool_name, "
        "args_json, status, requested_at, deadline, on_timeout, args_schema_json) "
        "VALUES (%s, %s, %s, %s, %s, %s, %s, 'pending', %s, %s, %s, %s) ON CONFLICT DO NOTHING",
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
    )
    c.notify(APPROVAL_CHANNEL, r.execution_id)


def _decide(c: Compiled, w: DecideApproval) -> None:
    edited = None if w.edited_args is None else json.dumps(dict(w.edited_args))
    c.add(
        "WITH changed AS (UPDATE approvals SET status = %s, decided_at = %s, decided_by = %s, "
        "note = %s, reason = %s, edited_args_json = %s WHERE approval_id = %s "
        "RETURNING execution_id) " + _NOTIFY_EACH.format(channel=APPROVAL_CHANNEL),
        w.status,
        w.at,
        w.by,
        w.note,
        w.reason,
        edited,
        w.approval_id,
    )


def _escalate(c: Compiled, w: EscalateApproval) -> None:
    c.add(
        "WITH changed AS (UPDATE approvals SET escalated_at = %s WHERE approval_id = %s "
        "RETURNING execution_id) " + _NOTIFY_EACH.format(channel=APPROVAL_CHANNEL),
        w.at,
        w.approval_id,
    )


def _copy_approval(c: Compiled, w: CopyApproval) -> None:
    c.add(
        f"INSERT INTO approvals (approval_id, execution_id, {_COPIED}) "
        f"SELECT %s, %s, {_COPIED} FROM approvals WHERE approval_id = %s",
        w.approval_id,
        w.execution_id,
        w.source_id,
    )


_COMPILERS: dict[type, Callable[[Compiled, Any], None]] = {
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
    **CONVERSATION_COMPILERS,
}


def compile_writes(
    writes: Iterable[Write], *, locked: Iterable[str] = (), server_guards: bool = False
) -> Compiled:
    """The statements that apply ``writes`` in order, then send their notifications.
    ``locked`` names runs whose rows the transaction already holds locked; with
    ``server_guards`` the server checks the guards (see :class:`Compiled`)."""
    compiled = Compiled(locked=set(locked), server_guards=server_guards)
    for write in writes:
        try:
            compiler = _COMPILERS[type(write)]
        except KeyError:
            raise TypeError(f"not a store write: {write!r}") from None
        compiler(compiled, write)
    compiled.finish()
    return compiled


__all__ = ["RUN_COLUMNS", "Compiled", "Statement", "compile_writes"]
