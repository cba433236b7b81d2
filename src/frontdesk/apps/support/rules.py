"""Offline decision rules for the support desk (see :mod:`frontdesk.models.rules`).

They follow the agents' instructions: triage routes by keywords; billing looks up the invoice
and account, refunds only a clear billing error (a duplicate charge) of at most $200 and
escalates larger ones; technical checks service status first and resets a password only once
the customer's email matches the account; account looks up the account and ticket history,
offers retention before a cancellation and hands changes to a human. Messages that try to
instruct the assistant ("ignore your instructions ...") never lead to a refund or a reset.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import partial
from typing import Any

from ...models.rules import (
    Call,
    Conversation,
    FirstOf,
    FromMessage,
    FromResult,
    Parallel,
    Reply,
    Route,
    Rules,
)
from .tools import REFUND_LIMIT, normalize_id, normalize_region

INVOICE_ID = r"\bINV[-_ ]?\d{4,}\b"
CUSTOMER_ID = r"\bCUST[-_ ]?\d{4,}\b"
TICKET_ID = r"\bTKT[-_ ]?\d{4,}\b"
EMAIL = r"[\w.+'-]+@[\w-]+(?:\.[\w-]+)+"
REGION = r"\b(?:us|eu|ap|sa)[-_ ]?(?:east|west|central|southeast)\b"

BILLING_WORDS = (
    "invoice", "invoices", "charge", "charged", "charges", "charging", "refund", "refunds",
    "refunded", "billing", "bill", "billed", "payment", "payments", "paid", "pay", "receipt",
    "credit card", "card", "overcharged", "double charged", "double-charged", "charged twice",
    "duplicate charge", "money back", "price", "tax", "vat", "fee", "fees", "reimburse",
)  # fmt: skip
TECH_WORDS = (
    "login", "log in", "logging in", "sign in", "signin", "password", "2fa", "two-factor", "mfa",
    "sso", "locked out", "outage", "down", "error", "errors", "api", "timeout", "timeouts",
    "latency", "slow", "bug", "crash", "crashes", "broken", "not working", "webhook", "webhooks",
    "integration", "status", "dashboard", "unavailable", "endpoint", "rate limit", "hacked",
    "compromised", "can't access", "cannot access", "500", "502", "503", "429", "401", "403",
)  # fmt: skip
ACCOUNT_WORDS = (
    "upgrade", "downgrade", "cancel", "cancellation", "cancelling", "canceling", "plan", "plans",
    "change plan", "switch plans", "export", "data export", "delete my account",
    "close my account", "account settings", "settings", "seats", "add users", "remove a user",
    "team members", "owner", "ownership", "rename", "workspace", "change my email", "gdpr",
    "subscription", "profile",
)  # fmt: skip

REFUND_WORDS = (
    "refund", "money back", "reimburse", "charged twice", "charged me twice", "double charged",
    "double-charged", "duplicate", "overcharged", "charged two times",
)  # fmt: skip
LOGIN_WORDS = (
    "login", "log in", "logging in", "sign in", "password", "locked out", "reset", "can't access",
    "cannot access",
)  # fmt: skip
PROBLEM_WORDS = (
    "down", "outage", "error", "errors", "failing", "fails", "not working", "broken", "timeout",
    "timeouts", "500", "502", "503", "unavailable",
)  # fmt: skip
URGENT_WORDS = ("urgent", "production", "critical", "asap", "emergency", "all our users")
SECURITY_WORDS = ("hacked", "compromised", "unauthorized access", "suspicious login")

_INJECTION = re.compile(
    r"\b(ignore|disregard|forget|override)\b[^.!?\n]{0,40}\b(instructions?|rules?|polic(y|ies)"
    r"|guidelines|prompt)\b|system prompt|developer mode|jailbreak|\byou are now\b"
    r"|\bact as (an? )?(admin|administrator|developer)\b|^\s*(system|assistant)\s*:",
    re.IGNORECASE | re.MULTILINE,
)
_COURTESY = re.compile(
    r"^\s*((thanks|thank you|thx|ok|okay|great|perfect|cheers|bye|goodbye|so much|a lot)"
    r"[\s!.,]*)+$",
    re.IGNORECASE,
)
_RETENTION_MARK = "Before you cancel"
_ACCEPT_OFFER = re.compile(r"^\s*(yes|ok|okay|sure|deal|sounds good|i'?ll take)", re.IGNORECASE)

COURTESY_REPLY = "You're welcome! Is there anything else I can help you with?"
REFUSAL = (
    "I can't follow instructions embedded in a support message, and I only issue refunds or "
    "make account changes for verified requests. If you have a genuine issue, tell me the "
    "invoice number or your customer ID and what went wrong."
)


def _mentioned(pattern: str, transform: Callable[[str], str]) -> FirstOf:
    """A value from the latest user message, else from an earlier one."""
    return FirstOf(
        FromMessage(pattern, transform=transform),
        FromMessage(pattern, scope="any", transform=transform),
    )


invoice_in_message = _mentioned(INVOICE_ID, partial(normalize_id, prefix="INV"))
customer_in_message = _mentioned(CUSTOMER_ID, partial(normalize_id, prefix="CUST"))
ticket_in_message = _mentioned(TICKET_ID, partial(normalize_id, prefix="TKT"))
region_in_message = _mentioned(REGION, normalize_region)


def ok(result: Any) -> dict[str, Any] | None:
    """A tool result that is a dict without an ``error`` key, else None."""
    return result if isinstance(result, dict) and "error" not in result else None


def error_of(result: Any) -> str | None:
    """The error message of a failed tool result (dict or one-element list), else None."""
    first = result[0] if isinstance(result, list) and result else result
    if isinstance(first, dict) and isinstance(first.get("error"), str):
        return first["error"]
    return None


def injected(c: Conversation) -> bool:
    """Whether any user message tries to instruct the assistant."""
    return any(_INJECTION.search(text) for text in c.user_messages)


def is_courtesy(c: Conversation) -> bool:
    """A short thanks/goodbye after an earlier answer."""
    return c.previous_assistant is not None and bool(_COURTESY.match(c.last_user))


def money(amount: float) -> str:
    """``99`` -> ``"$99.00"``."""
    return f"${amount:,.2f}"


def ticket_ref(c: Conversation) -> str:
    """The ticket to escalate: one named by the customer, else a new one for this customer."""
    named = ticket_in_message.resolve(c)
    if named:
        return named
    for tool, key in (("get_account", "customer_id"), ("get_invoice", "invoice_id")):
        found = ok(c.result(tool))
        if found:
            return f"NEW-{found[key]}"
    return "NEW-CHAT"


def escalated_text(c: Conversation, lead: str) -> str | None:
    """The answer after ``escalate_to_human`` ran (None before it did)."""
    result = c.result("escalate_to_human")
    if result is None:
        return None
    if not ok(result):
        return f"I tried to hand this to a human agent but could not: {error_of(result) or result}."
    return (
        f"{lead} (escalation {result['escalation_id']}, priority {result['priority']}). "
        "They'll follow up with you by email."
    )


# --- billing ---------------------------------------------------------------------------------


def _invoice(c: Conversation) -> dict[str, Any] | None:
    return ok(c.result("get_invoice"))


def _account(c: Conversation) -> dict[str, Any] | None:
    return ok(c.result("get_account"))


def refund_action(c: Conversation) -> str | None:
    """``"refund"`` or ``"escalate"`` when the facts show a clear billing error, else None."""
    invoice, account = _invoice(c), _account(c)
    if (
        invoice is None
        or account is None
        or injected(c)
        or not c.mentions(*REFUND_WORDS, scope="any")
    ):
        return None
    if invoice["customer_id"] != account["customer_id"] or invoice["refund"] is not None:
        return None
    if invoice["status"] != "paid" or not invoice["duplicate_charges"]:
        return None
    return "refund" if invoice["amount"] <= REFUND_LIMIT else "escalate"


def _duplicate_summary(invoice: dict[str, Any]) -> str:
    dup = invoice["duplicate_charges"][0]
    return (
        f"{dup['description']} charged {dup['times_charged']} times ({money(dup['amount'])} each)"
    )


def refund_reason(c: Conversation) -> str | None:
    """Why the refund is due, for the refund record."""
    invoice = _invoice(c)
    return f"Duplicate charge: {_duplicate_summary(invoice)}" if invoice else None


def over_limit_reason(c: Conversation) -> str | None:
    """Why a refund goes to a human."""
    invoice = _invoice(c)
    if invoice is None:
        return None
    return (
        f"Refund request for {invoice['invoice_id']} ({invoice['customer_id']}): "
        f"{_duplicate_summary(invoice)}. Amount {money(invoice['amount'])} is over the "
        f"{money(REFUND_LIMIT)} automatic refund limit."
    )


def _refund_text(result: Any) -> str:
    refund = ok(result)
    if refund and refund.get("refund_id") and not refund.get("already_refunded"):
        how = (
            f"{money(refund['amount'])} of the {money(refund['invoice_amount'])} on invoice "
            f"{refund['invoice_id']}"
            if refund.get("partial")
            else f"invoice {refund['invoice_id']} in full"
        )
        return (
            f"Done: I refunded {how}. "
            f"Refund {refund['refund_id']} "
            f"for {money(refund['amount'])} is on its way and should appear on your statement "
            "within 5-10 business days."
        )
    if refund and refund.get("already_refunded"):
        return (
            f"I did not issue a new refund: invoice {refund['invoice_id']} was already refunded "
            f"on {refund['refunded_at']} (refund {refund['refund_id']}, {money(refund['amount'])})."
        )
    why = error_of(result) or f'a reviewer on our billing team declined it ("{result}")'
    return f"The refund was not processed: {why}."


def _invoice_text(invoice: dict[str, Any], wants_refund: bool) -> str:
    lines = "; ".join(
        f"{line['description']} {money(line['amount'])}" for line in invoice["line_items"]
    )
    head = (
        f"Invoice {invoice['invoice_id']} ({invoice['period']}) is "
        f"{invoice['status'].replace('_', ' ')}: {lines}. "
        f"Billed {money(invoice['amount'])}, charged {money(invoice['amount_charged'])}."
    )
    refund = invoice["refund"]
    if refund is not None:
        return (
            f"{head} It was already refunded on {refund['created_at']} "
            f"(refund {refund['refund_id']}, {money(refund['amount'])}), so there is nothing "
            "more to refund."
        )
    if invoice["duplicate_charges"]:
        return f"{head} I can see a duplicate charge: {_duplicate_summary(invoice)}."
    if wants_refund and invoice["status"] != "paid":
        return f"{head} It hasn't been paid, so there is no payment to refund."
    if wants_refund:
        return (
            f"{head} The charges match the invoice, so I can't see a billing error to refund. "
            "If a specific charge looks wrong, tell me which one and I'll take a closer look."
        )
    return f"{head} Anything else you'd like to know about it?"


def billing_answer(c: Conversation) -> str:
    """The billing specialist's answer from what the tools returned."""
    if c.result("process_refund") is not None:
        return _refund_text(c.result("process_refund"))
    if injected(c):
        return REFUSAL
    escalated = escalated_text(
        c,
        f"This refund is over our {money(REFUND_LIMIT)} limit for automatic refunds, so I've "
        "passed it to a human billing specialist",
    )
    if escalated:
        return escalated
    invoice_error, account_error = (
        error_of(c.result("get_invoice")),
        error_of(c.result("get_account")),
    )
    if invoice_error or account_error:
        return f"I couldn't find that: {invoice_error or account_error}. Could you double-check it?"
    invoice, account = _invoice(c), _account(c)
    if invoice and account and invoice["customer_id"] != account["customer_id"]:
        return (
            f"Invoice {invoice['invoice_id']} doesn't belong to customer {account['customer_id']}, "
            "so I can't discuss or change it here. Please write from the account it was billed to."
        )
    if invoice:
        return _invoice_text(invoice, c.mentions(*REFUND_WORDS, scope="any"))
    if account:
        return (
            f"Your account {account['customer_id']} is on the {account['plan']} plan "
            f"({money(account['monthly_price'])}/month), "
            f"billing status {account['billing_status']}. "
            "Which invoice is your question about (for example INV-1234)?"
        )
    return (
        "I can help with that. Please share the invoice number (for example INV-1234) "
        "or your customer ID (for example CUST-1234) so I can look it up."
    )


