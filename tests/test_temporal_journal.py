"""The Temporal engine's tool calls journal lives in the runtime's store, and tools run as
activities run in the worker runtime's scope.

Workers on different machines share only the database: here two worker processes with homes
of their own and one PostgreSQL database, on the Temporal dev server. A worker that dies after
its tool finished (the journal says done) but before Temporal heard of it is replaced by the
other, which finishes the run without running the tool again.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from temporalio.api.enums.v1 import EventType

import journalflow
from frontdesk import AgentRuntime
from pgdb import fresh_database

from conftest import PYTHON, WAIT_SECONDS, Children, child_env, sigkill, wait_for_marker

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


@pytest.fixture
def database(pg_cluster: Any) -> Iterator[str]:
    """A fresh PostgreSQL database's URL."""
    with fresh_database(pg_cluster) as url:
        yield url


def start_worker(
    children: Children, home: Path, env: dict[str, str], ready: Path
) -> subprocess.Popen[bytes]:
    """A worker process on ``home`` (a runtime serving the task queue), once it polls."""
    home.mkdir()
    log = (home.parent / f"{home.name}.log").open("wb")
    proc = children.popen(
        [PYTHON, "-m", "temporalrunworker", str(home)],
        env={**env, "CRASHFLOW_DIR": str(ready.parent)}, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    log.close()
    wait_for_marker(ready, proc)
    ready.unlink()
    return proc


def tool_attempts(runtime: AgentRuntime, execution_id: str) -> list[int]:
    """The attempts Temporal started of the run's tool activities."""
    engine: Any = runtime._engine

    async def history() -> list[int]:
        handle = engine.client.get_workflow_handle(execution_id)
        recorded = await handle.fetch_history()
        tool_events = {
            e.event_id
            for e in recorded.events
            if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
            and e.activity_task_scheduled_event_attributes.activity_type.name
            == "frontdesk_run_tool"
        }
        return [
            e.activity_task_started_event_attributes.attempt
            for e in recorded.events
            if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED
            and e.activity_task_started_event_attributes.scheduled_event_id in tool_events
        ]

    result: list[int] = engine.call(history(), WAIT_SECONDS)
    return result


def test_a_tool_done_on_one_host_is_not_run_again_by_a_worker_on_another(
    tmp_path: Path,
    children: Children,
    temporal_server: Any,
    database: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    flow_dir = tmp_path / "flow"
    flow_dir.mkdir()
    queue = "journal-across-hosts"
    env = child_env(
        JOURNAL_DIR=str(flow_dir),
        FRONTDESK_DATABASE_URL=database,
        FRONTDESK_ENGINE="temporal",
        FRONTDESK_TEMPORAL_ADDRESS=temporal_server.address,
        FRONTDESK_TEMPORAL_TASK_QUEUE=queue,
    )
    monkeypatch.setenv("JOURNAL_DIR", str(flow_dir))
    monkeypatch.setenv("FRONTDESK_DATABASE_URL", database)
    ready = flow_dir / "worker-ready"
    first = start_worker(children, tmp_path / "host-a", {**env, "JOURNAL_PARK": "1"}, ready)
    with AgentRuntime(
        tmp_path / "client",
        engine="temporal",
        temporal_address=temporal_server.address,
        task_queue=queue,
        worker=False,
        recover=False,
    ) as client:
        handle = client.start(journalflow.payer, "please pay")
        # The first host ran the tool and journaled it done; Temporal has not heard of it.
        key = wait_for_marker(flow_dir / "parked", first)
        sigkill(first)
        assert len(journalflow.invocations()) == 1
        (record,) = client.store.tool_calls(handle.execution_id)
        assert (record.idempotency_key, record.call_id) == (key, "pay-1")
        assert (record.state, record.output) == ("done", "charged 42.0")

        start_worker(children, tmp_path / "host-b", env, ready)
        result = handle.result(timeout=WAIT_SECONDS)

        assert (result.status, result.output) == ("completed", "paid: charged 42.0")
        assert journalflow.invocations() == [f"{key} attempt=1"]
        (record,) = client.store.tool_calls(handle.execution_id)
        assert (record.state, record.attempts) == ("done", 1)
        # The activity did run again, on the second host: the journal answered it.
        assert max(tool_attempts(client, handle.execution_id)) >= 2


@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
def test_a_tool_run_as_an_activity_has_the_worker_runtime_and_its_store(
    home: Path, backend: str, temporal_server: Any
) -> None:
    journalflow.SEEN.clear()
    with AgentRuntime(
        home, engine="temporal", temporal_address=temporal_server.address, task_queue="scope"
    ) as runtime:
        result = runtime.run(journalflow.desk, "who am I?")
        assert result.status == "completed"
        assert "'name': 'Maya Chen'" in str(result.output)
        assert len(journalflow.SEEN) == 1 and journalflow.SEEN[0] is runtime
        # The support app read its data through the runtime's store: its pool for the app's
        # schema is open (a store opened for the call would have closed it).
        with psycopg.connect(os.environ["FRONTDESK_DATABASE_URL"]) as conn:
            (open_connections,) = conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND application_name = 'frontdesk-support'"
            ).fetchone() or (0,)
        assert open_connections >= 1
