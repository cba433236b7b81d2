"""Comparing two runs step by step, aligned by structure rather than by time.

Each run is read as a sequence of turns, one per model call: the agent that made it, where it
handed off, the tools it called (with their arguments, results and approval decisions) and
what it said. Turn ``k`` of one run is compared with turn ``k`` of the other, so runs whose
steps took different times, or whose parallel tool calls finished in another order, still line
up. The first turn that differs is the first divergence, with its reason: another agent,
another handoff, another tool, other arguments, other text, another approval decision or
another tool result; then one run ending before the other; then another status or output.
Tokens and latency are reported for both runs, never counted as a divergence.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from .._results import RunResult
from ..engine._conversation import runner_input
from ..events import Usage
from ._steps import Step, agent_path, run_steps

if TYPE_CHECKING:
    from ..runtime import AgentRuntime

DivergenceReason = Literal[
    "input",
    "agent",
    "handoff",
    "tool",
    "arguments",
    "text",
    "approval",
    "result",
    "ended",
    "status",
    "output",
]


@dataclass(frozen=True)
class ToolView:
    """One tool call of a turn."""

    name: str
    """The tool."""
    args: Any
    """Its arguments."""
    result: Any
    """What it returned (None while it waits for approval or never finished)."""
    step: int
    """Its step number in its run."""
    seconds: float | None
    """How long it ran."""
    approval: str | None
    """``approved``, ``rejected`` or ``pending`` when it needed a human, else None."""


@dataclass(frozen=True)
class TurnView:
    """What one model call of a run led to."""

    model_call: int
    """The model call's number in its run (1, 2, ...)."""
    step: int
    """The model call's step number in its run."""
    agent: str | None
    """The agent that made the call."""
    handoff: str | None
    """The agent it handed off to, if it did."""
    tools: tuple[ToolView, ...]
    """The tool calls it asked for, in the order it asked."""
    text: str | None
    """What it said."""
    tokens: int
    """The call's tokens."""
    seconds: float | None
    """The call's latency."""


@dataclass(frozen=True)
class TurnPair:
    """Turn ``model_call`` of both runs, and why they differ (None when they do not)."""

    model_call: int
    """Which turn."""
    a: TurnView | None
    """Run A's turn, or None if run A has no such turn."""
    b: TurnView | None
    """Run B's turn, or None if run B has no such turn."""
    reason: DivergenceReason | None
    """Why the two differ, or None when they are the same."""
    message: str | None
    """The difference in words."""


@dataclass(frozen=True)
class DiffSide:
    """One run of the comparison, summed up."""

    execution_id: str
    """The run."""
    status: str
    """Its status."""
    agent_path: list[str]
    """The agents it went through, in order."""
    handoffs: list[tuple[str, str]]
    """Its handoffs, as (from, to)."""
    tool_calls: list[tuple[str, Any]]
    """Its tool calls, as (tool, arguments), in order."""
    output: Any
    """Its final output."""
    model: str | None
    """The model override it ran on (None: each agent's own)."""
    steps: int
    """How many steps it recorded."""
    usage: Usage
    """Its tokens."""
    duration: float | None
    """Seconds from start to finish."""
    model_seconds: float
    """Seconds spent in its model calls."""
    tool_seconds: float
    """Seconds spent in its tool calls."""
    parent_id: str | None = None
    """The run it was forked from, if any."""
    fork_step: int | None = None
    """The step it runs live from, if it is a fork."""


@dataclass(frozen=True)
class Divergence:
    """Where two runs first differ, and why."""

    reason: DivergenceReason
    """``input``, ``agent``, ``handoff``, ``tool``, ``arguments``, ``text``, ``approval``,
    ``result``, ``ended``, ``status`` or ``output``."""
    model_call: int | None
    """The turn (model call) where they differ, if it is a turn."""
    step_a: int | None
    """The step of run A where it happens."""
    step_b: int | None
    """The step of run B where it happens."""
    message: str
    """What differs, in words."""


