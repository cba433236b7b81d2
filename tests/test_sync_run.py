"""A synchronous ``run`` is driven on the calling thread, and costs no more than it must.

``runtime.run`` drives its run on an event loop of the calling thread instead of hopping to
the engine's thread and back; leases, cancellation and recovery reach it as they reach any run
of the process. A run commits once per durable step and reads nothing back once it settled.

What a caller sees runs on SQLite and on PostgreSQL; the two tests that count the statements
on SQLite's own connections (``set_trace_callback``) are about the SQLite store and stay there.
"""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from agents import Agent, function_tool
from agents.testing import ModelStep, ScriptedModel, assistant_message, function_call

from frontdesk import AgentRuntime

from conftest import WAIT_SECONDS, both_backends, wait_until


def flow(tool: Any) -> Agent[Any]:
    """triage -> handoff -> specialist -> ``tool`` -> answer (3 model calls)."""
    model = ScriptedModel(
        [
            ModelStep(output=[function_call("transfer_to_specialist", {}, call_id="h1")]),
            ModelStep(output=[function_call(tool.name, {}, call_id="c1")]),
            ModelStep(output=[assistant_message("All done.")]),
        ]
        * 2  # a run interrupted and resumed asks again for what it never committed
    )
    specialist = Agent(name="specialist", model=model, tools=[tool])
    return Agent(name="triage", model=model, handoffs=[specialist])


@both_backends
def test_a_sync_run_is_driven_on_the_calling_thread(runtime: AgentRuntime) -> None:
    threads: list[threading.Thread] = []

    @function_tool
    async def where() -> str:
        """Say where the run is driven."""
        threads.append(threading.current_thread())
        return "here"

    result = runtime.run(flow(where), "where?")
    assert result.status == "completed", result.error
    assert threads == [threading.current_thread()]

    answers: list[Any] = []
    worker = threading.Thread(target=lambda: answers.append(runtime.run(flow(where), "again")))
    worker.start()
    worker.join(WAIT_SECONDS)
    assert answers[0].status == "completed", answers[0].error
    assert threads[1] is worker


def test_a_run_commits_once_per_step_and_reads_nothing_back(home: Path) -> None:
    """Four transactions for this flow: the first model call, which only hands off (with the
    run's row); the handoff, the second model call and the start of the tool it asks for; the
    tool's result; the last model call with the outcome. Besides each transaction's fence,
    nothing is read. SQLite only: it traces the statements of the SQLite store's
    connections."""

    @function_tool
    def lookup() -> str:
        """Look something up."""
        return "found"

    # No heartbeat during the run: only the run's own statements are traced.
    with AgentRuntime(home, recover=False, lease_ttl=600) as runtime:
        runtime.run(flow(lookup), "warm up")  # the store's writer opens its connection
        statements: list[str] = []
        connections = list(runtime.store._all)  # every connection: the caller's, the writer's
        for conn in connections:
            conn.set_trace_callback(statements.append)
        try:
            result = runtime.run(flow(lookup), "look it up")
        finally:
            for conn in connections:
                conn.set_trace_callback(None)
    assert result.status == "completed", result.error
    assert result.output == "All done."
    assert statements.count("BEGIN IMMEDIATE") == 4
    assert statements.count("COMMIT") == 4
    reads = [
        s
        for s in statements
        if s.startswith("SELECT") and not s.startswith("SELECT 1 FROM runs WHERE execution_id")
    ]
    assert reads == []
    assert [s.kind for s in result.steps] == ["model", "handoff", "model", "tool", "model"]


