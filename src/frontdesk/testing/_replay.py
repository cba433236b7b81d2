"""``replay``: run a recorded run's model responses again through the current agents and tools.

A :class:`Recording` holds what a run did: its input, the model's responses as scripted
:class:`MockEvent` s (with the human decisions between them), the agents it went through, the
tools it called and the tools that waited for a human. :func:`replay` plays the responses to
the agents as they are now, with the real tools, on a scratch home, and fails with an
:class:`ExpectationFailed` naming what changed when an agent hands off differently, calls
another tool, asks for an approval the run did not, or no longer asks for one it did.

``frontdesk runs export ID --pytest DIR`` writes a recording as a pytest file; ``replay`` takes
that file's path, a :class:`Recording`, or a :class:`~frontdesk.RunResult`.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agents import Agent
from agents.testing import ScriptedModel

from .._results import RunResult
from ..engine._agents import AgentRegistry
from ..engine._context import load_context
from ..engine._replace import with_replacements
from ..errors import InvalidInput
from ..runtime import AgentRuntime
from ._expect import ExpectationFailed, expect, format_trace
from ._mock import MockEvent, script, temporary_home


@dataclass(frozen=True)
class Recording:
    """A run as a regression test replays it."""

    run_id: str
    """The recorded run."""
    agent: str
    """Where its starting agent is found: ``package.module:attribute``."""
    input: str | list[Any]
    """The run's input: a message or input items."""
    events: list[MockEvent]
    """The model's responses, in order, with the human decisions that followed them."""
    agent_path: list[str]
    """The agents the run went through: where it started, then each handoff's target."""
    tool_calls: list[tuple[str, Any]]
    """The tools it called, as ``(tool, arguments)``, including calls that waited for a human."""
    approvals: list[str]
    """The tools whose calls waited for a human's approval, in order."""
    status: str
    """How the run ended: ``completed``, or ``waiting_approval``."""
    context_type: str | None = None
    """The type of the context it started with (see ``frontdesk.engine._context``)."""
    context_json: str | None = None
    """The context it started with, as JSON."""
    notes: list[str] = field(default_factory=list)
    """What the recording leaves out, if anything."""


def _load_file(path: Path) -> Recording:
    if not path.is_file():
        raise InvalidInput(f"no recorded test at {str(path)!r}")
    name = f"_frontdesk_recording_{abs(hash(str(path.resolve())))}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise InvalidInput(f"{str(path)!r} is not a Python file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    finally:
        sys.modules.pop(name, None)
    recording = getattr(module, "RECORDING", None)
    if not isinstance(recording, Recording):
        raise InvalidInput(
            f"{str(path)!r} holds no RECORDING; write one with frontdesk runs export ID --pytest DIR"
        )
    return recording


def load_recording(path_or_run: str | Path | Recording | RunResult) -> Recording:
    """The recording in an exported test file, or of a run, or ``path_or_run`` itself."""
    if isinstance(path_or_run, Recording):
        return path_or_run
    if isinstance(path_or_run, RunResult):
        from ..debugging._export import recording_of

        store = path_or_run.store
        if store is None:
            raise InvalidInput(f"run {path_or_run.execution_id} has no store to read its steps")
        return recording_of(store, path_or_run.execution_id)
    if isinstance(path_or_run, str | Path):
        return _load_file(Path(path_or_run))
    raise InvalidInput(
        "replay takes the path of an exported test, a Recording or a RunResult, "
        f"not {type(path_or_run).__name__}"
    )


def _agent(recording: Recording, agents: Iterable[Agent[Any]]) -> Agent[Any]:
    root = AgentRegistry().resolve(recording.agent)
    return with_replacements(root, list(agents))