@dataclass(frozen=True)
class RunDiff:
    """Two runs compared step by step: ``frontdesk runs diff A B``, ``runtime.diff(a, b)``."""

    a: DiffSide
    """Run A."""
    b: DiffSide
    """Run B."""
    turns: list[TurnPair]
    """Both runs' turns, side by side."""
    divergence: Divergence | None
    """The first difference, or None when the runs took the same steps to the same end."""

    @property
    def same(self) -> bool:
        """Whether the runs took the same steps to the same outcome."""
        return self.divergence is None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict of the comparison."""
        data = dataclasses.asdict(self)
        data["same"] = self.same
        return data


def _turns(steps: list[Step]) -> list[TurnView]:
    turns: list[TurnView] = []
    for model in (s for s in steps if s.kind == "model"):
        k = model.model_call
        order = {request.call_id: i for i, request in enumerate(model.requests)}
        calls = [s for s in steps if s.kind in ("tool", "approval") and s.model_call == k]
        calls.sort(key=lambda s: order.get((s.call_key or ":").split(":", 1)[1], len(order)))
        handoff = next((s.name for s in steps if s.kind == "handoff" and s.model_call == k), None)
        tools = tuple(
            ToolView(
                s.name or "?",
                s.args,
                s.result,
                s.number,
                s.seconds,
                s.approval.status if s.approval is not None else None,
            )
            for s in calls
        )
        tokens = model.usage.total_tokens if model.usage is not None else 0
        turns.append(
            TurnView(
                k, model.number, model.agent, handoff, tools, model.text, tokens, model.seconds
            )
        )
    return turns


def _side(result: RunResult, steps: list[Step], lineage: tuple[str | None, int | None]) -> DiffSide:
    return DiffSide(
        execution_id=result.execution_id,
        status=result.status,
        agent_path=agent_path(result.agent, steps),
        handoffs=[(s.agent or "?", s.name or "?") for s in steps if s.kind == "handoff"],
        tool_calls=[(s.name or "?", s.args) for s in steps if s.kind in ("tool", "approval")],
        output=result.output,
        model=result.model_label,
        steps=len(steps),
        usage=result.usage,
        duration=result.duration,
        model_seconds=sum(s.seconds or 0.0 for s in steps if s.kind == "model"),
        tool_seconds=sum(s.seconds or 0.0 for s in steps if s.kind == "tool"),
        parent_id=lineage[0],
        fork_step=lineage[1],
    )


def _show(value: Any, width: int = 80) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str, ensure_ascii=False)
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def _differs(a: Any, b: Any) -> str:
    """``a`` against ``b`` in words: the keys that differ when both are objects."""
    if isinstance(a, dict) and isinstance(b, dict):
        keys = [k for k in dict.fromkeys([*a, *b]) if a.get(k, _MISSING) != b.get(k, _MISSING)]
        if keys and len(keys) <= 3:
            return "; ".join(
                f"{k} {_quoted(a.get(k, _MISSING))} in A, {_quoted(b.get(k, _MISSING))} in B"
                for k in keys
            )
    return f"A {_show(a)}, B {_show(b)}"


_MISSING: Any = object()


def _quoted(value: Any) -> str:
    if value is _MISSING:
        return "(none)"
    return _show(json.dumps(value, default=str, ensure_ascii=False), 60)


def _calls(turn: TurnView) -> str:
    if turn.tools:
        return ", ".join(t.name for t in turn.tools)
    if turn.handoff is not None:
        return f"no tool (it hands off to {turn.handoff})"
    return f"no tool (it says {_show(turn.text, 60)})" if turn.text else "no tool"


def compare_turns(a: TurnView, b: TurnView) -> tuple[DivergenceReason, str] | None:
    """Why turn ``a`` and turn ``b`` differ, in the order a reader needs it; None if alike."""
    if a.agent != b.agent:
        return "agent", f"another agent: {a.agent} in A, {b.agent} in B"
    if a.handoff != b.handoff:
        return "handoff", (
            f"another handoff: A hands off to {a.handoff or 'nobody'}"
            f"{'' if a.handoff else f' (it calls {_calls(a)})'}, B to {b.handoff or 'nobody'}"
            f"{'' if b.handoff else f' (it calls {_calls(b)})'}"
        )
    if [t.name for t in a.tools] != [t.name for t in b.tools]:
        return "tool", f"another tool: A calls {_calls(a)}, B calls {_calls(b)}"
    for ta, tb in zip(a.tools, b.tools, strict=True):
        if ta.args != tb.args:
            return "arguments", f"other arguments to {ta.name}: {_differs(ta.args, tb.args)}"
    if a.text != b.text:
        return "text", f"other text: A says {_show(a.text)}, B says {_show(b.text)}"
    for ta, tb in zip(a.tools, b.tools, strict=True):
        if ta.approval != tb.approval:
            return "approval", (
                f"another decision on {ta.name}: {ta.approval or 'no approval'} in A, "
                f"{tb.approval or 'no approval'} in B"
            )
    for ta, tb in zip(a.tools, b.tools, strict=True):
        if ta.result != tb.result:
            return "result", (
                f"{ta.name} returned something else: {_differs(ta.result, tb.result)}"
            )
    return None


def _ended(k: int, long: TurnView, which: str, status: str) -> str:
    """Run ``which`` has no turn ``k``; the other run's is ``long``."""
    other = "B" if which == "A" else "A"
    after = f"after model call {k - 1}" if k > 1 else "before any model call"
    return (
        f"{which} ends {after} ({status}); {other} goes on with model call {k} by "
        f"{long.agent} ({_calls(long)})"
    )


