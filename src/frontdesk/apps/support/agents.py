"""The support desk's agents: a cheap triage agent routing to three specialists."""

from __future__ import annotations

from agents import Agent, handoff

from .tools import (
    check_service_status,
    escalate_to_human,
    get_account,
    get_invoice,
    get_ticket_history,
    process_refund,
    reset_password,
)

billing_agent = Agent(
    name="billing_specialist",
    model="gpt-4o",
    instructions="""You handle billing questions: invoices, charges, refunds, plan changes.
    Always look up the account first. Process refunds only for clear billing errors.
    For amounts over $200, escalate to a human.""",
    tools=[get_account, get_invoice, process_refund, escalate_to_human],
)

technical_agent = Agent(
    name="technical_specialist",
    model="gpt-4o",
    instructions="""You handle technical issues: login problems, service outages, API errors.
    Always check service status first. If the issue is account-specific, look up the account.
    Reset passwords only after verifying the customer's identity.""",
    tools=[get_account, check_service_status, reset_password, escalate_to_human],
)

account_agent = Agent(
    name="account_specialist",
    model="gpt-4o",
    instructions="""You handle account changes: upgrades, downgrades, cancellations, data exports.
    Always look up the account and ticket history before making changes.
    For cancellations, attempt retention first.""",
    tools=[get_account, get_ticket_history, escalate_to_human],
)

triage_agent = Agent(
    name="support_triage",
    model="gpt-4o-mini",  # fast, cheap — just routes
    instructions="""You are a support triage agent. Understand the customer's issue
    and hand off to the right specialist immediately.

    - Billing, charges, invoices, refunds → billing_specialist
    - Login, outages, API errors, technical issues → technical_specialist
    - Plan changes, cancellations, account settings → account_specialist""",
    handoffs=[handoff(billing_agent), handoff(technical_agent), handoff(account_agent)],
)
