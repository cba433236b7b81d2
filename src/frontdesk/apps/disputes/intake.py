"""Starting exactly one durable run per dispute, from a webhook or from ``process_dispute``.

Stripe delivers events at least once, and a dispute may also be processed by hand, so every
start goes through :func:`start_dispute_run`: a claim row per dispute in ``disputes.db``
decides who starts the run, and later attempts find the run it started. A claim left without
a run (the process died between claiming and recording) is taken over after
:data:`CLAIM_STALE_SECONDS`, adopting the run if it had in fact started.
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
from .._sqlite import write_transaction
from ._db import connect
from .agents import triage_agent

CLAIM_STALE_SECONDS = 30.0
"""How long a claim without a recorded run blocks other starts of the same dispute."""
DISPUTE_CREATED = "charge.dispute.created"
_ADOPT_SKEW_SECONDS = 5.0

IntakeAction = Literal["started", "duplicate", "in_progress", "ignored"]


@dataclass(frozen=True)
class DisputeRun:
    """The run that handles a dispute."""

    dispute_id: str
    execution_id: str | None
    """None while another process is starting the run."""
    started: bool
    """Whether this call started it (False: it already existed)."""


@dataclass(frozen=True)
class IntakeResult:
    """What a webhook event led to."""

    event_id: str
    type: str
    action: IntakeAction
    execution_id: str | None = None


@dataclass(frozen=True)
class _Claim:
    execution_id: str | None
    owned: bool
    previous_claim: float | None = None


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
    runtime: AgentRuntime,
    data: Mapping[str, Any],
    *,
    agent: Agent[Any] | None = None,
    source: str = "api",
) -> DisputeRun:
    """Start the run for this dispute unless one exists; either way say which run it is.

    ``data`` is :func:`relevant_data`; the run's input is it as JSON. ``source`` is recorded
    with the claim (e.g. the webhook event id).
    """
    agent = agent or triage_agent
    dispute_id = str(data["dispute_id"])
    claim = _claim(runtime.home, dispute_id, data.get("payment_intent"), source)
    if claim.execution_id is not None or not claim.owned:
        return DisputeRun(dispute_id, claim.execution_id, started=False)
    if claim.previous_claim is not None:
        adopted = _find_run(runtime, agent, dispute_id, claim.previous_claim)
        if adopted is not None:
            _record(runtime.home, dispute_id, adopted)
            return DisputeRun(dispute_id, adopted, started=False)
    try:
        handle = runtime.start(agent, json.dumps(dict(data)))
    except BaseException:
        _release(runtime.home, dispute_id)
        raise
    _record(runtime.home, dispute_id, handle.execution_id)
    return DisputeRun(dispute_id, handle.execution_id, started=True)


def handle_event(runtime: AgentRuntime, event: Mapping[str, Any]) -> IntakeResult:
    """Act on a verified Stripe event and record it: a new dispute starts its run (once);
    every other event type is recorded and ignored."""
    event_id, event_type = str(event["id"]), str(event["type"])
    obj = (event.get("data") or {}).get("object") or {}
    action: IntakeAction = "ignored"
    execution_id = None
    if event_type == DISPUTE_CREATED:
        run = start_dispute_run(runtime, relevant_data(obj), source=f"webhook:{event_id}")
        execution_id = run.execution_id
        action = "started" if run.started else "duplicate" if execution_id else "in_progress"
    _record_event(runtime.home, event_id, event_type, obj.get("id"), action, execution_id)
    return IntakeResult(event_id, event_type, action, execution_id)


def dispute_runs(home: Path) -> dict[str, str]:
    """Every dispute with a run: dispute id -> execution id."""
    with connect(home) as conn:
        rows = conn.execute(
            "SELECT dispute_id, execution_id FROM dispute_runs WHERE execution_id IS NOT NULL"
        ).fetchall()
    return {row["dispute_id"]: row["execution_id"] for row in rows}


def webhook_events(home: Path) -> list[dict[str, Any]]:
    """Every webhook event received, in the order first received."""
    with connect(home) as conn:
        rows = conn.execute(
            "SELECT * FROM webhook_events ORDER BY first_received_at, event_id"
        ).fetchall()
    return [dict(row) for row in rows]


def _claim(home: Path, dispute_id: str, payment_intent: Any, source: str) -> _Claim:
    now = time.time()
    with connect(home) as conn, write_transaction(conn):
        row = conn.execute(
            "SELECT execution_id, claimed_at FROM dispute_runs WHERE dispute_id = ?",
            (dispute_id,),
        ).fetchone()
        if row is None:
            conn.execute(
                "INSERT INTO dispute_runs (dispute_id, payment_intent, source, claimed_at)"
                " VALUES (?, ?, ?, ?)",
                (dispute_id, payment_intent, source, now),
            )
            return _Claim(None, owned=True)
        if row["execution_id"] is not None:
            return _Claim(row["execution_id"], owned=False)
        if now - row["claimed_at"] < CLAIM_STALE_SECONDS:
            return _Claim(None, owned=False)
        conn.execute(
            "UPDATE dispute_runs SET source = ?, claimed_at = ? WHERE dispute_id = ?",
            (source, now, dispute_id),
        )
        return _Claim(None, owned=True, previous_claim=row["claimed_at"])


def _find_run(
    runtime: AgentRuntime, agent: Agent[Any], dispute_id: str, claimed_at: float
) -> str | None:
    """A run for the dispute started since an abandoned claim (newest runs first)."""
    offset, page = 0, 100
    while True:
        runs = runtime.runs(agent=agent.name, limit=page, offset=offset)
        for run in runs:
            started = run.started_at.timestamp() if run.started_at else 0.0
            if started < claimed_at - _ADOPT_SKEW_SECONDS:
                return None
            if _input_dispute(run.input) == dispute_id:
                return run.execution_id
        if len(runs) < page:
            return None
        offset += page


def _input_dispute(value: Any) -> str | None:
    try:
        data = json.loads(value) if isinstance(value, str) else None
    except ValueError:
        return None
    return data.get("dispute_id") if isinstance(data, dict) else None


def _record(home: Path, dispute_id: str, execution_id: str) -> None:
    with connect(home) as conn:
        conn.execute(
            "UPDATE dispute_runs SET execution_id = ? WHERE dispute_id = ?",
            (execution_id, dispute_id),
        )


def _release(home: Path, dispute_id: str) -> None:
    with connect(home) as conn:
        conn.execute(
            "DELETE FROM dispute_runs WHERE dispute_id = ? AND execution_id IS NULL",
            (dispute_id,),
        )


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
        # A redelivery counts as one more delivery; it keeps the first outcome unless that
        # outcome was "in_progress", which the later delivery settles.
        conn.execute(
            "INSERT INTO webhook_events VALUES (?, ?, ?, ?, ?, 1, ?, ?)"
            " ON CONFLICT (event_id) DO UPDATE SET deliveries = deliveries + 1,"
            " last_received_at = excluded.last_received_at,"
            " action = CASE WHEN action = 'in_progress' THEN excluded.action ELSE action END,"
            " execution_id = COALESCE(execution_id, excluded.execution_id)",
            (event_id, event_type, object_id, action, execution_id, now, now),
        )
