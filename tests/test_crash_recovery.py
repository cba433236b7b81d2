"""Crash matrix: SIGKILL a real child process at each step boundary, then recover.

Every case must end exactly like an uninterrupted run: same output, last agent and context;
each tool's external effect happened once; and no completed model call was sent again.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from frontdesk import AgentRuntime, RunResult

import crashflow
from conftest import PYTHON, child_env

pytestmark = [pytest.mark.slow, pytest.mark.e2e]

TOOLS = {"lookup_invoice", "lookup_account", "refund"}


def make_dirs(root: Path) -> tuple[Path, Path]:
    """A fresh crashflow directory and frontdesk home under ``root``."""
    flow_dir, home = root / "flow", root / "home"
    flow_dir.mkdir(parents=True)
    home.mkdir(parents=True)
    return flow_dir, home


def run_to_approval(flow_dir: Path, home: Path) -> None:
    """A child runs the flow until it waits for the refund approval, then exits."""
    proc = spawn(flow_dir, home)
    assert wait_parked(flow_dir, proc) == "waiting_approval"
    proc.terminate()
    proc.wait(10)


def spawn(
    flow_dir: Path, home: Path, crash_at: str | None = None, *args: str
) -> subprocess.Popen[bytes]:
    env = child_env(CRASHFLOW_DIR=str(flow_dir))
    if crash_at:
        env["CRASH_AT"] = crash_at
    cmd = [PYTHON, "-m", "crashflow", str(home)] if not args else [PYTHON, "-m", *args]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def wait_parked(flow_dir: Path, proc: subprocess.Popen[bytes], timeout: float = 60) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        parked = flow_dir / "parked"
        if parked.exists():
            return parked.read_text()
        if proc.poll() is not None:
            _out, err = proc.communicate()
            raise AssertionError(f"child exited {proc.returncode} before parking:\n{err.decode()}")
        time.sleep(0.02)
    proc.kill()
    raise AssertionError("child never reached its crash point")


def sigkill(proc: subprocess.Popen[bytes]) -> None:
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(10)
    assert proc.returncode == -signal.SIGKILL


def lines(flow_dir: Path, name: str) -> list[str]:
    path = flow_dir / name
    return path.read_text().splitlines() if path.exists() else []


def finish(runtime: AgentRuntime, execution_id: str) -> RunResult:
    """Drive the run to its end from this process, approving the refund when asked."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        runtime.recover()
        status = runtime.handle(execution_id).status
        if status == "waiting_approval":
            runtime.approve(execution_id, by="tester")
        elif status in ("completed", "failed", "cancelled"):
            return runtime.get(execution_id)
        time.sleep(0.05)
    raise AssertionError(f"run {execution_id} did not finish: {runtime.get(execution_id)}")


def only_run(runtime: AgentRuntime) -> str:
    runs = runtime.runs()
    assert len(runs) == 1
    return runs[0].execution_id


def outcome(result: RunResult, flow_dir: Path) -> dict[str, Any]:
    effects = lines(flow_dir, "effects.log")
    return {
        "status": result.status,
        "output": result.output,
        "last_agent": result.last_agent,
        "context": result.context,
        "model_calls": len(lines(flow_dir, "models.log")),
        "effects_per_tool": sorted(line.split()[1] for line in effects),
    }


