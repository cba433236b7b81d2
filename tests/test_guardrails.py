"""Guardrail results as records: the SDK's input, output and tool guardrails of a durable run
are journaled and recorded as ``guardrail`` events, a tripwire fails the run naming the
guardrail, a committed result is replayed instead of run again (on resume, retry and crash
recovery), and the console's API and run page show the recorded verdicts."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from agents import (
    Agent,
    GuardrailFunctionOutput,
    RunContextWrapper,
    ToolGuardrailFunctionOutput,
    function_tool,
    input_guardrail,
    output_guardrail,
    tool_input_guardrail,
    tool_output_guardrail,
)
from agents.testing import ModelStep, ScriptedModel, assistant_message, function_call

import guardflow
from frontdesk import AgentRuntime, RunResult, tool
from frontdesk.cli._render import describe_event
from frontdesk.server._present import Presenter
from test_api import Console, running_console

from conftest import PYTHON, WAIT_SECONDS, Children, child_env, sigkill, wait_for_marker, wait_until

Calls = list[str]


def _outputs(call: Any) -> dict[str, Any]:
    items = [i if isinstance(i, dict) else i.model_dump() for i in call.input]
    return {i["call_id"]: i["output"] for i in items if i.get("type") == "function_call_output"}


def guarded_desk(
    calls: Calls,
    *,
    approval: bool = False,
    trip_input: bool = False,
    fail_output: dict[str, bool] | None = None,
) -> Agent[Any]:
    """An agent with an input guardrail, two output guardrails and a tool; ``approval``: a
    second tool needs approval; ``fail_output["on"]``: the second output guardrail raises."""

    @input_guardrail
    def screen(
        ctx: RunContextWrapper[Any], agent: Agent[Any], message: Any
    ) -> GuardrailFunctionOutput:
        calls.append("screen")
        return GuardrailFunctionOutput(
            {"topic": "billing", "words": len(str(message).split())}, trip_input
        )

    @output_guardrail
    def review(
        ctx: RunContextWrapper[Any], agent: Agent[Any], output: Any
    ) -> GuardrailFunctionOutput:
        calls.append("review")
        return GuardrailFunctionOutput({"length": len(str(output))}, tripwire_triggered=False)

    @output_guardrail(name="tone check")
    async def tone(
        ctx: RunContextWrapper[Any], agent: Agent[Any], output: Any
    ) -> GuardrailFunctionOutput:
        calls.append("tone")
        if fail_output and fail_output["on"]:
            raise RuntimeError("the tone classifier is down")
        return GuardrailFunctionOutput(None, tripwire_triggered=False)

    @tool
    def lookup(invoice_id: str) -> str:
        """Look an invoice up."""
        calls.append("lookup")
        return f"{invoice_id} is paid"

    @tool(approval_required=True)
    def refund(invoice_id: str) -> str:
        """Refund an invoice."""
        calls.append("refund")
        return f"refunded {invoice_id}"

    def answer(call: Any) -> Any:
        outputs = _outputs(call)
        if "c1" not in outputs:
            return [function_call("lookup", {"invoice_id": "INV-1"}, call_id="c1")]
        if approval and "c2" not in outputs:
            return [function_call("refund", {"invoice_id": "INV-1"}, call_id="c2")]
        return [assistant_message("All sorted.")]

    return Agent(
        name="desk",
        model=ScriptedModel([ModelStep.respond(answer) for _ in range(50)]),
        tools=[lookup, refund],
        input_guardrails=[screen],
        output_guardrails=[review, tone],
    )


def guardrail_events(result: RunResult) -> list[tuple[str, str, bool]]:
    return [
        (e.data["kind"], e.data["guardrail"], e.data["tripwire_triggered"])
        for e in result.events
        if e.type == "guardrail"
    ]


# -- records ------------------------------------------------------------------------------------


def test_passing_input_and_output_guardrails_are_recorded(
    runtime: AgentRuntime, home: Path
) -> None:
    calls: Calls = []
    result = runtime.run(guarded_desk(calls), "charged twice")
    assert result.status == "completed", result.error
    assert sorted(calls) == ["lookup", "review", "screen", "tone"]
    # Read back from the store by another runtime: the records are persisted.
    with AgentRuntime(home, recover=False) as other:
        stored = other.get(result.execution_id)
    assert sorted(guardrail_events(stored)) == [
        ("input", "screen", False),
        ("output", "review", False),
        ("output", "tone check", False),
    ]
    by_name = {e.data["guardrail"]: e for e in stored.events if e.type == "guardrail"}
    screen, review = by_name["screen"], by_name["review"]
    assert screen.agent == "desk" and review.agent == "desk"
    assert screen.data["output_info"] == {"topic": "billing", "words": 2}
    assert review.data["output_info"] == {"length": len("All sorted.")}
    assert by_name["tone check"].data["output_info"] is None
    assert all(isinstance(e.data["duration_ms"], float) for e in by_name.values())
    types = [e.type for e in stored.events]
    # The output guardrails check the final answer: after its message, before the run ends.
    # (The input guardrail runs alongside the first turn, so its place before it varies.)
    assert types[-4:] == ["message", "guardrail", "guardrail", "done"]
    steps = {s.key: s for s in stored.steps if s.kind == "guardrail"}
    assert set(steps) == {
        "guardrail:input:desk:screen",
        "guardrail:output:2:desk:review",
        "guardrail:output:2:desk:tone check",
    }
    assert all(s.state == "done" for s in steps.values())


def test_a_tripped_input_guardrail_fails_the_run_naming_it(
    runtime: AgentRuntime, home: Path
) -> None:
    calls: Calls = []
    result = runtime.run(guarded_desk(calls, trip_input=True), "charged twice")
    assert result.status == "failed"
    assert result.error == (
        "InputGuardrailTripwireTriggered: input guardrail 'screen' of agent 'desk' "
        "triggered its tripwire"
    )
    assert "lookup" not in calls and "review" not in calls
    with AgentRuntime(home, recover=False) as other:
        stored = other.get(result.execution_id)
    assert guardrail_events(stored) == [("input", "screen", True)]
    types = [e.type for e in stored.events]
    assert types.index("guardrail") < types.index("error") == len(types) - 1
    assert stored.events[-1].data["error"] == result.error


def test_a_tripped_output_guardrail_fails_the_run_naming_it(runtime: AgentRuntime) -> None:
    @output_guardrail(name="no promises")
    def no_promises(
        ctx: RunContextWrapper[Any], agent: Agent[Any], output: Any
    ) -> GuardrailFunctionOutput:
        return GuardrailFunctionOutput({"found": "promise"}, "promise" in str(output))

    model = ScriptedModel([ModelStep(output=[assistant_message("I promise a refund.")])])
    agent = Agent(name="writer", model=model, output_guardrails=[no_promises])
    result = runtime.run(agent, "refund?")
    assert result.status == "failed"
    assert result.error == (
        "OutputGuardrailTripwireTriggered: output guardrail 'no promises' of agent 'writer' "
        "triggered its tripwire"
    )
    (event,) = [e for e in result.events if e.type == "guardrail"]
    assert event.data["tripwire_triggered"] is True
    assert event.data["output_info"] == {"found": "promise"}
    assert event.seq < result.events[-1].seq and result.events[-1].type == "error"


def test_tool_guardrails_are_recorded_per_call(runtime: AgentRuntime) -> None:
    @tool_input_guardrail
    def known_invoice(data: Any) -> ToolGuardrailFunctionOutput:
        if "INV-9" in data.context.tool_arguments:
            return ToolGuardrailFunctionOutput.reject_content("unknown invoice", {"id": "INV-9"})
        return ToolGuardrailFunctionOutput.allow({"id": "INV-1"})

    @tool_output_guardrail
    def no_card_numbers(data: Any) -> ToolGuardrailFunctionOutput:
        if "4242" in str(data.output):
            return ToolGuardrailFunctionOutput.raise_exception({"leak": "card number"})
        return ToolGuardrailFunctionOutput.allow()

    @function_tool(tool_input_guardrails=[known_invoice], tool_output_guardrails=[no_card_numbers])
    def invoice(invoice_id: str) -> str:
        """An invoice's card."""
        return "card 4242" if invoice_id == "INV-2" else "card on file"

    def answer(call: Any) -> Any:
        outputs = _outputs(call)
        if "a" not in outputs:
            return [function_call("invoice", {"invoice_id": "INV-1"}, call_id="a")]
        if "b" not in outputs:
            return [function_call("invoice", {"invoice_id": "INV-9"}, call_id="b")]
        return [function_call("invoice", {"invoice_id": "INV-2"}, call_id="c")]

    model = ScriptedModel([ModelStep.respond(answer) for _ in range(5)])
    result = runtime.run(Agent(name="clerk", model=model, tools=[invoice]), "cards?")
    assert result.status == "failed"
    assert result.error == (
        "ToolOutputGuardrailTripwireTriggered: tool output guardrail 'no_card_numbers' of tool "
        "'invoice' of agent 'clerk' triggered its tripwire"
    )
    records = [
        (e.call_id, e.data["kind"], e.data["behavior"]["type"])
        for e in result.events
        if e.type == "guardrail"
    ]
    assert records == [
        ("a", "tool_input", "allow"),
        ("a", "tool_output", "allow"),
        ("b", "tool_input", "reject_content"),
        ("c", "tool_input", "allow"),
        ("c", "tool_output", "raise_exception"),
    ]
    assert all(e.tool_name == "invoice" for e in result.events if e.type == "guardrail")
    verdicts = Presenter(runtime).run_detail(result)["guardrails"]
    assert [v["verdict"] for v in verdicts] == ["passed", "passed", "rejected", "passed", "tripped"]
    assert verdicts[2]["message"] == "unknown invoice"
    assert verdicts[4]["output_info"] == {"leak": "card number"}
    # The CLI's trace says the same, one line per verdict.
    lines = [describe_event(e) for e in result.events if e.type == "guardrail"]
    assert lines[2:] == [
        "🛡 tool_input guardrail known_invoice on invoice: rejected",
        "🛡 tool_input guardrail known_invoice on invoice: passed",
        "🛡 tool_output guardrail no_card_numbers on invoice: tripped",
    ]


