"""A support-style flow for crash tests, run in child processes that get SIGKILLed.

Agents are module-level, so any process can find them again by reference. The model is an
``agents.testing.ScriptedModel`` whose steps derive their answer from the conversation, so a
recovering process (with a fresh script) continues correctly. Side effects go to files under
``$CRASHFLOW_DIR``:

* ``models.log``: one line per model call that returned;
* ``invocations.log``: one line per tool invocation (attempts included);
* ``effects.log``: one line per external effect; tools dedupe on their idempotency key, as
  an external API such as Stripe does.

``$CRASH_AT`` parks the process at a step so the test can SIGKILL it there:
``after_model:K`` (model call K committed, K+1 not returned), ``in_tool:NAME`` (inside the
tool, after its effect, before its result is committed). Where it parked is written
atomically to ``parked``; a parked process exits by itself once its test is gone.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

from agents import Agent, RunContextWrapper, handoff
from agents.testing import ModelStep, ScriptedModel, assistant_message, function_call
from pydantic import BaseModel

from frontdesk import AgentRuntime, current_tool_call, tool
from parking import park, write_marker


class Ctx(BaseModel):
    route: str | None = None
    invoice_total: float | None = None
    refunded: bool = False


def _dir() -> Path:
    return Path(os.environ["CRASHFLOW_DIR"])


def _append(name: str, line: str) -> None:
    with open(_dir() / name, "a") as f:
        f.write(line + "\n")
        f.flush()
        os.fsync(f.fileno())


def _lines(name: str) -> list[str]:
    path = _dir() / name
    return path.read_text().splitlines() if path.exists() else []


def park_at(point: str) -> None:
    """If $CRASH_AT names this point, say so and wait to be killed."""
    if os.environ.get("CRASH_AT") == point:
        write_marker(_dir() / "parked", point)
        park()


def _effect(kind: str, detail: str) -> None:
    call = current_tool_call()
    _append("invocations.log", f"{kind} {call.idempotency_key} attempt={call.attempt}")
    if not any(line.startswith(f"{call.idempotency_key} ") for line in _lines("effects.log")):
        _append("effects.log", f"{call.idempotency_key} {kind} {detail}")


@tool
def lookup_invoice(wrapper: RunContextWrapper[Ctx], invoice_id: str) -> dict[str, Any]:
    """Fetch an invoice."""
    _effect("lookup_invoice", invoice_id)
    wrapper.context.invoice_total = 99.0
    park_at("in_tool:lookup_invoice")
    return {"invoice_id": invoice_id, "total": 99.0, "customer_id": "C-1"}


@tool
def lookup_account(customer_id: str) -> dict[str, Any]:
    """Fetch an account."""
    _effect("lookup_account", customer_id)
    park_at("in_tool:lookup_account")
    return {"customer_id": customer_id, "plan": "pro"}


@tool(approval_required=True)
def refund(wrapper: RunContextWrapper[Ctx], invoice_id: str, amount: float) -> dict[str, Any]:
    """Refund an invoice (needs approval)."""
    _effect("refund", f"{invoice_id} {amount}")
    wrapper.context.refunded = True
    park_at("in_tool:refund")
    return {"refund_id": f"re_{invoice_id}", "amount": amount}


def _items(call: Any) -> list[dict[str, Any]]:
    items = call.input if isinstance(call.input, list) else []
    return [i if isinstance(i, dict) else i.model_dump() for i in items]


def decide(call: Any) -> Any:
    """Answer from the conversation: route, look up in parallel, refund, then answer."""
    done = len(_lines("models.log"))
    park_at(f"after_model:{done}")
    items = _items(call)
    outputs = {
        i.get("call_id"): i.get("output") for i in items if i.get("type") == "function_call_output"
    }
    names = {handoff_.tool_name for handoff_ in call.handoffs}
    if "transfer_to_billing" in names:
        step: Any = [function_call("transfer_to_billing", {}, call_id="h-1")]
    elif "inv-1" not in outputs:
        step = [
            function_call("lookup_invoice", {"invoice_id": "INV-1"}, call_id="inv-1"),
            function_call("lookup_account", {"customer_id": "C-1"}, call_id="acct-1"),
        ]
    elif "refund-1" not in outputs:
        step = [
            function_call("refund", {"invoice_id": "INV-1", "amount": 99.0}, call_id="refund-1")
        ]
    else:
        refund_out = str(outputs["refund-1"])
        verdict = "rejected" if "rejected" in refund_out.lower() else "refunded"
        step = [assistant_message(f"INV-1 {verdict}; account plan pro; {refund_out}")]
    _append("models.log", json.dumps({"call": done + 1}))
    return step


def _model() -> ScriptedModel:
    return ScriptedModel([ModelStep.respond(decide) for _ in range(200)])


def _route(wrapper: RunContextWrapper[Ctx]) -> None:
    wrapper.context.route = "billing"


billing = Agent[Ctx](name="billing", model=_model(), tools=[lookup_invoice, lookup_account, refund])
triage = Agent[Ctx](name="triage", model=_model(), handoffs=[handoff(billing, on_handoff=_route)])

MESSAGE = "I was charged twice for INV-1, please refund"


def main() -> None:
    """Child entry point: start the flow and run until killed or settled.

    Uses the importable ``crashflow`` module's objects (not ``__main__``'s), so the run
    stores references another process can import.
    """
    import crashflow

    home = sys.argv[1]
    with AgentRuntime(home, recover=False) as runtime:
        result = runtime.run(crashflow.triage, MESSAGE, context=crashflow.Ctx())
        write_marker(_dir() / "execution_id", result.execution_id)
        point = "waiting_approval" if result.status == "waiting_approval" else result.status
        park_at(point)
        write_marker(_dir() / "parked", point)


if __name__ == "__main__":
    main()
