"""Offline decision rules for the dispute agents (see :mod:`frontdesk.models.rules`).

They follow the agents' instructions. Triage reads the order id from the payment intent's
metadata, looks the order up, and hands a shipped or delivered order to the investigator and
any other to acceptance. Acceptance closes the dispute and answers in its exact format. The
investigator gathers the customer's emails and calls, stages the evidence, requests the
submission (a separate run that a person approves) and reports. The submission run submits. The input is the JSON ``relevant_data``
built by :func:`frontdesk.apps.disputes.process_dispute`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from ...models.rules import Call, Conversation, FromJSON, FromResult, Parallel, Reply, Route, Rules
from ._stripe import error_message, format_amount
from .agents import accept_dispute_agent, investigator_agent

SHIPPED = ("shipped", "delivered")
"""Fulfilment statuses that mean the goods left the warehouse."""
REFUSAL_WORDS = ("final sale", "unable to refund", "no refunds", "don't accept refunds")


def _dispute(c: Conversation) -> dict[str, Any]:
    data = c.json_message()
    return data if isinstance(data, dict) else {}


def _ok(value: Any) -> dict[str, Any] | None:
    return value if isinstance(value, dict) and error_message(value) is None else None


def _order(c: Conversation) -> dict[str, Any] | None:
    order = c.result("get_order")
    return order if isinstance(order, dict) else None


def _amount(c: Conversation) -> str:
    currency = None
    for source in (c.result("close_dispute"), c.result("retrieve_payment_intent")):
        if _ok(source) and source.get("currency"):
            currency = source["currency"]
            break
    return format_amount(_dispute(c).get("amount"), currency)


def order_shipped(c: Conversation) -> bool:
    """The order has shipped or been delivered."""
    order = _order(c)
    return order is not None and order.get("fulfillment_details") in SHIPPED


def order_not_shipped(c: Conversation) -> bool:
    """The order was found and has not shipped."""
    order = _order(c)
    return order is not None and order.get("fulfillment_details") not in SHIPPED


def triage_problem(c: Conversation) -> str | None:
    """Why triage cannot route the dispute, when a lookup failed."""
    dispute = _dispute(c)
    pending = f"Dispute {dispute.get('dispute_id', '(unknown)')} needs a person to review it."
    intent = c.result("retrieve_payment_intent")
    problem = error_message(intent)
    if problem is not None:
        return f"I could not retrieve payment intent {dispute.get('payment_intent')}: {problem}. {pending}"
    if _ok(intent) is None:
        return None
    order_id = (intent.get("metadata") or {}).get("order_id")
    if not order_id:
        return (
            f"Payment intent {intent['id']} has no order_id in its metadata, so I cannot find "
            f"the order. {pending}"
        )
    order = c.result("get_order")
    if isinstance(order, str):
        return f"Order {order_id} (from payment intent {intent['id']}): {order}. {pending}"
    return None


# --- acceptance ------------------------------------------------------------------------------


def _fulfilment(order: dict[str, Any] | None) -> str:
    if order is None:
        return "unknown"
    status = str(order.get("fulfillment_details"))
    detail = order.get("delivery_status")
    return f"{status} ({detail})" if detail else status


def _closing_reason(c: Conversation) -> str:
    dispute, order = _dispute(c), _order(c) or {}
    result = c.result("close_dispute")
    unshipped = (
        f"Order {order.get('order_id')} was never shipped "
        f"(fulfillment status: {_fulfilment(order)}), so there is no proof of delivery to "
        f"contest the {dispute.get('reason', 'customer')} claim with."
    )
    closed = _ok(result)
    if closed is not None:
        return (
            f"{unshipped} Accepting it is the right outcome for the customer; the dispute "
            f"is closed and Stripe now shows it as {closed.get('status')}."
        )
    message = error_message(result)
    if isinstance(result, dict) and result.get("already_closed"):
        return (
            f"{unshipped} The dispute was already closed (status {result.get('status')}), so "
            f"nothing was changed. Stripe said: {message}"
        )
    return (
        f"{unshipped} Closing it failed, so it is still open for a person. Stripe said: {message}"
    )


def acceptance_text(c: Conversation) -> str | None:
    """The Accept Dispute Agent's answer in its exact format, once the close was tried."""
    if c.result("close_dispute") is None:
        return None
    dispute = _dispute(c)
    return (
        "Dispute Details:\n"
        f"- Dispute ID: {dispute.get('dispute_id')}\n"
        f"- Amount: {_amount(c)}\n"
        f"- Reason for Dispute: {dispute.get('reason')}\n\n"
        "Order Details:\n"
        f"- Fulfillment status of the order: {_fulfilment(_order(c))}\n\n"
        "Reasoning for closing the dispute:\n"
        f"{_closing_reason(c)}"
    )


