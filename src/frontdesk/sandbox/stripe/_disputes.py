"""Disputes: opened by test cards, answered with evidence, closed, won or lost."""

from __future__ import annotations

import copy
import time
from typing import Any

from ._cards import TestDispute
from ._core import Operation, Sandbox, new_id
from ._errors import invalid_request
from ._forms import Params
from ._objects import DISPUTE_FEE, balance_transaction
from ._store import StripeObject

EVIDENCE_FIELDS = (
    "access_activity_log",
    "billing_address",
    "cancellation_policy",
    "cancellation_policy_disclosure",
    "cancellation_rebuttal",
    "customer_communication",
    "customer_email_address",
    "customer_name",
    "customer_purchase_ip",
    "customer_signature",
    "duplicate_charge_documentation",
    "duplicate_charge_explanation",
    "duplicate_charge_id",
    "product_description",
    "receipt",
    "refund_policy",
    "refund_policy_disclosure",
    "refund_refusal_explanation",
    "service_date",
    "service_documentation",
    "shipping_address",
    "shipping_carrier",
    "shipping_date",
    "shipping_documentation",
    "shipping_tracking_number",
    "uncategorized_file",
    "uncategorized_text",
)
_EVIDENCE_LIMIT = 150_000
_RESPONSE_WINDOW = 7 * 86400
# Status after evidence is submitted, for each status that still accepts evidence.
_REVIEW_STATUS = {
    "needs_response": "under_review",
    "warning_needs_response": "warning_under_review",
}
_CLOSED = ("won", "lost", "warning_closed")
_SUBMISSION_METHODS = ("manual", "prefer_manual", "prefer_smart_disputes", "smart_disputes")


def open_dispute(op: Operation, charge: StripeObject, test: TestDispute) -> StripeObject:
    """Open the dispute a test card triggers on ``charge`` (funds withdrawn unless an inquiry)."""
    inquiry = test.status == "warning_needs_response"
    dispute_id = new_id("dp")
    withdrawals = []
    if not inquiry:
        withdrawals.append(
            balance_transaction(
                op,
                amount=-charge["amount"],
                currency=charge["currency"],
                source=dispute_id,
                type="adjustment",
                reporting_category="dispute",
                description=f"Chargeback withdrawal for {charge['id']}",
                fee=DISPUTE_FEE,
            )
        )
    brand = charge["payment_method_details"]["card"]["brand"]
    dispute: StripeObject = {
        "id": dispute_id,
        "object": "dispute",
        "amount": charge["amount"],
        "balance_transactions": withdrawals,
        "charge": charge["id"],
        "created": op.now,
        "currency": charge["currency"],
        "enhanced_eligibility_types": [],
        "evidence": {**dict.fromkeys(EVIDENCE_FIELDS), "enhanced_evidence": {}},
        "evidence_details": {
            "due_by": op.now + _RESPONSE_WINDOW,
            "enhanced_eligibility": {},
            "has_evidence": False,
            "past_due": False,
            "submission_count": 0,
            "submission_method": "not_submitted",
        },
        "intended_submission_method": None,
        "is_charge_refundable": inquiry,
        "livemode": False,
        "metadata": {},
        "network_reason_code": test.network_reason_code,
        "payment_intent": charge["payment_intent"],
        "payment_method_details": {
            "card": {
                "brand": brand,
                "case_type": "inquiry" if inquiry else "chargeback",
                "network": brand,
                "network_reason_code": test.network_reason_code,
            },
            "type": "card",
        },
        "reason": test.reason,
        "status": test.status,
    }
    op.tx.insert(dispute)
    charge["disputed"] = True
    op.tx.update(charge)
    op.emit("charge.dispute.created", dispute)
    if withdrawals:
        op.emit("charge.dispute.funds_withdrawn", dispute)
    return dispute


def update_dispute(op: Operation, params: Params, object_id: str) -> StripeObject:
    """``POST /v1/disputes/{id}``: stage or submit evidence and update metadata.

    As in Stripe, ``submit`` defaults to true when evidence is sent; a metadata-only update
    submits nothing.
    """
    params.reject_unknown(("evidence", "metadata", "submit", "intended_submission_method"))
    dispute = op.require("dispute", object_id)
    evidence = params.hash("evidence", allowed=EVIDENCE_FIELDS)
    submit = params.boolean("submit")
    if submit is None:
        submit = evidence is not None
    intended = params.string("intended_submission_method", choices=_SUBMISSION_METHODS)
    if evidence is not None or submit or intended is not None:
        _require_open(dispute, "evidence can no longer be updated or submitted", "evidence")
    before = copy.deepcopy(dispute)
    if evidence is not None:
        _stage_evidence(dispute, evidence)
    params.apply_metadata(dispute["metadata"])
    if intended is not None:
        dispute["intended_submission_method"] = intended
    if submit:
        details = dispute["evidence_details"]
        details["submission_count"] += 1
        details["submission_method"] = "manual"
        details["past_due"] = op.now > details["due_by"]
        dispute["status"] = _REVIEW_STATUS[dispute["status"]]
        op.tx.schedule_review(dispute["id"], time.time() + op.config.dispute_review_seconds)
    op.tx.update(dispute)
    previous = {key: value for key, value in before.items() if dispute[key] != value}
    if previous:
        op.emit("charge.dispute.updated", dispute, previous)
    return dispute