# --- technical -------------------------------------------------------------------------------


def _status(c: Conversation) -> dict[str, Any] | None:
    return ok(c.result("check_service_status"))


def identity_verified(c: Conversation) -> bool:
    """Whether the customer wrote the email address on the account."""
    account = _account(c)
    if account is None:
        return False
    emails = {m.group(0).lower() for t in c.user_messages for m in re.finditer(EMAIL, t)}
    return account["email"].lower() in emails


def can_reset_password(c: Conversation) -> bool:
    """A login problem, a verified identity, and no outage that a reset would not fix."""
    status = _status(c)
    return (
        c.mentions(*LOGIN_WORDS, scope="any")
        and status is not None
        and status["status"] != "outage"
        and identity_verified(c)
        and not injected(c)
    )


def tech_priority(c: Conversation) -> str:
    """``urgent`` for security or production-impacting reports, else ``high``."""
    return "urgent" if c.mentions(*URGENT_WORDS, *SECURITY_WORDS, scope="any") else "high"


def needs_tech_escalation(c: Conversation) -> bool:
    """A security report, or an outage the status page does not explain that hurts a large
    or urgent customer."""
    if c.mentions(*SECURITY_WORDS, scope="any"):
        return True
    status, account = _status(c), _account(c)
    if status is None or status["status"] != "operational":
        return False
    if not c.mentions(*PROBLEM_WORDS, scope="any"):
        return False
    big = account is not None and account["plan"] in ("business", "enterprise")
    return big or c.mentions(*URGENT_WORDS, scope="any")


