"""A support-style flow for the fork, diff and export tests.

``triage`` hands off to ``billing``, which looks up an invoice and an account in parallel,
asks for a refund (approval required) and answers. The model (:class:`FlowModel`) decides from
the conversation it is shown, as an LLM reading it would, so a replayed run and a live one
agree; :class:`FlowProvider` serves variants by name (another answer, another amount, escalate
instead of refunding, route to ``technical``). Every tool invocation is logged, with its
idempotency key, to ``$FORKFLOW_DIR/invocations.log``, so a test sees exactly what ran.

Agents are module-level: runs and forks store references any process can import.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any

from agents import Agent, Model, ModelProvider, RunContextWrapper, handoff
from agents.items import ModelResponse
from agents.testing import assistant_message, function_call
from agents.usage import Usage
from pydantic import BaseModel

from frontdesk import current_tool_call, tool


class Ctx(BaseModel):
    route: str | None = None
    invoice_total: float | None = None
    refunded: bool = False


def _log(line: str) -> None:
    with open(Path(os.environ["FORKFLOW_DIR"]) / "invocations.log", "a") as f:
        f.write(line + "\n")


def invocations(flow_dir: Path) -> list[str]:
    """Every tool invocation so far: ``<tool> <idempotency key>``."""
    path = flow_dir / "invocations.log"
    return path.read_text().splitlines() if path.exists() else []


@tool
def lookup_invoice(wrapper: RunContextWrapper[Ctx], invoice_id: str) -> dict[str, Any]:
    """Fetch an invoice."""
    _log(f"lookup_invoice {current_tool_call().idempotency_key}")
    wrapper.context.invoice_total = 99.0
    return {"invoice_id": invoice_id, "total": 99.0, "customer_id": "C-1"}


@tool
def lookup_account(customer_id: str) -> dict[str, Any]:
    """Fetch an account."""
    _log(f"lookup_account {current_tool_call().idempotency_key}")
    return {"customer_id": customer_id, "plan": "pro"}


@tool(approval_required=True)
def refund(wrapper: RunContextWrapper[Ctx], invoice_id: str, amount: float) -> dict[str, Any]:
    """Refund an invoice (needs approval)."""
    _log(f"refund {current_tool_call().idempotency_key}")
    wrapper.context.refunded = True
    return {"refund_id": f"re_{invoice_id}", "amount": amount}


@tool
def escalate(reason: str) -> dict[str, Any]:
    """Hand the case to a human."""
    _log(f"escalate {current_tool_call().idempotency_key}")
    return {"escalation_id": "esc_1", "reason": reason}


@dataclasses.dataclass
class FlowModel(Model):
    """Route to billing, look up in parallel, refund ``amount`` (or escalate), then answer."""

    answer: str = "done"
    amount: float = 99.0
    cautious: bool = False
    route: str = "billing"

    async def get_response(
        self,
        system_instructions: str | None,
        input: str | list[Any],
        model_settings: Any,
        tools: list[Any],
        output_schema: Any,
        handoffs: list[Any],
        tracing: Any,
        **_: Any,
    ) -> ModelResponse:
        items = [i if isinstance(i, dict) else i.model_dump() for i in input or []]
        items = items if isinstance(input, list) else []
        outputs = {
            i.get("call_id"): i.get("output")
            for i in items
            if i.get("type") == "function_call_output"
        }
        names = {h.tool_name for h in handoffs}
        if f"transfer_to_{self.route}" in names:
            out: list[Any] = [function_call(f"transfer_to_{self.route}", {}, call_id="h-1")]
        elif not any(getattr(t, "name", None) == "lookup_invoice" for t in tools):
            out = [assistant_message(f"{self.answer}: not a billing question")]
        elif "inv-1" not in outputs:
            out = [
                function_call("lookup_invoice", {"invoice_id": "INV-1"}, call_id="inv-1"),
                function_call("lookup_account", {"customer_id": "C-1"}, call_id="acct-1"),
            ]
        elif self.cautious and "esc-1" not in outputs:
            out = [function_call("escalate", {"reason": "refund over policy"}, call_id="esc-1")]
        elif not self.cautious and "refund-1" not in outputs:
            args = {"invoice_id": "INV-1", "amount": self.amount}
            out = [function_call("refund", args, call_id="refund-1")]
        else:
            last = outputs.get("esc-1") or outputs.get("refund-1")
            out = [assistant_message(f"INV-1 {self.answer}; {json.dumps(str(last))}")]
        return ModelResponse(
            output=out,
            usage=Usage(requests=1, input_tokens=20, output_tokens=5, total_tokens=25),
            response_id=None,
        )

    def stream_response(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError("the flow's model is not streamed")


class FlowProvider(ModelProvider):
    """Model names for forks: ``polite`` answers otherwise, ``generous`` refunds 120,
    ``cautious`` escalates instead, ``misroute`` sends the customer to ``technical``."""

    def get_model(self, model_name: str | None) -> Model:
        return {
            "polite": FlowModel(answer="refunded, with our apologies"),
            "generous": FlowModel(amount=120.0),
            "cautious": FlowModel(cautious=True),
            "misroute": FlowModel(route="technical"),
        }.get(model_name or "", FlowModel())


def _route(wrapper: RunContextWrapper[Ctx]) -> None:
    wrapper.context.route = "billing"


billing = Agent[Ctx](
    name="billing", model=FlowModel(), tools=[lookup_invoice, lookup_account, refund, escalate]
)
technical = Agent[Ctx](name="technical", model=FlowModel())
triage = Agent[Ctx](
    name="triage", model=FlowModel(), handoffs=[handoff(billing, on_handoff=_route), technical]
)

ungated_billing = billing.clone(
    tools=[lookup_invoice, lookup_account, dataclasses.replace(refund, needs_approval=False)]
)
"""``billing`` whose refund needs no approval."""
billing_v2 = billing.clone(model=FlowModel(answer="handled by billing v2"))
"""``billing`` answering otherwise."""
stranger = Agent[Ctx](name="stranger", model=FlowModel())
"""An agent named like no agent of the flow."""

MESSAGE = "I was charged twice for INV-1, please refund"
