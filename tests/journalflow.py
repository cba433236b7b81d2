"""Agents for the Temporal tool-journal and worker tests, run by workers in child processes.

Agents are module-level, so every process finds them by reference. Their models are
``agents.testing.ScriptedModel`` steps that answer from the conversation, so a worker that
takes a run over (with a fresh script) continues it correctly.

* ``payer`` calls ``charge`` once, then says what it returned. Every run of ``charge`` appends
  a line to ``$JOURNAL_DIR/invocations.log`` (flushed and fsynced: it survives a SIGKILL).
  With ``$JOURNAL_PARK`` set, the worker parks once the call is journaled done in the store,
  before Temporal hears the activity finished: ``charge`` schedules a check on the worker's
  event loop that, as soon as the store shows the call done, writes ``$JOURNAL_DIR/parked``
  and blocks the loop, so the activity never completes and stops heartbeating, as a worker
  that died right after its tool would.
* ``desk`` calls the support app's ``get_account`` and ``probe`` (which records the runtime
  :func:`frontdesk.current_runtime` gives it in :data:`SEEN`), then answers with the account.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

from agents import Agent
from agents.testing import ModelStep, ScriptedModel, assistant_message, function_call

from frontdesk import current_runtime, current_tool_call, tool
from frontdesk.apps.support.tools import get_account
from frontdesk.store import Store
from parking import park, write_marker

SEEN: list[Any] = []
"""The runtimes ``probe`` found, in this process."""


def _dir() -> Path:
    return Path(os.environ["JOURNAL_DIR"])


def invocations() -> list[str]:
    """The lines ``charge`` logged, one per run of the tool."""
    path = _dir() / "invocations.log"
    return path.read_text().splitlines() if path.exists() else []


def _log_invocation(line: str) -> None:
    with open(_dir() / "invocations.log", "a") as log:
        log.write(line + "\n")
        log.flush()
        os.fsync(log.fileno())


def _park_once_done(store: Store, key: str) -> None:
    """On the worker's loop: park it (blocking the loop) once ``key`` is journaled done."""
    record = store.tool_call(key)
    if record is None or not record.done:
        asyncio.get_running_loop().call_soon(_park_once_done, store, key)
        return
    write_marker(_dir() / "parked", key)
    park()


@tool
async def charge(amount: float) -> str:
    """Charge the customer's card."""
    call = current_tool_call()
    _log_invocation(f"{call.idempotency_key} attempt={call.attempt}")
    if os.environ.get("JOURNAL_PARK"):
        store = current_runtime().store
        asyncio.get_running_loop().call_soon(_park_once_done, store, call.idempotency_key)
    return f"charged {amount}"


@tool
def probe() -> str:
    """Say which runtime runs this tool."""
    SEEN.append(current_runtime())
    return "probed"


def _outputs(call: Any) -> dict[str, Any]:
    items = call.input if isinstance(call.input, list) else []
    plain = [i if isinstance(i, dict) else i.model_dump() for i in items]
    return {
        i.get("call_id"): i.get("output") for i in plain if i.get("type") == "function_call_output"
    }


def pay(call: Any) -> Any:
    """Charge 42 once, then report what the charge returned."""
    outputs = _outputs(call)
    if "pay-1" not in outputs:
        return [function_call("charge", {"amount": 42}, call_id="pay-1")]
    return [assistant_message(f"paid: {outputs['pay-1']}")]


def look_up(call: Any) -> Any:
    """Look the account up (and probe), then answer with what the lookup returned."""
    outputs = _outputs(call)
    if "acct-1" not in outputs:
        return [
            function_call("get_account", {"customer_id": "CUST-1001"}, call_id="acct-1"),
            function_call("probe", {}, call_id="probe-1"),
        ]
    return [assistant_message(f"account: {outputs['acct-1']}")]


def _model(step: Any) -> ScriptedModel:
    return ScriptedModel([ModelStep.respond(step) for _ in range(50)])


payer = Agent(name="payer", model=_model(pay), tools=[charge])
desk = Agent(name="desk", model=_model(look_up), tools=[get_account, probe])
