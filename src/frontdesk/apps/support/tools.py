"""The support desk's tools. Each reads and writes the support database of the runtime
driving it (see :mod:`._db`).

Bad input (an unknown invoice, customer or region, a bad priority) comes back as a result
with an ``error`` key, so the agent can tell the customer instead of the run failing.
"""

from __future__ import annotations

import json
import re
from typing import Any

from agents import function_tool

from ...tools import current_tool_call_or_none, tool
from .._appdb import AppConnection, Row
from ._db import connect, now

PRIORITIES = ("low", "normal", "high", "urgent")
MAX_TEXT = 2000
REFUND_LIMIT = 200.0
"""The largest amount :func:`process_refund` refunds; larger ones go to a human."""


def normalize_id(value: str, prefix: str) -> str:
    """``" inv8821 "`` -> ``"INV-8821"``; other shapes are only stripped and upper-cased."""
    text = value.strip().upper()
    match = re.fullmatch(rf"{prefix}[-_ ]?(\d+)", text)
    return f"{prefix}-{match.group(1)}" if match else text


def normalize_region(value: str) -> str:
    """``"EU West"`` -> ``"eu-west"``."""
    return re.sub(r"[\s_]+", "-", value.strip().lower())


def _error(message: str, **extra: Any) -> dict[str, Any]:
    return {"error": message, **extra}


def _customer_row(conn: AppConnection, customer_id: str) -> Row | None:
    return conn.execute("SELECT * FROM customers WHERE customer_id = ?", (customer_id,)).fetchone()


def _call_identity() -> tuple[str | None, str | None]:
    """The idempotency key and execution id of the current runtime tool call, if any."""
    call = current_tool_call_or_none()
    return (call.idempotency_key, call.execution_id) if call is not None else (None, None)


def _replayed(conn: AppConnection, table: str, key: str | None) -> Row | None:
    """The row an earlier attempt of this same tool call wrote (same idempotency key)."""
    if key is None:
        return None
    return conn.execute(f"SELECT * FROM {table} WHERE idempotency_key = ?", (key,)).fetchone()


def _next_number(conn: AppConnection, table: str) -> int:
    # Safe inside a write transaction: no other writer can take the same number meanwhile.
    row = conn.execute(f"SELECT COALESCE(MAX(id), 0) + 1 FROM {table}").one()
    return int(row[0])


def _mask_email(email: str) -> str:
    user, _, domain = email.partition("@")
    return f"{user[:1]}{'*' * max(len(user) - 1, 1)}@{domain}"


def _invoice(conn: AppConnection, invoice_id: str) -> dict[str, Any] | None:
    row = conn.execute("SELECT * FROM invoices WHERE invoice_id = ?", (invoice_id,)).fetchone()
    if row is None:
        return None
    lines = conn.execute(
        "SELECT description, amount FROM invoice_lines WHERE invoice_id = ? ORDER BY line_no",
        (invoice_id,),
    ).fetchall()
    charges = conn.execute(
        "SELECT charge_id, description, amount, charged_at FROM charges"
        " WHERE invoice_id = ? ORDER BY charged_at, charge_id",
        (invoice_id,),
    ).fetchall()
    refund = conn.execute(
        "SELECT refund_id, amount, reason, created_at FROM refunds WHERE invoice_id = ?",
        (invoice_id,),
    ).fetchone()
    counts: dict[tuple[str, float], int] = {}
    for charge in charges:
        key = (charge["description"], charge["amount"])
        counts[key] = counts.get(key, 0) + 1
    duplicates = [
        {"description": desc, "amount": amount, "times_charged": n}
        for (desc, amount), n in counts.items()
        if n > 1
    ]
    return {
        "invoice_id": row["invoice_id"],
        "customer_id": row["customer_id"],
        "status": row["status"],
        "currency": row["currency"],
        "issued_at": row["issued_at"],
        "period": f"{row['period_start']} to {row['period_end']}",
        "amount": round(sum(line["amount"] for line in lines), 2),
        "amount_charged": round(sum(c["amount"] for c in charges), 2),
        "line_items": [dict(line) for line in lines],
        "charges": [dict(charge) for charge in charges],
        "duplicate_charges": duplicates,
        "refund": dict(refund) if refund is not None else None,
    }


