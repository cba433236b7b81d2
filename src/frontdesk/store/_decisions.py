"""Deciding approvals: by a person, or by the clock at an approval's deadline.

A person approves (as asked, or with edited arguments) or rejects a pending request
(:func:`decide`). A request whose tool has an approval timeout carries its deadline on its
row; any process that finds it past the deadline (:meth:`Store.due_approvals`) rejects it as
``system:timeout`` or escalates it (:func:`expire`). Every decision re-reads the request inside
one :class:`~._base.StoreTransaction`, so however many processes race, a request is decided
once, and a refused decision changes nothing. Written once for every backend.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..errors import ApprovalAlreadyDecided, ApprovalNotFound, RunNotWaiting
from ..events import encode_payload
from ._approvals import TIMEOUT_DECIDER, ApprovalRecord, edited_arguments, timeout_reason
from ._writes import DecideApproval, EscalateApproval, ResumeRun, event_insert

if TYPE_CHECKING:
    from ._base import Store, StoreTransaction


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
        decided = _reread(tx, record)
    return decided, runnable


def expire(store: Store, approval_id: str, now: float) -> tuple[ApprovalRecord, bool] | None:
    """Reject (as ``system:timeout``) or escalate one request past its deadline.

    Returns the request as decided and whether its run can now resume; None if there was
    nothing to do: another process decided or escalated it first, or it is not due.
    """
    with store.transaction() as tx:
        found = tx.approval(approval_id)
        if found is None:
            return None
        record = found
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
        decided = _reread(tx, record)
    return decided, runnable


def _escalate(tx: StoreTransaction, record: ApprovalRecord, now: float) -> None:
    tx.write(
        [
            EscalateApproval(record.approval_id, now),
            event_insert(
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
            ),
        ]
    )


def _record(
    tx: StoreTransaction,
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
    decision = DecideApproval(
        record.approval_id, status, now, by, note=note, reason=reason, edited_args=edited
    )
    extra: dict[str, Any] = {}
    if edited is not None:
        extra["edited_args"] = edited
    if timed_out:
        extra["timed_out"] = True
    event = event_insert(
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
    tx.write([decision, event])
    if tx.pending_approvals(record.execution_id):
        return False
    tx.write([ResumeRun(record.execution_id, now)])
    return True


def _run_status(tx: StoreTransaction, record: ApprovalRecord) -> str:
    return tx.run_status(record.execution_id) or "missing"


def _require_pending(tx: StoreTransaction, record: ApprovalRecord) -> None:
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


def _find(tx: StoreTransaction, ident: str) -> ApprovalRecord:
    found = tx.approval(ident)
    if found is not None:
        return found
    records = tx.run_approvals(ident)
    if not records:
        if tx.run_status(ident) is None:
            raise ApprovalNotFound(f"no approval or run with id {ident!r}")
        raise RunNotWaiting(f"run {ident} has no approval request; nothing changed")
    pending = [r for r in records if r.status == "pending"]
    if len(pending) > 1:
        ids = ", ".join(f"{r.approval_id} ({r.tool_name})" for r in pending)
        raise ApprovalNotFound(
            f"run {ident} has {len(pending)} pending approvals; name one of: {ids}"
        )
    return pending[0] if pending else records[-1]


def _reread(tx: StoreTransaction, record: ApprovalRecord) -> ApprovalRecord:
    decided = tx.approval(record.approval_id)
    assert decided is not None  # written in this very transaction
    return decided