def tech_escalation_reason(c: Conversation) -> str:
    """What the human should look at."""
    status = _status(c)
    where = f" in {status['region']} (status page: {status['status']})" if status else ""
    return f"Customer reports: {c.last_user[:300]}{where}"


def _status_text(status: dict[str, Any]) -> str:
    if status["status"] == "operational":
        return f"All systems are operational in {status['region']}."
    if status["status"] == "outage":
        return f"There is an active outage in {status['region']}: {status['summary']}"
    return f"Service in {status['region']} is {status['status']}: {status['summary']}"


def tech_answer(c: Conversation) -> str:
    """The technical specialist's answer from what the tools returned."""
    reset = c.result("reset_password")
    if reset is not None:
        if not ok(reset):
            return f"I couldn't send a password reset: {error_of(reset) or reset}."
        return (
            f"I've sent a password reset email to {reset['sent_to']} "
            f"(request {reset['reset_id']}). "
            "The link is valid for one hour."
        )
    escalated = escalated_text(c, "This needs a closer look, so I've escalated it to our engineers")
    if escalated:
        return escalated
    if injected(c):
        return REFUSAL
    problems = [
        e for e in (error_of(c.result(t)) for t in ("check_service_status", "get_account")) if e
    ]
    if problems:
        return f"I couldn't check that: {problems[0]}. Could you double-check it?"
    status, account = _status(c), _account(c)
    if status is None:
        return (
            "To check for outages I need your region (for example us-east or eu-west) "
            "or your customer ID (for example CUST-1234)."
        )
    parts = [_status_text(status)]
    login = c.mentions(*LOGIN_WORDS, scope="any")
    if login and status["status"] == "outage":
        parts.append(
            "A password reset won't help until this is fixed; "
            "please try again after the next update."
        )
    elif login and account is None:
        parts.append(
            "To reset your password, please send your customer ID "
            "and the email address on the account."
        )
    elif login and not identity_verified(c) and c.search(EMAIL, scope="any"):
        parts.append(
            "The email address you gave doesn't match the account, so I can't reset "
            "the password. Please reply with the email address on the account."
        )
    elif login and not identity_verified(c):
        parts.append(
            "Before I can reset your password I need to verify your identity: "
            "please reply with the email address on the account."
        )
    elif account is not None:
        usage = account["usage"]
        parts.append(
            f"Your account ({account['plan']} plan) has used {usage['api_calls_month']:,} of "
            f"{usage['api_calls_limit']:,} API calls this month."
        )
    if status["status"] == "operational" and not login:
        parts.append(
            "If errors continue, send me the request ID and the exact error and I'll dig in."
        )
    return " ".join(parts)


