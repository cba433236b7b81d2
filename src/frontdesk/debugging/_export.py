"""Runs become regression tests: ``frontdesk runs export ID... --pytest DIR``.

Each run is written as one readable pytest file holding a :class:`~frontdesk.testing.Recording`:
the run's input, the model's recorded responses as the testing kit's scripted events (with the
human decisions that followed them), the agent path, the tool calls and the tools that waited
for a human's approval. Its test calls :func:`frontdesk.testing.replay`, which plays the
responses through the current agents and tools and fails, saying what changed, when an agent
hands off differently, calls another tool or drops an approval.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..engine._conversation import runner_input
from ..engine._replace import split
from ..errors import InvalidInput
from ..store import Store
from ..testing._mock import MockEvent
from ..testing._replay import Recording
from ._steps import Step, agent_path, run_steps

EXPORTABLE = ("completed", "waiting_approval")
"""The statuses of runs that become regression tests."""

_EVERY = 1_000_000


def _decision(steps: list[Step], call_key: str) -> MockEvent | None:
    for step in steps:
        if step.kind == "tool" and step.call_key == call_key and step.approval is not None:
            a = step.approval
            if a.status == "approved":
                return MockEvent.approve(
                    by=a.decided_by or "someone", note=a.note, args=a.edited_args
                )
            if a.status == "rejected":
                return MockEvent.reject(a.reason or "rejected", by=a.decided_by or "someone")
    return None


def _events(
    execution_id: str, steps: list[Step], completed: bool
) -> tuple[list[MockEvent], list[str]]:
    """The model's responses as scripted events, and what they leave out."""
    events: list[MockEvent] = []
    notes: list[str] = []
    models = [s for s in steps if s.kind == "model"]
    for model in models:
        k = model.model_call
        handoff = next((s for s in steps if s.kind == "handoff" and s.model_call == k), None)
        if handoff is not None:
            events.append(MockEvent.handoff(handoff.name or "?"))
            continue
        if model.requests:
            calls = []
            for request in model.requests:
                if not isinstance(request.args, dict):
                    raise InvalidInput(
                        f"run {execution_id}: step {model.number} called {request.name} with "
                        "arguments that are not a JSON object; it cannot be replayed"
                    )
                calls.append(MockEvent.tool_call(request.name, request.args))
            events.append(calls[0] if len(calls) == 1 else MockEvent.parallel(*calls))
            if model.text:
                notes.append(f"step {model.number} also said text, which is not replayed")
            for request in model.requests:
                decision = _decision(steps, f"{k}:{request.call_id}")
                if decision is not None:
                    events.append(decision)
            continue
        last = completed and model is models[-1]
        text = model.text or ""
        events.append(MockEvent.done(text) if last else MockEvent.message(text))
    return events, notes


def _tool_calls(steps: list[Step]) -> list[tuple[str, Any]]:
    """The tool calls the model asked for (before any reviewer edited them), in order."""
    return [
        (request.name, request.args)
        for model in steps
        if model.kind == "model" and model.handoff is None
        for request in model.requests
    ]


def _approvals(steps: list[Step]) -> list[str]:
    """The tools whose calls waited for a human, in the order the run asked."""
    asked: list[str] = []
    for model in (s for s in steps if s.kind == "model"):
        for request in model.requests:
            key = f"{model.model_call}:{request.call_id}"
            if any(s.call_key == key and s.approval is not None for s in steps):
                asked.append(request.name)
    return asked


