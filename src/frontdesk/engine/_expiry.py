"""Acting on approval requests past their deadline, the same on every engine."""

from __future__ import annotations

from ..store import ApprovalRecord, Store


def expire_due(store: Store, now: float) -> list[ApprovalRecord]:
    """Reject or escalate every approval request due at ``now``, as its tool says; returns
    those this call decided (a request another process got to first is not among them)."""
    decided = []
    for request in store.due_approvals(now):
        outcome = store.expire(request.approval_id, now)
        if outcome is not None:
            decided.append(outcome[0])
    return decided


__all__ = ["expire_due"]