# --- investigation ---------------------------------------------------------------------------


def records_gathered(c: Conversation) -> bool:
    """The emails and calls of every contact on the order were looked up."""
    order = _order(c)
    if order is None:
        return False
    needed = (("customer_email", "get_emails"), ("customer_phone", "get_phone_logs"))
    return all(not order.get(field) or c.result(tool) is not None for field, tool in needed)


def _records(c: Conversation) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    emails, calls = c.result("get_emails"), c.result("get_phone_logs")
    return (emails if isinstance(emails, list) else []), (calls if isinstance(calls, list) else [])


def _due(timestamp: Any) -> str:
    if not isinstance(timestamp, int | float):
        return "unknown"
    return datetime.fromtimestamp(timestamp, tz=UTC).strftime("%Y-%m-%d %H:%M UTC")


def _record_lines(c: Conversation, order: dict[str, Any]) -> list[str]:
    emails, calls = _records(c)
    lines = [f'- Email from {e["email"]}, subject "{e["subject"]}":\n  {e["body"]}' for e in emails]
    lines += [
        f"- Phone call with {p['phone_number']} on {p['timestamp']} "
        f"({p['duration_minutes']} minutes): {p['notes']}"
        for p in calls
    ]
    if not emails:
        email = order.get("customer_email")
        lines.append(f"- No emails from {email}" if email else "- No email address on the order")
    if not calls:
        phone = order.get("customer_phone")
        lines.append(
            f"- No phone calls with {phone}" if phone else "- No phone number on the order"
        )
    return lines


def investigation_body(c: Conversation) -> str:
    """The compiled dispute, payment, order and communication details."""
    dispute, order = _dispute(c), _order(c) or {}
    intent = _ok(c.result("retrieve_payment_intent")) or {}
    tracking = order.get("tracking_info") or {}
    carrier = f"{tracking['carrier']} {tracking['tracking_number']}" if tracking else "none"
    if tracking.get("delivery_status"):
        carrier += f" ({tracking['delivery_status']})"
    tos = order.get("tos_acceptance")
    accepted = (
        f"accepted on {tos['date']} from IP {tos['ip']}" if tos else "no record of acceptance"
    )
    return "\n".join(
        [
            "Dispute Details:",
            f"- Dispute ID: {dispute.get('dispute_id')}",
            f"- Amount: {_amount(c)}",
            f"- Reason for Dispute: {dispute.get('reason')}",
            f"- Card Brand: {dispute.get('card_brand')}",
            f"- Evidence due by: {_due(dispute.get('due_by'))}",
            "",
            "Payment & Order Details:",
            f"- Payment intent: {intent.get('id', dispute.get('payment_intent'))}"
            f" ({intent.get('status', 'unknown status')})",
            f"- Order: {order.get('order_id')}, placed {order.get('order_date', 'on an unknown date')}",
            f"- Fulfillment status of the order: {_fulfilment(order)}",
            f"- Shipping carrier and tracking number: {carrier}",
            f"- Confirmation of TOS acceptance: {accepted}",
            "",
            "Email and Phone Records:",
            *_record_lines(c, order),
        ]
    )


def _refusal(c: Conversation) -> str | None:
    emails, calls = _records(c)
    told = [
        f"phone call on {p['timestamp']}: {p['notes']}"
        for p in calls
        if any(word in p["notes"].lower() for word in REFUSAL_WORDS)
    ]
    told += [
        f'email "{e["subject"]}": {e["body"]}'
        for e in emails
        if any(word in e["body"].lower() for word in REFUSAL_WORDS)
    ]
    return "The customer knew the order was not refundable: " + "; ".join(told) if told else None


