"""Events are numbered in one place: by the transaction that writes them, whoever writes them.

A run's driver, a cancel and an approval decision all append events to a run; each event's
``seq`` is the run's last one plus one, read inside the writing transaction, so events that
other writers appended while the run was driven never collide with the driver's.
"""

from __future__ import annotations

import time
from pathlib import Path

from agents import Agent
from agents.testing import ModelStep, ScriptedModel, assistant_message, function_call

import frontdesk
from frontdesk import AgentRuntime, tool
from frontdesk.events import encode_payload
from frontdesk.store import SQLiteStore, event_insert

SOURCE = Path(frontdesk.__file__).parent


def test_only_the_store_writes_event_rows() -> None:
    writers = sorted(
        str(path.relative_to(SOURCE))
        for path in SOURCE.rglob("*.py")
        if "INTO events " in path.read_text(encoding="utf-8")
        and path.name != "_schema.py"  # migrations copy the table
    )
    # One writer per store backend, each numbering events inside its own transaction.
    assert writers == ["store/postgres/_compile.py", "store/sqlite/_compile.py"]


def test_events_written_by_others_during_a_run_are_numbered_with_the_drivers(
    runtime: AgentRuntime,
) -> None:
    other = SQLiteStore(runtime.home)

    @tool
    def note(text: str) -> str:
        """Another writer appends an event to the running run while this tool runs."""
        run_id = runtime.runs(status="running")[0].execution_id
        other.write(
            [
                event_insert(
                    run_id, "note:1", "message", None, encode_payload(output=text), at=time.time()
                )
            ]
        )
        return "noted"

    model = ScriptedModel(
        [
            ModelStep(output=[function_call("note", {"text": "hello"}, call_id="c1")]),
            ModelStep(output=[assistant_message("done")]),
        ]
    )
    agent = Agent(name="noter", model=model, tools=[note])
    try:
        result = runtime.run(agent, "take a note")
    finally:
        other.close()
    assert result.status == "completed", result.error
    seqs = [e.seq for e in result.events]
    assert seqs == list(range(1, len(seqs) + 1))
    assert [e.output for e in result.events if e.agent is None] == ["hello"]
    assert result.events[-1].type == "done"


def test_a_decision_and_a_cancel_number_after_the_driver(runtime: AgentRuntime) -> None:
    @tool(approval_required=True)
    def refund(amount: int) -> str:
        """Refund an amount."""
        return f"refunded {amount}"

    model = ScriptedModel(
        [
            ModelStep(output=[function_call("refund", {"amount": 5}, call_id=f"c{i}")])
            for i in (1, 2)
        ]
    )
    agent = Agent(name="refunder", model=model, tools=[refund])
    paused = runtime.run(agent, "refund me")
    assert paused.status == "waiting_approval"
    runtime.approve(paused.execution_id)
    waiting = runtime.handle(paused.execution_id).wait(timeout=120)
    assert waiting.status == "waiting_approval"
    cancelled = runtime.cancel(paused.execution_id)
    assert cancelled.status == "cancelled"
    events = runtime.events(paused.execution_id)
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    types = [e.type for e in events]
    assert types.count("approval_decided") == 1
    assert types[-1] == "error" and events[-1].data.get("status") == "cancelled"
