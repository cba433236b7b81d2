"""The dispute agents: triage hands a dispute to acceptance or to the investigator."""

from __future__ import annotations

from agents import Agent

from .submission import request_evidence_submission
from .tools import (
    close_dispute,
    get_emails,
    get_order,
    get_phone_logs,
    retrieve_payment_intent,
    stage_dispute_evidence,
)

INVESTIGATOR_INSTRUCTIONS = (
    "As a dispute investigator, please compile the following details in your final output:\n\n"
    "Dispute Details:\n- Dispute ID\n- Amount\n- Reason for Dispute\n- Card Brand\n\n"
    "Payment & Order Details:\n- Fulfillment status of the order\n"
    "- Shipping carrier and tracking number\n- Confirmation of TOS acceptance\n\n"
    "Email and Phone Records:\n- Any relevant email threads (include the full body text)\n"
    "- Any relevant phone logs\n"
)
EVIDENCE_INSTRUCTIONS = (
    "\nBefore your final output, stage the evidence on the dispute with "
    "stage_dispute_evidence: your compiled details (with the full email bodies and phone logs) "
    "as uncategorized_text, and every Stripe evidence field the records support (shipping "
    "carrier, tracking number and date, customer email address and name, purchase IP, refund "
    "policy disclosure, refund refusal explanation). Then ask for the final submission with "
    "request_evidence_submission: a person approves it later from the approvals inbox (a "
    "submission cannot be amended), so do not wait for it; your report is your final output.\n"
)
ACCEPT_INSTRUCTIONS = (
    "You are an agent responsible for accepting disputes. Please do the following:\n"
    "1. Use the provided dispute ID to close the dispute.\n"
    "2. Provide a short explanation of why the dispute is being accepted.\n"
    "3. Reference any relevant order details (e.g., unfulfilled order, etc.) retrieved from "
    "the database.\n\n"
    "Then, produce your final output in this exact format:\n\n"
    "Dispute Details:\n- Dispute ID\n- Amount\n- Reason for Dispute\n\n"
    "Order Details:\n- Fulfillment status of the order\n\n"
    "Reasoning for closing the dispute\n"
)
TRIAGE_INSTRUCTIONS = (
    "Please do the following:\n"
    "1. Find the order ID from the payment intent's metadata.\n"
    "2. Retrieve detailed information about the order (e.g., shipping status).\n"
    "3. If the order has shipped, escalate this dispute to the investigator agent.\n"
    "4. If the order has not shipped, accept the dispute.\n"
)

investigator_agent = Agent(
    name="Dispute Intake Agent",
    instructions=INVESTIGATOR_INSTRUCTIONS + EVIDENCE_INSTRUCTIONS,
    model="o3-mini",
    tools=[get_emails, get_phone_logs, stage_dispute_evidence, request_evidence_submission],
)

accept_dispute_agent = Agent(
    name="Accept Dispute Agent",
    instructions=ACCEPT_INSTRUCTIONS,
    model="gpt-4o",
    tools=[close_dispute],
)

triage_agent = Agent(
    name="Triage Agent",
    instructions=TRIAGE_INSTRUCTIONS,
    model="gpt-4o",
    tools=[retrieve_payment_intent, get_order],
    handoffs=[accept_dispute_agent, investigator_agent],
)