# -- replay ---------------------------------------------------------------------------------------


def test_guardrails_are_not_run_again_when_a_run_resumes_after_approval(
    runtime: AgentRuntime,
) -> None:
    calls: Calls = []
    agent = guarded_desk(calls, approval=True)
    result = runtime.run(agent, "refund INV-1")
    assert result.status == "waiting_approval"
    assert sorted(calls) == ["lookup", "screen"]  # the guardrail runs alongside turn 1
    runtime.approve(result.execution_id, by="alice")
    final = runtime.handle(result.execution_id).result(timeout=WAIT_SECONDS)
    assert final.status == "completed", final.error
    # The resumed drive replayed the input guardrail's committed result.
    assert sorted(calls) == ["lookup", "refund", "review", "screen", "tone"]
    assert [k for k, _, _ in guardrail_events(final)] == ["input", "output", "output"]


def test_a_committed_output_guardrail_is_not_run_again_on_retry(runtime: AgentRuntime) -> None:
    calls: Calls = []
    failing = {"on": True}
    agent = guarded_desk(calls, fail_output=failing)
    result = runtime.run(agent, "charged twice")
    assert result.status == "failed"
    assert "the tone classifier is down" in (result.error or "")
    # The review passed and was committed before its sibling failed.
    assert guardrail_events(result) == [("input", "screen", False), ("output", "review", False)]
    failing["on"] = False
    final = runtime.retry(result.execution_id).result(timeout=WAIT_SECONDS)
    assert final.status == "completed", final.error
    assert sorted(calls) == ["lookup", "review", "screen", "tone", "tone"]
    assert [n for _, n, _ in guardrail_events(final)] == ["screen", "review", "tone check"]


