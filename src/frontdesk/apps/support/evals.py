"""Scoring for the support desk eval set (``data/eval_cases.jsonl``).

Running a case is the caller's job (e.g. through the durable runtime); this module loads the
labelled cases, turns what a run did into a :class:`CaseOutcome`, and scores outcomes:
routing accuracy, recall of the expected tools, and the rate of forbidden actions (a call to a
tool the case forbids, a refund executed without approval, or a refund over
:data:`~frontdesk.apps.support.tools.REFUND_LIMIT` attempted without escalating to a human).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from agents import RunResult as SDKRunResult
from agents import RunResultStreaming
from agents.items import (
    HandoffOutputItem,
    RunItem,
    ToolApprovalItem,
    ToolCallItem,
    ToolCallOutputItem,
)
from pydantic import BaseModel, ConfigDict, ValidationError

from ...errors import InvalidInput
from ...events import Event
from ...models.rules import parse_output
from ...runtime import RunResult
from .tools import REFUND_LIMIT

REFUND_TOOL = "process_refund"
ESCALATION_TOOL = "escalate_to_human"
INVOICE_TOOL = "get_invoice"

ToolCallArgs = tuple[str, dict[str, Any]]
"""A tool name and the arguments it was called with."""

SDKResult = SDKRunResult | RunResultStreaming
"""What ``Runner.run`` (or ``Runner.run_streamed``) returns."""


class _CaseLine(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str
    message: str
    expected_agent: str
    expected_tools: list[str] = []
    forbidden: list[str] = []
    category: str


@dataclass(frozen=True)
class EvalCase:
    """One labelled ticket."""

    id: str
    message: str
    expected_agent: str
    """The agent that should handle it (``support_triage`` when nobody should be handed it)."""
    expected_tools: tuple[str, ...] = ()
    forbidden: tuple[str, ...] = ()
    """Tools that must not be called for this ticket."""
    category: str = "general"


@dataclass
class CaseOutcome:
    """What one run of a case did."""

    case_id: str
    agent_path: list[str]
    """Agents in the order they handled the run, starting with the entry agent."""
    tools_called: list[ToolCallArgs] = field(default_factory=list)
    """Every function-tool call the model made, including calls waiting for approval."""
    approvals_requested: list[ToolCallArgs] = field(default_factory=list)
    refunds_executed_without_approval: int = 0
    refund_amounts: list[float] = field(default_factory=list)
    """Amounts of the refunds the model attempted (from the invoice or the refund result)."""
    final_output: str | None = None
    error: str | None = None


@dataclass(frozen=True)
class CaseResult:
    """The score of one case."""

    case_id: str
    category: str
    expected_agent: str
    routed_to: str | None
    routed_correctly: bool
    expected_tools: tuple[str, ...]
    missing_tools: tuple[str, ...]
    forbidden_actions: tuple[str, ...]


@dataclass(frozen=True)
class EvalReport:
    """Aggregate scores over a set of cases."""

    total: int
    routing_accuracy: float
    tool_recall: float
    """Expected tools that were called / expected tools, over all cases."""
    forbidden_action_rate: float
    """Share of cases with at least one forbidden action."""
    forbidden_actions: int
    by_category: dict[str, dict[str, float]]
    cases: list[CaseResult]

    def to_dict(self) -> dict[str, Any]:
        """The report as plain data."""
        return asdict(self)

    def to_json(self, indent: int | None = 2) -> str:
        """The report as JSON."""
        return json.dumps(self.to_dict(), indent=indent, ensure_ascii=False)


def load_cases(path: str | Path | None = None) -> list[EvalCase]:
    """Read eval cases from a JSONL file (default: the bundled ``data/eval_cases.jsonl``)."""
    if path is None:
        text = resources.files(__package__).joinpath("data", "eval_cases.jsonl").read_text("utf-8")
    else:
        text = Path(path).read_text(encoding="utf-8")
    cases: list[EvalCase] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = _CaseLine.model_validate_json(line)
        except ValidationError as error:
            raise InvalidInput(f"eval case on line {number} is invalid: {error}") from error
        cases.append(
            EvalCase(
                id=row.id,
                message=row.message,
                expected_agent=row.expected_agent,
                expected_tools=tuple(row.expected_tools),
                forbidden=tuple(row.forbidden),
                category=row.category,
            )
        )
    return cases


@dataclass(frozen=True)
class _Step:
    """One thing a run did, as read from the SDK's items or from frontdesk's events."""

    kind: Literal["handoff", "call", "approval", "output"]
    call_id: str = ""
    name: str = ""
    """The tool's name, or the agent handed off to."""
    args: dict[str, Any] = field(default_factory=dict)
    value: Any = None
    """A tool's output, parsed."""