@function_tool
def get_account(customer_id: str) -> dict[str, Any]:
    """Look up a customer's account: plan, billing status, usage."""
    cid = normalize_id(customer_id, "CUST")
    with connect() as conn:
        row = _customer_row(conn, cid)
    if row is None:
        return _error(f"customer {cid or customer_id!r} not found")
    return {
        "customer_id": row["customer_id"],
        "name": row["name"],
        "email": row["email"],
        "plan": row["plan"],
        "monthly_price": row["monthly_price"],
        "billing_status": row["billing_status"],
        "region": row["region"],
        "customer_since": row["created_at"],
        "usage": {
            "api_calls_month": row["api_calls_month"],
            "api_calls_limit": row["api_calls_limit"],
            "seats_used": row["seats_used"],
            "seats_limit": row["seats_limit"],
            "storage_gb": row["storage_gb"],
        },
        "verification": {"phone_last4": row["phone_last4"], "postal_code": row["postal_code"]},
    }


@function_tool
def get_invoice(invoice_id: str) -> dict[str, Any]:
    """Fetch an invoice by ID."""
    iid = normalize_id(invoice_id, "INV")
    with connect() as conn:
        invoice = _invoice(conn, iid)
    return invoice if invoice is not None else _error(f"invoice {iid or invoice_id!r} not found")


def _refund_result(row: Row, invoice: dict[str, Any]) -> dict[str, Any]:
    return {
        "refund_id": row["refund_id"],
        "invoice_id": row["invoice_id"],
        "customer_id": invoice["customer_id"],
        "amount": row["amount"],
        "invoice_amount": invoice["amount"],
        "partial": row["amount"] < invoice["amount"],
        "currency": invoice["currency"],
        "reason": row["reason"],
        "status": "succeeded",
        "created_at": row["created_at"],
    }


@tool(approval_required=True)
def process_refund(invoice_id: str, reason: str, amount: float | None = None) -> dict[str, Any]:
    """Refund an invoice: in full, or ``amount`` of it (a partial refund).

    Args:
        invoice_id: The invoice to refund, e.g. INV-1234.
        reason: Why it is refunded.
        amount: How much to refund, at most the invoice's amount; leave it out for all of it.
    """
    iid = normalize_id(invoice_id, "INV")
    reason = reason.strip()[:MAX_TEXT]
    if not reason:
        return _error("a reason is required to refund an invoice")
    if amount is not None and not amount > 0:
        return _error(f"a refund amount must be more than zero, got {amount}", refunded=False)
    key, execution_id = _call_identity()
    with connect() as conn, conn.transaction():
        invoice = _invoice(conn, iid)
        if invoice is None:
            return _error(f"invoice {iid or invoice_id!r} not found")
        replay = _replayed(conn, "refunds", key)
        if replay is not None:
            return _refund_result(replay, invoice)
        if invoice["refund"] is not None:
            original = invoice["refund"]
            return {
                "refunded": False,
                "already_refunded": True,
                "invoice_id": iid,
                "refund_id": original["refund_id"],
                "amount": original["amount"],
                "refunded_at": original["created_at"],
                "message": f"invoice {iid} was already refunded on {original['created_at']}"
                f" (refund {original['refund_id']})",
            }
        if invoice["status"] != "paid":
            return _error(
                f"invoice {iid} is {invoice['status']}; only paid invoices can be refunded",
                refunded=False,
            )
        refund = invoice["amount"] if amount is None else round(amount, 2)
        if refund > invoice["amount"]:
            return _error(
                f"invoice {iid} is for ${invoice['amount']:,.2f}; a refund of ${refund:,.2f} "
                "would be more than was billed; nothing was refunded",
                refunded=False,
            )
        if refund > REFUND_LIMIT:
            subject = (
                f"invoice {iid} is for ${refund:,.2f},"
                if refund == invoice["amount"]
                else f"a refund of ${refund:,.2f} on invoice {iid} is"
            )
            return _error(
                f"{subject} over the ${REFUND_LIMIT:,.2f}"
                " limit for automatic refunds; nothing was refunded: escalate it to a human"
                " (escalate_to_human) instead",
                refunded=False,
            )
        refund_id = f"RF-{10000 + _next_number(conn, 'refunds')}"
        conn.execute(
            "INSERT INTO refunds (refund_id, invoice_id, amount, reason, created_at,"
            " idempotency_key, execution_id) VALUES (?,?,?,?,?,?,?)",
            (refund_id, iid, refund, reason, now(), key, execution_id),
        )
        conn.execute("UPDATE invoices SET status = 'refunded' WHERE invoice_id = ?", (iid,))
        row = conn.execute("SELECT * FROM refunds WHERE refund_id = ?", (refund_id,)).one()
    return _refund_result(row, invoice)


