"""Deciding approvals: by a person, or by the clock at an approval's deadline.

A person approves (as asked, or with edited arguments) or rejects a pending request
(:func:`decide`). A request whose tool has an approval timeout carries its deadline on its
row; any process that finds it past the deadline (:func:`due_approvals`, through the
``approvals_due`` index) rejects it as ``system:timeout`` or escalates it
(:func:`expire`). Every decision re-reads the request inside one ``BEGIN IMMEDIATE``
transaction, so however many processes race, a request is decided once, and a refused
decision changes nothing.
"""

from __future__ import annotations

import json
from typing import Any

from ..errors import ApprovalAlreadyDecided, ApprovalNotFound, RunNotWaiting
from ..events import encode_payload
from ._approvals import (
    APPROVAL_COLUMNS,
    TIMEOUT_DECIDER,
    ApprovalRecord,
    approval_from_row,
    edited_arguments,
    timeout_reason,
)
from ._store import Store, _Transaction, event_insert

_DUE = (
    f"SELECT {APPROVAL_COLUMNS} FROM approvals INDEXED BY approvals_due "
    "WHERE status = 'pending' AND deadline IS NOT NULL AND escalated_at IS NULL "
    "AND deadline <= ? ORDER BY deadline LIMIT ?"
)


def decide(
    store: Store,
    approval_or_execution_id: str,
    *,
    approved: bool,
    by: str | None,
    note: str | None,
    reason: str | None,
    now: float,
    args: dict[str, Any] | None = None,
) -> tuple[ApprovalRecord, bool]:
    """Record a person's decision. Returns the decided approval and whether its run can now
    resume. ``args`` (only with ``approved``) edits the call's arguments, see
    :func:`~._approvals.edited_arguments`.

    Raises :class:`ApprovalNotFound`, :class:`ApprovalAlreadyDecided`, :class:`RunNotWaiting`
    or :class:`~frontdesk.errors.InvalidInput` for edits that do not fit the tool; in each
    case nothing is changed.
    """
    with store.transaction() as tx:
        record = _find(tx, approval_or_execution_id)
        _require_pending(tx, record)
        edited = edited_arguments(record, args) if args is not None else None
        runnable = _record(
            tx,
            record,
            "approved" if approved else "rejected",
            by=by,
            note=note,
            reason=reason,
            edited=edited,
            now=now,
        )
    return _reread(store, record), runnable


def due_approvals(store: Store, now: float, limit: int = 100) -> list[ApprovalRecord]:
    """Pending requests past their deadline that were not escalated yet, earliest first."""
    return [approval_from_row(r) for r in store.query(_DUE, (now, limit))]


def expire(store: Store, approval_id: str, now: float) -> tuple[ApprovalRecord, bool] | None:
    """Reject (as ``system:timeout``) or escalate one request past its deadline.

    Returns the request as decided and whether its run can now resume; None if there was
    nothing to do: another process decided or escalated it first, or it is not due.
    """
    with store.transaction() as tx:
        rows = tx.query(
            f"SELECT {APPROVAL_COLUMNS} FROM approvals WHERE approval_id = ?", (approval_id,)
        )
        if not rows:
            return None
        record = approval_from_row(rows[0])
        if (
            record.status != "pending"
            or record.escalated_at is not None
            or record.deadline is None
            or record.deadline > now
        ):
            return None
        if record.on_timeout == "escalate":
            _escalate(tx, record, now)
            runnable = False
        else:
            if _run_status(tx, record) != "waiting_approval":
                return None
            runnable = _record(
                tx,
                record,
                "rejected",
                by=TIMEOUT_DECIDER,
                note=None,
                reason=timeout_reason(record),
                edited=None,
                now=now,
                timed_out=True,
            )
    return _reread(store, record), runnable


def _escalate(tx: _Transaction, record: ApprovalRecord, now: float) -> None:
    tx.execute(
        "UPDATE approvals SET escalated_at = ? WHERE approval_id = ?", (now, record.approval_id)
    )
    tx.execute(
        *event_insert(
            record.execution_id,
            f"approval_escalated:{record.call_key}",
            "approval_escalated",
            record.agent,
            encode_payload(
                tool_name=record.tool_name,
                call_id=record.call_id,
                args=record.args,
                approval_id=record.approval_id,
                timeout=str(record.timeout),
                deadline=record.deadline,
                note=f"nobody decided within {record.timeout}; the request stays pending",
            ),
            at=now,
        )
    )