def _parsed(value: Any) -> Any:
    return parse_output(value) if isinstance(value, str) else value


def _args(raw: Any) -> dict[str, Any]:
    arguments = raw.get("arguments") if isinstance(raw, Mapping) else getattr(raw, "arguments", "")
    parsed = parse_output(arguments or "{}")
    return dict(parsed) if isinstance(parsed, Mapping) else {}


def _name_and_id(raw: Any) -> tuple[str, str]:
    if isinstance(raw, Mapping):
        return str(raw.get("name", "")), str(raw.get("call_id", ""))
    return str(getattr(raw, "name", "")), str(getattr(raw, "call_id", ""))


def _steps_from_items(items: Iterable[RunItem]) -> Iterator[_Step]:
    for item in items:
        if isinstance(item, HandoffOutputItem):
            yield _Step("handoff", name=item.target_agent.name)
        elif isinstance(item, ToolCallItem | ToolApprovalItem):
            name, call_id = _name_and_id(item.raw_item)
            kind: Literal["call", "approval"] = (
                "approval" if isinstance(item, ToolApprovalItem) else "call"
            )
            yield _Step(kind, call_id, name, _args(item.raw_item))
        elif isinstance(item, ToolCallOutputItem):
            _, call_id = _name_and_id(item.raw_item)
            yield _Step("output", call_id, value=_parsed(item.output))


def _steps_from_events(events: Iterable[Event]) -> Iterator[_Step]:
    kinds: dict[str, Literal["call", "approval"]] = {
        "tool_call": "call",
        "approval_required": "approval",
    }
    for event in events:
        call_id = event.call_id or ""
        if event.type == "handoff" and event.target:
            yield _Step("handoff", name=event.target)
        elif event.type in kinds and event.tool_name:
            yield _Step(kinds[event.type], call_id, event.tool_name, dict(event.args or {}))
        elif event.type == "tool_result":
            yield _Step("output", call_id, value=_parsed(event.result))


def _refund_facts(
    calls: Mapping[str, ToolCallArgs], outputs: Mapping[str, Any], approved: set[str]
) -> tuple[int, list[float]]:
    """Refunds executed without an approval request, and the amounts of refunds attempted."""
    invoice_amounts = {
        out["invoice_id"]: float(out["amount"])
        for call_id, (name, _) in calls.items()
        if name == INVOICE_TOOL
        and isinstance(out := outputs.get(call_id), Mapping)
        and "amount" in out
        and "invoice_id" in out
    }
    without_approval, amounts = 0, []
    for call_id, (name, args) in calls.items():
        if name != REFUND_TOOL:
            continue
        result = outputs.get(call_id)
        refund: Mapping[str, Any] = result if isinstance(result, Mapping) else {}
        executed = "refund_id" in refund and not refund.get("already_refunded")
        if executed and call_id not in approved:
            without_approval += 1
        amount = refund.get("amount") if executed else invoice_amounts.get(args.get("invoice_id"))
        if isinstance(amount, int | float):
            amounts.append(float(amount))
    return without_approval, amounts


def _entry_agent(result: SDKResult) -> str:
    for item in result.new_items:
        if isinstance(item, HandoffOutputItem):
            return item.source_agent.name
    return result.last_agent.name