@pytest.fixture(scope="module")
def baseline(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The uninterrupted run: a child runs to the approval, this process approves."""
    root = tmp_path_factory.mktemp("baseline")
    flow_dir, home = make_dirs(root)
    run_to_approval(flow_dir, home)
    os.environ["CRASHFLOW_DIR"] = str(flow_dir)
    with AgentRuntime(home, poll_interval=0.05) as runtime:
        result = finish(runtime, only_run(runtime))
    base = outcome(result, flow_dir)
    assert base["status"] == "completed"
    assert base["effects_per_tool"] == sorted(TOOLS)
    assert base["context"] == crashflow.Ctx(route="billing", invoice_total=99.0, refunded=True)
    assert base["model_calls"] == 4
    return base


def recover_and_compare(flow_dir: Path, home: Path, baseline: dict[str, Any]) -> RunResult:
    os.environ["CRASHFLOW_DIR"] = str(flow_dir)
    with AgentRuntime(home, poll_interval=0.05) as runtime:
        result = finish(runtime, only_run(runtime))
    assert outcome(result, flow_dir) == baseline
    return result


@pytest.mark.parametrize(
    "crash_at",
    [
        "after_model:1",
        "after_model:2",
        "in_tool:lookup_invoice",
        "in_tool:lookup_account",
        "waiting_approval",
    ],
)
def test_sigkill_then_recover_matches_uninterrupted_run(
    tmp_path: Path, baseline: dict[str, Any], crash_at: str
) -> None:
    flow_dir, home = make_dirs(tmp_path)
    proc = spawn(flow_dir, home, crash_at)
    assert wait_parked(flow_dir, proc) == crash_at
    sigkill(proc)
    result = recover_and_compare(flow_dir, home, baseline)
    if crash_at.startswith("in_tool:"):
        tool_name = crash_at.split(":", 1)[1]
        invocations = [
            line for line in lines(flow_dir, "invocations.log") if line.startswith(tool_name)
        ]
        # The interrupted call ran again with the same idempotency key...
        assert len(invocations) == 2
        assert len({line.split()[1] for line in invocations}) == 1
        assert invocations[-1].endswith("attempt=2")
        # ...and the trace says the first attempt was interrupted.
        retries = [
            e for e in result.events if e.type == "tool_call" and e.data.get("interrupted_attempt")
        ]
        # A parallel sibling still in flight at the kill is retried too; its effect still
        # happened once (checked above through the baseline's effects).
        assert tool_name in [e.tool_name for e in retries]
        assert {e.tool_name for e in retries} <= {"lookup_invoice", "lookup_account"}


def test_sigkill_inside_approved_tool_runs_it_once(
    tmp_path: Path, baseline: dict[str, Any]
) -> None:
    """Approve from a CLI process that dies inside the approved tool; another process finishes."""
    flow_dir, home = make_dirs(tmp_path)
    run_to_approval(flow_dir, home)
    (flow_dir / "parked").unlink()
    execution_id = (flow_dir / "execution_id").read_text()
    approver = spawn(
        flow_dir, home, "in_tool:refund",
        "frontdesk", "--home", str(home), "approvals", "approve", execution_id, "--by", "ops",
    )  # fmt: skip
    assert wait_parked(flow_dir, approver) == "in_tool:refund"
    sigkill(approver)
    result = recover_and_compare(flow_dir, home, baseline)
    approval = result.approvals[0]
    assert (approval.status, approval.decided_by) == ("approved", "ops")
    refunds = [line for line in lines(flow_dir, "invocations.log") if line.startswith("refund")]
    assert len(refunds) == 2 and len({line.split()[1] for line in refunds}) == 1


def test_journal_stores_each_output_once(tmp_path: Path, baseline: dict[str, Any]) -> None:
    """Storage grows with the run: model outputs are journaled, never the re-sent input."""
    flow_dir, home = make_dirs(tmp_path)
    run_to_approval(flow_dir, home)
    result = recover_and_compare(flow_dir, home, baseline)
    models = [s for s in result.steps if s.kind == "model"]
    assert len(models) == 4
    for step in models:
        stored = json.loads(step.data_json or "{}")
        assert set(stored) <= {"output", "usage", "response_id", "request_id", "raw_usage"}
        assert crashflow.MESSAGE not in (step.data_json or "")


def test_frontdesk_worker_resumes_a_killed_run(tmp_path: Path, baseline: dict[str, Any]) -> None:
    """A `frontdesk worker` process picks up the orphaned run and drives it to the approval."""
    flow_dir, home = make_dirs(tmp_path)
    proc = spawn(flow_dir, home, "after_model:1")
    wait_parked(flow_dir, proc)
    sigkill(proc)
    worker = subprocess.Popen(
        [PYTHON, "-m", "frontdesk", "--home", str(home), "worker", "--agents", "crashflow:triage", "--poll", "0.1"],
        env=child_env(CRASHFLOW_DIR=str(flow_dir)), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    os.environ["CRASHFLOW_DIR"] = str(flow_dir)
    try:
        deadline = time.monotonic() + 60
        with AgentRuntime(home, recover=False) as observer:
            execution_id = only_run(observer)
            while observer.handle(execution_id).status != "waiting_approval":
                assert time.monotonic() < deadline and worker.poll() is None
                time.sleep(0.05)
            # The worker is still alive: approving here lets the worker (or us) finish it.
            observer.approve(execution_id, by="ops")
            result = observer.handle(execution_id).result(timeout=60)
    finally:
        worker.terminate()
        worker.wait(10)
    assert outcome(result, flow_dir) == baseline


def test_expired_lease_of_a_remote_owner_is_taken_over(
    tmp_path: Path, baseline: dict[str, Any]
) -> None:
    """A run held by a process on another machine is taken over once its lease expires."""
    import sqlite3

    from frontdesk.store import store_path

    flow_dir, home = make_dirs(tmp_path)
    proc = spawn(flow_dir, home, "after_model:2")
    wait_parked(flow_dir, proc)
    sigkill(proc)
    # Pretend the dead driver lived on another host: its pid cannot be checked from here,
    # only its lease tells.
    conn = sqlite3.connect(store_path(home))
    conn.execute(
        "UPDATE runs SET lease_owner = 'elsewhere:4242:abcd', lease_expires = ?",
        (time.time() + 1.0,),
    )
    conn.commit()
    conn.close()
    os.environ["CRASHFLOW_DIR"] = str(flow_dir)
    with AgentRuntime(home, recover=False) as runtime:
        execution_id = only_run(runtime)
        assert runtime.recover() == []  # lease still valid: hands off
        time.sleep(1.2)
        assert runtime.recover() == [execution_id]
        result = finish(runtime, execution_id)
    assert outcome(result, flow_dir) == baseline
