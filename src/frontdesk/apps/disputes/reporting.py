"""Disputes as Stripe sees them, joined with the runs that handle them, and their statistics."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import stripe

from ...errors import RunNotFound
from ...runtime import AgentRuntime, RunResult
from .agents import accept_dispute_agent, investigator_agent
from .intake import dispute_runs
from .submission import SubmissionRequest, find_submission
from .tools import OPEN_STATUSES

DUE_SOON_HOURS = 48.0
"""Open disputes due within this many hours are flagged."""

WON_STATUSES = ("won", "warning_closed")
"""Closed in the merchant's favour (an inquiry that closes without a chargeback counts too)."""

Handling = Literal["accepted", "contested", "pending"]


@dataclass(frozen=True)
class DisputeSummary:
    """One dispute, with the run that handles it if there is one."""

    dispute_id: str
    payment_intent: str | None
    amount: int
    currency: str
    reason: str
    status: str
    due_by: int | None
    """When evidence is due (Unix seconds)."""
    submission_count: int = 0
    has_evidence: bool = False
    execution_id: str | None = None
    run_status: str | None = None
    handled_by: str | None = None
    """The agent the run ended (or waits) with."""
    submission: SubmissionRequest | None = None
    """The request to submit the staged evidence, if one was made."""

    @property
    def is_open(self) -> bool:
        """Whether the dispute still waits for the merchant's answer."""
        return self.status in OPEN_STATUSES

    def hours_left(self, now: float | None = None) -> float | None:
        """Hours until evidence is due (negative once past due)."""
        if self.due_by is None:
            return None
        return (self.due_by - (time.time() if now is None else now)) / 3600

    def due_within(self, hours: float = DUE_SOON_HOURS, now: float | None = None) -> bool:
        """Whether the dispute is open and due within ``hours`` (or past due)."""
        left = self.hours_left(now)
        return self.is_open and left is not None and left <= hours

    @property
    def staged_not_submitted(self) -> bool:
        """Whether evidence is staged on the open dispute and was never submitted."""
        return self.is_open and self.has_evidence and not self.submission_count

    @property
    def evidence(self) -> str:
        """Where the evidence stands: ``submitted``, ``staged, ...`` (and what became of the
        request to submit it), or ``none``."""
        if self.submission_count:
            return "submitted"
        if not self.has_evidence:
            return "none"
        request = self.submission
        if request is None:
            return "staged, submission not requested"
        if request.waiting:
            return "staged, submission awaits approval"
        if request.decision == "rejected":
            return "staged, submission rejected"
        return f"staged, submission {request.status}"

    @property
    def handling(self) -> Handling:
        """Accepted (closed without contest), contested (evidence), or not decided yet."""
        if self.handled_by == accept_dispute_agent.name:
            return "accepted"
        if self.handled_by == investigator_agent.name or self.submission_count or self.has_evidence:
            return "contested"
        if self.status in ("lost", "warning_closed"):
            return "accepted"
        return "pending"


@dataclass(frozen=True)
class DisputeReport:
    """Counts over a set of disputes, and the win rate of the contested ones that closed."""

    total: int
    by_status: dict[str, int] = field(default_factory=dict)
    by_reason: dict[str, int] = field(default_factory=dict)
    by_handling: dict[str, int] = field(default_factory=dict)
    won: int = 0
    """Contested disputes decided for the merchant."""
    lost: int = 0
    """Contested disputes decided against the merchant."""

    @property
    def accepted(self) -> int:
        """Disputes accepted (closed without a contest)."""
        return self.by_handling.get("accepted", 0)

    @property
    def contested(self) -> int:
        """Disputes answered with evidence."""
        return self.by_handling.get("contested", 0)

    @property
    def win_rate(self) -> float | None:
        """Won / (won + lost) over contested disputes that closed; None before any closes."""
        decided = self.won + self.lost
        return self.won / decided if decided else None


def summarize(
    dispute: Mapping[str, Any],
    run: RunResult | None = None,
    submission: SubmissionRequest | None = None,
) -> DisputeSummary:
    """A :class:`DisputeSummary` of a Stripe dispute (as a dict), its run and its submission
    request."""
    details = dispute.get("evidence_details") or {}
    intent = dispute.get("payment_intent")
    return DisputeSummary(
        dispute_id=dispute["id"],
        payment_intent=intent.get("id") if isinstance(intent, Mapping) else intent,
        amount=int(dispute.get("amount") or 0),
        currency=str(dispute.get("currency") or ""),
        reason=str(dispute.get("reason") or "unknown"),
        status=str(dispute.get("status") or "unknown"),
        due_by=details.get("due_by"),
        submission_count=int(details.get("submission_count") or 0),
        has_evidence=bool(details.get("has_evidence")),
        execution_id=run.execution_id if run is not None else None,
        run_status=run.status if run is not None else None,
        handled_by=run.last_agent if run is not None else None,
        submission=submission,
    )


def collect_disputes(
    runtime: AgentRuntime, client: stripe.StripeClient, limit: int | None = None
) -> list[DisputeSummary]:
    """Every dispute in Stripe (newest first, up to ``limit``), joined with its run and its
    submission request."""
    runs = dispute_runs(runtime)
    pages = client.v1.disputes.list(params={"limit": 100}).auto_paging_iter()
    summaries: list[DisputeSummary] = []
    for dispute in pages:
        if limit is not None and len(summaries) >= limit:
            break
        run, submission = _run(runtime, runs.get(dispute.id)), find_submission(runtime, dispute.id)
        summaries.append(summarize(dispute.to_dict(), run, submission))
    return summaries


def build_report(disputes: Iterable[DisputeSummary]) -> DisputeReport:
    """Count disputes by status, reason and handling; tally contested outcomes."""
    items = list(disputes)
    contested = [d for d in items if d.handling == "contested"]
    return DisputeReport(
        total=len(items),
        by_status=dict(Counter(d.status for d in items).most_common()),
        by_reason=dict(Counter(d.reason for d in items).most_common()),
        by_handling=dict(Counter(d.handling for d in items).most_common()),
        won=sum(1 for d in contested if d.status in WON_STATUSES),
        lost=sum(1 for d in contested if d.status == "lost"),
    )


def _run(runtime: AgentRuntime, execution_id: str | None) -> RunResult | None:
    if execution_id is None:
        return None
    try:
        return runtime.get(execution_id)
    except RunNotFound:
        return None
