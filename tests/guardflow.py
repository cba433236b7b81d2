"""A guarded desk for guardrail tests that run in other processes: a flow SIGKILLed inside its
tool and recovered, and the console serving runs of it.

Agents are module-level, so any process finds them again by reference. Every guardrail and
tool call appends a line to ``$GUARDFLOW_DIR/calls.log`` (when set), so a test counts calls
across processes. With ``$CRASH_AT=in_tool`` the flow parks inside its tool, after its input
guardrail's result and its first model call are committed, and says so in ``parked`` (the
input guardrail blocks the first turn, instead of running alongside it as by default, so it
has surely run by then).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from agents import (
    Agent,
    GuardrailFunctionOutput,
    RunContextWrapper,
    input_guardrail,
    output_guardrail,
)
from agents.testing import ModelStep, ScriptedModel, assistant_message, function_call

from frontdesk import AgentRuntime, tool
from parking import park, write_marker

MESSAGE = "Is invoice INV-1 paid?"
FORBIDDEN = "forbidden"
"""A message with this word trips the input guardrail."""
NOTE = '<script>alert("guard")</script>'
"""Markup in the input guardrail's output info: pages must show it escaped."""


def _log(line: str) -> None:
    folder = os.environ.get("GUARDFLOW_DIR")
    if folder:
        with open(Path(folder) / "calls.log", "a") as f:
            f.write(line + "\n")
            f.flush()
            os.fsync(f.fileno())


def calls(folder: Path) -> list[str]:
    """The calls logged under ``folder``, in order."""
    path = folder / "calls.log"
    return path.read_text().splitlines() if path.exists() else []


@input_guardrail(run_in_parallel=False)
def screen(ctx: RunContextWrapper[Any], agent: Agent[Any], message: Any) -> GuardrailFunctionOutput:
    """Trips on a forbidden word."""
    _log("screen")
    tripped = FORBIDDEN in str(message)
    return GuardrailFunctionOutput({"topic": "billing", "note": NOTE}, tripwire_triggered=tripped)


@output_guardrail
async def review(
    ctx: RunContextWrapper[Any], agent: Agent[Any], output: Any
) -> GuardrailFunctionOutput:
    """Passes every answer."""
    _log("review")
    return GuardrailFunctionOutput({"length": len(str(output))}, tripwire_triggered=False)


@tool
def lookup(invoice_id: str) -> dict[str, Any]:
    """Look an invoice up."""
    _log("lookup")
    if os.environ.get("CRASH_AT") == "in_tool":
        write_marker(Path(os.environ["GUARDFLOW_DIR"]) / "parked", "in_tool")
        park()
    return {"invoice_id": invoice_id, "status": "paid"}


def _answer(call: Any) -> Any:
    items = [i if isinstance(i, dict) else i.model_dump() for i in call.input]
    if not any(i.get("type") == "function_call_output" for i in items):
        return [function_call("lookup", {"invoice_id": "INV-1"}, call_id="look-1")]
    return [assistant_message("INV-1 is paid.")]


desk = Agent(
    name="desk",
    model=ScriptedModel([ModelStep.respond(_answer) for _ in range(200)]),
    tools=[lookup],
    input_guardrails=[screen],
    output_guardrails=[review],
)


def main() -> None:
    """Child entry point: run the desk on ``argv[1]`` (a home) with ``argv[2]`` as message.

    Uses the importable ``guardflow`` module's agent, so the run stores a reference another
    process can import.
    """
    import guardflow

    with AgentRuntime(sys.argv[1], recover=False) as runtime:
        result = runtime.run(guardflow.desk, sys.argv[2] if len(sys.argv) > 2 else MESSAGE)
        write_marker(Path(os.environ["GUARDFLOW_DIR"]) / "parked", result.status)


if __name__ == "__main__":
    main()