@both_backends
def test_an_interrupted_sync_run_is_handed_back_and_resumed(runtime: AgentRuntime) -> None:
    attempts: list[int] = []

    def interrupt() -> None:
        raise KeyboardInterrupt  # as Ctrl-C does, while the loop waits

    @function_tool
    async def slow() -> str:
        """Take a while the first time."""
        attempts.append(len(attempts) + 1)
        if len(attempts) == 1:
            asyncio.get_running_loop().call_soon(interrupt)
            await asyncio.sleep(WAIT_SECONDS)
        return "finally"

    with pytest.raises(KeyboardInterrupt):
        runtime.run(flow(slow), "take your time")
    [run] = runtime.runs()
    row = runtime.store.require_run(run.execution_id)
    assert row.status == "running"
    assert row.lease_owner is None  # handed back at once, not left to expire
    assert runtime.recover() == [row.execution_id]
    result = runtime.handle(row.execution_id).result(WAIT_SECONDS)
    assert result.status == "completed", result.error
    assert attempts == [1, 2]


@both_backends
def test_a_sync_run_is_cancelled_from_another_thread(runtime: AgentRuntime) -> None:
    started = threading.Event()

    @function_tool
    async def wait_forever() -> str:
        """Wait until cancelled."""
        started.set()
        await asyncio.sleep(WAIT_SECONDS)
        return "never"

    def cancel_when_started() -> None:
        assert started.wait(WAIT_SECONDS)
        runtime.cancel(runtime.runs(status="running")[0].execution_id)

    canceller = threading.Thread(target=cancel_when_started)
    canceller.start()
    try:
        result = runtime.run(flow(wait_forever), "wait")
    finally:
        canceller.join(WAIT_SECONDS)
    assert result.status == "cancelled"


@both_backends
def test_the_heartbeat_renews_the_lease_of_a_sync_run(home: Any, backend: str) -> None:
    renewed: list[float] = []

    with AgentRuntime(home, recover=False, lease_ttl=0.6) as runtime:

        @function_tool
        async def outlast_the_lease() -> str:
            """Wait until the run's lease was renewed."""
            [run] = runtime.runs(status="running")
            row = runtime.store.require_run(run.execution_id)
            first = row.lease_expires or 0.0

            deadline = time.monotonic() + WAIT_SECONDS
            while time.monotonic() < deadline:
                if (runtime.store.require_run(row.execution_id).lease_expires or 0) > first:
                    renewed.append(first)
                    break
                await asyncio.sleep(0.05)
            return "still mine"

        result = runtime.run(flow(outlast_the_lease), "hold on")
    assert result.status == "completed", result.error
    assert renewed


@both_backends
async def test_run_called_from_async_code_still_completes(runtime: AgentRuntime) -> None:
    @function_tool
    def lookup() -> str:
        """Look something up."""
        return "found"

    # A blocking call from a running loop cannot drive on that loop: the engine's does.
    result = runtime.run(flow(lookup), "from a coroutine")
    assert result.status == "completed", result.error


async def test_concurrent_runs_on_one_loop_still_share_transactions(
    runtime: AgentRuntime,
) -> None:
    """SQLite only: it traces the statements of the SQLite store's connection."""

    @function_tool
    async def lookup() -> str:
        """Look something up."""
        await asyncio.sleep(0)
        return "found"

    statements: list[str] = []
    conn = runtime.store._conn()
    conn.set_trace_callback(statements.append)
    try:
        results = await asyncio.gather(*(runtime.run_async(flow(lookup), "x") for _ in range(20)))
    finally:
        conn.set_trace_callback(None)
    assert all(r.status == "completed" for r in results)
    assert statements.count("COMMIT") < 20 * 6 / 2


@both_backends
def test_a_caller_thread_loop_is_closed_when_the_thread_ends(runtime: AgentRuntime) -> None:
    @function_tool
    def lookup() -> str:
        """Look something up."""
        return "found"

    loops: list[asyncio.AbstractEventLoop] = []

    @function_tool
    async def loop_of_run() -> str:
        """Note the run's loop."""
        loops.append(asyncio.get_running_loop())
        return "noted"

    worker = threading.Thread(target=lambda: runtime.run(flow(loop_of_run), "which loop"))
    worker.start()
    worker.join(WAIT_SECONDS)
    assert len(loops) == 1
    wait_until(lambda: loops[0].is_closed() or None, "the ended thread's loop to close")