def _record(
    tx: _Transaction,
    record: ApprovalRecord,
    status: str,
    *,
    by: str | None,
    note: str | None,
    reason: str | None,
    edited: dict[str, Any] | None,
    now: float,
    timed_out: bool = False,
) -> bool:
    """Write the decision and its event; make the run runnable once nothing is pending."""
    tx.execute(
        "UPDATE approvals SET status = ?, decided_at = ?, decided_by = ?, note = ?, "
        "reason = ?, edited_args_json = ? WHERE approval_id = ?",
        (
            status,
            now,
            by,
            note,
            reason,
            None if edited is None else json.dumps(edited),
            record.approval_id,
        ),
    )
    extra: dict[str, Any] = {}
    if edited is not None:
        extra["edited_args"] = edited
    if timed_out:
        extra["timed_out"] = True
    tx.execute(
        *event_insert(
            record.execution_id,
            f"approval_decided:{record.call_key}",
            "approval_decided",
            record.agent,
            encode_payload(
                tool_name=record.tool_name,
                call_id=record.call_id,
                args=record.args,
                approval_id=record.approval_id,
                decision=status,
                by=by,
                note=note,
                reason=reason,
                **extra,
            ),
            at=now,
        )
    )
    pending = tx.query(
        "SELECT COUNT(*) FROM approvals WHERE execution_id = ? AND status = 'pending'",
        (record.execution_id,),
    )[0][0]
    if pending:
        return False
    tx.execute(
        "UPDATE runs SET status = 'running', lease_owner = NULL, lease_expires = NULL,"
        " updated_at = ? WHERE execution_id = ?",
        (now, record.execution_id),
    )
    return True


def _run_status(tx: _Transaction, record: ApprovalRecord) -> str:
    run = tx.query("SELECT status FROM runs WHERE execution_id = ?", (record.execution_id,))
    return str(run[0][0]) if run else "missing"


def _require_pending(tx: _Transaction, record: ApprovalRecord) -> None:
    if record.status == "cancelled":
        raise RunNotWaiting(
            f"run {record.execution_id} was cancelled; its approval "
            f"{record.approval_id} can no longer be decided; nothing changed"
        )
    if record.status != "pending":
        raise ApprovalAlreadyDecided(
            f"approval {record.approval_id} ({record.tool_name}) was already "
            f"{record.status} by {record.decided_by or 'someone'}; nothing changed"
        )
    status = _run_status(tx, record)
    if status != "waiting_approval":
        raise RunNotWaiting(
            f"run {record.execution_id} is {status}, not waiting for approval; nothing changed"
        )


def _find(tx: _Transaction, ident: str) -> ApprovalRecord:
    rows = tx.query(f"SELECT {APPROVAL_COLUMNS} FROM approvals WHERE approval_id = ?", (ident,))
    if rows:
        return approval_from_row(rows[0])
    rows = tx.query(
        f"SELECT {APPROVAL_COLUMNS} FROM approvals WHERE execution_id = ? ORDER BY requested_at",
        (ident,),
    )
    if not rows:
        if not tx.query("SELECT 1 FROM runs WHERE execution_id = ?", (ident,)):
            raise ApprovalNotFound(f"no approval or run with id {ident!r}")
        raise RunNotWaiting(f"run {ident} has no approval request; nothing changed")
    records = [approval_from_row(r) for r in rows]
    pending = [r for r in records if r.status == "pending"]
    if len(pending) > 1:
        ids = ", ".join(f"{r.approval_id} ({r.tool_name})" for r in pending)
        raise ApprovalNotFound(
            f"run {ident} has {len(pending)} pending approvals; name one of: {ids}"
        )
    return pending[0] if pending else records[-1]


def _reread(store: Store, record: ApprovalRecord) -> ApprovalRecord:
    rows = store.query(
        f"SELECT {APPROVAL_COLUMNS} FROM approvals WHERE approval_id = ?", (record.approval_id,)
    )
    return approval_from_row(rows[0])