def recording_of(store: Store, execution_id: str) -> Recording:
    """The recording of a stored run; :class:`InvalidInput` for a run that cannot be one."""
    row = store.require_run(execution_id)
    if row.status not in EXPORTABLE:
        raise InvalidInput(
            f"run {execution_id} is {row.status}: only completed runs and runs waiting for "
            "approval become regression tests"
        )
    root_ref, replacements = split(row.agent_ref)
    if any(ref.startswith("name:") for ref in [root_ref, *replacements]):
        raise InvalidInput(
            f"run {execution_id} started from an agent known only by the name it was "
            f"registered under ({row.agent_ref}); a regression test finds its agents by "
            "package.module:attribute, so define them at module level in an importable module"
        )
    if replacements:
        raise InvalidInput(
            f"run {execution_id} is a fork with replacement agents ({row.agent_ref}); export "
            "runs of the agents as they are in your code"
        )
    steps = run_steps(
        store.journal(execution_id), store.approvals(execution_id=execution_id, limit=_EVERY)
    )
    if not any(s.kind == "model" for s in steps):
        raise InvalidInput(f"run {execution_id} made no model call: there is nothing to replay")
    stored = runner_input(store, row)
    events, notes = _events(execution_id, steps, row.status == "completed")
    kept = store.start_context(execution_id)
    if kept is not None and not kept[0]:
        raise InvalidInput(
            f"run {execution_id} completed before frontdesk kept the context runs start with, "
            "and its steps changed it: it cannot be replayed from its start"
        )
    return Recording(
        run_id=execution_id,
        agent=row.agent_ref,
        input=stored,
        events=events,
        agent_path=agent_path(row.agent_name, steps),
        tool_calls=_tool_calls(steps),
        approvals=_approvals(steps),
        status=row.status,
        context_type=row.context_type,
        context_json=kept[1] if kept is not None else row.context_json,
        notes=notes,
    )


# -- writing the pytest file ---------------------------------------------------------------------


_WIDTH = 96
"""The width the written source keeps to, where it can."""


