"""A run's steps as people count them: step 1, 2, ... in the order the journal records them.

Every model response, tool call and handoff of a run is a row of its journal; its place in
the journal's order (``ordinal``) is its step number, the number ``frontdesk runs show``
prints and ``runs fork --at`` takes. A tool call still waiting for a human's decision is not
in the journal yet: it is listed after the journal's steps, as a step of kind ``approval``.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

from ..events import Usage
from ..store import ApprovalRecord, JournalRow, decode_value, output_text

StepKind = Literal["model", "tool", "handoff", "approval"]


@dataclass(frozen=True)
class ToolRequest:
    """A function call that a model response asked for (a tool, or a handoff's tool)."""

    name: str
    """The function's name."""
    args: Any
    """Its arguments, parsed from JSON (the raw text if they are not JSON)."""
    call_id: str
    """The model's id for the call."""


@dataclass(frozen=True)
class Step:
    """One step of a run."""

    number: int
    """1, 2, ... in the journal's order; pending approvals come after the journal's steps."""
    key: str
    """The journal key (``model:<k>``, ``tool:<k>:<call id>``, ``handoff:<k>``), or
    ``approval:<k>:<call id>`` for a tool call waiting for a decision."""
    kind: StepKind
    """``model``, ``tool``, ``handoff``, or ``approval`` (a tool call waiting for a human)."""
    state: str
    """``done``; ``started`` for a tool whose result was never recorded; ``pending`` for an
    approval."""
    agent: str | None
    """The agent that took the step."""
    model_call: int
    """The model call the step belongs to: its own number, or the one that asked for it."""
    name: str | None = None
    """The tool's name, or the agent a handoff led to."""
    args: Any = None
    """A tool call's arguments."""
    result: Any = None
    """A tool call's result."""
    text: str | None = None
    """The text a model response said."""
    requests: tuple[ToolRequest, ...] = ()
    """The function calls a model response asked for."""
    usage: Usage | None = None
    """A model call's tokens."""
    seconds: float | None = None
    """How long the step took (its last attempt)."""
    approval: ApprovalRecord | None = None
    """The human decision a tool call waited for (pending for an ``approval`` step)."""
    handoff: str | None = None
    """The agent a model response handed off to."""

    @property
    def call_key(self) -> str | None:
        """``<k>:<call id>`` for a tool call or an approval, else None."""
        if self.kind in ("tool", "approval"):
            return self.key.split(":", 1)[1]
        return None

    def describe(self, width: int = 100) -> str:
        """One line saying what the step did."""
        if self.kind == "handoff":
            return f"{self.agent} → {self.name}"
        if self.kind == "tool":
            gate = ""
            if self.approval is not None:
                gate = f" [{self.approval.status} by {self.approval.decided_by or 'someone'}]"
            if self.state != "done":
                return f"{self.name}{gate}({_short(self.args, width)}): no result recorded"
            return f"{self.name}{gate}({_short(self.args, width)}) → {_short(self.result, width)}"
        if self.kind == "approval":
            approval_id = self.approval.approval_id if self.approval else "?"
            return f"⏸ {self.name}({_short(self.args, width)}) waits for approval {approval_id}"
        if self.handoff is not None:
            return f"hands off to {self.handoff}"
        parts = [f"calls {', '.join(r.name for r in self.requests)}"] if self.requests else []
        if self.text is not None:
            parts.append(f"says {_short(self.text, width)}")
        return "; ".join(parts) or "answers nothing"


def _short(value: Any, width: int) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str, ensure_ascii=False)
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def _args(text: str | None) -> Any:
    if not text:
        return {}
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def _seconds(row: JournalRow) -> float | None:
    return None if row.finished_at is None else max(0.0, row.finished_at - row.started_at)


def _model_step(number: int, row: JournalRow) -> Step:
    data = json.loads(row.data_json or "{}")
    items = data.get("output") or []
    requests = tuple(
        ToolRequest(str(item.get("name")), _args(item.get("arguments")), str(item.get("call_id")))
        for item in items
        if isinstance(item, dict) and item.get("type") == "function_call"
    )
    return Step(
        number,
        row.key,
        "model",
        row.state,
        row.agent,
        int(row.key.split(":", 1)[1]),
        text=output_text(items),
        requests=requests,
        usage=Usage.from_dict(data.get("usage")),
        seconds=_seconds(row),
    )


def _step(number: int, row: JournalRow, decisions: dict[str, ApprovalRecord]) -> Step:
    if row.kind == "model":
        return _model_step(number, row)
    model_call = int(row.key.split(":", 2)[1])
    if row.kind == "handoff":
        return Step(
            number, row.key, "handoff", row.state, row.agent, model_call, name=row.name,
            seconds=_seconds(row),
        )  # fmt: skip
    call_key = row.key.split(":", 1)[1]
    return Step(
        number,
        row.key,
        "tool",
        row.state,
        row.agent,
        model_call,
        name=row.name,
        args=_args(row.args_json),
        result=decode_value(row.data_json) if row.data_json is not None else None,
        seconds=_seconds(row),
        approval=decisions.get(call_key),
    )


def run_steps(
    journal: Iterable[JournalRow], approvals: Iterable[ApprovalRecord] = ()
) -> list[Step]:
    """A run's steps, numbered from 1: its journal in order, then its pending approvals."""
    by_call = {a.call_key: a for a in approvals}
    rows = sorted(journal, key=lambda r: r.ordinal)
    steps = [_step(n, row, by_call) for n, row in enumerate(rows, start=1)]
    targets = {s.model_call: s.name for s in steps if s.kind == "handoff"}
    steps = [
        dataclasses.replace(s, handoff=targets[s.model_call])
        if s.kind == "model" and s.model_call in targets
        else s
        for s in steps
    ]
    for approval in by_call.values():
        if approval.status != "pending":
            continue
        steps.append(
            Step(
                len(steps) + 1,
                f"approval:{approval.call_key}",
                "approval",
                "pending",
                approval.agent,
                int(approval.call_key.split(":", 1)[0]),
                name=approval.tool_name,
                args=approval.args,
                approval=approval,
            )
        )
    return steps


def handoff_requests(steps: list[Step]) -> dict[int, ToolRequest]:
    """For each model call that handed off, the function call that did (the one of its
    requests that is no tool call of the run)."""
    handed = {s.model_call for s in steps if s.kind == "handoff"}
    tools = {s.call_key for s in steps if s.kind in ("tool", "approval")}
    found: dict[int, ToolRequest] = {}
    for step in steps:
        if step.kind != "model" or step.model_call not in handed:
            continue
        for request in step.requests:
            if f"{step.model_call}:{request.call_id}" not in tools:
                found[step.model_call] = request
                break
    return found


def agent_path(start: str, steps: Iterable[Step]) -> list[str]:
    """The agents a run went through: where it started, then where each handoff led."""
    return [start, *(s.name or "?" for s in steps if s.kind == "handoff")]


__all__ = ["Step", "StepKind", "ToolRequest", "agent_path", "handoff_requests", "run_steps"]