class _Replay:
    """One replay: the run, the human decisions it takes from the recording, and checks."""

    def __init__(self, recording: Recording, runtime: AgentRuntime) -> None:
        self.recording = recording
        self.runtime = runtime
        _, self.decisions = script(recording.events)
        self.asked = 0

    def fail(self, result: RunResult, what: str) -> ExpectationFailed:
        return ExpectationFailed(
            f"replay of run {self.recording.run_id} ({self.recording.agent}) differs from the "
            f"recording: {what}\n\n{format_trace(result)}"
        )

    def check_dropped(self, result: RunResult) -> None:
        """Fail if the run never asked for an approval the recorded run asked for here."""
        expected = self.recording.approvals
        if self.asked >= len(expected) or result.status == "waiting_approval":
            return
        tool = expected[self.asked]
        ran = [e for e in result.events if e.type == "tool_call" and e.tool_name == tool]
        if ran:  # a call that never happened is another tool call, said by the next check
            raise self.fail(
                result,
                f"the approval of {tool} was dropped: the recorded run asked a human to approve "
                f"{tool} before running it; the current agents ran {tool}({ran[0].args}) "
                "without asking",
            )

    def decide(self, result: RunResult) -> RunResult | None:
        """Decide the run's pending approvals as the recording did; None when the recording
        ends waiting here."""
        expected = self.recording.approvals
        for pending in result.pending_approvals:
            if self.asked >= len(expected) or expected[self.asked] != pending.tool_name:
                recorded = expected[self.asked] if self.asked < len(expected) else None
                raise self.fail(
                    result,
                    f"the current agents ask a human to approve {pending.tool_name}"
                    f"({pending.args}), where the recorded run "
                    + (f"asked for {recorded}" if recorded else "asked for no approval"),
                )
            self.asked += 1
            if self.asked > len(self.decisions):
                return None  # the recorded run ended waiting for this decision
            decision = self.decisions[self.asked - 1]
            if decision.kind == "approve":
                self.runtime.approve(
                    pending.approval_id,
                    by=decision.by,
                    note=decision.text,
                    args=decision.args or None,
                )
            else:
                self.runtime.reject(
                    pending.approval_id, decision.text or "rejected", by=decision.by
                )
        return self.runtime.handle(result.execution_id).wait(timeout=600)


def replay(
    path_or_run: str | Path | Recording | RunResult,
    *,
    agents: Iterable[Agent[Any]] = (),
    home: str | Path | None = None,
) -> RunResult:
    """Replay a recorded run's model responses through the current agents and tools.

    The agents are found again by the recording's reference (``agents`` replaces those named
    like them, as a fork does); the tools are the real ones, run on ``home`` (a scratch home
    by default). Approvals are decided as the recorded run's were. Raises
    :class:`ExpectationFailed` saying what changed when the run takes another agent path,
    makes other tool calls, asks for other approvals or ends otherwise; returns the replayed
    run otherwise.
    """
    recording = load_recording(path_or_run)
    root = _agent(recording, agents)
    context = load_context(recording.context_type, recording.context_json)
    steps, _ = script(recording.events)
    with AgentRuntime(
        home if home is not None else temporary_home(), model=ScriptedModel(steps), recover=False
    ) as runtime:
        session = _Replay(recording, runtime)
        final = runtime.run(root, recording.input, context=context)
        while final.status == "waiting_approval":
            decided = session.decide(final)
            if decided is None:  # the recorded run ended waiting here too
                break
            final = decided
        try:
            expect(final).agent_path(recording.agent_path)
            session.check_dropped(final)
            expect(final).tool_calls(recording.tool_calls).asked_approval_for(recording.approvals)
        except ExpectationFailed as exc:
            if str(exc).startswith("replay of run "):
                raise
            what = str(exc).split("\n\n", 1)[0]
            if final.error:
                what += f" (the run failed: {final.error})"
            raise session.fail(final, what) from None
        if final.status != recording.status:
            why = f": {final.error}" if final.error else ""
            raise session.fail(
                final, f"the run is {final.status}, the recorded run {recording.status}{why}"
            )
        return final


__all__ = ["Recording", "load_recording", "replay"]
