"""Runs, approvals and conversations as the API returns them and the console shows them.

Everything here reads what :class:`~frontdesk.AgentRuntime` returns (``RunResult`` with its
events, steps and approvals); nothing reads the store. Values are plain JSON: times are ISO
8601 UTC strings, tool arguments and results are JSON values, text is never pre-escaped (the
templates escape it).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from agents import Agent, FunctionTool

from .._budget import format_amount
from .._prices import Prices, add_costs
from .._results import RunResult
from ..cli._render import approval_dict, iso
from ..events import Event, Usage
from ..runtime import AgentRuntime
from ..store import ApprovalRecord, JournalRow, app_of, plain_value
from ._agentview import AgentView, build_view, root_agent, run_path


def text_of(value: Any) -> str:
    """A value as text: strings as they are, anything else as JSON."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(plain_value(value), ensure_ascii=False, default=str)


def preview(value: Any, width: int = 160) -> str:
    """One line of a value, cut with an ellipsis."""
    text = " ".join(text_of(value).split())
    return text if len(text) <= width else text[: width - 1] + "…"


@dataclass(frozen=True)
class Presenter:
    """Turns the runtime's results into API payloads, with costs from ``prices``."""

    runtime: AgentRuntime
    """Where agent graphs are found again (its registry) to price calls and draw graphs."""
    prices: Prices | None = None
    """The per-model price table; None: the runtime's (``runtime.prices``)."""

    @property
    def table(self) -> Prices:
        """The price table in use."""
        return self.runtime.prices if self.prices is None else self.prices

    # -- models and costs ---------------------------------------------------------------------

    def model_of(
        self, result: RunResult, agent_name: str | None, root: Agent[Any] | None
    ) -> str | None:
        """The model a call by ``agent_name`` ran on, for calls that did not record it: the
        run's override, else the agent's own."""
        if result.model_label:
            return result.model_label
        if root is not None and agent_name:
            from ..engine._agents import iter_graph

            for agent in iter_graph(root):
                if agent.name == agent_name and isinstance(agent.model, str):
                    return agent.model
        return None

    def run_cost(self, result: RunResult) -> float | None:
        """The run's estimated cost: each model call's tokens on the model it ran on."""
        return self.runtime.costs([result.execution_id], prices=self.table)[result.execution_id]

    # -- runs ------------------------------------------------------------------------------------

    def run_summary(self, r: RunResult) -> dict[str, Any]:
        """A run as listed: no events."""
        return {
            "execution_id": r.execution_id,
            "status": r.status,
            "app": app_of(r.agent_ref) if r.agent_ref else None,
            "agent": r.agent,
            "last_agent": r.last_agent,
            "input": text_of(r.input),
            "output": text_of(r.output) if r.output is not None else None,
            "error": r.error,
            "note": r.note,
            "model": r.model_label,
            "conversation_id": r.conversation_id,
            "started_at": iso(r.started_at),
            "finished_at": iso(r.finished_at),
            "duration": r.duration,
            "usage": r.usage.to_dict(),
            "cost": self.run_cost(r),
        }

    def run_detail(self, r: RunResult) -> dict[str, Any]:
        """A run with its steps, events, approvals, model calls, costs and agent view."""
        root = root_agent(self.runtime, r.agent_ref)
        events = r.events
        steps = r.steps
        view = self.agent_view(r, events, root)
        calls = self.model_calls(r, steps, root)
        detail = self.run_summary(r)
        detail.update(
            {
                "output_value": plain_value(r.output) if r.output is not None else None,
                "context": plain_value(r.context) if r.context is not None else None,
                "events": [event_dict(e) for e in events],
                "steps": [step_dict(s) for s in steps],
                "approvals": [approval_dict(a) for a in r.approvals],
                "model_calls": calls,
                "cost": add_costs([c["cost"] for c in calls]) if calls else 0.0,
                "timeline": timeline(r, events, steps),
                "agent_view": view.to_dict(),
                "context_changes": context_changes(steps),
                "guardrails": guardrail_verdicts(root, view.path, r, events),
            }
        )
        return detail

    def agent_view(
        self, r: RunResult, events: list[Event] | None = None, root: Agent[Any] | None = None
    ) -> AgentView:
        """The run's agent graph, with its path and current agent marked."""
        root = root if root is not None else root_agent(self.runtime, r.agent_ref)
        path, taken, tools = run_path(r.events if events is None else events, r.agent)
        return build_view(root, path, taken, tools, r.last_agent or (path[-1] if path else None))

    def model_calls(
        self, r: RunResult, steps: list[JournalRow], root: Agent[Any] | None
    ) -> list[dict[str, Any]]:
        """Each model call: its agent, latency, tokens and estimated cost."""
        calls = []
        for step in steps:
            if step.kind != "model":
                continue
            try:
                usage = Usage.from_dict(json.loads(step.data_json or "{}").get("usage"))
            except (ValueError, TypeError, AttributeError):
                usage = Usage()
            model = step.name or self.model_of(r, step.agent, root)
            calls.append(
                {
                    "call": step.key.partition(":")[2],
                    "agent": step.agent,
                    "model": model,
                    "started_at": iso(step.started_at),
                    "latency_ms": _ms(step),
                    "usage": usage.to_dict(),
                    "cost": self.table.cost(model, usage.input_tokens, usage.output_tokens),
                }
            )
        return calls

    # -- approvals -----------------------------------------------------------------------------

    def approval_item(self, a: ApprovalRecord, run: RunResult | None) -> dict[str, Any]:
        """An approval with what an approver needs: the customer's message and the context."""
        item = approval_dict(a)
        item["run"] = (
            {
                "status": run.status,
                "agent": run.agent,
                "input": text_of(run.input),
                "context": plain_value(run.context) if run.context is not None else None,
                "conversation_id": run.conversation_id,
            }
            if run is not None
            else None
        )
        return item