# --- account ---------------------------------------------------------------------------------

CHANGE_KINDS = (
    ("delete", ("delete my account", "close my account", "gdpr", "erase my data")),
    ("cancel", ("cancel", "cancellation", "cancelling", "canceling", "unsubscribe")),
    ("export", ("export", "data export", "download my data")),
    ("upgrade", ("upgrade",)),
    ("downgrade", ("downgrade",)),
    ("plan", ("change plan", "switch plans", "switch to", "change my plan")),
    ("settings", ("rename", "change my email", "ownership", "add seats", "more seats",
                  "add users", "remove a user")),
)  # fmt: skip
CHANGE_PRIORITY = {"delete": "high", "cancel": "normal", "export": "normal", "settings": "low"}


def change_kind(c: Conversation) -> str | None:
    """Which account change the customer asks for, if any."""
    if _RETENTION_MARK in (c.previous_assistant or "") and _ACCEPT_OFFER.match(c.last_user):
        return "retention"
    for kind, words in CHANGE_KINDS:
        if c.mentions(*words, scope="any"):
            return kind
    return None


def retention_declined(c: Conversation) -> bool:
    """The retention offer was made and the customer still wants to cancel."""
    offered = _RETENTION_MARK in (c.previous_assistant or "")
    insists = c.mentions(
        "anyway", "just cancel", "still want", "no thanks", "not interested", "already decided"
    )
    return insists or (offered and not _ACCEPT_OFFER.match(c.last_user))


