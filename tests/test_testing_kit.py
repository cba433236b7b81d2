"""The testing kit: mock_run runs real agents and tools; expect() fails loudly when it should;
call_tool runs one tool in a tool-call scope."""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Any

import pytest
from agents import Agent, RunContextWrapper

from frontdesk import AgentRuntime, InvalidInput, current_tool_call, tool
from frontdesk.testing import (
    ExpectationFailed,
    MockEvent,
    call_tool,
    call_tool_sync,
    expect,
    mock_run,
)
from frontdesk.tools import NoToolCall

INVOICES = {"INV-1": 99.0}
refunds: list[str] = []


@tool
def get_invoice(invoice_id: str) -> dict[str, Any]:
    """Fetch an invoice."""
    if invoice_id not in INVOICES:
        return {"error": f"invoice {invoice_id} not found"}
    return {"invoice_id": invoice_id, "amount": INVOICES[invoice_id]}


@tool(approval_required=True)
def process_refund(invoice_id: str, reason: str) -> dict[str, Any]:
    """Refund an invoice."""
    refunds.append(invoice_id)
    return {"refunded": invoice_id, "reason": reason}


billing = Agent(name="billing_specialist", model="gpt-4o", tools=[get_invoice, process_refund])
technical = Agent(name="technical_specialist", model="gpt-4o")
triage = Agent(name="support_triage", model="gpt-4o-mini", handoffs=[billing, technical])


@pytest.fixture(autouse=True)
def _reset() -> None:
    refunds.clear()


def lookup_invoice(answer: str) -> list[MockEvent]:
    """Route to billing, look up INV-1, answer ``answer``."""
    return [
        MockEvent.handoff("billing_specialist"),
        MockEvent.tool_call("get_invoice", {"invoice_id": "INV-1"}),
        MockEvent.done(answer),
    ]


def refund_then(*rest: MockEvent) -> list[MockEvent]:
    """Route to billing, ask to refund INV-1, then ``rest``."""
    return [
        MockEvent.handoff("billing_specialist"),
        MockEvent.tool_call("process_refund", invoice_id="INV-1", reason="duplicate"),
        *rest,
    ]


def test_mock_run_runs_real_tools_through_the_runtime() -> None:
    result = mock_run(
        triage, "I was charged twice", events=lookup_invoice("A refund has been initiated.")
    )
    (
        expect(result)
        .completed()
        .handed_off_to("billing_specialist")
        .called_tool("get_invoice", invoice_id="INV-1")
        .did_not_call("process_refund")
        .output_contains("refund has been initiated")
        .used_at_most_tokens(1000)
    )
    tool_result = next(e for e in result.events if e.type == "tool_result")
    assert tool_result.result == {"invoice_id": "INV-1", "amount": 99.0}
    assert result.execution_id.startswith("run_")


def test_approval_pause_then_approve_and_reject() -> None:
    paused = mock_run(triage, "refund INV-1", events=refund_then(MockEvent.done("unused")))
    expect(paused).waiting_for_approval("process_refund").called_tool(
        "process_refund", invoice_id="INV-1"
    )
    assert refunds == []

    approved = mock_run(
        triage,
        "refund INV-1",
        events=refund_then(MockEvent.approve(by="lead"), MockEvent.done("Refunded.")),
    )
    expect(approved).completed().output_contains("Refunded.")
    assert refunds == ["INV-1"]

    rejected = mock_run(
        triage,
        "refund INV-1",
        events=refund_then(
            MockEvent.reject("not a billing error"), MockEvent.done("I could not refund that.")
        ),
    )
    expect(rejected).completed()
    assert refunds == ["INV-1"]
    result_event = next(e for e in rejected.events if e.type == "tool_result")
    assert "not a billing error" in result_event.result


@pytest.mark.parametrize(
    ("check", "message"),
    [
        (lambda e: e.failed(), "expected the run to be failed, but it is completed"),
        (lambda e: e.waiting_for_approval(), "expected the run to be waiting_approval"),
        (
            lambda e: e.handed_off_to("technical_specialist"),
            "expected a handoff to 'technical_specialist'",
        ),
        (lambda e: e.called_tool("process_refund"), "expected a call to 'process_refund'"),
        (
            lambda e: e.called_tool("get_invoice", invoice_id="INV-9"),
            "to be called with {'invoice_id': 'INV-9'}",
        ),
        (lambda e: e.did_not_call("get_invoice"), "expected no call to 'get_invoice'"),
        (lambda e: e.output_contains("escalated"), "expected the output to contain 'escalated'"),
        (lambda e: e.used_at_most_tokens(-1), "expected at most -1 tokens"),
    ],
)
def test_each_assertion_fails_when_it_should_and_prints_the_trace(check: Any, message: str) -> None:
    result = mock_run(triage, "charged twice", events=lookup_invoice("Looked into it."))
    with pytest.raises(ExpectationFailed) as info:
        check(expect(result))
    text = str(info.value)
    assert message in text
    assert f"run {result.execution_id}" in text
    assert "→ routed to billing_specialist" in text
    assert "→ get_invoice(" in text


