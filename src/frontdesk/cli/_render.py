"""Rich rendering of runs: tables that fit any terminal, a timeline for one run, JSON.

Tables are built with :func:`fit_table`: ids, statuses, times and numbers are never wrapped
or cut; free text is cut with an ellipsis; and when the terminal is too narrow for every
column, the least useful columns are left out (``--json`` always has everything).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from rich.cells import cell_len
from rich.console import Console, JustifyMethod
from rich.table import Table
from rich.text import Text

from .._budget import format_amount
from .._prices import Prices, add_costs
from ..events import Event
from ..runtime import RunResult
from ..store import ApprovalRecord, JournalRow

STATUS_STYLE = {
    "completed": "green",
    "failed": "red",
    "cancelled": "dim",
    "waiting_approval": "yellow",
    "running": "cyan",
    "budget_exceeded": "magenta",
}

MIN_TEXT_WIDTH = 8
"""The narrowest a free-text column is squeezed to before columns are left out."""

NARROW_TRACE = 100
"""Below this many columns, a run's trace prints one event per line instead of a table."""


def short(value: Any, width: int = 80) -> str:
    """A one-line preview of a value."""
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def when(dt: datetime | None) -> str:
    """A UTC timestamp to the second, or ``-``."""
    return dt.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S") if dt else "-"


def when_ts(ts: float | None) -> str:
    """:func:`when` for a Unix timestamp."""
    return when(datetime.fromtimestamp(ts, tz=UTC)) if ts is not None else "-"


def iso(ts: float | datetime | None) -> str | None:
    """An ISO 8601 UTC timestamp for JSON output."""
    if ts is None:
        return None
    dt = ts if isinstance(ts, datetime) else datetime.fromtimestamp(ts, tz=UTC)
    return dt.astimezone(UTC).isoformat()


def status_text(status: str) -> Text:
    """A status in its colour."""
    return Text(status, style=STATUS_STYLE.get(status, ""))


