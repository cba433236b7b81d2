"""``frontdesk worker --engine temporal --agents REF``: a worker process for the runs of
``AgentRuntime(engine="temporal")``, tested as a real subprocess on the Temporal dev server.

A runtime with ``worker=False`` (a client of a worker fleet) starts a run; the CLI worker, on
the same store and task queue, drives it to the end.
"""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path
from typing import Any

import pytest

import journalflow
from frontdesk import AgentRuntime
from frontdesk.cli._worker import load_agent

from conftest import PYTHON, WAIT_SECONDS, Children, child_env

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

SCRIPT = """
from agents import Agent
from agents.testing import ModelStep, ScriptedModel, assistant_message, function_call

from frontdesk import tool


@tool
def close_ticket(ticket_id: str) -> str:
    \"\"\"Close a ticket.\"\"\"
    return f"ticket {ticket_id} is closed"


def step(call):
    items = call.input if isinstance(call.input, list) else []
    plain = [i if isinstance(i, dict) else i.model_dump() for i in items]
    outputs = [i["output"] for i in plain if i.get("type") == "function_call_output"]
    if not outputs:
        return [function_call("close_ticket", {"ticket_id": "T-1"}, call_id="close-1")]
    return [assistant_message(str(outputs[0]))]


closer = Agent(
    name="closer",
    model=ScriptedModel([ModelStep.respond(step) for _ in range(20)]),
    tools=[close_ticket],
)
"""


def worker(children: Children, home: Path, *options: str, **env: str) -> subprocess.Popen[bytes]:
    """``frontdesk worker`` as a child process, its output in ``<home>/../worker.log``."""
    with (home.parent / "worker.log").open("wb") as log:
        return children.popen(
            [PYTHON, "-m", "frontdesk", "--home", str(home), "worker", *options],
            env=child_env(**env), stdout=log, stderr=subprocess.STDOUT, cwd=home.parent,
        )  # fmt: skip


def log_of(home: Path) -> str:
    return (home.parent / "worker.log").read_text(errors="replace")


def test_the_cli_worker_drives_a_run_a_client_without_a_worker_started(
    home: Path, tmp_path: Path, children: Children, temporal_server: Any
) -> None:
    flow_dir = tmp_path / "flow"
    flow_dir.mkdir()
    queue = "cli-worker"
    with AgentRuntime(
        home,
        engine="temporal",
        temporal_address=temporal_server.address,
        task_queue=queue,
        worker=False,
        recover=False,
    ) as client:
        handle = client.start(journalflow.payer, "please pay")
        assert handle.status == "running"
        proc = worker(
            children, home,
            "--engine", "temporal", "--agents", "journalflow:payer",
            "--address", temporal_server.address, "--task-queue", queue,
            JOURNAL_DIR=str(flow_dir),
        )  # fmt: skip
        result = handle.result(timeout=WAIT_SECONDS)
        assert (result.status, result.output) == ("completed", "paid: charged 42.0"), log_of(home)
    assert len(journalflow_invocations(flow_dir)) == 1
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(WAIT_SECONDS) == 0, log_of(home)
    first_line = log_of(home).splitlines()[0]
    assert f"temporal {temporal_server.address}" in first_line
    assert f"task queue {queue}" in first_line


def test_the_cli_worker_serves_agents_of_a_script_on_the_environments_queue(
    home: Path,
    tmp_path: Path,
    children: Children,
    temporal_server: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    script = tmp_path / "desk_script.py"
    script.write_text(SCRIPT)
    monkeypatch.setenv("FRONTDESK_TEMPORAL_ADDRESS", temporal_server.address)
    monkeypatch.setenv("FRONTDESK_TEMPORAL_TASK_QUEUE", "cli-script")
    closer = load_agent(f"{script}:closer")
    with AgentRuntime(home, [closer], engine="temporal", worker=False, recover=False) as client:
        handle = client.start(closer, "close T-1")
        worker(children, home, "--engine", "temporal", "--agents", f"{script}:closer")
        result = handle.result(timeout=WAIT_SECONDS)
    assert (result.status, result.output) == ("completed", "ticket T-1 is closed"), log_of(home)


def test_the_cli_worker_refuses_options_that_do_not_go_together(home: Path) -> None:
    def refused(*options: str) -> str:
        done = subprocess.run(
            [PYTHON, "-m", "frontdesk", "--home", str(home), "worker", *options],
            env=child_env(), capture_output=True, text=True, timeout=WAIT_SECONDS,
            stdin=subprocess.DEVNULL,
        )  # fmt: skip
        assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
        return done.stderr

    both = ("--engine", "temporal", "--app", "airline", "--agents", "journalflow:payer")
    assert "either --app or --agents" in refused(*both)
    assert "own task queue" in refused(
        "--engine", "temporal", "--app", "airline", "--task-queue", "q"
    )
    assert "--task-queue needs --engine temporal" in refused("--task-queue", "q")
    assert "HOST:PORT" in refused(
        "--engine", "temporal", "--agents", "journalflow:payer", "--address", "x:y"
    )
    assert "task queue is empty" in refused(
        "--engine", "temporal", "--agents", "journalflow:payer", "--task-queue", " "
    )


def journalflow_invocations(flow_dir: Path) -> list[str]:
    path = flow_dir / "invocations.log"
    return path.read_text().splitlines() if path.exists() else []