def diff_runs(
    a: RunResult,
    b: RunResult,
    lineage_a: tuple[str | None, int | None] = (None, None),
    lineage_b: tuple[str | None, int | None] = (None, None),
    inputs: tuple[Any, Any] | None = None,
) -> RunDiff:
    """Compare run ``a`` with run ``b`` (see the module's docstring). ``inputs`` are what the
    runs' agents were given, when that is more than their ``input`` (a conversation turn's
    earlier items)."""
    steps_a, steps_b = run_steps(a.steps, a.approvals), run_steps(b.steps, b.approvals)
    turns_a, turns_b = _turns(steps_a), _turns(steps_b)
    pairs: list[TurnPair] = []
    divergence: Divergence | None = None
    input_a, input_b = inputs if inputs is not None else (a.input, b.input)
    if input_a != input_b:
        divergence = Divergence(
            "input", None, None, None,
            f"other input: A {_show(input_a)}, B {_show(input_b)}",
        )  # fmt: skip
    for i in range(max(len(turns_a), len(turns_b))):
        ta = turns_a[i] if i < len(turns_a) else None
        tb = turns_b[i] if i < len(turns_b) else None
        found: tuple[DivergenceReason, str] | None
        if ta is not None and tb is not None:
            found = compare_turns(ta, tb)
        elif tb is not None:
            found = "ended", _ended(i + 1, tb, "A", a.status)
        else:
            assert ta is not None
            found = "ended", _ended(i + 1, ta, "B", b.status)
        reason, message = found if found is not None else (None, None)
        pairs.append(TurnPair(i + 1, ta, tb, reason, message))
        if divergence is None and reason is not None and message is not None:
            divergence = Divergence(
                reason,
                i + 1,
                ta.step if ta is not None else None,
                tb.step if tb is not None else None,
                message,
            )
    if divergence is None and a.status != b.status:
        divergence = Divergence(
            "status", None, None, None,
            f"the same steps, another outcome: A is {a.status}, B is {b.status}",
        )  # fmt: skip
    if divergence is None and a.output != b.output:
        divergence = Divergence(
            "output", None, None, None,
            f"the same steps, another output: A {_show(a.output)}, B {_show(b.output)}",
        )  # fmt: skip
    return RunDiff(_side(a, steps_a, lineage_a), _side(b, steps_b, lineage_b), pairs, divergence)


def compare(runtime: AgentRuntime, a: str, b: str) -> RunDiff:
    """Runs ``a`` and ``b`` of ``runtime`` compared, with their lineage and what their agents
    were given (a turn of a conversation and its fork compare alike)."""
    sides = []
    given = []
    for execution_id in (a, b):
        parent = runtime.lineage(execution_id).parent
        sides.append((parent.execution_id, parent.fork_step) if parent else (None, None))
        given.append(runner_input(runtime.store, runtime.store.require_run(execution_id)))
    return diff_runs(runtime.get(a), runtime.get(b), sides[0], sides[1], (given[0], given[1]))


__all__ = [
    "DiffSide",
    "Divergence",
    "DivergenceReason",
    "RunDiff",
    "ToolView",
    "TurnPair",
    "TurnView",
    "compare",
    "compare_turns",
    "diff_runs",
]