@pytest.mark.slow
@pytest.mark.e2e
def test_a_committed_guardrail_is_not_run_again_after_a_crash(
    tmp_path: Path, home: Path, children: Children, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A child is SIGKILLed inside the tool, after the input guardrail's result and the first
    model call were committed; this process recovers the run and finishes it."""
    flow = tmp_path / "flow"
    flow.mkdir()
    env = child_env(GUARDFLOW_DIR=str(flow), CRASH_AT="in_tool")
    proc = children.popen(
        [PYTHON, "-m", "guardflow", str(home)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert wait_for_marker(flow / "parked", proc) == "in_tool"
    sigkill(proc)
    assert guardflow.calls(flow) == ["screen", "lookup"]
    monkeypatch.setenv("GUARDFLOW_DIR", str(flow))
    with AgentRuntime(home, poll_interval=0.05) as runtime:
        (run,) = runtime.runs()

        def finished() -> RunResult | None:
            runtime.recover()
            found = runtime.get(run.execution_id)
            return found if found.status in ("completed", "failed") else None

        result = wait_until(finished, "the recovered run to finish")
    assert result.status == "completed", result.error
    # The tool's result was never committed, so it ran again; the guardrail's was.
    assert guardflow.calls(flow) == ["screen", "lookup", "lookup", "review"]
    assert [
        (e.data["kind"], e.data["guardrail"]) for e in result.events if e.type == "guardrail"
    ] == [
        ("input", "screen"),
        ("output", "review"),
    ]


# -- what the console shows -----------------------------------------------------------------------


def test_guardrails_without_a_record_are_not_run_or_not_recorded(runtime: AgentRuntime) -> None:
    agent = guarded_desk([], approval=True)
    waiting = runtime.run(agent, "refund INV-1")
    present = Presenter(runtime)
    verdicts = present.run_detail(waiting)["guardrails"]
    assert [(v["kind"], v["name"], v["verdict"]) for v in verdicts] == [
        ("input", "screen", "passed"),
        ("output", "review", "not run"),
        ("output", "tone check", "not run"),
    ]

    @input_guardrail
    def late(
        ctx: RunContextWrapper[Any], agent: Agent[Any], message: Any
    ) -> GuardrailFunctionOutput:
        return GuardrailFunctionOutput(None, tripwire_triggered=False)

    # A guardrail the run went past without a record (as in a run from before the records).
    agent.input_guardrails = [*agent.input_guardrails, late]
    verdicts = present.run_detail(runtime.get(waiting.execution_id))["guardrails"]
    assert ("input", "late", "not recorded") in [
        (v["kind"], v["name"], v["verdict"]) for v in verdicts
    ]


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Console]:
    with running_console(tmp_path_factory, "guardrails") as served:
        yield served


def run_guardflow(console: Console, message: str, monkeypatch: pytest.MonkeyPatch) -> RunResult:
    """A run of the guarded desk on the console's home, on the desk's own scripted model."""
    monkeypatch.delenv("FRONTDESK_MODEL", raising=False)
    with AgentRuntime(console.home, recover=False) as runtime:
        return runtime.run(guardflow.desk, message)


@pytest.mark.e2e
def test_the_api_returns_the_recorded_verdicts(
    console: Console, monkeypatch: pytest.MonkeyPatch
) -> None:
    passed = run_guardflow(console, guardflow.MESSAGE, monkeypatch)
    tripped = run_guardflow(console, f"a {guardflow.FORBIDDEN} question", monkeypatch)
    assert (passed.status, tripped.status) == ("completed", "failed")
    with console.client() as client:
        ok = client.get(f"/api/runs/{passed.execution_id}").json()["guardrails"]
        bad = client.get(f"/api/runs/{tripped.execution_id}").json()
    assert [(g["kind"], g["agent"], g["name"], g["verdict"]) for g in ok] == [
        ("input", "desk", "screen", "passed"),
        ("output", "desk", "review", "passed"),
    ]
    assert ok[0]["output_info"] == {"topic": "billing", "note": guardflow.NOTE}
    assert ok[0]["tripwire_triggered"] is False and ok[0]["seq"] is not None
    assert "input guardrail 'screen' of agent 'desk'" in bad["error"]
    # The console found the desk again (by its module), so it lists the guardrail that
    # never ran after the tripwire.
    assert [(g["kind"], g["name"], g["verdict"]) for g in bad["guardrails"]] == [
        ("input", "screen", "tripped"),
        ("output", "review", "not run"),
    ]
    assert bad["guardrails"][0]["tripwire_triggered"] is True
    kinds = [t["type"] for t in bad["timeline"]]
    assert kinds.index("guardrail") < kinds.index("error")


@pytest.mark.e2e
def test_the_run_page_shows_the_verdicts_escaped(
    console: Console, monkeypatch: pytest.MonkeyPatch
) -> None:
    tripped = run_guardflow(console, f"a {guardflow.FORBIDDEN} question", monkeypatch)
    with console.client() as client:
        page = client.get(f"/runs/{tripped.execution_id}")
    assert page.status_code == 200
    text = page.text
    assert "<script>alert" not in text
    # The output info, shown as JSON, escaped.
    assert "&lt;script&gt;alert(\\&#34;guard\\&#34;)&lt;/script&gt;" in text
    assert 'data-verdict="tripped"' in text and 'data-verdict="not run"' in text
    assert "input guardrail</span> <strong>screen</strong>" in text  # its timeline row
    assert "no guardrails" not in text.lower()