def evidence_args(c: Conversation) -> dict[str, Any] | None:
    """The arguments of ``stage_dispute_evidence``: the report plus the fields it supports."""
    order = _order(c)
    if order is None:
        return None
    tracking = order.get("tracking_info") or {}
    tos = order.get("tos_acceptance") or {}
    address = order.get("shipping_address") or {}
    evidence = {
        "uncategorized_text": investigation_body(c),
        "shipping_carrier": tracking.get("carrier"),
        "shipping_tracking_number": tracking.get("tracking_number"),
        "shipping_date": order.get("shipping_date"),
        "shipping_address": f"ZIP {address['zip']}" if address.get("zip") else None,
        "customer_email_address": order.get("customer_email"),
        "customer_name": order.get("customer_name"),
        "customer_purchase_ip": tos.get("ip"),
        "refund_policy_disclosure": (
            f"The customer accepted the terms of service, including the refund policy, on "
            f"{tos['date']} from IP {tos['ip']}."
            if tos
            else None
        ),
        "refund_refusal_explanation": _refusal(c),
    }
    return {
        "dispute_id": _dispute(c).get("dispute_id"),
        "evidence": {key: value for key, value in evidence.items() if value},
    }


def evidence_staged(c: Conversation) -> bool:
    """The evidence is on the dispute, so the submission can be asked for."""
    return _ok(c.result("stage_dispute_evidence")) is not None


def _evidence_lines(c: Conversation) -> list[str]:
    staged = c.result("stage_dispute_evidence")
    if _ok(staged) is None:
        return [f"- Not staged. Stripe said: {error_message(staged)}"]
    fields = sorted(k for k, v in (staged.get("evidence") or {}).items() if v)
    lines = [
        f"- Staged on {staged['id']}, not submitted (the dispute is {staged.get('status')}): "
        + ", ".join(fields)
    ]
    request = c.result("request_evidence_submission")
    if _ok(request) is not None:
        lines.append(
            f"- Submission requested: {request['execution_id']} waits for a person's approval "
            f"(frontdesk approvals approve {request['execution_id']})"
        )
    elif isinstance(request, dict):
        lines.append(f"- Submission not requested: {error_message(request)}")
    return lines


def investigation_report(c: Conversation) -> str | None:
    """The investigator's final output: the compiled details and what happened to the evidence."""
    if not records_gathered(c) or c.result("stage_dispute_evidence") is None:
        return None
    return "\n".join([investigation_body(c), "", "Evidence:", *_evidence_lines(c)])


TRIAGE_RULES = Rules(
    [
        Call("retrieve_payment_intent", {"payment_intent_id": FromJSON("payment_intent")}),
        Call("get_order", {"order_id": FromResult("retrieve_payment_intent", "metadata.order_id")}),
        Route(investigator_agent.name, when=order_shipped),
        Route(accept_dispute_agent.name, when=order_not_shipped),
        Reply(triage_problem),
    ],
    fallback="I need the dispute as JSON with its payment_intent and dispute_id to triage it.",
)

ACCEPT_RULES = Rules(
    [
        Call("close_dispute", {"dispute_id": FromJSON("dispute_id")}),
        Reply(acceptance_text),
    ],
    fallback="I need the dispute's id to close it.",
)

INVESTIGATOR_RULES = Rules(
    [
        Parallel(
            Call("get_emails", {"email": FromResult("get_order", "customer_email")}),
            Call("get_phone_logs", {"phone_number": FromResult("get_order", "customer_phone")}),
        ),
        Call("stage_dispute_evidence", evidence_args, when=records_gathered),
        Call(
            "request_evidence_submission",
            {"dispute_id": FromJSON("dispute_id")},
            when=evidence_staged,
        ),
        Reply(investigation_report),
    ],
    fallback="I need the order's details from triage to investigate this dispute.",
)

SUBMISSION_RULES = Rules(
    [Call("submit_dispute_evidence", {"dispute_id": FromJSON("dispute_id")})],
    fallback="I need the dispute as JSON with its dispute_id to submit its evidence.",
)
