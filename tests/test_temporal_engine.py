"""The Temporal engine's own behaviour: choosing it, what it refuses, a client without a
worker, conversations, the Temporal UI's summary, and a worker SIGKILLed mid-run."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import threading
from pathlib import Path
from typing import Any

import pytest

from frontdesk import AgentRuntime, InvalidInput
from frontdesk.engine.temporal._client import InvalidTemporalAddress, TemporalUnreachable
from test_runtime import Ticket, flow

import crashflow
from conftest import (
    PYTHON,
    WAIT_SECONDS,
    Children,
    child_env,
    sigkill,
    wait_for_marker,
    wait_until,
)


def test_an_unknown_engine_is_refused_and_nothing_is_stored(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "never"
    with pytest.raises(InvalidInput, match="unknown engine 'warp'"):
        AgentRuntime(target, engine="warp")
    monkeypatch.setenv("FRONTDESK_ENGINE", "warp")
    with pytest.raises(InvalidInput, match="unknown engine 'warp'"):
        AgentRuntime(target)
    assert not target.exists()


@pytest.mark.parametrize("address", ["", "localhost", "http://localhost:7233", "host:99999"])
def test_an_address_that_does_not_parse_is_refused_and_nothing_is_stored(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, address: str
) -> None:
    target = tmp_path / "never"
    with pytest.raises(InvalidTemporalAddress):
        AgentRuntime(target, engine="temporal", temporal_address=address)
    monkeypatch.setenv("FRONTDESK_ENGINE", "temporal")
    monkeypatch.setenv("FRONTDESK_TEMPORAL_ADDRESS", address or " ")
    with pytest.raises(ValueError, match="Temporal address"):
        AgentRuntime(target)
    assert not target.exists()


def test_an_unreachable_server_is_a_clear_error_and_nothing_hangs(home: Path) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as refused:
        refused.bind(("127.0.0.1", 0))  # bound, never listening: connections are refused
        address = f"127.0.0.1:{refused.getsockname()[1]}"
        with pytest.raises(TemporalUnreachable, match=address):
            AgentRuntime(home, engine="temporal", temporal_address=address)
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()  # accepts, never answers: only the connect timeout ends the wait
        address = f"127.0.0.1:{silent.getsockname()[1]}"
        errors: list[BaseException] = []

        def open_runtime() -> None:
            try:
                AgentRuntime(home, engine="temporal", temporal_address=address).close()
            except BaseException as exc:
                errors.append(exc)

        opener = threading.Thread(target=open_runtime, daemon=True)
        opener.start()
        opener.join(WAIT_SECONDS)
        assert not opener.is_alive(), "opening the runtime hung"
        (error,) = errors
        assert isinstance(error, TemporalUnreachable) and address in str(error)


def test_a_client_without_a_worker_starts_runs_a_worker_drives(
    home: Path, temporal_server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FRONTDESK_TEMPORAL_ADDRESS", temporal_server.address)
    queue = "client-and-worker"
    agent = flow()
    with AgentRuntime(home, engine="temporal", task_queue=queue, worker=False) as client:
        handle = client.start(agent, "charged twice", context=Ticket())
        assert handle.status == "running"
        with AgentRuntime(home, agents={"triage": agent}, engine="temporal", task_queue=queue):
            result = handle.result(timeout=WAIT_SECONDS)
        assert (result.status, result.output) == ("completed", "All sorted.")
        listed = client.runs(status="completed")
        assert [r.execution_id for r in listed] == [handle.execution_id]


def test_a_conversation_runs_its_turns_as_workflows(home: Path, temporal_server: Any) -> None:
    import convflow

    with AgentRuntime(
        home, engine="temporal", temporal_address=temporal_server.address, task_queue="conv"
    ) as runtime:
        chat = runtime.conversation("seat-chat", convflow.desk, convflow.SeatContext())
        first = chat.send("Hello")
        second = chat.send("Change my seat to 12C")
        assert first[0] == "User: Hello" and second[0] == "User: Change my seat to 12C"
        reopened = runtime.conversation("seat-chat")
        assert reopened.history() == [*first, *second]
        assert reopened.context.seat == "12C" and reopened.turns == 2
        assert {r.status for r in reopened.runs()} == {"completed"}


def test_the_temporal_ui_shows_the_current_agent_and_last_message(
    home: Path, temporal_server: Any
) -> None:
    with AgentRuntime(
        home, engine="temporal", temporal_address=temporal_server.address, task_queue="ui"
    ) as runtime:
        result = runtime.run(flow(), "charged twice", context=Ticket())
        engine: Any = runtime._engine

        async def details() -> str:
            from temporalio.api.sdk.v1 import WorkflowMetadata

            handle = engine.client.get_workflow_handle(result.execution_id)
            metadata = await handle.query(
                "__temporal_workflow_metadata", result_type=WorkflowMetadata
            )
            return str(metadata.current_details)

        described = engine.call(details(), WAIT_SECONDS)
    assert "agent: billing" in described and "All sorted." in described


def test_a_worker_killed_mid_run_is_replaced_and_completed_tools_do_not_run_again(
    tmp_path: Path, children: Children, temporal_server: Any
) -> None:
    flow_dir, home = tmp_path / "flow", tmp_path / "home"
    flow_dir.mkdir()
    home.mkdir()
    env = child_env(
        CRASHFLOW_DIR=str(flow_dir),
        FRONTDESK_HOME=str(home),
        FRONTDESK_ENGINE="temporal",
        FRONTDESK_TEMPORAL_ADDRESS=temporal_server.address,
        FRONTDESK_TEMPORAL_TASK_QUEUE="crash",
    )
    # The first worker runs the flow; after both lookups it parks in the third model call.
    first = children.popen(
        [PYTHON, "-m", "crashflow", str(home)],
        env={**env, "CRASH_AT": "after_model:2"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert wait_for_marker(flow_dir / "parked", first) == "after_model:2"
    sigkill(first)
    invocations = (flow_dir / "invocations.log").read_text().splitlines()
    assert sorted(line.split()[0] for line in invocations) == ["lookup_account", "lookup_invoice"]
    second = children.popen(
        [PYTHON, "-m", "temporalrunworker", str(home)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    wait_for_marker(flow_dir / "worker-ready", second)
    with AgentRuntime(home, engine="local", recover=False) as reader:
        (run,) = reader.runs()
        handle = reader.handle(run.execution_id)
        wait_until(lambda: handle.status == "waiting_approval", "the second worker to take over")
        assert (flow_dir / "invocations.log").read_text().splitlines() == invocations
        result = reader.get(run.execution_id)
    assert result.context == crashflow.Ctx(route="billing", invoice_total=99.0)
    assert [a.tool_name for a in result.pending_approvals] == ["refund"]


def test_run_async_and_an_approval_past_its_deadline(home: Path, temporal_server: Any) -> None:
    from datetime import timedelta

    from agents import Agent
    from agents.testing import ScriptedModel, assistant_message, function_call

    from frontdesk import tool

    @tool(approval_required=True, approval_timeout=timedelta(seconds=1))
    def wire(amount: float) -> str:
        """Wire money."""
        return f"wired {amount}"

    model = ScriptedModel(
        [[function_call("wire", {"amount": 5}, call_id="w1")], [assistant_message("no wire")]]
    )
    agent = Agent(name="wirer", model=model, tools=[wire])
    with AgentRuntime(
        home,
        engine="temporal",
        temporal_address=temporal_server.address,
        task_queue="expiry",
        poll_interval=0.2,
    ) as runtime:
        paused = asyncio.run(runtime.run_async(agent, "send it"))
        assert paused.status == "waiting_approval"
        final = runtime.handle(paused.execution_id).result(timeout=WAIT_SECONDS)
    assert final.status == "completed" and final.output == "no wire"
    (decision,) = final.approvals
    assert (decision.status, decision.decided_by) == ("rejected", "system:timeout")


def test_a_run_workflow_replays_its_own_history_without_nondeterminism(
    home: Path, temporal_server: Any
) -> None:
    from temporalio.worker import Replayer
    from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

    from frontdesk.engine.temporal._plugin import frontdesk_plugin
    from frontdesk.engine.temporal._run_workflow import RunWorkflow

    with AgentRuntime(
        home, engine="temporal", temporal_address=temporal_server.address, task_queue="replay"
    ) as runtime:
        paused = runtime.run(flow(approval=True), "refund INV-1", context=Ticket())
        runtime.approve(paused.execution_id, by="alice")
        done = runtime.handle(paused.execution_id).result(timeout=WAIT_SECONDS)
        assert done.status == "completed"
        engine: Any = runtime._engine  # its client reads the workflow's history

        async def replay() -> Any:
            history = await engine.client.get_workflow_handle(paused.execution_id).fetch_history()
            replayer = Replayer(
                workflows=[RunWorkflow],
                plugins=[frontdesk_plugin()],
                workflow_runner=SandboxedWorkflowRunner(
                    restrictions=SandboxRestrictions.default.with_passthrough_all_modules()
                ),
            )
            return await replayer.replay_workflow(history, raise_on_replay_failure=False)

        # The replay finds the run's agent as its worker did: this runtime serves the queue.
        result = engine.call(replay(), WAIT_SECONDS)
    assert result.replay_failure is None
