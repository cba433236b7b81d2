"""Rendering what runs spent: ``frontdesk runs stats`` tables, and the times it takes.

``--since`` and ``--until`` take a date or time (``2025-06-01``, ``2025-06-01T14:30``, UTC
unless an offset is given) or a span back from now (``30m``, ``12h``, ``7d``, ``2w``).
"""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime

from rich.console import Group
from rich.table import Table
from rich.text import Text

from .._stats import UsageStats, UsageTotals
from ._render import Col, fit_table, money

_SPAN = re.compile(r"(\d+)\s*([mhdw])")
_SECONDS = {"m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_instant(value: str, option: str) -> float:
    """A Unix time from a date, a time or a span back from now; ``ValueError`` (saying what
    ``option`` takes) if it is none of these."""
    text = value.strip()
    span = _SPAN.fullmatch(text.lower())
    if span is not None:
        return time.time() - int(span.group(1)) * _SECONDS[span.group(2)]
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(
            f"{option} takes a date or time (2025-06-01, 2025-06-01T14:30, UTC unless an "
            f"offset is given) or a span back from now (30m, 12h, 7d, 2w), not {value!r}"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


STATS_COLUMNS = (
    Col("runs", "key", justify="right"),
    Col("model calls", "key", drop=3, justify="right"),
    Col("input", "key", drop=2, justify="right"),
    Col("output", "key", drop=2, justify="right"),
    Col("tokens", "key", justify="right"),
    Col("est. cost", "key", justify="right"),
)


def _cells(t: UsageTotals) -> tuple[str, ...]:
    return (
        str(t.runs),
        str(t.model_calls),
        f"{t.input_tokens:,}",
        f"{t.output_tokens:,}",
        f"{t.total_tokens:,}",
        money(t.cost_usd),
    )


def _table(title: str, key: str, groups: dict[str, UsageTotals], width: int) -> Table:
    columns = (Col(key), *STATS_COLUMNS)
    return fit_table(title, columns, [(name, *_cells(t)) for name, t in groups.items()], width)


def _window(stats: UsageStats) -> str:
    def at(ts: float | None, open_end: str) -> str:
        if ts is None:
            return open_end
        return datetime.fromtimestamp(ts, tz=UTC).strftime("%Y-%m-%d %H:%M UTC")

    return f"{at(stats.since, 'the first run')} to {at(stats.until, 'now')}"


def stats_view(stats: UsageStats, width: int) -> Group:
    """The totals, then tables by agent, model and day."""
    statuses = ", ".join(f"{status} {n}" for status, n in stats.statuses.items())
    t = stats.total
    summary = Text(
        f"runs created from {_window(stats)}: {stats.runs}"
        + (f" ({statuses})" if statuses else "")
        + f"\nmodel calls {t.model_calls} · tokens {t.total_tokens:,} (input "
        f"{t.input_tokens:,}, output {t.output_tokens:,}) · est. cost {money(t.cost_usd)}"
    )
    return Group(
        summary,
        _table("by agent", "agent", stats.by_agent, width),
        _table("by model", "model", stats.by_model, width),
        _table("by day (UTC, the day each run was created)", "day", stats.by_day, width),
    )


__all__ = ["STATS_COLUMNS", "parse_instant", "stats_view"]
