"""Rich views for debugging from history: a run's numbered steps, its lineage, and two runs
side by side (``frontdesk runs show``, ``runs fork``, ``runs diff``)."""

from __future__ import annotations

from typing import Any

from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

from ..debugging import DiffSide, Lineage, RunDiff, Step, TurnView
from ._render import NARROW_TRACE, Col, fit_table, print_line, short, status_text

STEP_COLUMNS = (
    Col("step", "key", justify="right"),
    Col("kind", "key"),
    Col("agent", drop=2),
    Col("what"),
    Col("duration", "key", drop=3, justify="right"),
    Col("tokens", "key", drop=1, justify="right"),
)


def _step_cells(step: Step) -> tuple[str, str, str, str, str, str]:
    duration = f"{step.seconds * 1000:.1f} ms" if step.seconds is not None else ""
    tokens = str(step.usage.total_tokens) if step.usage is not None else ""
    return (
        str(step.number), step.kind, step.agent or "", step.describe(200), duration, tokens,
    )  # fmt: skip


def print_steps(console: Console, steps: list[Step]) -> None:
    """The run's steps, numbered as ``frontdesk runs fork --at`` takes them."""
    title = "steps (fork at one: frontdesk runs fork ID --at STEP)"
    if not steps:
        return
    if console.width >= NARROW_TRACE:
        console.print(fit_table(title, STEP_COLUMNS, map(_step_cells, steps), console.width))
        return
    console.print(title, markup=False, highlight=False, soft_wrap=True)
    for step in steps:
        number, kind, _agent, what, duration, tokens = _step_cells(step)
        extra = "".join(f" · {v}" for v in (duration, f"{tokens} tokens" if tokens else "") if v)
        print_line(console, f"step {number} {kind}: {what}{extra}")


def lineage_lines(lineage: Lineage, steps: int | None = None) -> list[str]:
    """Lines saying where a run was forked from and which runs were forked from it."""
    lines = []
    parent = lineage.parent
    if parent is not None:
        replayed = (
            f"steps 1 to {parent.fork_step - 1} replayed from its journal"
            if parent.fork_step > 1
            else "nothing replayed"
        )
        lines.append(
            f"forked from {parent.execution_id} at step {parent.fork_step} ({replayed}); "
            f"compare: frontdesk runs diff {parent.execution_id} {lineage.execution_id}"
        )
    if lineage.forks:
        forks = ", ".join(
            f"{f.execution_id} (at step {f.fork_step}, {f.status})" for f in lineage.forks
        )
        lines.append(f"forks: {forks}")
    return lines


# -- two runs side by side ------------------------------------------------------------------


def _turn_text(turn: TurnView | None) -> Text:
    if turn is None:
        return Text("—", style="dim")
    text = Text(f"step {turn.step} · {turn.agent or '?'}", style="bold")
    if turn.handoff is not None:
        text.append(f"\n→ hands off to {turn.handoff}")
    for tool in turn.tools:
        gate = f" [{tool.approval}]" if tool.approval else ""
        text.append(f"\n→ {tool.name}({short(tool.args, 90)}){gate}")
        if tool.approval != "pending":
            text.append(f"\n  ← {short(tool.result, 90)}", style="dim")
    if turn.text is not None:
        text.append(f"\n“{short(turn.text, 160)}”")
    latency = f" · {turn.seconds * 1000:.0f} ms" if turn.seconds is not None else ""
    text.append(f"\n{turn.tokens} tokens{latency}", style="dim")
    return text


def _side_value(side: DiffSide, field: str) -> str:
    value: Any = getattr(side, field)
    if field == "agent_path":
        return " → ".join(value)
    if field == "usage":
        return f"{value.total_tokens} ({value.input_tokens} in, {value.output_tokens} out)"
    if field in ("duration", "model_seconds", "tool_seconds"):
        return f"{value:.3f}s" if value is not None else "-"
    if field == "output":
        return short(value, 200) if value is not None else "-"
    return str(value) if value is not None else "-"


SUMMARY_FIELDS = (
    ("status", "status"),
    ("agent path", "agent_path"),
    ("model", "model"),
    ("steps", "steps"),
    ("output", "output"),
    ("tokens", "usage"),
    ("duration", "duration"),
    ("model time", "model_seconds"),
    ("tool time", "tool_seconds"),
)


def diff_view(diff: RunDiff) -> Group:
    """Two runs side by side: the first divergence, each turn, then their totals."""
    a, b = diff.a, diff.b
    if diff.divergence is None:
        verdict = Text("no divergence: the same steps to the same outcome", style="green")
    else:
        d = diff.divergence
        where = f"model call {d.model_call}" if d.model_call is not None else "the run"
        steps = " / ".join(f"{n} step {s}" for n, s in (("A", d.step_a), ("B", d.step_b)) if s)
        verdict = Text(f"first divergence at {where}", style="bold yellow")
        if steps:
            verdict.append(f" ({steps})", style="yellow")
        verdict.append(f": {d.reason}\n", style="bold yellow")
        verdict.append(d.message)
    turns = Table(expand=True, show_lines=True)
    turns.add_column("call", justify="right", no_wrap=True)
    turns.add_column(f"A {a.execution_id}", ratio=1)
    turns.add_column(f"B {b.execution_id}", ratio=1)
    turns.add_column("", no_wrap=True)
    for pair in diff.turns:
        mark = Text("=", style="green") if pair.reason is None else Text(pair.reason, style="red")
        turns.add_row(str(pair.model_call), _turn_text(pair.a), _turn_text(pair.b), mark)
    totals = Table(expand=True)
    totals.add_column("", no_wrap=True)
    totals.add_column("A", ratio=1)
    totals.add_column("B", ratio=1)
    for label, field in SUMMARY_FIELDS:
        left, right = _side_value(a, field), _side_value(b, field)
        style = (
            "" if left == right or field in ("duration", "model_seconds", "tool_seconds") else "red"
        )
        if field == "status":
            totals.add_row(label, status_text(a.status), status_text(b.status))
        else:
            totals.add_row(label, Text(left, style=style), Text(right, style=style))
    head = Text(f"A {a.execution_id}   B {b.execution_id}", style="bold")
    for side, name in ((a, "A"), (b, "B")):
        if side.parent_id is not None:
            head.append(
                f"\n{name} is a fork of {side.parent_id} at step {side.fork_step}", style="dim"
            )
    return Group(head, verdict, turns, totals)


__all__ = ["diff_view", "lineage_lines", "print_steps"]