def account_change_ready(c: Conversation) -> bool:
    """Both lookups done and a change to hand to a human (cancellations after retention)."""
    if _account(c) is None or c.result("get_ticket_history") is None or injected(c):
        return False
    kind = change_kind(c)
    return kind is not None and (kind != "cancel" or retention_declined(c))


def account_priority(c: Conversation) -> str:
    """Deletion is high priority; a customer with an escalated ticket already is high too."""
    history = c.result("get_ticket_history") or []
    if any(isinstance(t, dict) and t.get("status") == "escalated" for t in history):
        return "high"
    return CHANGE_PRIORITY.get(change_kind(c) or "", "normal")


def account_change_reason(c: Conversation) -> str | None:
    """What the human should change."""
    account = _account(c)
    if account is None:
        return None
    what = {
        "retention": "Apply retention offer (20% off for 3 months) instead of cancelling",
        "cancel": "Cancel the subscription (retention offer declined)",
        "delete": "Delete the account and its data",
        "export": "Prepare a full data export",
    }.get(change_kind(c) or "", "Account change request")
    return (
        f"{what} for {account['customer_id']} ({account['plan']} plan). "
        f"Customer wrote: {c.last_user[:300]}"
    )


def _retention_offer(account: dict[str, Any], history: list[Any]) -> str:
    open_tickets = [
        t for t in history if isinstance(t, dict) and t.get("status") in ("open", "pending")
    ]
    support = (
        f" I also see {len(open_tickets)} open ticket(s) on your account; if something isn't "
        "working, I'd like to get it fixed for you."
        if open_tickets
        else ""
    )
    return (
        f"{_RETENTION_MARK} your {account['plan']} plan: I can offer 20% off for the "
        f"next 3 months, or you can pause instead.{support} Would you like the discount, or "
        "should I go ahead with the cancellation?"
    )


