"""Rich rendering of runs: tables for history, a timeline for one run."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from rich.table import Table
from rich.text import Text

from ..events import Event
from ..runtime import RunResult
from ..store import JournalRow

STATUS_STYLE = {
    "completed": "green",
    "failed": "red",
    "cancelled": "dim",
    "waiting_approval": "yellow",
    "running": "cyan",
}


def short(value: Any, width: int = 80) -> str:
    """A one-line preview of a value."""
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def when(dt: datetime | None) -> str:
    return dt.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S") if dt else "-"


def status_text(status: str) -> Text:
    return Text(status, style=STATUS_STYLE.get(status, ""))


def runs_table(runs: list[RunResult]) -> Table:
    """The run history as a table."""
    table = Table(title="runs", show_lines=False)
    for column in (
        "execution id",
        "status",
        "agent",
        "last agent",
        "started",
        "duration",
        "tokens",
        "input",
    ):
        table.add_column(column, overflow="fold" if column == "execution id" else "ellipsis")
    for r in runs:
        table.add_row(
            r.execution_id,
            status_text(r.status),
            r.agent,
            r.last_agent or "-",
            when(r.started_at),
            f"{r.duration:.2f}s" if r.duration is not None else "-",
            str(r.usage.total_tokens),
            Text(short(r.input, 40)),
        )
    return table


def describe_event(event: Event) -> str:
    """One line for an event, as in ``frontdesk support ask``."""
    if event.type == "agent_start":
        return f"● {event.agent} started"
    if event.type == "handoff":
        return f"→ routed to {event.target}"
    if event.type == "tool_call":
        extra = (
            " (retry after an interrupted attempt)" if event.data.get("interrupted_attempt") else ""
        )
        return f"→ {event.tool_name}({short(event.args or {}, 100)}){extra}"
    if event.type == "tool_result":
        return f"← {event.tool_name}: {short(event.result, 100)}"
    if event.type == "message":
        return f"{event.agent}: {short(event.output, 200)}"
    if event.type == "approval_required":
        return (
            f"⏸ approval required for {event.tool_name}({short(event.args or {}, 80)}) "
            f"[{event.data.get('approval_id')}]"
        )
    if event.type == "approval_decided":
        d = event.data
        why = (
            f": {d.get('reason')}"
            if d.get("reason")
            else (f": {d.get('note')}" if d.get("note") else "")
        )
        return f"✔ {event.tool_name} {d.get('decision')} by {d.get('by') or 'someone'}{why}"
    if event.type == "done":
        return "✓ done"
    if event.type == "error":
        return f"✗ {event.data.get('error')}"
    return event.type


def _step_for(event: Event, steps: dict[str, JournalRow]) -> JournalRow | None:
    if event.type in ("tool_call", "tool_result"):
        for key, row in steps.items():
            if row.kind == "tool" and key.endswith(f":{event.call_id}"):
                return row
    return None


def timeline(result: RunResult) -> Table:
    """Every event of a run, with durations of tool calls and tokens of model calls."""
    table = Table(title=f"run {result.execution_id}", show_lines=False)
    table.add_column("#", justify="right")
    table.add_column("time")
    table.add_column("agent")
    table.add_column("step", overflow="fold")
    table.add_column("duration", justify="right")
    table.add_column("tokens", justify="right")
    steps = {s.key: s for s in result.steps}
    start = result.started_at.timestamp() if result.started_at else None
    for event in result.events:
        offset = f"+{event.at - start:.3f}s" if start is not None else "-"
        duration = ""
        row = _step_for(event, steps)
        if event.type == "tool_result" and "duration_ms" in event.data:
            duration = f"{event.data['duration_ms']:.1f} ms"
        elif row is not None and row.finished_at and event.type == "tool_result":
            duration = f"{(row.finished_at - row.started_at) * 1000:.1f} ms"
        tokens = str(event.usage.total_tokens) if event.usage is not None else ""
        table.add_row(
            str(event.seq), offset, event.agent or "", Text(describe_event(event)), duration, tokens
        )
    return table


def model_calls_table(result: RunResult) -> Table:
    """Tokens and latency of each model call, and the total."""
    table = Table(title="model calls")
    for column in ("call", "agent", "latency", "requests", "input", "output", "total"):
        table.add_column(column, justify="right" if column not in ("agent",) else "left")
    for step in result.steps:
        if step.kind != "model":
            continue
        usage = json.loads(step.data_json or "{}").get("usage", {})
        latency = (
            f"{(step.finished_at - step.started_at) * 1000:.0f} ms" if step.finished_at else "-"
        )
        table.add_row(
            step.key.split(":", 1)[1], step.agent or "", latency, str(usage.get("requests", 0)),
            str(usage.get("input_tokens", 0)), str(usage.get("output_tokens", 0)),
            str(usage.get("total_tokens", 0)),
        )  # fmt: skip
    u = result.usage
    table.add_row(
        "total",
        "",
        "",
        str(u.requests),
        str(u.input_tokens),
        str(u.output_tokens),
        str(u.total_tokens),
        style="bold",
    )
    return table
