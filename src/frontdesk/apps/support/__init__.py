"""Support desk: a triage agent handing off to billing, technical and account specialists.

Start runs at :data:`triage_agent`. Tools keep their data beside the runtime's store
(``support.db`` in its home, or the ``support`` schema of its PostgreSQL database), created from
the fixtures in ``data/`` on first use (:func:`init_db`). Offline rules for
``FRONTDESK_MODEL=rules`` are attached here, at import.
"""

from __future__ import annotations

from ...models.rules import attach_rules
from ._db import db_path, init_db, list_escalations
from .agents import account_agent, billing_agent, technical_agent, triage_agent
from .rules import ACCOUNT_RULES, BILLING_RULES, TECHNICAL_RULES, TRIAGE_RULES

attach_rules(triage_agent, TRIAGE_RULES)
attach_rules(billing_agent, BILLING_RULES)
attach_rules(technical_agent, TECHNICAL_RULES)
attach_rules(account_agent, ACCOUNT_RULES)

__all__ = [
    "account_agent",
    "billing_agent",
    "db_path",
    "init_db",
    "list_escalations",
    "technical_agent",
    "triage_agent",
]
