"""The dispute agents' tools: the merchant's records in SQLite, and Stripe.

Stripe writes pass the tool call's idempotency key, so a call that runs again after a crash
is performed once by Stripe. A Stripe error comes back as a result carrying Stripe's message
(``{"error": {"message": ...}}``), so the agent can say what went wrong.
"""

from __future__ import annotations

import logging
from typing import Any

import stripe
from agents import function_tool
from pydantic import BaseModel, ConfigDict, Field
from stripe.params import DisputeUpdateParams

from ...tools import tool
from ._db import emails_from, find_order, phone_logs_for
from ._stripe import error_result, stripe_client, write_options

logger = logging.getLogger(__name__)

CLOSED_STATUSES = ("won", "lost", "warning_closed")
"""Dispute statuses after which nothing can change."""
OPEN_STATUSES = ("needs_response", "warning_needs_response")
"""Statuses in which a dispute still waits for the merchant's answer."""
NO_ORDER = "No order found"


class DisputeEvidence(BaseModel):
    """Evidence for a dispute, in Stripe's text evidence fields (leave unknown ones null).

    Stripe takes customer communications as a file upload, so emails and call notes go in
    ``uncategorized_text``.
    """

    model_config = ConfigDict(extra="forbid")

    uncategorized_text: str | None = Field(
        None, description="The investigation report, with the customer's emails and phone logs."
    )
    shipping_carrier: str | None = Field(None, description="Carrier that delivered the order.")
    shipping_tracking_number: str | None = Field(None, description="The carrier's tracking number.")
    shipping_date: str | None = Field(None, description="When the order shipped (YYYY-MM-DD).")
    shipping_address: str | None = Field(None, description="Where the order was delivered.")
    customer_email_address: str | None = Field(None, description="The customer's email address.")
    customer_name: str | None = Field(None, description="The customer's name.")
    customer_purchase_ip: str | None = Field(
        None, description="IP address the customer purchased or accepted the terms from."
    )
    refund_policy_disclosure: str | None = Field(
        None, description="How and when the customer was shown the refund policy."
    )
    refund_refusal_explanation: str | None = Field(
        None, description="Why the customer is not entitled to a refund."
    )
    product_description: str | None = Field(None, description="What the customer bought.")

    def fields(self) -> dict[str, str]:
        """The evidence fields that have a value."""
        return {k: v for k, v in self.model_dump().items() if v is not None and v.strip()}


@function_tool
def get_phone_logs(phone_number: str) -> list[dict[str, Any]]:
    """
    Return a list of phone call records for the given phone number.
    Each record might include call timestamps, durations, notes,
    and an associated order_id if applicable.
    """
    return [log.model_dump() for log in phone_logs_for(phone_number)]


@function_tool
def get_order(order_id: int) -> dict[str, Any] | str:
    """
    Retrieve an order by ID from the orders database.
    Returns the corresponding order object or 'No order found'.
    """
    order = find_order(order_id)
    return order.record() if order is not None else NO_ORDER


@function_tool
def get_emails(email: str) -> list[dict[str, Any]]:
    """
    Return a list of email records for the given email address.
    """
    return [message.model_dump() for message in emails_from(email)]


@function_tool
def retrieve_payment_intent(payment_intent_id: str) -> dict[str, Any]:
    """
    Retrieve a Stripe payment intent by ID.
    Returns the payment intent object on success or Stripe's error on failure.
    """
    try:
        intent = stripe_client().v1.payment_intents.retrieve(payment_intent_id.strip())
    except stripe.StripeError as exc:
        return error_result(exc)
    return intent.to_dict()


@function_tool
def close_dispute(dispute_id: str) -> dict[str, Any]:
    """
    Close a Stripe dispute by ID.
    Returns the dispute object on success or Stripe's error on failure.
    """
    client = stripe_client()
    dispute_id = dispute_id.strip()
    try:
        dispute = client.v1.disputes.close(dispute_id, options=write_options())
    except stripe.StripeError as exc:
        return _with_closed_status(client, dispute_id, error_result(exc))
    _note_replay(dispute, "close", dispute_id)
    return dispute.to_dict()


@function_tool
def stage_dispute_evidence(dispute_id: str, evidence: DisputeEvidence) -> dict[str, Any]:
    """
    Stage evidence on a Stripe dispute without submitting it (it can still be changed).
    Returns the dispute object on success or Stripe's error on failure.
    """
    fields = evidence.fields()
    if not fields:
        return {"error": {"message": "No evidence was given; nothing was staged."}}
    try:
        dispute = stripe_client().v1.disputes.update(
            dispute_id.strip(),
            params=DisputeUpdateParams(evidence=fields, submit=False),  # type: ignore[typeddict-item]
            options=write_options(),
        )
    except stripe.StripeError as exc:
        return error_result(exc)
    _note_replay(dispute, "stage evidence on", dispute_id)
    return dispute.to_dict()


@tool(approval_required=True)
def submit_dispute_evidence(dispute_id: str) -> dict[str, Any]:
    """
    Submit the evidence staged on a Stripe dispute to the card issuer. A submission is final:
    the evidence can no longer be changed. Needs a human's approval.
    Returns the dispute object on success or Stripe's error on failure.
    """
    client = stripe_client()
    dispute_id = dispute_id.strip()
    try:
        staged = client.v1.disputes.retrieve(dispute_id)
        if not staged.evidence_details.has_evidence:
            return {"error": {"message": f"No evidence is staged on {dispute_id}; stage it first."}}
        dispute = client.v1.disputes.update(
            dispute_id,
            params={"submit": True},
            options=write_options(),
        )
    except stripe.StripeError as exc:
        return error_result(exc)
    _note_replay(dispute, "submit evidence on", dispute_id)
    return dispute.to_dict()


def _with_closed_status(
    client: stripe.StripeClient, dispute_id: str, result: dict[str, Any]
) -> dict[str, Any]:
    """Say so when a close failed because the dispute was already closed."""
    try:
        status = client.v1.disputes.retrieve(dispute_id).status
    except stripe.StripeError:
        return result
    if status in CLOSED_STATUSES:
        result.update(already_closed=True, status=status)
    return result


def _note_replay(obj: stripe.StripeObject, action: str, dispute_id: str) -> None:
    response = obj.last_response
    if response is not None and response.headers.get("Idempotent-Replayed") == "true":
        logger.info(
            "Stripe replayed its earlier answer to the request to %s %s", action, dispute_id
        )