@function_tool
def get_ticket_history(customer_id: str) -> list[dict[str, Any]]:
    """Get the last 5 support tickets for a customer."""
    cid = normalize_id(customer_id, "CUST")
    with connect() as conn:
        if _customer_row(conn, cid) is None:
            return [_error(f"customer {cid or customer_id!r} not found")]
        rows = conn.execute(
            "SELECT ticket_id, subject, category, status, priority, created_at FROM tickets"
            " WHERE customer_id = ? ORDER BY created_at DESC, ticket_id DESC LIMIT 5",
            (cid,),
        ).fetchall()
    return [dict(row) for row in rows]


@function_tool
def reset_password(customer_id: str) -> dict[str, Any]:
    """Send a password reset email to the customer."""
    cid = normalize_id(customer_id, "CUST")
    key, _ = _call_identity()
    with connect() as conn, conn.transaction():
        customer = _customer_row(conn, cid)
        if customer is None:
            return _error(f"customer {cid or customer_id!r} not found")
        row = _replayed(conn, "password_resets", key)
        if row is None:
            reset_id = f"PR-{1000 + _next_number(conn, 'password_resets')}"
            conn.execute(
                "INSERT INTO password_resets (reset_id, customer_id, email, requested_at,"
                " idempotency_key) VALUES (?,?,?,?,?)",
                (reset_id, cid, customer["email"], now(), key),
            )
            row = conn.execute(
                "SELECT * FROM password_resets WHERE reset_id = ?", (reset_id,)
            ).one()
    return {
        "reset_id": row["reset_id"],
        "customer_id": cid,
        "sent_to": _mask_email(row["email"]),
        "status": "sent",
        "requested_at": row["requested_at"],
    }


@function_tool
def check_service_status(region: str) -> dict[str, Any]:
    """Check current service health for a region."""
    name = normalize_region(region)
    with connect() as conn:
        row = conn.execute("SELECT * FROM service_status WHERE region = ?", (name,)).fetchone()
        known = [r[0] for r in conn.execute("SELECT region FROM service_status ORDER BY region")]
    if row is None:
        return _error(f"region {name or region!r} not found", known_regions=known)
    return {
        "region": row["region"],
        "status": row["status"],
        "summary": row["summary"],
        "components": json.loads(row["components"]),
        "updated_at": row["updated_at"],
    }


@function_tool
def escalate_to_human(ticket_id: str, reason: str, priority: str) -> dict[str, Any]:
    """Escalate this ticket to a human agent."""
    ticket = ticket_id.strip().upper()[:64]
    reason = reason.strip()[:MAX_TEXT]
    level = priority.strip().lower()
    if not ticket:
        return _error("a ticket id is required")
    if not reason:
        return _error("a reason is required")
    if level not in PRIORITIES:
        return _error(f"priority {priority!r} is not one of {', '.join(PRIORITIES)}")
    key, execution_id = _call_identity()
    with connect() as conn, conn.transaction():
        row = _replayed(conn, "escalations", key)
        if row is None:
            known = conn.execute(
                "SELECT customer_id FROM tickets WHERE ticket_id = ?", (ticket,)
            ).fetchone()
            # A new conversation's ticket id may name the customer (e.g. "NEW-CUST-1008").
            named = re.search(r"CUST-\d+", ticket)
            customer = known["customer_id"] if known else (named.group(0) if named else None)
            escalation_id = f"ESC-{1000 + _next_number(conn, 'escalations')}"
            conn.execute(
                "INSERT INTO escalations (escalation_id, ticket_id, customer_id, reason, priority,"
                " created_at, idempotency_key, execution_id) VALUES (?,?,?,?,?,?,?,?)",
                (
                    escalation_id,
                    ticket,
                    customer,
                    reason,
                    level,
                    now(),
                    key,
                    execution_id,
                ),
            )
            if known is not None:
                conn.execute(
                    "UPDATE tickets SET status = 'escalated' WHERE ticket_id = ?", (ticket,)
                )
            row = conn.execute(
                "SELECT * FROM escalations WHERE escalation_id = ?", (escalation_id,)
            ).one()
    return {
        "escalation_id": row["escalation_id"],
        "ticket_id": row["ticket_id"],
        "priority": row["priority"],
        "reason": row["reason"],
        "status": row["status"],
        "created_at": row["created_at"],
    }
