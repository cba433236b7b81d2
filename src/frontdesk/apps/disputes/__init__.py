"""Dispute management: triage a Stripe dispute, accept it or investigate and contest it.

Start runs with :func:`process_dispute` (or a ``charge.dispute.created`` webhook through
``frontdesk serve``). A contested dispute's run ends with the investigator's report and its
evidence staged; submitting it is a run of its own that waits for a person's approval
(:mod:`.submission`). The tools read the merchant's orders, emails and phone logs beside the
runtime's store (``disputes.db`` in its home, or the ``disputes`` schema of its PostgreSQL
database; seeded from ``data/`` on first use, :func:`init_db`) and
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
from .rules import ACCEPT_RULES, INVESTIGATOR_RULES, SUBMISSION_RULES, TRIAGE_RULES
from .submission import (
    SubmissionNotPossible,
    SubmissionRequest,
    find_submission,
    request_submission,
    submission_agent,
    submission_execution_id,
)
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
attach_rules(submission_agent, SUBMISSION_RULES)

__all__ = [
    "DisputeEvidence",
    "DisputeLookupError",
    "DisputeRun",
    "IntakeResult",
    "ProcessedDispute",
    "StripeNotConfigured",
    "StripeSettings",
    "SubmissionNotPossible",
    "SubmissionRequest",
    "accept_dispute_agent",
    "db_path",
    "dispute_runs",
    "find_dispute",
    "find_submission",
    "handle_event",
    "init_db",
    "investigator_agent",
    "process_dispute",
    "relevant_data",
    "request_submission",
    "run_dispute",
    "start_dispute_run",
    "stripe_client",
    "submission_agent",
    "submission_execution_id",
    "triage_agent",
    "webhook_events",
]
