"""What the runtime asks of its engine, in public: the runtime a tool runs for, waiting on
runs, and conversation turns marked by their run's columns."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from agents import Agent, function_tool
from agents.testing import ModelStep, ScriptedModel, assistant_message, function_call

import convflow
from frontdesk import AgentRuntime, current_runtime
from frontdesk._scope import NoRuntime
from frontdesk.store.sqlite import store_path

from conftest import WAIT_SECONDS, sql_execute, sql_rows


def test_a_tool_reaches_the_runtime_that_drives_it(runtime: AgentRuntime) -> None:
    seen: list[Any] = []

    @function_tool
    async def in_loop() -> str:
        """Runs on the event loop that drives the run."""
        seen.append(current_runtime())
        return "ok"

    @function_tool
    def in_thread() -> str:
        """A sync tool: the SDK runs it on a worker thread."""
        seen.append(current_runtime())
        seen.append(threading.current_thread() is not threading.main_thread())
        return "ok"

    model = ScriptedModel(
        [
            ModelStep(output=[function_call("in_loop", {}, call_id="c1")]),
            ModelStep(output=[function_call("in_thread", {}, call_id="c2")]),
            ModelStep(output=[assistant_message("done")]),
        ]
    )
    agent = Agent(name="scoped", model=model, tools=[in_loop, in_thread])
    assert runtime.run(agent, "go").status == "completed"
    assert seen == [runtime, runtime, True]
    with pytest.raises(NoRuntime, match="only available inside a run"):
        current_runtime()


def test_waiting_wakes_when_a_run_settles_and_nothing_drives_it_after(
    runtime: AgentRuntime,
) -> None:
    release = threading.Event()

    @function_tool
    def slow() -> str:
        """Blocks until the test lets it go."""
        release.wait(WAIT_SECONDS)
        return "done"

    model = ScriptedModel(
        [
            ModelStep(output=[function_call("slow", {}, call_id="c1")]),
            ModelStep(output=[assistant_message("finished")]),
        ]
    )
    handle = runtime.start(Agent(name="waiter", model=model, tools=[slow]), "go")
    assert runtime.driving(handle.execution_id)
    assert runtime.wait_until(lambda: None, timeout=0.05) is None
    release.set()
    settled = runtime.wait_until(
        lambda: runtime.store.require_run(handle.execution_id).status == "completed" or None,
        timeout=WAIT_SECONDS,
    )
    assert settled is True
    assert runtime.wait_until(lambda: not runtime.driving(handle.execution_id) or None, 30)
    assert handle.result(timeout=WAIT_SECONDS).output == "finished"


def test_a_turn_is_marked_by_its_run_and_older_turns_still_read(runtime: AgentRuntime) -> None:
    conversation = runtime.conversation("c1", agent=convflow.desk, context=convflow.SeatContext())
    conversation.send("hello", 0)
    [turn] = conversation.runs()
    stored = json.loads(sql_rows(runtime.home, "SELECT input FROM runs")[0][0])
    assert stored == {"base_len": 0, "message": "hello"}
    assert (turn.conversation_id, turn.input) == ("c1", "hello")
    # A turn stored by an older version carries its conversation inside its input too.
    legacy = json.dumps({"$conversation": "c1", "base_len": 0, "message": "hello"})
    sql_execute(runtime.home, "UPDATE runs SET input = ?", (legacy,))
    assert runtime.get(turn.execution_id).input == "hello"
    assert conversation.send("I want to change my seat", 2)[0] == "User: I want to change my seat"
    forked = runtime.fork(turn.execution_id, 1).result(timeout=WAIT_SECONDS)
    assert forked.status == "completed" and forked.conversation_id is None
    assert forked.input[-1] == {"content": "hello", "role": "user"}


def test_a_run_is_cancelled_while_its_tool_runs(runtime: AgentRuntime) -> None:
    gate = threading.Event()

    @function_tool
    def blocking() -> str:
        """Waits for the test."""
        gate.wait(WAIT_SECONDS)
        return "late"

    model = ScriptedModel([ModelStep(output=[function_call("blocking", {}, call_id="c1")])] * 2)
    handle = runtime.start(Agent(name="cancelled", model=model, tools=[blocking]), "go")
    runtime.wait_until(lambda: runtime.store.journal(handle.execution_id) or None, WAIT_SECONDS)
    try:
        result = runtime.cancel(handle.execution_id)  # while its tool still runs
    finally:
        gate.set()
    assert result.status == "cancelled"
    assert [e.type for e in runtime.events(handle.execution_id)][-1] == "error"


def test_a_locked_store_never_stalls_the_loop_that_drives_a_run(
    home: Path, runtime: AgentRuntime, caplog: pytest.LogCaptureFixture
) -> None:
    """Another process holds the store's write lock while a run on the caller's loop commits:
    the commit waits off that loop (the loop keeps serving), and lands once the lock is gone."""
    model = ScriptedModel([ModelStep(output=[assistant_message("stored")])])
    agent = Agent(name="patient", model=model)
    runtime.run(
        Agent(name="warm", model=ScriptedModel([ModelStep(output=[assistant_message("hi")])])),
        "warm up",
    )
    holder = sqlite3.connect(store_path(home), timeout=30, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")

    async def scenario() -> tuple[int, str]:
        ticks = 0
        run = asyncio.ensure_future(runtime.run_async(agent, "go"))
        deadline = time.monotonic() + WAIT_SECONDS
        while ticks < 50 and time.monotonic() < deadline:
            await asyncio.sleep(0.005)  # each turn of the loop proves it is not blocked
            ticks += 1
        stalled = not run.done()
        holder.execute("ROLLBACK")
        result = await asyncio.wait_for(run, WAIT_SECONDS)
        assert stalled, "the run finished although the store was locked"
        return ticks, str(result.final_output)

    try:
        ticks, output = asyncio.run(scenario())
    finally:
        holder.close()
    assert ticks == 50
    assert output == "stored"
    # Had the commit waited for the lock on the loop, it would have given up (StoreLocked) and
    # been retried before the loop could turn again.
    assert not [r for r in caplog.records if "locked" in r.getMessage()]