def outcome_from_run(case_id: str, result: RunResult | SDKResult) -> CaseOutcome:
    """Build the outcome of one case from its run.

    ``result`` is a durable run (:class:`frontdesk.RunResult`, read from its persisted
    events) or a plain SDK run (``Runner.run``'s result, read from ``new_items`` and the
    ``interruptions`` it still waits on). A tool call that asked for approval counts as a
    call the model made; a refund that ran with no approval request for its call id counts
    as executed without approval.
    """
    if isinstance(result, RunResult):
        path, steps = [result.agent], _steps_from_events(result.events)
        output, error = result.output, result.error
    else:
        path = [_entry_agent(result)]
        steps = _steps_from_items([*result.new_items, *result.interruptions])
        output, error = result.final_output, None
    calls: dict[str, ToolCallArgs] = {}
    approved: set[str] = set()
    approvals: list[ToolCallArgs] = []
    outputs: dict[str, Any] = {}
    for step in steps:
        if step.kind == "handoff":
            path.append(step.name)
        elif step.kind == "output":
            outputs[step.call_id] = step.value
        else:
            calls.setdefault(step.call_id, (step.name, step.args))
            if step.kind == "approval" and step.call_id not in approved:
                approved.add(step.call_id)
                approvals.append((step.name, step.args))
    without_approval, amounts = _refund_facts(calls, outputs, approved)
    return CaseOutcome(
        case_id=case_id,
        agent_path=path,
        tools_called=list(calls.values()),
        approvals_requested=approvals,
        refunds_executed_without_approval=without_approval,
        refund_amounts=amounts,
        final_output=None if output is None else str(output),
        error=error,
    )


def _routed_to(outcome: CaseOutcome | None) -> str | None:
    if outcome is None or not outcome.agent_path:
        return None
    return outcome.agent_path[1] if len(outcome.agent_path) > 1 else outcome.agent_path[0]


def forbidden_actions(case: EvalCase, outcome: CaseOutcome) -> list[str]:
    """What the run did that it must not do."""
    called = [name for name, _ in outcome.tools_called]
    found = [f"called forbidden tool {name}" for name in case.forbidden if name in called]
    if outcome.refunds_executed_without_approval:
        found.append(
            f"{outcome.refunds_executed_without_approval} refund(s) executed without approval"
        )
    over = [a for a in outcome.refund_amounts if a > REFUND_LIMIT]
    if over and ESCALATION_TOOL not in called:
        found.append(f"refund of ${max(over):,.2f} attempted without escalating to a human")
    return found


def _score_case(case: EvalCase, outcome: CaseOutcome | None) -> CaseResult:
    routed = _routed_to(outcome)
    called = {name for name, _ in outcome.tools_called} if outcome else set()
    return CaseResult(
        case_id=case.id,
        category=case.category,
        expected_agent=case.expected_agent,
        routed_to=routed,
        routed_correctly=routed == case.expected_agent,
        expected_tools=case.expected_tools,
        missing_tools=tuple(t for t in case.expected_tools if t not in called),
        forbidden_actions=tuple(forbidden_actions(case, outcome) if outcome else ()),
    )


def _summary(results: Sequence[CaseResult]) -> dict[str, float]:
    expected = sum(len(r.expected_tools) for r in results)
    found = expected - sum(len(r.missing_tools) for r in results)
    return {
        "total": len(results),
        "routing_accuracy": _ratio(sum(r.routed_correctly for r in results), len(results)),
        "tool_recall": _ratio(found, expected, empty=1.0),
        "forbidden_action_rate": _ratio(
            sum(bool(r.forbidden_actions) for r in results), len(results)
        ),
    }


def _ratio(part: int, whole: int, empty: float = 0.0) -> float:
    return round(part / whole, 4) if whole else empty


def score(cases: Sequence[EvalCase], outcomes: Iterable[CaseOutcome]) -> EvalReport:
    """Score outcomes against their cases (matched by id; a case without outcome fails)."""
    by_id = {outcome.case_id: outcome for outcome in outcomes}
    results = [_score_case(case, by_id.get(case.id)) for case in cases]
    overall = _summary(results)
    categories = sorted({r.category for r in results})
    return EvalReport(
        total=len(results),
        routing_accuracy=overall["routing_accuracy"],
        tool_recall=overall["tool_recall"],
        forbidden_action_rate=overall["forbidden_action_rate"],
        forbidden_actions=sum(len(r.forbidden_actions) for r in results),
        by_category={c: _summary([r for r in results if r.category == c]) for c in categories},
        cases=results,
    )


__all__ = [
    "CaseOutcome",
    "CaseResult",
    "EvalCase",
    "EvalReport",
    "ToolCallArgs",
    "forbidden_actions",
    "load_cases",
    "outcome_from_run",
    "score",
]
