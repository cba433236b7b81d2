"""The runtime's public API: run, start, stream, handles, history, approvals, cancel, retry;
every behaviour on both store backends."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

import pytest
from agents import Agent, RunContextWrapper, Runner, function_tool, handoff
from agents.testing import ModelStep, ScriptedModel, assistant_message, function_call
from pydantic import BaseModel

import frontdesk
from frontdesk import (
    AgentRuntime,
    ApprovalAlreadyDecided,
    ApprovalNotFound,
    InvalidRunState,
    RunNotFound,
    RunNotWaiting,
    current_tool_call,
    tool,
)
from frontdesk.tools import NoToolCall

from conftest import WAIT_SECONDS, both_backends


class Ticket(BaseModel):
    customer: str = "C-1"
    route: str | None = None
    seen_keys: list[str] = []


def flow(*, approval: bool = False, final: str = "All sorted.") -> Agent[Ticket]:
    """triage -> billing (hook writes context) -> lookup (+ refund) -> answer."""
    effects: list[str] = []

    @tool
    def lookup(wrapper: RunContextWrapper[Ticket], invoice_id: str) -> dict[str, Any]:
        """Look up an invoice."""
        wrapper.context.seen_keys.append(current_tool_call().idempotency_key)
        effects.append(invoice_id)
        return {"invoice_id": invoice_id, "amount": 99}

    @tool(approval_required=True)
    def refund(invoice_id: str) -> str:
        """Refund an invoice."""
        effects.append(f"refund {invoice_id}")
        return f"refunded {invoice_id}"

    def responder(call: Any) -> Any:
        items = [i if isinstance(i, dict) else i.model_dump() for i in call.input]
        outputs = {
            i["call_id"]: i["output"] for i in items if i.get("type") == "function_call_output"
        }
        if call.handoffs:
            return [function_call("transfer_to_billing", {}, call_id="h1")]
        if "c1" not in outputs:
            return [function_call("lookup", {"invoice_id": "INV-1"}, call_id="c1")]
        if approval and "c2" not in outputs:
            return [function_call("refund", {"invoice_id": "INV-1"}, call_id="c2")]
        suffix = f" ({outputs['c2']})" if approval else ""
        return ModelStep(output=[assistant_message(final + suffix)], usage=_usage(10, 5))

    model = ScriptedModel([ModelStep.respond(responder) for _ in range(50)])
    billing = Agent[Ticket](name="billing", model=model, tools=[lookup, refund])

    def route(wrapper: RunContextWrapper[Ticket]) -> None:
        wrapper.context.route = "billing"

    triage = Agent[Ticket](
        name="triage", model=model, handoffs=[handoff(billing, on_handoff=route)]
    )
    triage.effects = effects  # type: ignore[attr-defined]
    return triage


def _usage(inp: int, out: int) -> Any:
    from agents.usage import Usage

    return Usage(requests=1, input_tokens=inp, output_tokens=out, total_tokens=inp + out)


def test_public_api_is_pinned() -> None:
    assert set(frontdesk.__all__) == {
        "AgentNotFound", "AgentRuntime", "ApprovalAlreadyDecided", "ApprovalNotFound",
        "ApprovalRecord", "Conversation", "EmptyMessage", "Event", "EventStream", "EventType",
        "FrontdeskError", "InvalidInput", "InvalidRunState", "MalformedModelResponse", "MessageTooLong",
        "ModelNotConfigured", "RunFailed", "RunHandle", "RunNotFound", "RunNotWaiting",
        "RunResult", "SchemaTooNew", "StaleConversation", "StoreCorrupt", "StoreError",
        "StoreLocked", "ToolCall", "TurnTimedOut", "Usage", "__version__", "current_tool_call",
        "default_runtime", "run", "run_async", "start", "stream", "tool",
        "Budget", "BudgetExceeded", "Price", "Prices", "UsageStats", "UsageTotals",
        "InvalidFork", "Lineage", "RunDiff", "Memory",
        "InvalidDatabaseURL", "StoreUnavailable", "current_runtime",
    }  # fmt: skip
    for name in frontdesk.__all__:
        assert hasattr(frontdesk, name), name


@both_backends
def test_run_completes_with_trace_usage_and_context(runtime: AgentRuntime) -> None:
    agent = flow()
    result = runtime.run(agent, "charged twice", context=Ticket())
    assert result.status == "completed"
    assert result.output == "All sorted."
    assert result.last_agent == "billing"
    assert result.usage.total_tokens == 15 and result.usage.requests == 3
    assert result.context.route == "billing" and len(result.context.seen_keys) == 1
    assert result.duration is not None and result.duration >= 0
    types = [e.type for e in result.events]
    assert types == [
        "agent_start",
        "handoff",
        "agent_start",
        "tool_call",
        "tool_result",
        "message",
        "done",
    ]
    assert [e.seq for e in result.events] == list(range(1, 8))
    handoff_event = result.events[1]
    assert (handoff_event.agent, handoff_event.target) == ("triage", "billing")
    call = result.events[3]
    assert (call.tool_name, call.args) == ("lookup", {"invoice_id": "INV-1"})
    assert result.events[4].result == {"invoice_id": "INV-1", "amount": 99}
    assert result.events[-1].output == "All sorted."
    assert result.events[-1].usage is not None and result.events[-1].usage.total_tokens == 15


@both_backends
def test_idempotency_key_is_stable_and_current_tool_call_outside_a_tool_raises(
    runtime: AgentRuntime,
) -> None:
    result = runtime.run(flow(), "hello", context=Ticket())
    (key,) = result.context.seen_keys
    assert key.startswith("fd_")
    with pytest.raises(NoToolCall):
        current_tool_call()


@both_backends
def test_unmodified_agent_still_works_with_plain_runner(runtime: AgentRuntime) -> None:
    agent = flow()
    runtime.run(agent, "first through frontdesk", context=Ticket())
    assert agent.handoffs[0].agent_name == "billing"
    plain = asyncio.run(Runner.run(agent, "then plain", context=Ticket()))
    assert plain.final_output == "All sorted."


@both_backends
def test_start_returns_at_once_and_handle_works_from_anywhere(
    runtime: AgentRuntime, home: Path
) -> None:
    handle = runtime.start(flow(), "please", context=Ticket())
    assert handle.execution_id.startswith("run_")
    result = handle.stream().get_result(timeout=WAIT_SECONDS)
    assert result.status == "completed"
    with AgentRuntime(home, recover=False) as other:
        again = other.handle(handle.execution_id)
        assert again.status == "completed"
        assert again.result(timeout=WAIT_SECONDS).output == "All sorted."


@both_backends
def test_stream_yields_events_live_and_resumes_from_a_sequence_number(
    runtime: AgentRuntime,
) -> None:
    events = list(runtime.stream(flow(), "stream it", context=Ticket()))
    assert events[0].type == "agent_start" and events[-1].type == "done"
    execution_id = events[0].execution_id
    resumed = list(runtime.handle(execution_id).stream(after=3))
    assert [e.seq for e in resumed] == [e.seq for e in events if e.seq > 3]
    assert resumed[0].seq == 4


@both_backends
def test_late_consumer_reads_backlog_then_live_events(runtime: AgentRuntime) -> None:
    release = threading.Event()

    @function_tool
    def slow() -> str:
        """Wait for the test."""
        release.wait(10)
        return "ok"

    model = ScriptedModel(
        [[function_call("slow", {}, call_id="s1")], [assistant_message("finished")]]
    )
    agent = Agent(name="slowpoke", model=model, tools=[slow])
    handle = runtime.start(agent, "go")
    stream = handle.stream()
    first = [next(stream), next(stream)]  # agent_start, tool_call: the run is now blocked
    assert [e.type for e in first] == ["agent_start", "tool_call"]
    release.set()
    rest = list(stream)
    assert [e.type for e in rest] == ["tool_result", "message", "done"]
    assert stream.last_seq == 5


@both_backends
def test_module_level_functions_use_a_default_runtime(home: Path, backend: str) -> None:
    result = frontdesk.run(flow(), "module level", context=Ticket())
    assert result.status == "completed"
    assert asyncio.run(frontdesk.run_async(flow(), "async", context=Ticket())).status == "completed"
    handle = frontdesk.start(flow(), "start", context=Ticket())
    assert handle.result(timeout=WAIT_SECONDS).status == "completed"
    assert [e.type for e in frontdesk.stream(flow(), "s", context=Ticket())][-1] == "done"
    frontdesk.default_runtime().close()


@both_backends
def test_history_lists_and_filters_runs(runtime: AgentRuntime) -> None:
    for i in range(3):
        runtime.run(flow(), f"ticket {i}", context=Ticket())
    waiting = runtime.run(flow(approval=True), "refund me", context=Ticket())
    assert len(runtime.runs()) == 4
    assert [r.execution_id for r in runtime.runs(status="waiting_approval")] == [
        waiting.execution_id
    ]
    assert len(runtime.runs(status="completed", agent="triage")) == 3
    assert len(runtime.runs(limit=2)) == 2
    assert runtime.get(waiting.execution_id).input == "refund me"
    with pytest.raises(RunNotFound):
        runtime.get("run_nope")
    with pytest.raises(RunNotFound):
        runtime.handle("run_nope")


@both_backends
def test_approve_runs_exactly_the_recorded_call(runtime: AgentRuntime) -> None:
    agent = flow(approval=True)
    result = runtime.run(agent, "refund INV-1", context=Ticket())
    assert result.status == "waiting_approval"
    (pending,) = result.pending_approvals
    assert (pending.tool_name, pending.args) == ("refund", {"invoice_id": "INV-1"})
    required = [e for e in result.events if e.type == "approval_required"]
    assert required[0].tool_name == "refund" and required[0].args == {"invoice_id": "INV-1"}
    assert agent.effects == ["INV-1"]  # type: ignore[attr-defined]

    record = runtime.approve(pending.approval_id, by="alice", note="duplicate charge confirmed")
    assert (record.status, record.decided_by, record.note) == (
        "approved",
        "alice",
        "duplicate charge confirmed",
    )
    final = runtime.handle(result.execution_id).result(timeout=WAIT_SECONDS)
    assert final.status == "completed"
    assert final.output == "All sorted. (refunded INV-1)"
    assert agent.effects == ["INV-1", "refund INV-1"]  # type: ignore[attr-defined]
    decided = next(e for e in final.events if e.type == "approval_decided")
    assert decided.data["decision"] == "approved" and decided.data["by"] == "alice"


@both_backends
def test_reject_never_runs_the_tool_and_tells_the_model_why(runtime: AgentRuntime) -> None:
    agent = flow(approval=True)
    result = runtime.run(agent, "refund INV-1", context=Ticket())
    runtime.reject(result.execution_id, "not a billing error", by="bob")
    final = runtime.handle(result.execution_id).result(timeout=WAIT_SECONDS)
    assert final.status == "completed"
    assert "not a billing error" in final.output
    assert agent.effects == ["INV-1"]  # type: ignore[attr-defined]
    assert final.approvals[0].reason == "not a billing error"
    assert final.approvals[0].decided_by == "bob"


@both_backends
def test_deciding_twice_or_a_run_that_is_not_waiting_changes_nothing(runtime: AgentRuntime) -> None:
    result = runtime.run(flow(approval=True), "refund", context=Ticket())
    record = runtime.approve(result.execution_id)
    runtime.handle(result.execution_id).result(timeout=WAIT_SECONDS)
    events_before = len(runtime.get(result.execution_id).events)
    with pytest.raises(ApprovalAlreadyDecided):
        runtime.approve(record.approval_id)
    with pytest.raises(ApprovalAlreadyDecided):
        runtime.reject(record.approval_id, "too late")
    done = runtime.run(flow(), "no approval here", context=Ticket())
    with pytest.raises(RunNotWaiting):
        runtime.approve(done.execution_id)
    with pytest.raises(ApprovalNotFound):
        runtime.approve("apv_unknown")
    assert len(runtime.get(result.execution_id).events) == events_before
    assert runtime.get(result.execution_id).approvals[0].status == "approved"
    with pytest.raises(ValueError):
        runtime.reject(result.execution_id, "   ")


@both_backends
def test_cancel_a_waiting_run_and_refuse_to_cancel_a_finished_one(runtime: AgentRuntime) -> None:
    waiting = runtime.run(flow(approval=True), "refund", context=Ticket())
    cancelled = runtime.cancel(waiting.execution_id)
    assert cancelled.status == "cancelled"
    assert cancelled.events[-1].data.get("status") == "cancelled"
    with pytest.raises(InvalidRunState):
        runtime.cancel(waiting.execution_id)
    with pytest.raises(RunNotWaiting):
        runtime.approve(waiting.execution_id)


@both_backends
def test_cancel_a_running_run(runtime: AgentRuntime) -> None:
    started = threading.Event()

    @function_tool
    async def forever() -> str:
        """Never returns."""
        started.set()
        await asyncio.sleep(3600)
        return "unreachable"

    model = ScriptedModel([[function_call("forever", {}, call_id="f1")], [assistant_message("x")]])
    handle = runtime.start(Agent(name="stuck", model=model, tools=[forever]), "go")
    assert started.wait(WAIT_SECONDS)
    assert handle.cancel().status == "cancelled"
    assert handle.result(timeout=WAIT_SECONDS).status == "cancelled"


@both_backends
def test_failed_run_records_the_error_and_retry_resumes_from_the_journal(
    runtime: AgentRuntime,
) -> None:
    calls: list[str] = []
    fail = {"on": True}
    asked = {"model": 0}

    @function_tool(failure_error_function=None)
    def flaky(x: str) -> str:
        """Fails while the switch is on."""
        calls.append(x)
        if fail["on"]:
            raise RuntimeError("downstream is down")
        return f"ok {x}"

    @function_tool
    def first(x: str) -> str:
        """Runs once."""
        calls.append(f"first {x}")
        return "first done"

    def responder(call: Any) -> Any:
        asked["model"] += 1
        items = [i if isinstance(i, dict) else i.model_dump() for i in call.input]
        outputs = {i["call_id"] for i in items if i.get("type") == "function_call_output"}
        if "a" not in outputs:
            return [function_call("first", {"x": "1"}, call_id="a")]
        if "b" not in outputs:
            return [function_call("flaky", {"x": "2"}, call_id="b")]
        return [assistant_message("recovered")]

    model = ScriptedModel([ModelStep.respond(responder) for _ in range(10)])
    agent = Agent(name="fragile", model=model, tools=[first, flaky])
    result = runtime.run(agent, "go")
    assert result.status == "failed"
    assert "downstream is down" in (result.error or "")
    assert result.events[-1].type == "error"
    assert asked["model"] == 2
    with pytest.raises(InvalidRunState):
        runtime.retry(runtime.run(flow(), "fine", context=Ticket()).execution_id)
    fail["on"] = False
    runtime.register(agent, "fragile")
    final = runtime.retry(result.execution_id).result(timeout=WAIT_SECONDS)
    assert final.status == "completed" and final.output == "recovered"
    assert calls == ["first 1", "2", "2"]  # the completed tool did not run again
    # The two recorded model calls were answered from the journal: only the third was made.
    assert asked["model"] == 3


@both_backends
def test_two_hundred_concurrent_runs_complete(runtime: AgentRuntime) -> None:
    handles = [runtime.start(flow(), f"ticket {i}", context=Ticket()) for i in range(200)]
    results = [h.result(timeout=120) for h in handles]
    assert {r.status for r in results} == {"completed"}
    assert len({r.execution_id for r in results}) == 200
    assert len(runtime.runs(status="completed", limit=500)) == 200


@both_backends
async def test_run_async_runs_on_the_callers_loop(runtime: AgentRuntime) -> None:
    loops: list[asyncio.AbstractEventLoop] = []

    @function_tool
    async def where() -> str:
        """Record the loop."""
        loops.append(asyncio.get_running_loop())
        return "here"

    model = ScriptedModel([[function_call("where", {}, call_id="w")], [assistant_message("done")]])
    results = await asyncio.gather(
        runtime.run_async(Agent(name="async", model=model, tools=[where]), "go"),
    )
    assert results[0].status == "completed"
    assert loops == [asyncio.get_running_loop()]


@both_backends
def test_parallel_tool_calls_are_keyed_by_call_id(runtime: AgentRuntime) -> None:
    @function_tool
    async def a() -> str:
        """Slow one."""
        await asyncio.sleep(0.05)
        return "A"

    @function_tool
    async def b() -> str:
        """Fast one."""
        return "B"

    model = ScriptedModel(
        [
            [function_call("a", {}, call_id="ca"), function_call("b", {}, call_id="cb")],
            [assistant_message("both")],
        ]
    )
    result = runtime.run(Agent(name="par", model=model, tools=[a, b]), "go")
    steps = {s.key: s for s in result.steps}
    assert '"A"' in (steps["tool:1:ca"].data_json or "")
    assert '"B"' in (steps["tool:1:cb"].data_json or "")
    results = {e.call_id: e.result for e in result.events if e.type == "tool_result"}
    assert results == {"ca": "A", "cb": "B"}


@both_backends
def test_local_engine_implements_the_engine_interface(runtime: AgentRuntime) -> None:
    from frontdesk.engine._base import Engine

    assert isinstance(runtime._engine, Engine)


@both_backends
def test_start_with_an_execution_id_is_idempotent(runtime: AgentRuntime, home: Path) -> None:
    agent = flow(approval=True)
    first = runtime.start(agent, "refund", context=Ticket(), execution_id="dispute:dp_123")
    assert first.execution_id == "dispute:dp_123" and first.created
    assert first.wait(timeout=WAIT_SECONDS).status == "waiting_approval"
    again = runtime.start(agent, "refund again", context=Ticket(), execution_id="dispute:dp_123")
    assert again.execution_id == "dispute:dp_123" and not again.created
    assert (
        runtime.run(agent, "and again", context=Ticket(), execution_id="dispute:dp_123").status
        == "waiting_approval"
    )
    with AgentRuntime(home, recover=False) as other:
        other.start(agent, "from another process", context=Ticket(), execution_id="dispute:dp_123")
    assert len(runtime.runs()) == 1
    assert runtime.get("dispute:dp_123").input == "refund"
    for bad in ("", " x", "a" * 201, "bad id", "../etc"):
        with pytest.raises(frontdesk.InvalidInput):
            runtime.start(agent, "x", execution_id=bad)
    assert len(runtime.runs()) == 1


@both_backends
def test_handle_wait_returns_at_an_approval(runtime: AgentRuntime) -> None:
    handle = runtime.start(flow(approval=True), "refund", context=Ticket())
    assert handle.wait(timeout=WAIT_SECONDS).status == "waiting_approval"
    with pytest.raises(TimeoutError):
        handle.result(timeout=0.3)


@both_backends
def test_a_result_loads_its_history_after_its_runtime_closed(home: Path, backend: str) -> None:
    with AgentRuntime(home, recover=False) as rt:
        result = rt.run(flow(), "read me later", context=Ticket())
    assert [e.type for e in result.events][-1] == "done"
    assert result.steps[0].kind == "model"
    assert result.approvals == []
