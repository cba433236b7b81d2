"""The crash flow with a refund whose approval times out, for tests of approval deadlines.

Two graphs share the crash flow's model, lookups and side-effect logs (see
:mod:`crashflow`): ``triage_rejecting``, whose refund is rejected when nobody decides within
:data:`TIMEOUT`, and ``triage_escalating``, whose refund is escalated instead. Run as a child
with ``$CRASH_AT=waiting_approval``, the flow parks once the run waits for the approval, so
the test can SIGKILL it before the deadline.
"""

from __future__ import annotations

import sys
from datetime import timedelta
from typing import Any

from agents import Agent, RunContextWrapper, handoff

from frontdesk import AgentRuntime, tool
from parking import write_marker

from crashflow import (
    MESSAGE,
    Ctx,
    _dir,
    _effect,
    _model,
    _route,
    lookup_account,
    lookup_invoice,
    park_at,
)

TIMEOUT = timedelta(seconds=3)
"""Long enough for the test to kill the child first, short enough to wait out."""


def _refund(wrapper: RunContextWrapper[Ctx], invoice_id: str, amount: float) -> dict[str, Any]:
    """Refund an invoice (needs approval, within a deadline)."""
    _effect("refund", f"{invoice_id} {amount}")
    wrapper.context.refunded = True
    return {"refund_id": f"re_{invoice_id}", "amount": amount}


refund_or_reject = tool(
    approval_required=True, approval_timeout=TIMEOUT, on_timeout="reject", name_override="refund"
)(_refund)
refund_or_escalate = tool(
    approval_required=True, approval_timeout=TIMEOUT, on_timeout="escalate", name_override="refund"
)(_refund)


def _graph(refund: Any) -> Agent[Ctx]:
    billing = Agent[Ctx](
        name="billing", model=_model(), tools=[lookup_invoice, lookup_account, refund]
    )
    return Agent[Ctx](name="triage", model=_model(), handoffs=[handoff(billing, on_handoff=_route)])


triage_rejecting = _graph(refund_or_reject)
triage_escalating = _graph(refund_or_escalate)


def main() -> None:
    """Child entry point: ``approvalflow HOME reject|escalate``; runs to the approval."""
    import approvalflow

    home, on_timeout = sys.argv[1], sys.argv[2]
    agent = {"reject": approvalflow.triage_rejecting, "escalate": approvalflow.triage_escalating}
    with AgentRuntime(home, recover=False) as runtime:
        result = runtime.run(agent[on_timeout], MESSAGE, context=Ctx())
        write_marker(_dir() / "execution_id", result.execution_id)
        park_at(result.status)
        write_marker(_dir() / "parked", result.status)


if __name__ == "__main__":
    main()
