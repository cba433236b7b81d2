"""A one-tool flow for fault tests, run in child processes that get stopped with SIGSTOP,
resumed with SIGCONT, moved into other namespaces or given a full or read-only disk.

Agents are module-level, so any process finds them again by reference. Their model answers
from the conversation: the first call asks for the agent's tool, with a call id that names the
process that made it (``<tool>-<pid>``), and the next one answers. Everything waits without
blocking the event loop, so a parked process keeps renewing its leases until it is stopped.

Side effects go to files under ``$FAULTFLOW_DIR``:

* ``invocations.log``: one line per tool invocation, ``<tool> <idempotency key> <pid>``;
* ``effects.log``: one line per external effect; tools dedupe on the idempotency key, as an
  external API such as Stripe does.

``$FAULTFLOW_PARK`` makes a process wait at a point until the file ``go`` exists: ``model``
(inside the first model call, before it returns) or ``tool`` (inside the tool, after its
effect). Reaching it writes the marker ``parked``. Markers are written atomically.

Child commands (``python -m faultflow COMMAND HOME``):

* ``drive``: run ``$FAULTFLOW_AGENT`` (``charger`` or ``refunder``) with the lease time to live
  ``$FAULTFLOW_LEASE_TTL``; write the marker ``result`` (JSON: status, execution id).
* ``recover``: one recovery scan; write the marker ``recovered`` (JSON list of run ids taken).
* ``full``: on a home that is a small file system of its own, fill the disk under a live
  runtime and write the marker ``full`` (JSON: what each step gave).
* ``readonly``: on a home mounted read-only, write the marker ``readonly`` (JSON: the errors).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sqlite3
import sys
import threading
import time
from pathlib import Path
from typing import Any

from agents import Agent, Model
from agents.items import ModelResponse
from agents.testing import assistant_message, function_call
from agents.usage import Usage

from frontdesk import AgentRuntime, current_tool_call, tool
from parking import ABANDONED, PARENT_ENV, write_marker

WAIT_SECONDS = 120.0
"""How long a process waits for something it needs (``go``, its run to park) before failing."""
_PARENT = int(os.environ.get(PARENT_ENV) or os.getppid())


def flow_dir() -> Path:
    """Where markers and logs go."""
    return Path(os.environ["FAULTFLOW_DIR"])


def marker(name: str, text: str) -> None:
    """Write a marker under the flow directory, atomically."""
    write_marker(flow_dir() / name, text)


def _append(name: str, line: str) -> None:
    with open(flow_dir() / name, "a") as f:
        f.write(line + "\n")
        f.flush()
        os.fsync(f.fileno())


def _lines(name: str) -> list[str]:
    path = flow_dir() / name
    return path.read_text().splitlines() if path.exists() else []


async def park(point: str) -> None:
    """If ``$FAULTFLOW_PARK`` names this point, say so and wait (on the loop) for ``go``.

    Like :func:`parking.park`, a parked process never outlives its test.
    """
    if os.environ.get("FAULTFLOW_PARK") != point:
        return
    marker("parked", point)
    deadline = time.monotonic() + WAIT_SECONDS
    while not (flow_dir() / "go").exists():
        if os.getppid() != _PARENT or time.monotonic() > deadline:
            os._exit(ABANDONED)
        await asyncio.sleep(0.02)


def _effect(kind: str, detail: str) -> None:
    call = current_tool_call()
    _append("invocations.log", f"{kind} {call.idempotency_key} {os.getpid()}")
    if not any(line.startswith(f"{call.idempotency_key} ") for line in _lines("effects.log")):
        _append("effects.log", f"{call.idempotency_key} {kind} {detail}")


@tool
async def charge(amount: float) -> str:
    """Charge the customer."""
    _effect("charge", str(amount))
    await park("tool")
    return f"charged {amount} by {os.getpid()}"


@tool(approval_required=True)
async def refund(amount: float) -> str:
    """Refund the customer (needs approval)."""
    _effect("refund", str(amount))
    await park("tool")
    return f"refunded {amount}"


class FlowModel(Model):
    """Asks for its tool first (with a call id naming this process), then answers."""

    def __init__(self, tool_name: str) -> None:
        self.tool_name = tool_name

    async def get_response(
        self, system_instructions: Any, input: Any, *args: Any, **kwargs: Any
    ) -> ModelResponse:
        items = input if isinstance(input, list) else []
        outputs = [
            item.get("output") if isinstance(item, dict) else getattr(item, "output", None)
            for item in items
            if (item.get("type") if isinstance(item, dict) else getattr(item, "type", None))
            == "function_call_output"
        ]
        if not outputs:
            await park("model")
            out = [
                function_call(
                    self.tool_name, {"amount": 5.0}, call_id=f"{self.tool_name}-{os.getpid()}"
                )
            ]
        else:
            out = [assistant_message(f"done: {outputs[-1]}")]
        return ModelResponse(
            output=out,
            usage=Usage(requests=1, input_tokens=10, output_tokens=5, total_tokens=15),
            response_id=None,
        )

    def stream_response(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError


charger = Agent(name="charger", model=FlowModel("charge"), tools=[charge])
refunder = Agent(name="refunder", model=FlowModel("refund"), tools=[refund])

MESSAGE = "please"


def _lease_ttl() -> float:
    return float(os.environ.get("FAULTFLOW_LEASE_TTL", "30"))


def drive(home: str) -> None:
    """Run the flow to its end (or until it waits for approval) and say how it ended."""
    import faultflow

    agent = getattr(faultflow, os.environ.get("FAULTFLOW_AGENT", "charger"))
    with AgentRuntime(home, recover=False, lease_ttl=_lease_ttl()) as runtime:
        result = runtime.run(agent, MESSAGE)
        marker("result", json.dumps({"status": result.status, "execution_id": result.execution_id}))


def recover(home: str) -> None:
    """Scan once for runs to take over, and say which were taken."""
    import faultflow  # noqa: F401  (the agents must be importable by reference)

    with AgentRuntime(home, recover=False, lease_ttl=_lease_ttl()) as runtime:
        marker("recovered", json.dumps(runtime.recover()))


def _fill(directory: Path) -> Path:
    filler = directory / "filler"
    with open(filler, "wb", buffering=0) as f:
        try:
            while True:
                f.write(b"\0" * 65536)
        except OSError:
            pass
        # The last few bytes too, so the store cannot grow by a single page.
        try:
            while True:
                f.write(b"\0" * 512)
        except OSError:
            pass
    return filler


def _truncate_log(home: Path) -> None:
    conn = sqlite3.connect(home / "frontdesk.db", timeout=30, isolation_level=None)
    try:
        deadline = time.monotonic() + WAIT_SECONDS
        while conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0] != 0:
            assert time.monotonic() < deadline, "the write-ahead log was never emptied"
            time.sleep(0.02)
    finally:
        conn.close()


class _Messages(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.seen = threading.Event()

    def emit(self, record: logging.LogRecord) -> None:
        if "driver stops" in record.getMessage():
            self.seen.set()


def full(home: str) -> None:
    """Fill the disk under a live runtime: a new run, then a run in flight."""
    import faultflow

    report: dict[str, Any] = {}
    stops = _Messages()
    logging.getLogger("frontdesk.engine").addHandler(stops)
    with AgentRuntime(home, lease_ttl=1.0, poll_interval=0.05, busy_timeout=1.0) as runtime:
        report["before"] = runtime.run(faultflow.charger, MESSAGE).status
        # A run in flight when the disk fills: parked in its first model call.
        os.environ["FAULTFLOW_PARK"] = "model"
        handle = runtime.start(faultflow.charger, MESSAGE)
        deadline = time.monotonic() + WAIT_SECONDS
        while not (flow_dir() / "parked").exists():
            assert time.monotonic() < deadline, "the run never reached its model call"
            time.sleep(0.02)
        del os.environ["FAULTFLOW_PARK"]
        # Empty the write-ahead log first: a commit must then grow it, on a disk with no room.
        _truncate_log(Path(home))
        filler = _fill(Path(home))
        try:
            runtime.run(faultflow.charger, MESSAGE)
            report["new_run"] = "no error"
        except Exception as exc:
            report["new_run"] = f"{type(exc).__name__}: {exc}"
        stops.seen.clear()  # from here on, only the run in flight can stop
        marker("go", "")
        report["driver_stopped"] = stops.seen.wait(WAIT_SECONDS)
        filler.unlink()
        report["in_flight"] = handle.result(timeout=WAIT_SECONDS).status
        report["after"] = runtime.run(faultflow.charger, MESSAGE).status
        report["runs"] = sorted(r.status for r in runtime.runs())
    marker("full", json.dumps(report))


def readonly(home: str) -> None:
    """Open and write a store whose home is read-only."""
    import faultflow

    report: dict[str, str] = {}
    try:
        with AgentRuntime(home, recover=False) as runtime:
            report["read"] = str(len(runtime.runs()))
            runtime.run(faultflow.charger, MESSAGE)
            report["write"] = "no error"
    except Exception as exc:
        report["error"] = f"{type(exc).__name__}: {exc}"
    marker("readonly", json.dumps(report))


def main() -> None:
    """Child entry point: ``python -m faultflow COMMAND HOME``."""
    command, home = sys.argv[1], sys.argv[2]
    {"drive": drive, "recover": recover, "full": full, "readonly": readonly}[command](home)


if __name__ == "__main__":
    main()