def _flat(value: Any) -> str:
    """``value`` as a Python literal on one line (strings in double quotes)."""
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_flat(k)}: {_flat(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(map(_flat, value)) + "]"
    if isinstance(value, tuple):
        return "(" + ", ".join(map(_flat, value)) + ("," if len(value) == 1 else "") + ")"
    return repr(value)


def _pieces(text: str, width: int) -> list[str]:
    """``text`` cut after spaces and newlines into pieces of about ``width`` characters."""
    pieces: list[str] = []
    current = ""
    for word in re.split(r"(?<=[ \n])", text):
        if current and len(json.dumps(current + word, ensure_ascii=False)) > width:
            pieces.append(current)
            current = ""
        current += word
    if current:
        pieces.append(current)
    return pieces


def _literal(value: Any, indent: int, column: int) -> str:
    """``value`` as Python source starting at ``column`` on a line indented by ``indent``: on
    that line when it fits, else one item (or one piece of a long string) per line."""
    flat = _flat(value)
    if column + len(flat) + 1 <= _WIDTH:
        return flat
    pad, inner = " " * indent, " " * (indent + 4)
    if isinstance(value, dict) and value:
        items = [
            f"{inner}{_flat(k)}: {_literal(v, indent + 4, indent + 6 + len(_flat(k)))},"
            for k, v in value.items()
        ]
        return "{\n" + "\n".join(items) + f"\n{pad}}}"
    if isinstance(value, list | tuple) and value:
        items = [f"{inner}{_literal(v, indent + 4, indent + 4)}," for v in value]
        opening, closing = ("[", "]") if isinstance(value, list) else ("(", ")")
        return f"{opening}\n" + "\n".join(items) + f"\n{pad}{closing}"
    if isinstance(value, str) and value:
        pieces = _pieces(value, _WIDTH - indent - 4)
        if len(pieces) > 1:
            lines = "\n".join(inner + json.dumps(piece, ensure_ascii=False) for piece in pieces)
            return f"(\n{lines}\n{pad})"
    return flat


def _call(name: str, args: list[Any], indent: int, keywords: dict[str, Any] | None = None) -> str:
    """``name(args..., key=value...)`` on one line if it fits, else one argument per line."""
    flat = [_flat(a) for a in args] + [f"{k}={_flat(v)}" for k, v in (keywords or {}).items()]
    one = f"{name}({', '.join(flat)})"
    if indent + len(one) + 1 <= _WIDTH:
        return one
    inner = indent + 4
    lines = [f"{' ' * inner}{_literal(a, inner, inner)}," for a in args]
    lines += [
        f"{' ' * inner}{k}={_literal(v, inner, inner + len(k) + 1)},"
        for k, v in (keywords or {}).items()
    ]
    return f"{name}(\n" + "\n".join(lines) + f"\n{' ' * indent})"


def _event_source(event: MockEvent, indent: int) -> str:
    if event.kind == "handoff":
        return _call("MockEvent.handoff", [event.target], indent)
    if event.kind == "tool_call":
        return _call("MockEvent.tool_call", [event.tool_name, event.args], indent)
    if event.kind == "parallel":
        inner = " " * (indent + 4)
        calls = "\n".join(f"{inner}{_event_source(c, indent + 4)}," for c in event.calls)
        return f"MockEvent.parallel(\n{calls}\n{' ' * indent})"
    if event.kind in ("message", "done"):
        return _call(f"MockEvent.{event.kind}", [event.text or ""], indent)
    if event.kind == "approve":
        note = {"note": event.text} if event.text else {}
        edited = {"args": event.args} if event.args else {}
        return _call("MockEvent.approve", [], indent, {"by": event.by, **note, **edited})
    return _call("MockEvent.reject", [event.text], indent, {"by": event.by})


def exported_test_name(execution_id: str) -> str:
    """The test function's (and file's) name for a run."""
    return "test_" + re.sub(r"\W+", "_", execution_id).strip("_").lower()


def render_pytest(recording: Recording, when: float | None = None) -> str:
    """The source of the pytest file for ``recording``."""
    path = " → ".join(recording.agent_path)
    gated = ", ".join(recording.approvals) or "none"
    date = (
        f" on {datetime.fromtimestamp(when, tz=UTC).strftime('%Y-%m-%d %H:%M UTC')}"
        if when is not None
        else ""
    )
    lines = [
        f'"""Regression test recorded from run {recording.run_id}{date}.',
        "",
        f"Agents: {path}.",
        f"Tool calls: {len(recording.tool_calls)}. Approval needed for: {gated}. "
        f"Ended {recording.status}.",
        "",
        "The test replays the model's recorded responses through the current agents and tools",
        "and fails when an agent hands off differently, calls another tool, or drops an",
        "approval. Written by: frontdesk runs export " + recording.run_id + " --pytest <dir>",
        '"""',
        "",
        "from pathlib import Path",
        "",
        "from frontdesk.testing import MockEvent, Recording, replay",
        "",
        "RECORDING = Recording(",
        f"    run_id={_flat(recording.run_id)},",
        f"    agent={_flat(recording.agent)},",
        f"    input={_literal(recording.input, 4, 10)},",
        "    events=[",
        *(f"        {_event_source(e, 8)}," for e in recording.events),
        "    ],",
        f"    agent_path={_literal(recording.agent_path, 4, 15)},",
        "    tool_calls=[",
        *(f"        {_literal((name, args), 8, 8)}," for name, args in recording.tool_calls),
        "    ],",
        f"    approvals={_literal(recording.approvals, 4, 14)},",
        f"    status={_flat(recording.status)},",
    ]
    if recording.context_json is not None:
        lines += [
            f"    context_type={_flat(recording.context_type)},",
            f"    context_json={_literal(recording.context_json, 4, 17)},",
        ]
    if recording.notes:
        lines.append(f"    notes={_literal(recording.notes, 4, 10)},")
    lines += [
        ")",
        "",
        "",
        f"def {exported_test_name(recording.run_id)}(tmp_path: Path) -> None:",
        "    replay(RECORDING, home=tmp_path)",
        "",
    ]
    return "\n".join(lines)


def export_pytest(store: Store, execution_ids: Sequence[str], directory: Path) -> list[Path]:
    """Write one pytest file per run into ``directory``; returns their paths.

    Every run is read and checked first: if one cannot become a test, nothing is written.
    """
    if not execution_ids:
        raise InvalidInput("name at least one run to export")
    sources = []
    for execution_id in dict.fromkeys(execution_ids):
        recording = recording_of(store, execution_id)
        row = store.require_run(execution_id)
        sources.append((exported_test_name(execution_id), render_pytest(recording, row.created_at)))
    if directory.exists() and not directory.is_dir():
        raise InvalidInput(f"{str(directory)!r} is not a directory")
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, source in sources:
        path = directory / f"{name}.py"
        partial = path.with_name(f".{path.name}.partial")
        partial.write_text(source, encoding="utf-8")
        os.replace(partial, path)
        written.append(path)
    return written


__all__ = ["EXPORTABLE", "export_pytest", "exported_test_name", "recording_of", "render_pytest"]
