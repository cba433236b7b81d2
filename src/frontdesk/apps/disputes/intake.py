"""Starting exactly one durable run per dispute, from a webhook or from ``process_dispute``.

Stripe delivers events at least once, and a dispute may also be processed by hand. Every
start uses the execution id ``dispute:<dispute id>``, and the runtime starts a run with a given
id at most once (atomically, across processes), so a redelivered event or a second
``process_dispute`` finds the run the first one started.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from agents import Agent

from ...runtime import AgentRuntime
from ...store import Store
from ._db import connect
from .agents import triage_agent

DISPUTE_CREATED = "charge.dispute.created"
RUN_PREFIX = "dispute:"

IntakeAction = Literal["started", "duplicate", "ignored"]


@dataclass(frozen=True)
class DisputeRun:
    """The run that handles a dispute."""

    dispute_id: str
    execution_id: str
    started: bool
    """Whether this call started it (False: it already existed)."""


@dataclass(frozen=True)
class IntakeResult:
    """What a webhook event led to."""

    event_id: str
    type: str
    action: IntakeAction
    execution_id: str | None = None


def dispute_execution_id(dispute_id: str) -> str:
    """The execution id of the run that handles ``dispute_id``."""
    return f"{RUN_PREFIX}{dispute_id}"


def relevant_data(dispute: Mapping[str, Any]) -> dict[str, Any]:
    """The dispute fields the agents work from (a Stripe dispute object as a dict)."""
    evidence = dispute.get("evidence_details") or {}
    card = (dispute.get("payment_method_details") or {}).get("card") or {}
    intent = dispute.get("payment_intent")
    return {
        "dispute_id": dispute.get("id"),
        "amount": dispute.get("amount"),
        "due_by": evidence.get("due_by"),
        "payment_intent": intent.get("id") if isinstance(intent, Mapping) else intent,
        "reason": dispute.get("reason"),
        "status": dispute.get("status"),
        "card_brand": card.get("brand"),
    }


def start_dispute_run(
    runtime: AgentRuntime, data: Mapping[str, Any], *, agent: Agent[Any] | None = None
) -> DisputeRun:
    """Start the run for this dispute unless one exists; either way say which run it is.

    ``data`` is :func:`relevant_data`; the run's input is it as JSON.
    """
    dispute_id = str(data["dispute_id"])
    handle = runtime.start(
        agent or triage_agent, json.dumps(dict(data)), execution_id=dispute_execution_id(dispute_id)
    )
    return DisputeRun(dispute_id, handle.execution_id, started=handle.created)


def handle_event(runtime: AgentRuntime, event: Mapping[str, Any]) -> IntakeResult:
    """Act on a verified Stripe event and record it: a new dispute starts its run (once);
    every other event type is recorded and ignored."""
    event_id, event_type = str(event["id"]), str(event["type"])
    obj = (event.get("data") or {}).get("object") or {}
    action: IntakeAction = "ignored"
    execution_id = None
    if event_type == DISPUTE_CREATED:
        run = start_dispute_run(runtime, relevant_data(obj))
        execution_id = run.execution_id
        action = "started" if run.started else "duplicate"
    _record_event(runtime.home, event_id, event_type, obj.get("id"), action, execution_id)
    return IntakeResult(event_id, event_type, action, execution_id)


def dispute_runs(home: Path) -> dict[str, str]:
    """Every dispute with a run: dispute id -> execution id."""
    store = Store(home)
    try:
        rows = store.query(
            "SELECT execution_id FROM runs WHERE substr(execution_id, 1, ?) = ?",
            (len(RUN_PREFIX), RUN_PREFIX),
        )
    finally:
        store.close()
    return {row[0][len(RUN_PREFIX) :]: row[0] for row in rows}


def webhook_events(home: Path) -> list[dict[str, Any]]:
    """Every webhook event received, in the order first received."""
    with connect(home) as conn:
        rows = conn.execute(
            "SELECT * FROM webhook_events ORDER BY first_received_at, event_id"
        ).fetchall()
    return [dict(row) for row in rows]


def _record_event(
    home: Path,
    event_id: str,
    event_type: str,
    object_id: Any,
    action: IntakeAction,
    execution_id: str | None,
) -> None:
    now = time.time()
    with connect(home) as conn:
        # A redelivery counts as one more delivery and keeps the first outcome.
        conn.execute(
            "INSERT INTO webhook_events VALUES (?, ?, ?, ?, ?, 1, ?, ?)"
            " ON CONFLICT (event_id) DO UPDATE SET deliveries = deliveries + 1,"
            " last_received_at = excluded.last_received_at,"
            " execution_id = COALESCE(execution_id, excluded.execution_id)",
            (event_id, event_type, object_id, action, execution_id, now, now),
        )
