"""Usage and cost reports: what runs spent, per run and totalled by agent, model and day.

Tokens come from each run's journal (one row per model call); costs are estimated from them
with a :class:`~frontdesk.Prices` table, the runtime's unless another is given. A total that
includes calls on a model without a price has no cost estimate (``None``): a partial sum would
mislead.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from ._prices import Prices
from .store import UsageRow


@dataclass(frozen=True)
class UsageTotals:
    """Runs, model calls, tokens and estimated cost, summed."""

    runs: int = 0
    """Runs that made at least one of these calls."""
    model_calls: int = 0
    """Model calls."""
    input_tokens: int = 0
    """Input tokens."""
    output_tokens: int = 0
    """Output tokens."""
    total_tokens: int = 0
    """Tokens."""
    cost_usd: float | None = 0.0
    """Estimated US dollars; None when some calls ran on a model without a price."""

    def to_dict(self) -> dict[str, Any]:
        """The totals as a plain dict."""
        return asdict(self)


@dataclass(frozen=True)
class UsageStats:
    """What the runs created in a time window spent, in total and by agent, model and day."""

    since: float | None
    """The window's start (Unix time, inclusive), or None for the first run."""
    until: float | None
    """The window's end (Unix time, exclusive), or None for now."""
    runs: int
    """Runs created in the window, whether or not they called a model."""
    statuses: dict[str, int]
    """How many of them have each status."""
    total: UsageTotals
    """Every model call of those runs."""
    by_agent: dict[str, UsageTotals] = field(default_factory=dict)
    """By the agent that made the calls (``runs``: runs in which it made one)."""
    by_model: dict[str, UsageTotals] = field(default_factory=dict)
    """By the model the calls ran on (``unknown`` when it was not recorded)."""
    by_day: dict[str, UsageTotals] = field(default_factory=dict)
    """By the UTC day (``YYYY-MM-DD``) each run was created on."""

    def to_dict(self) -> dict[str, Any]:
        """The report as plain JSON-ready data."""
        return {
            "since": self.since,
            "until": self.until,
            "runs": self.runs,
            "statuses": dict(self.statuses),
            "total": self.total.to_dict(),
            "by_agent": {k: v.to_dict() for k, v in self.by_agent.items()},
            "by_model": {k: v.to_dict() for k, v in self.by_model.items()},
            "by_day": {k: v.to_dict() for k, v in self.by_day.items()},
        }


class _Sum:
    def __init__(self) -> None:
        self.runs: set[str] = set()
        self.calls = self.input = self.output = self.total = 0
        self.cost: float | None = 0.0

    def add(self, row: UsageRow, cost: float | None) -> None:
        self.runs.add(row.execution_id)
        self.calls += row.calls
        self.input += row.input_tokens
        self.output += row.output_tokens
        self.total += row.total_tokens
        self.cost = None if self.cost is None or cost is None else self.cost + cost

    def totals(self) -> UsageTotals:
        cost = round(self.cost, 10) if self.cost is not None else None
        return UsageTotals(len(self.runs), self.calls, self.input, self.output, self.total, cost)


def row_cost(row: UsageRow, prices: Prices) -> float | None:
    """The estimated cost of one usage row."""
    return prices.cost(row.model, row.input_tokens, row.output_tokens)


def run_costs(
    rows: Iterable[UsageRow], execution_ids: Iterable[str], prices: Prices
) -> dict[str, float | None]:
    """Each run's estimated cost (0.0 for a run without model calls)."""
    sums = {execution_id: _Sum() for execution_id in execution_ids}
    for row in rows:
        sums.setdefault(row.execution_id, _Sum()).add(row, row_cost(row, prices))
    return {execution_id: s.totals().cost_usd for execution_id, s in sums.items()}


def build_stats(
    rows: Iterable[UsageRow],
    statuses: dict[str, int],
    prices: Prices,
    since: float | None,
    until: float | None,
) -> UsageStats:
    """Totals of ``rows`` overall and by agent, model and day, priced by ``prices``."""
    total = _Sum()
    groups: dict[str, dict[str, _Sum]] = {
        "agent": defaultdict(_Sum),
        "model": defaultdict(_Sum),
        "day": defaultdict(_Sum),
    }
    for row in rows:
        cost = row_cost(row, prices)
        total.add(row, cost)
        groups["agent"][row.agent or "unknown"].add(row, cost)
        groups["model"][row.model or "unknown"].add(row, cost)
        groups["day"][row.day].add(row, cost)

    def ordered(by: str) -> dict[str, UsageTotals]:
        items = groups[by].items()
        if by == "day":
            return {key: s.totals() for key, s in sorted(items)}
        # Biggest spenders first.
        return {key: s.totals() for key, s in sorted(items, key=lambda kv: (-kv[1].total, kv[0]))}

    return UsageStats(
        since=since,
        until=until,
        runs=sum(statuses.values()),
        statuses=dict(sorted(statuses.items())),
        total=total.totals(),
        by_agent=ordered("agent"),
        by_model=ordered("model"),
        by_day=ordered("day"),
    )


__all__ = ["UsageStats", "UsageTotals", "build_stats", "row_cost", "run_costs"]