def close_dispute(op: Operation, params: Params, object_id: str) -> StripeObject:
    """``POST /v1/disputes/{id}/close``: accept the dispute (``lost``; inquiries ``warning_closed``)."""
    params.reject_unknown(())
    dispute = op.require("dispute", object_id)
    _require_open(dispute, "it cannot be closed", None)
    previous = {"status": dispute["status"]}
    dispute["status"] = "lost" if dispute["status"] == "needs_response" else "warning_closed"
    op.tx.update(dispute)
    op.emit("charge.dispute.closed", dispute, previous)
    return dispute


def force_resolve_dispute(op: Operation, params: Params, object_id: str) -> StripeObject:
    """``POST /_sandbox/disputes/{id}/resolve``: decide a dispute now.

    ``outcome`` (``won`` or ``lost``) defaults to what the submitted evidence asks for.
    """
    params.reject_unknown(("outcome",))
    outcome = params.string("outcome", choices=("won", "lost"))
    dispute = op.require("dispute", object_id)
    if dispute["status"] in _CLOSED:
        raise invalid_request(
            f"This dispute is already closed (status {dispute['status']}); it cannot be resolved again."
        )
    outcome = outcome or _evidence_outcome(dispute)
    if outcome is None:
        raise invalid_request(
            "Pass outcome=won or outcome=lost, or first submit evidence whose "
            "uncategorized_text contains winning_evidence or losing_evidence.",
            param="outcome",
        )
    _resolve(op, dispute, outcome)
    return dispute


def resolve_due_disputes(sandbox: Sandbox) -> None:
    """Decide submitted disputes whose review delay has passed, from their test evidence.

    Evidence without ``winning_evidence`` or ``losing_evidence`` stays ``under_review``
    until forced with ``/_sandbox/disputes/{id}/resolve``.
    """
    now = time.time()
    with sandbox.store.transaction(write=False) as tx:
        if not tx.due_reviews(now):
            return
    with sandbox.operation() as op:
        for dispute_id in op.tx.due_reviews(now):
            op.tx.cancel_review(dispute_id)
            dispute = op.tx.get(dispute_id, "dispute")
            if dispute is None or dispute["status"] not in _REVIEW_STATUS.values():
                continue
            outcome = _evidence_outcome(dispute)
            if outcome is not None:
                _resolve(op, dispute, outcome)


def _require_open(dispute: StripeObject, consequence: str, param: str | None) -> None:
    status = dispute["status"]
    if status in _REVIEW_STATUS:
        return
    state = "already closed" if status in _CLOSED else "under review"
    raise invalid_request(
        f"This dispute is {state} (status {status}), so {consequence}.", param=param
    )


def _stage_evidence(dispute: StripeObject, evidence: Params) -> None:
    staged: dict[str, Any] = dispute["evidence"]
    for name in evidence.data:
        staged[name] = evidence.string(name, max_length=_EVIDENCE_LIMIT)
    total = sum(len(staged[name] or "") for name in EVIDENCE_FIELDS)
    if total > _EVIDENCE_LIMIT:
        raise invalid_request(
            f"The combined length of all evidence fields is {total} characters; "
            f"the limit is {_EVIDENCE_LIMIT}.",
            param="evidence",
        )
    dispute["evidence_details"]["has_evidence"] = any(staged[name] for name in EVIDENCE_FIELDS)


def _evidence_outcome(dispute: StripeObject) -> str | None:
    text = dispute["evidence"]["uncategorized_text"] or ""
    if "winning_evidence" in text:
        return "won"
    if "losing_evidence" in text:
        return "lost"
    return None


def _resolve(op: Operation, dispute: StripeObject, outcome: str) -> None:
    previous: dict[str, Any] = {"status": dispute["status"]}
    inquiry = dispute["status"].startswith("warning_")
    if inquiry:
        # An inquiry decided for the merchant just closes; one decided against is lost.
        dispute["status"] = "warning_closed" if outcome == "won" else "lost"
    else:
        dispute["status"] = outcome
    reinstated = not inquiry and outcome == "won"
    if reinstated:
        previous["balance_transactions"] = copy.deepcopy(dispute["balance_transactions"])
        dispute["balance_transactions"].append(
            balance_transaction(
                op,
                amount=dispute["amount"],
                currency=dispute["currency"],
                source=dispute["id"],
                type="adjustment",
                reporting_category="dispute_reversal",
                description=f"Chargeback reversal for {dispute['charge']}",
                fee=-DISPUTE_FEE,
            )
        )
    op.tx.cancel_review(dispute["id"])
    op.tx.update(dispute)
    if reinstated:
        op.emit("charge.dispute.funds_reinstated", dispute)
    op.emit("charge.dispute.closed", dispute, previous)