def test_failed_run_and_completed_assertion() -> None:
    result = mock_run(triage, "hi", events=[MockEvent.handoff("billing_specialist")])
    expect(result).failed()
    with pytest.raises(
        ExpectationFailed, match="expected the run to be completed, but it is failed"
    ):
        expect(result).completed()


def test_bad_scripts_are_clear_errors() -> None:
    with pytest.raises(InvalidInput):
        mock_run(triage, "hi", events=[])
    result = mock_run(triage, "hi", events=[MockEvent.handoff("nobody"), MockEvent.done("x")])
    expect(result).failed()
    assert "cannot hand off to it" in (result.error or "")
    with pytest.raises(InvalidInput, match="not waiting for an approval"):
        mock_run(triage, "hi", events=[MockEvent.done("hello"), MockEvent.approve()])


def test_pytest_fixture_gives_an_isolated_runtime(frontdesk_runtime: AgentRuntime) -> None:
    assert frontdesk_runtime.runs() == []
    assert str(frontdesk_runtime.home).endswith("frontdesk-home")


def test_mock_run_takes_a_home_not_a_runtime() -> None:
    assert "runtime" not in inspect.signature(mock_run).parameters


# --- call_tool --------------------------------------------------------------------------------


@dataclass
class Ledger:
    """A run context the tool writes to."""

    entries: list[str] = field(default_factory=list)


@tool
def record(ctx: RunContextWrapper[Ledger], note: str) -> dict[str, Any]:
    """Record a note under this tool call's idempotency key."""
    call = current_tool_call()
    ctx.context.entries.append(note)
    return {
        "note": note,
        "execution_id": call.execution_id,
        "call_id": call.call_id,
        "key": call.idempotency_key,
        "attempt": call.attempt,
    }


async def test_call_tool_runs_the_tool_in_a_tool_call_scope() -> None:
    ledger = Ledger()

    first = await call_tool(record, {"note": "a"}, context=ledger)
    second = await call_tool(record, {"note": "b"}, context=ledger)

    assert ledger.entries == ["a", "b"]
    assert first["note"] == "a" and first["attempt"] == 1
    assert first["execution_id"] == second["execution_id"]
    assert first["call_id"] != second["call_id"]
    assert first["key"] != second["key"] and first["key"]
    with pytest.raises(NoToolCall):
        current_tool_call()


async def test_call_tool_repeats_a_call_with_the_same_key() -> None:
    retry = await call_tool(
        record,
        '{"note": "again"}',
        context=Ledger(),
        idempotency_key="key-1",
        execution_id="run-7",
        call_id="call-3",
        attempt=2,
    )
    assert retry == {
        "note": "again",
        "execution_id": "run-7",
        "call_id": "call-3",
        "key": "key-1",
        "attempt": 2,
    }


async def test_call_tool_gives_the_model_the_sdk_error_for_bad_arguments() -> None:
    result = await call_tool(record, "{not json", context=Ledger())
    assert isinstance(result, str) and "error" in result.lower()


def test_call_tool_sync_in_synchronous_tests() -> None:
    ledger = Ledger()
    result = call_tool_sync(record, {"note": "sync"}, context=ledger, idempotency_key="k")
    assert result["key"] == "k" and ledger.entries == ["sync"]


async def test_call_tool_mistakes_are_clear_errors() -> None:
    with pytest.raises(InvalidInput, match="needs an agents"):
        await call_tool(lambda: None, {})  # type: ignore[arg-type]
    with pytest.raises(InvalidInput, match="args are not JSON"):
        await call_tool(record, {"note": object()}, context=Ledger())
    with pytest.raises(InvalidInput, match="args must be a mapping"):
        await call_tool(record, ["note"], context=Ledger())  # type: ignore[arg-type]
    with pytest.raises(InvalidInput, match="await call_tool"):
        call_tool_sync(record, {"note": "x"}, context=Ledger())
