"""Testing kit: run real agents and tools on a scripted model, and assert on the trace.

from frontdesk.testing import mock_run, MockEvent, expect

result = mock_run(triage_agent, "I was charged twice", events=[
    MockEvent.handoff("billing_specialist"),
    MockEvent.tool_call("get_invoice", {"invoice_id": "INV-8821"}),
    MockEvent.done("A refund has been initiated."),
])
expect(result).completed().handed_off_to("billing_specialist").called_tool("get_invoice")
"""

from ._expect import Expectation, ExpectationFailed, expect, format_trace
from ._mock import MockEvent, mock_run

__all__ = ["Expectation", "ExpectationFailed", "MockEvent", "expect", "format_trace", "mock_run"]
