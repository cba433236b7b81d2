"""Testing kit: run real agents and tools on a scripted model, and assert on the trace.

from frontdesk.testing import mock_run, MockEvent, expect

result = mock_run(triage_agent, "I was charged twice", events=[
    MockEvent.handoff("billing_specialist"),
    MockEvent.tool_call("get_invoice", {"invoice_id": "INV-8821"}),
    MockEvent.done("A refund has been initiated."),
])
expect(result).completed().handed_off_to("billing_specialist").called_tool("get_invoice")

A recorded run, replayed through the current agents (``frontdesk runs export`` writes these):

replay("tests/regressions/test_run_19a2.py")

One tool on its own, in a tool-call scope (``current_tool_call()`` works inside it):

refund = await call_tool(process_refund, {"invoice_id": "INV-8821", "reason": "duplicate"})
"""

from ._expect import Expectation, ExpectationFailed, expect, format_trace
from ._mock import MockEvent, mock_run
from ._replay import Recording, replay
from ._tools import call_tool, call_tool_sync

__all__ = [
    "Expectation",
    "ExpectationFailed",
    "MockEvent",
    "Recording",
    "call_tool",
    "call_tool_sync",
    "expect",
    "format_trace",
    "mock_run",
    "replay",
]
