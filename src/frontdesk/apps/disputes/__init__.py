"""Dispute management: triage a Stripe dispute, accept it or investigate and contest it.

Start runs with :func:`process_dispute` (or a ``charge.dispute.created`` webhook through
``frontdesk serve``). The tools read the merchant's orders, emails and phone logs from
``disputes.db`` in the runtime home (seeded from ``data/`` on first use, :func:`init_db`) and
talk to Stripe, or, without ``STRIPE_SECRET_KEY``, to the local sandbox. Offline rules for
``FRONTDESK_MODEL=rules`` are attached here, at import.
"""

from __future__ import annotations

from ...models.rules import attach_rules
from ._db import db_path, init_db
from ._stripe import StripeNotConfigured, StripeSettings, stripe_client
from .agents import accept_dispute_agent, investigator_agent, triage_agent
from .intake import (
    DisputeRun,
    IntakeResult,
    dispute_runs,
    handle_event,
    relevant_data,
    start_dispute_run,
    webhook_events,
)
from .rules import ACCEPT_RULES, INVESTIGATOR_RULES, TRIAGE_RULES
from .tools import DisputeEvidence
from .workflow import (
    DisputeLookupError,
    ProcessedDispute,
    find_dispute,
    process_dispute,
    run_dispute,
)

attach_rules(triage_agent, TRIAGE_RULES)
attach_rules(accept_dispute_agent, ACCEPT_RULES)
attach_rules(investigator_agent, INVESTIGATOR_RULES)

__all__ = [
    "DisputeEvidence",
    "DisputeLookupError",
    "DisputeRun",
    "IntakeResult",
    "ProcessedDispute",
    "StripeNotConfigured",
    "StripeSettings",
    "accept_dispute_agent",
    "db_path",
    "dispute_runs",
    "find_dispute",
    "handle_event",
    "init_db",
    "investigator_agent",
    "process_dispute",
    "relevant_data",
    "run_dispute",
    "start_dispute_run",
    "stripe_client",
    "triage_agent",
    "webhook_events",
]