def print_json(console: Console, data: Any) -> None:
    """Print ``data`` as indented JSON, exactly (no markup, no emoji codes, no wrapping)."""
    console.file.write(json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n")
    console.file.flush()


def print_line(console: Console, text: str | Text) -> None:
    """Print one line, cut with an ellipsis at the terminal's width (never wrapped)."""
    console.print(text, no_wrap=True, overflow="ellipsis", markup=False, highlight=False)


# -- tables that fit ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Col:
    """A table column and how it gives way when the terminal is narrow."""

    header: str
    """The column's heading."""
    kind: Literal["key", "text"] = "text"
    """``key`` cells (ids, statuses, times, numbers) are shown whole on one line; ``text``
    cells are cut with an ellipsis to fit."""
    drop: int = 0
    """When the table does not fit, columns with the highest ``drop`` are left out first;
    0 means the column is always shown."""
    justify: JustifyMethod = "left"
    """Alignment of the cells."""


Cell = str | Text


def _as_text(cell: Cell) -> Text:
    if isinstance(cell, Text):
        return cell
    return Text(" ".join(cell.split()) if "\n" in cell else cell)


def _table_width(columns: Sequence[Col], widths: Sequence[int]) -> int:
    """Width of a table with the default box: a border and two spaces of padding per column."""
    return sum(widths) + 3 * len(columns) + 1


def fit_table(
    title: str | None,
    columns: Sequence[Col],
    rows: Iterable[Sequence[Cell]],
    width: int,
) -> Table:
    """A table of ``rows`` that fits in ``width`` columns without wrapping any cell.

    Key columns keep their full width; text columns shrink (down to :data:`MIN_TEXT_WIDTH`)
    and are cut with an ellipsis; if that is not enough, droppable columns are left out,
    highest ``drop`` first.
    """
    cells = [[_as_text(cell) for cell in row] for row in rows]
    natural = [
        max([cell_len(col.header)] + [row[i].cell_len for row in cells])
        for i, col in enumerate(columns)
    ]
    keep = list(range(len(columns)))

    def needed(indexes: list[int]) -> int:
        widths = [
            natural[i] if columns[i].kind == "key" else min(natural[i], MIN_TEXT_WIDTH)
            for i in indexes
        ]
        return _table_width([columns[i] for i in indexes], widths)

    while needed(keep) > width:
        droppable = [i for i in keep if columns[i].drop > 0]
        if not droppable:
            break
        keep.remove(max(droppable, key=lambda i: (columns[i].drop, i)))

    table = Table(title=title)
    for i in keep:
        col = columns[i]
        if col.kind == "key":
            table.add_column(col.header, justify=col.justify, no_wrap=True, min_width=natural[i])
        else:
            # Wrappable for Rich's layout (so it is the column that shrinks), but every
            # cell is a single line cut with an ellipsis.
            table.add_column(
                Text(col.header, no_wrap=True, overflow="ellipsis"),
                justify=col.justify,
                overflow="ellipsis",
            )
    for row in cells:
        out: list[Text] = []
        for i in keep:
            cell = row[i].copy()
            if columns[i].kind == "text":
                cell.no_wrap = True
                cell.overflow = "ellipsis"
            out.append(cell)
        table.add_row(*out)
    return table


# -- runs ----------------------------------------------------------------------------------------

RUN_COLUMNS = (
    Col("execution id", "key"),
    Col("status", "key"),
    Col("agent"),
    Col("last agent", drop=4),
    Col("started", "key", drop=3),
    Col("duration", "key", drop=5, justify="right"),
    Col("tokens", "key", drop=2, justify="right"),
    Col("est. cost", "key", drop=2, justify="right"),
    Col("input", drop=1),
)


def money(value: float | None) -> str:
    """An estimated cost in US dollars, or ``n/a`` when a model had no price."""
    if value is None:
        return "n/a"
    return f"${value:.4f}" if value < 1 else f"${value:,.2f}"


def runs_table(
    runs: list[RunResult], width: int, costs: dict[str, float | None] | None = None
) -> Table:
    """The run history as a table that fits in ``width`` columns, with each run's estimated
    cost from ``costs`` (by execution id)."""
    costs = costs or {}
    rows = [
        (
            r.execution_id,
            status_text(r.status),
            r.agent,
            r.last_agent or "-",
            when(r.started_at),
            f"{r.duration:.2f}s" if r.duration is not None else "-",
            str(r.usage.total_tokens),
            money(costs.get(r.execution_id)),
            short(r.input, 200),
        )
        for r in runs
    ]
    return fit_table("runs", RUN_COLUMNS, rows, width)


def run_dict(r: RunResult, cost: float | None = None) -> dict[str, Any]:
    """A run summary for ``--json`` output (``cost_usd``: its estimated cost)."""
    return {
        "execution_id": r.execution_id,
        "status": r.status,
        "agent": r.agent,
        "last_agent": r.last_agent,
        "started_at": iso(r.started_at),
        "finished_at": iso(r.finished_at),
        "duration": r.duration,
        "usage": r.usage.to_dict(),
        "cost_usd": cost,
        "budget": r.budget.to_dict() if r.budget is not None else None,
        "input": r.input,
        "error": r.error,
        "note": r.note,
        "model": r.model_label,
        "conversation_id": r.conversation_id,
    }


# -- approvals -----------------------------------------------------------------------------------

APPROVAL_COLUMNS = (
    Col("approval id", "key"),
    Col("run", "key", drop=3),
    Col("agent", drop=5),
    Col("tool"),
    Col("arguments", drop=2),
    Col("status", "key"),
    Col("requested", "key", drop=6),
    Col("decided by", drop=4),
)


def approvals_table(records: list[ApprovalRecord], width: int) -> Table:
    """Approval requests as a table that fits in ``width`` columns."""
    rows = [
        (a.approval_id, a.execution_id, a.agent or "", a.tool_name, _shown_args(a),
         status_text(a.status), when_ts(a.requested_at), a.decided_by or "")
        for a in records
    ]  # fmt: skip
    return fit_table("approvals", APPROVAL_COLUMNS, rows, width)


def _shown_args(a: ApprovalRecord) -> str:
    if a.edited_args is not None:
        return f"edited: {short(a.edited_args, 190)}"
    return short(a.args, 200)


def approval_dict(a: ApprovalRecord) -> dict[str, Any]:
    """An approval request for ``--json`` output."""
    return {
        "approval_id": a.approval_id,
        "execution_id": a.execution_id,
        "agent": a.agent,
        "tool_name": a.tool_name,
        "call_id": a.call_id,
        "args": a.args,
        "status": a.status,
        "requested_at": iso(a.requested_at),
        "decided_at": iso(a.decided_at),
        "decided_by": a.decided_by,
        "note": a.note,
        "reason": a.reason,
        "edited_args": a.edited_args,
        "deadline": iso(a.deadline),
        "on_timeout": a.on_timeout,
        "escalated_at": iso(a.escalated_at),
    }


# -- one run ---------------------------------------------------------------------------------------


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
        # The id first: a line cut at a narrow terminal's edge still shows it.
        return (
            f"⏸ [{event.data.get('approval_id')}] approval required for "
            f"{event.tool_name}({short(event.args or {}, 80)})"
        )
    if event.type == "approval_decided":
        d = event.data
        why = (
            f": {d.get('reason')}"
            if d.get("reason")
            else (f": {d.get('note')}" if d.get("note") else "")
        )
        edited = (
            f" with edited arguments {short(d['edited_args'], 80)}" if d.get("edited_args") else ""
        )
        decided = f"{d.get('decision')} by {d.get('by') or 'someone'}"
        return f"✔ {event.tool_name} {decided}{edited}{why}"
    if event.type == "approval_escalated":
        return f"⚠ [{event.data.get('approval_id')}] {event.tool_name}: {event.data.get('note')}"
    if event.type == "guardrail":
        d = event.data
        behavior = (d.get("behavior") or {}).get("type")
        verdict = (
            "tripped"
            if d.get("tripwire_triggered")
            else ("rejected" if behavior == "reject_content" else "passed")
        )
        on_tool = f" on {event.tool_name}" if event.tool_name else ""
        return f"🛡 {d.get('kind')} guardrail {d.get('guardrail')}{on_tool}: {verdict}"
    if event.type == "budget_exceeded":
        limit = str(event.data.get("limit"))
        return (
            f"■ budget exceeded: {limit} is {format_amount(limit, event.data.get('limit_value'))}"
            f", {format_amount(limit, event.data.get('used'))} used; stopped before model call "
            f"{event.data.get('model_call')}"
        )
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


TIMELINE_COLUMNS = (
    Col("#", "key", justify="right"),
    Col("time", "key"),
    Col("agent", drop=1),
    Col("step"),
    Col("duration", "key", justify="right"),
    Col("tokens", "key", justify="right"),
)


def _timeline_rows(result: RunResult) -> list[tuple[str, str, str, str, str, str]]:
    steps = {s.key: s for s in result.steps}
    start = result.started_at.timestamp() if result.started_at else None
    rows = []
    for event in result.events:
        offset = f"+{event.at - start:.3f}s" if start is not None else "-"
        duration = ""
        row = _step_for(event, steps)
        if event.type == "tool_result" and "duration_ms" in event.data:
            duration = f"{event.data['duration_ms']:.1f} ms"
        elif row is not None and row.finished_at and event.type == "tool_result":
            duration = f"{(row.finished_at - row.started_at) * 1000:.1f} ms"
        tokens = str(event.usage.total_tokens) if event.usage is not None else ""
        rows.append(
            (str(event.seq), offset, event.agent or "", describe_event(event), duration, tokens)
        )
    return rows


def print_timeline(console: Console, result: RunResult) -> None:
    """Every event of a run, with durations of tool calls and tokens of model calls.

    A table on a wide terminal; one line per event (cut at the edge) on a narrow one.
    """
    rows = _timeline_rows(result)
    if console.width >= NARROW_TRACE:
        console.print(
            fit_table(f"run {result.execution_id}", TIMELINE_COLUMNS, rows, console.width)
        )
        return
    console.print(f"run {result.execution_id}", markup=False, highlight=False, soft_wrap=True)
    seq_width = max((len(r[0]) for r in rows), default=1)
    for seq, offset, _agent, step, duration, tokens in rows:
        extra = "".join(f" · {v}" for v in (duration, f"{tokens} tokens" if tokens else "") if v)
        print_line(console, f"{seq:>{seq_width}} {offset} {step}{extra}")


MODEL_CALL_COLUMNS = (
    Col("call", "key", justify="right"),
    Col("agent"),
    Col("model", drop=2),
    Col("latency", "key", justify="right"),
    Col("requests", "key", drop=1, justify="right"),
    Col("input", "key", justify="right"),
    Col("output", "key", justify="right"),
    Col("total", "key", justify="right"),
    Col("est. cost", "key", drop=3, justify="right"),
)


def model_calls_table(result: RunResult, width: int, prices: Prices | None = None) -> Table:
    """Tokens and latency of each model call, and the total; with ``prices``, the model
    each call ran on and its estimated cost."""
    rows: list[tuple[Cell, ...]] = []
    costs: list[float | None] = []
    for step in result.steps:
        if step.kind != "model":
            continue
        usage = json.loads(step.data_json or "{}").get("usage", {})
        latency = (
            f"{(step.finished_at - step.started_at) * 1000:.0f} ms" if step.finished_at else "-"
        )
        model = step.name or result.model_label
        inp, out = int(usage.get("input_tokens", 0)), int(usage.get("output_tokens", 0))
        costs.append(prices.cost(model, inp, out) if prices is not None else None)
        rows.append((
            step.key.split(":", 1)[1], step.agent or "", model or "unknown", latency,
            str(usage.get("requests", 0)), str(inp), str(out), str(usage.get("total_tokens", 0)),
            money(costs[-1]),
        ))  # fmt: skip
    u = result.usage
    total = (
        "total", "", "", "", str(u.requests), str(u.input_tokens), str(u.output_tokens),
        str(u.total_tokens), money(add_costs(costs)),
    )  # fmt: skip
    rows.append(tuple(Text(cell, style="bold") for cell in total))
    columns = MODEL_CALL_COLUMNS if prices is not None else MODEL_CALL_COLUMNS[:-1]
    if prices is None:
        rows = [row[:-1] for row in rows]
    return fit_table("model calls", columns, rows, width)