# -- plain records ------------------------------------------------------------------------------


def _ms(step: JournalRow) -> float | None:
    if step.finished_at is None:
        return None
    return round((step.finished_at - step.started_at) * 1000, 3)


def event_dict(e: Event) -> dict[str, Any]:
    """An event as JSON, with its time in ISO form."""
    out = e.to_dict()
    out["at"] = iso(e.at)
    for key in ("result", "output"):
        if key in out:
            out[key] = plain_value(out[key])
    return json.loads(json.dumps(out, default=str))  # type: ignore[no-any-return]


def step_dict(s: JournalRow) -> dict[str, Any]:
    """A durable step, without the model's raw response."""
    return {
        "key": s.key,
        "kind": s.kind,
        "state": s.state,
        "agent": s.agent,
        "name": s.name,
        "args": _json_or_none(s.args_json),
        "attempts": s.attempts,
        "started_at": iso(s.started_at),
        "finished_at": iso(s.finished_at),
        "duration_ms": _ms(s),
    }


def _json_or_none(text: str | None) -> Any:
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return text


_TIMELINE_GUARDRAIL = (
    "kind",
    "name",
    "verdict",
    "tool_name",
    "call_id",
    "output_info",
    "duration_ms",
)


def timeline(r: RunResult, events: list[Event], steps: list[JournalRow]) -> list[dict[str, Any]]:
    """One entry per event, with offsets, durations of agent spans and tool calls, and the
    model call behind each message."""
    start = r.started_at.timestamp() if r.started_at else (events[0].at if events else 0.0)
    tools = {s.key.rpartition(":")[2]: s for s in steps if s.kind == "tool"}
    models = {s.key: s for s in steps if s.kind == "model"}
    span_starts = [i for i, e in enumerate(events) if e.type == "agent_start"]
    entries = []
    for i, e in enumerate(events):
        entry: dict[str, Any] = {
            "seq": e.seq,
            "type": e.type,
            "at": iso(e.at),
            "offset_ms": round((e.at - start) * 1000, 1),
            "agent": e.agent,
        }
        if e.type == "agent_start":
            later = [events[j].at for j in span_starts if j > i]
            end = later[0] if later else (r.finished_at.timestamp() if r.finished_at else None)
            entry["duration_ms"] = round((end - e.at) * 1000, 1) if end is not None else None
        elif e.type == "handoff":
            entry["target"] = e.target
        elif e.type in (
            "tool_call",
            "tool_result",
            "approval_required",
            "approval_decided",
            "approval_escalated",
        ):
            entry.update(tool_name=e.tool_name, call_id=e.call_id, args=e.args)
            step = tools.get(e.call_id or "")
            if e.type == "tool_result":
                entry["result"] = plain_value(e.result)
                entry["duration_ms"] = e.data.get("duration_ms") or (_ms(step) if step else None)
            if e.type == "tool_call" and e.data.get("interrupted_attempt"):
                entry["retried"] = True
            if e.type.startswith("approval"):
                keys = ("approval_id", "decision", "by", "note", "reason", "edited_args")
                entry.update({k: e.data.get(k) for k in keys})
        elif e.type == "message":
            entry["output"] = text_of(e.output)
            step = models.get(f"model:{e.data.get('model_call')}")
            entry["latency_ms"] = _ms(step) if step else None
            entry["usage"] = e.usage.to_dict() if e.usage else None
        elif e.type == "guardrail":
            verdict = guardrail_verdict(e)
            entry.update({k: verdict[k] for k in _TIMELINE_GUARDRAIL})
        elif e.type == "done":
            entry["output"] = text_of(e.output)
            entry["usage"] = e.usage.to_dict() if e.usage else None
        elif e.type == "error":
            entry["error"] = e.data.get("error")
        elif e.type == "budget_exceeded":
            limit = str(e.data.get("limit"))
            entry.update({k: e.data.get(k) for k in ("limit", "limit_value", "used")})
            entry["summary"] = (
                f"{limit} is {format_amount(limit, e.data.get('limit_value'))}, "
                f"{format_amount(limit, e.data.get('used'))} used"
            )
            entry["usage"] = e.usage.to_dict() if e.usage else None
        entries.append(json.loads(json.dumps(entry, default=str)))
    return entries


