"""The refund flow of the chaos test, run by ``frontdesk worker`` processes that get SIGKILLed.

triage hands off to billing, which looks the invoice up, asks to refund it (a tool that needs
approval) and answers: four model calls and two tool calls per run, each run about one invoice
(``Refund INV-<n>``, its execution id ``chaos-<n>``).

What happened is recorded where a SIGKILL cannot undo it:

- every model call that returned appends one line to ``$CHAOS_DIR/models.log`` with a single
  ``write`` on an ``O_APPEND`` file (atomic for a line this short): the run's invoice, which
  call of the run it was, a fresh nonce and the pid. The nonce is the response's
  ``response_id``, which the journal keeps: a logged call whose nonce the journal lacks is one
  whose response was never committed.
- every tool invocation inserts a row into ``chaos_attempts`` and its effect into
  ``chaos_effects``, whose primary key is the call's idempotency key (the effect happens once
  per key, as with Stripe), in the database of ``$FRONTDESK_DATABASE_URL``. A tool retries
  that write while the server is being restarted, so the model never sees an outage.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import re
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import psycopg
from agents import Agent
from agents.items import ModelResponse
from agents.models.interface import Model
from agents.testing import assistant_message, function_call
from agents.usage import Usage

from frontdesk import AgentRuntime, current_tool_call, tool
from parking import park, write_marker

CALLS_PER_RUN = 4
"""Model calls of a run nothing interrupted."""
TABLES = (
    "CREATE TABLE IF NOT EXISTS public.chaos_effects (key text PRIMARY KEY, kind text NOT NULL, "
    "invoice text NOT NULL, pid int NOT NULL)",
    "CREATE TABLE IF NOT EXISTS public.chaos_attempts (id bigserial PRIMARY KEY, key text NOT NULL, "
    "kind text NOT NULL, invoice text NOT NULL, pid int NOT NULL, attempt int NOT NULL)",
)
"""The tables the tools write their effects and attempts to."""
_INVOICE = re.compile(r"INV-\d+")


def _dir() -> Path:
    return Path(os.environ["CHAOS_DIR"])


def log_call(record: dict[str, Any]) -> None:
    """Append one line to ``models.log`` in a single write."""
    line = (json.dumps(record, sort_keys=True) + "\n").encode()
    fd = os.open(_dir() / "models.log", os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)


def _text(item: Any) -> str:
    content = item.get("content") if isinstance(item, dict) else None
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(str(part.get("text", "")) for part in content if isinstance(part, dict))
    return ""


class ChaosModel(Model):
    """Answers from the conversation so far, after a short random latency."""

    async def get_response(
        self,
        system_instructions: Any,
        input: Any,
        model_settings: Any,
        tools: Any,
        output_schema: Any,
        handoffs: Any,
        *args: Any,
        **kwargs: Any,
    ) -> ModelResponse:
        await asyncio.sleep(random.uniform(0.05, 0.3))
        items = [i if isinstance(i, dict) else i.model_dump() for i in input]
        invoice = next(m.group(0) for i in items if (m := _INVOICE.search(_text(i))))
        outputs = {
            i.get("call_id"): str(i.get("output"))
            for i in items
            if i.get("type") == "function_call_output"
        }
        call = len(outputs)
        if any(h.tool_name == "transfer_to_billing" for h in handoffs):
            out: list[Any] = [function_call("transfer_to_billing", {}, call_id="h-1")]
        elif "lookup-1" not in outputs:
            out = [function_call("lookup_invoice", {"invoice_id": invoice}, call_id="lookup-1")]
        elif "refund-1" not in outputs:
            out = [function_call("refund", {"invoice_id": invoice, "amount": 99.0}, call_id="refund-1")]  # fmt: skip
        else:
            verdict = "rejected" if "rejected" in outputs["refund-1"].lower() else "refunded"
            out = [assistant_message(f"{invoice} {verdict}")]
        nonce = uuid.uuid4().hex
        log_call({"invoice": invoice, "call": call, "nonce": nonce, "pid": os.getpid()})
        return ModelResponse(
            output=out,
            usage=Usage(requests=1, input_tokens=10, output_tokens=3, total_tokens=13),
            response_id=nonce,
        )

    def stream_response(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError


def _effect(kind: str, invoice: str) -> None:
    """Record the attempt and, once per idempotency key, the effect; through outages."""
    call = current_tool_call()
    url = os.environ["FRONTDESK_DATABASE_URL"]
    deadline = time.monotonic() + 180
    while True:
        try:
            with psycopg.connect(url, connect_timeout=5) as conn:
                conn.execute(
                    "INSERT INTO public.chaos_attempts (key, kind, invoice, pid, attempt) "
                    "VALUES (%s, %s, %s, %s, %s)",
                    (call.idempotency_key, kind, invoice, os.getpid(), call.attempt),
                )
                conn.execute(
                    "INSERT INTO public.chaos_effects (key, kind, invoice, pid) "
                    "VALUES (%s, %s, %s, %s) ON CONFLICT (key) DO NOTHING",
                    (call.idempotency_key, kind, invoice, os.getpid()),
                )
            return
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)  # the server is being restarted: try again


@tool
def lookup_invoice(invoice_id: str) -> dict[str, Any]:
    """Fetch an invoice."""
    _effect("lookup", invoice_id)
    return {"invoice_id": invoice_id, "total": 99.0}


@tool(approval_required=True)
def refund(invoice_id: str, amount: float) -> dict[str, Any]:
    """Refund an invoice (needs approval)."""
    _effect("refund", invoice_id)
    return {"refund_id": f"re_{invoice_id}", "amount": amount}


billing = Agent(name="billing", model=ChaosModel(), tools=[lookup_invoice, refund])
triage = Agent(name="triage", model=ChaosModel(), handoffs=[billing])


class SteppedModel(Model):
    """Calls a tool, then answers once ``$CHAOS_DIR/go`` exists: a run that cannot end before
    someone watching it from another process has seen its tool's result."""

    async def get_response(self, system_instructions: Any, input: Any, *args: Any, **kwargs: Any) -> ModelResponse:  # fmt: skip
        items = [i if isinstance(i, dict) else i.model_dump() for i in input]
        if not any(i.get("type") == "function_call_output" for i in items):
            out: list[Any] = [function_call("note", {"text": "seen"}, call_id="note-1")]
        else:
            # Another process writes the file: no event of this loop can say so.
            while not (_dir() / "go").exists():  # noqa: ASYNC110
                await asyncio.sleep(0.02)
            out = [assistant_message("done")]
        return ModelResponse(output=out, usage=Usage(requests=1), response_id=None)

    def stream_response(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError


@tool
def note(text: str) -> str:
    """Take a note."""
    return f"noted: {text}"


stepped = Agent(name="stepped", model=SteppedModel(), tools=[note])


def run_stepped() -> None:
    """Child entry point: drive the stepped run here until it completes."""
    import chaosflow

    with AgentRuntime(recover=False) as runtime:
        runtime.run(chaosflow.stepped, "go on", execution_id="stepped")


def message(n: int) -> str:
    """The message of run ``n``."""
    return f"Refund INV-{n}, I was charged twice"


def execution_id(n: int) -> str:
    """The execution id of run ``n``."""
    return f"chaos-{n:03d}"


def start(first: int, count: int) -> None:
    """Child entry point: start runs ``first`` to ``first + count - 1``, say so, and wait to be
    killed (the workers take the runs over)."""
    import chaosflow

    with AgentRuntime(recover=False) as runtime:
        for n in range(first, first + count):
            runtime.start(chaosflow.triage, message(n), execution_id=execution_id(n))
        write_marker(_dir() / "started", str(count))
        park()


if __name__ == "__main__":
    if sys.argv[1] == "stepped":
        run_stepped()
    else:
        start(int(sys.argv[1]), int(sys.argv[2]))
