"""``mock_run``: run real agents and real tools through the real runtime on a scripted model."""

from __future__ import annotations

import atexit
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from agents import Agent
from agents.testing import ModelStep, ScriptedModel, assistant_message, function_call

from ..errors import InvalidInput
from ..runtime import AgentRuntime, RunResult

MockKind = Literal["handoff", "tool_call", "parallel", "message", "done", "approve", "reject"]


@dataclass(frozen=True)
class MockEvent:
    """One scripted step of the model (or of the human, for approvals)."""

    kind: MockKind
    target: str | None = None
    tool_name: str | None = None
    args: dict[str, Any] = field(default_factory=dict)
    text: str | None = None
    by: str | None = None
    calls: tuple[MockEvent, ...] = ()
    """The tool calls of a ``parallel`` event."""

    @classmethod
    def handoff(cls, target: str) -> MockEvent:
        """The current agent hands off to the agent named ``target``."""
        return cls("handoff", target=target)

    @classmethod
    def tool_call(
        cls, name: str, args: dict[str, Any] | None = None, /, **kwargs: Any
    ) -> MockEvent:
        """The current agent calls tool ``name`` with ``args`` (the real tool runs)."""
        return cls("tool_call", tool_name=name, args={**(args or {}), **kwargs})

    @classmethod
    def parallel(cls, *calls: MockEvent) -> MockEvent:
        """The current agent calls several tools in one response (each a :meth:`tool_call`)."""
        if not calls or any(call.kind != "tool_call" for call in calls):
            raise InvalidInput("MockEvent.parallel() takes one or more MockEvent.tool_call(...)")
        return cls("parallel", calls=tuple(calls))

    @classmethod
    def message(cls, text: str) -> MockEvent:
        """The current agent says ``text`` (same as :meth:`done` for the last step)."""
        return cls("message", text=text)

    @classmethod
    def done(cls, output: str) -> MockEvent:
        """The current agent answers ``output``; the run completes."""
        return cls("done", text=output)

    @classmethod
    def approve(
        cls, by: str = "mock_run", note: str | None = None, args: dict[str, Any] | None = None
    ) -> MockEvent:
        """A human approves the pending tool call (with edited ``args``, if given: each one
        replaces the model's)."""
        return cls("approve", by=by, text=note, args=dict(args or {}))

    @classmethod
    def reject(cls, reason: str, by: str = "mock_run") -> MockEvent:
        """A human rejects the pending tool call with ``reason``."""
        return cls("reject", by=by, text=reason)


def _handoff_step(target: str) -> ModelStep:
    def respond(call: Any) -> Any:
        for h in call.handoffs:
            if h.agent_name == target:
                return [function_call(h.tool_name, {}, call_id=f"mock_handoff_{target}")]
        available = ", ".join(h.agent_name for h in call.handoffs) or "none"
        raise InvalidInput(
            f"MockEvent.handoff({target!r}): the current agent cannot hand off to it "
            f"(available handoffs: {available})"
        )

    return ModelStep.respond(respond)


def script(events: Sequence[MockEvent]) -> tuple[list[Any], list[MockEvent]]:
    """Split events into model steps and, in order, the human decisions between them."""
    steps: list[Any] = []
    decisions: list[MockEvent] = []
    for index, event in enumerate(events):
        if event.kind == "handoff":
            assert event.target is not None
            steps.append(_handoff_step(event.target))
        elif event.kind == "tool_call":
            assert event.tool_name is not None
            steps.append([function_call(event.tool_name, event.args, call_id=f"mock_call_{index}")])
        elif event.kind == "parallel":
            steps.append(
                [
                    function_call(call.tool_name or "", call.args, call_id=f"mock_call_{index}_{n}")
                    for n, call in enumerate(event.calls)
                ]
            )
        elif event.kind in ("message", "done"):
            steps.append([assistant_message(event.text or "")])
        else:
            decisions.append(event)
    return steps, decisions


_homes: list[str] = []


def _cleanup() -> None:
    for path in _homes:
        shutil.rmtree(path, ignore_errors=True)


atexit.register(_cleanup)


def temporary_home() -> str:
    """A fresh frontdesk home, removed when the process exits."""
    home = tempfile.mkdtemp(prefix="frontdesk-mock-")
    _homes.append(home)
    return home


def mock_run(
    agent: Agent[Any],
    message: str,
    events: Sequence[MockEvent],
    *,
    context: Any = None,
    home: str | Path | None = None,
) -> RunResult:
    """Run ``agent`` on ``message`` with a model scripted from ``events``.

    The agents and their tools are the real ones, run durably by a real :class:`AgentRuntime`
    (on a fresh temporary home unless ``home`` is given); only the model is scripted.
    ``MockEvent.approve()`` / ``MockEvent.reject(reason)`` decide an approval the run paused
    for. No network and no key are needed.
    """
    if not events:
        raise InvalidInput("mock_run needs at least one MockEvent")
    steps, decisions = script(events)
    model = ScriptedModel(steps)
    if home is None:
        home = temporary_home()
    with AgentRuntime(home, model=model, recover=False) as rt:
        result = rt.run(agent, message, context=context)
        for decision in decisions:
            if result.status != "waiting_approval":
                raise InvalidInput(
                    f"MockEvent.{decision.kind}() but the run is {result.status}, not waiting "
                    "for an approval"
                )
            if decision.kind == "approve":
                rt.approve(
                    result.execution_id,
                    by=decision.by,
                    note=decision.text,
                    args=decision.args or None,
                )
            else:
                rt.reject(result.execution_id, decision.text or "rejected", by=decision.by)
            result = rt.handle(result.execution_id).wait(timeout=60)
        return result