def context_changes(steps: list[JournalRow]) -> list[dict[str, Any]]:
    """The context after each step that changed it, with the keys that changed."""
    changes = []
    previous: Any = None
    for s in steps:
        if s.context_json is None:
            continue
        value = _json_or_none(s.context_json)
        if value == previous:
            continue
        changed = (
            sorted(
                k
                for k in set(value) | set(previous or {})
                if (previous or {}).get(k) != value.get(k)
            )
            if isinstance(value, dict) and isinstance(previous, dict | None)
            else []
        )
        changes.append(
            {"step": s.key, "kind": s.kind, "agent": s.agent, "name": s.name,
             "at": iso(s.finished_at or s.started_at), "context": value, "changed": changed}
        )  # fmt: skip
        previous = value
    return changes


def guardrail_verdict(e: Event) -> dict[str, Any]:
    """A recorded guardrail result: ``passed``, ``tripped`` (its tripwire stopped the run) or,
    for a tool guardrail that replaced the call or its output with a message, ``rejected``."""
    d = e.data
    found = d.get("behavior")
    behavior: dict[str, Any] = found if isinstance(found, dict) else {}
    tripped = bool(d.get("tripwire_triggered"))
    rejected = behavior.get("type") == "reject_content"
    return {
        "kind": d.get("kind") or "input",
        "agent": e.agent,
        "name": str(d.get("guardrail") or ""),
        "tool_name": e.tool_name,
        "call_id": e.call_id,
        "verdict": "tripped" if tripped else ("rejected" if rejected else "passed"),
        "tripwire_triggered": tripped,
        "output_info": d.get("output_info"),
        "message": behavior.get("message") if rejected else None,
        "duration_ms": d.get("duration_ms"),
        "seq": e.seq,
        "at": iso(e.at),
    }


def guardrail_verdicts(
    root: Agent[Any] | None, path: list[str], r: RunResult, events: list[Event]
) -> list[dict[str, Any]]:
    """The run's guardrail results as its events recorded them, then every guardrail of the
    agents on its path (and of their function tools) that has no record: ``not recorded``
    where the run went past the point the SDK runs it (a run from before guardrail results
    were recorded), else ``not run`` (not yet, or never on this path: the SDK runs only the
    starting agent's input guardrails and the final agent's output guardrails)."""
    verdicts = [guardrail_verdict(e) for e in events if e.type == "guardrail"]
    if root is None:
        return verdicts
    from ..engine._agents import iter_graph

    recorded = {(v["kind"], v["agent"], v["tool_name"], v["name"]) for v in verdicts}
    tools_run = {
        (e.agent, e.tool_name)
        for e in events
        if e.type == "tool_result" and not e.data.get("rejected")
    }
    agents = {a.name: a for a in reversed(iter_graph(root))}
    for name in dict.fromkeys(path):
        agent = agents.get(name)
        if agent is None:
            continue
        for kind, tool_name, guardrail in _declared(agent):
            if (kind, name, tool_name, guardrail) in recorded:
                continue
            if kind == "input":
                due = name == r.agent and r.status in ("completed", "waiting_approval")
            elif kind == "output":
                due = name == r.last_agent and r.status == "completed"
            else:
                due = (name, tool_name) in tools_run
            verdicts.append(
                {"kind": kind, "agent": name, "name": guardrail, "tool_name": tool_name,
                 "call_id": None, "verdict": "not recorded" if due else "not run",
                 "tripwire_triggered": None, "output_info": None, "message": None,
                 "duration_ms": None, "seq": None, "at": None}
            )  # fmt: skip
    return verdicts


def _declared(agent: Agent[Any]) -> list[tuple[str, str | None, str]]:
    """(kind, tool name, guardrail name) of every guardrail on ``agent`` and its tools."""
    found: list[tuple[str, str | None, str]] = []
    found += [("input", None, g.get_name()) for g in agent.input_guardrails]
    found += [("output", None, g.get_name()) for g in agent.output_guardrails]
    for tool in agent.tools:
        if isinstance(tool, FunctionTool):
            found += [
                ("tool_input", tool.name, g.get_name()) for g in tool.tool_input_guardrails or []
            ]
            found += [
                ("tool_output", tool.name, g.get_name()) for g in tool.tool_output_guardrails or []
            ]
    return found