def account_answer(c: Conversation) -> str:
    """The account specialist's answer from what the tools returned."""
    escalated = escalated_text(
        c, "I've passed your request to our accounts team, who will make the change"
    )
    if escalated:
        return escalated
    if injected(c):
        return REFUSAL
    account, history = c.result("get_account"), c.result("get_ticket_history")
    problem = error_of(account) or error_of(history)
    if problem:
        return f"I couldn't find that: {problem}. Could you double-check your customer ID?"
    if not ok(account):
        return (
            "Please share your customer ID (for example CUST-1234) so I can look up your account."
        )
    if change_kind(c) == "cancel":
        return _retention_offer(account, history or [])
    usage = account["usage"]
    return (
        f"Your account {account['customer_id']} is on the {account['plan']} plan "
        f"({money(account['monthly_price'])}/month) using {usage['seats_used']} of "
        f"{usage['seats_limit']} seats. What would you like to change: plan, seats, a data "
        "export or a cancellation?"
    )


# --- rules -----------------------------------------------------------------------------------

TRIAGE_RULES = Rules(
    [
        Route("billing_specialist", keywords=BILLING_WORDS, patterns=[INVOICE_ID, r"\$\s?\d"]),
        Route("technical_specialist", keywords=TECH_WORDS, patterns=[REGION]),
        Route("account_specialist", keywords=ACCOUNT_WORDS),
    ],
    fallback=(
        "I'm the support desk assistant: I can help with billing (invoices, charges, refunds), "
        "technical problems (login, outages, API errors) and account changes (plans, "
        "cancellations, data exports). What can I help you with?"
    ),
)

BILLING_RULES = Rules(
    [
        Reply(COURTESY_REPLY, when=is_courtesy),
        Parallel(
            Call("get_invoice", {"invoice_id": invoice_in_message}),
            Call(
                "get_account",
                {
                    "customer_id": FirstOf(
                        customer_in_message, FromResult("get_invoice", "customer_id")
                    )
                },
            ),
        ),
        Call(
            "escalate_to_human",
            {"ticket_id": ticket_ref, "reason": over_limit_reason, "priority": "high"},
            when=lambda c: refund_action(c) == "escalate",
        ),
        Call(
            "process_refund",
            {"invoice_id": FromResult("get_invoice", "invoice_id"), "reason": refund_reason},
            when=lambda c: refund_action(c) == "refund",
        ),
        Reply(billing_answer),
    ]
)

TECHNICAL_RULES = Rules(
    [
        Reply(COURTESY_REPLY, when=is_courtesy),
        Parallel(
            Call("check_service_status", {"region": region_in_message}),
            Call("get_account", {"customer_id": customer_in_message}),
        ),
        Call(
            "check_service_status",
            {"region": FromResult("get_account", "region")},
            when=lambda c: region_in_message.resolve(c) is None,
        ),
        Call(
            "reset_password",
            {"customer_id": FromResult("get_account", "customer_id")},
            when=can_reset_password,
        ),
        Call(
            "escalate_to_human",
            {"ticket_id": ticket_ref, "reason": tech_escalation_reason, "priority": tech_priority},
            when=needs_tech_escalation,
        ),
        Reply(tech_answer),
    ]
)

ACCOUNT_RULES = Rules(
    [
        Reply(COURTESY_REPLY, when=is_courtesy),
        Parallel(
            Call("get_account", {"customer_id": customer_in_message}),
            Call("get_ticket_history", {"customer_id": customer_in_message}),
        ),
        Call(
            "escalate_to_human",
            {
                "ticket_id": ticket_ref,
                "reason": account_change_reason,
                "priority": account_priority,
            },
            when=account_change_ready,
        ),
        Reply(account_answer),
    ]
)
