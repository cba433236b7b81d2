"""Crash matrix: SIGKILL a real child process at each step boundary, then recover.

Every case must end exactly like an uninterrupted run: same output, last agent and context;
each tool's external effect happened once; and no completed model call was sent again. The
matrix runs on SQLite and on PostgreSQL (the child processes share the test's database).
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
from frontdesk.engine.local._identity import OwnerId
from frontdesk.store import Store

import crashflow
from conftest import (
    PYTHON,
    WAIT_SECONDS,
    Children,
    both_backends,
    child_env,
    kill_group,
    sigkill,
    wait_for_marker,
    wait_until,
)

pytestmark = [pytest.mark.slow, pytest.mark.e2e]

TOOLS = {"lookup_invoice", "lookup_account", "refund"}


def make_dirs(root: Path) -> tuple[Path, Path]:
    """A fresh crashflow directory and frontdesk home under ``root``."""
    flow_dir, home = root / "flow", root / "home"
    flow_dir.mkdir(parents=True)
    home.mkdir(parents=True)
    return flow_dir, home


@pytest.fixture
def dirs(
    tmp_path: Path, home: Path, backend: str, monkeypatch: pytest.MonkeyPatch
) -> tuple[Path, Path]:
    """The test's crashflow directory (``$CRASHFLOW_DIR`` here too) and frontdesk home, whose
    store is the test's backend (children inherit ``$FRONTDESK_DATABASE_URL``)."""
    flow_dir = tmp_path / "flow"
    flow_dir.mkdir()
    monkeypatch.setenv("CRASHFLOW_DIR", str(flow_dir))
    return flow_dir, home


def run_to_approval(children: Children, flow_dir: Path, home: Path) -> None:
    """A child runs the flow until it waits for the refund approval, then exits."""
    proc = spawn(children, flow_dir, home)
    _out, err = proc.communicate(timeout=WAIT_SECONDS)
    assert proc.returncode == 0, err.decode()
    assert (flow_dir / "parked").read_text() == "waiting_approval"


def spawn(
    children: Children, flow_dir: Path, home: Path, crash_at: str | None = None, *args: str
) -> subprocess.Popen[bytes]:
    env = child_env(CRASHFLOW_DIR=str(flow_dir))
    if crash_at:
        env["CRASH_AT"] = crash_at
    cmd = [PYTHON, "-m", "crashflow", str(home)] if not args else [PYTHON, "-m", *args]
    return children.popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def wait_parked(flow_dir: Path, proc: subprocess.Popen[bytes]) -> str:
    """Where the child parked, once it says so (the marker is written atomically)."""
    return wait_for_marker(flow_dir / "parked", proc)


def lines(flow_dir: Path, name: str) -> list[str]:
    path = flow_dir / name
    return path.read_text().splitlines() if path.exists() else []


def finish(runtime: AgentRuntime, execution_id: str) -> RunResult:
    """Drive the run to its end from this process, approving the refund when asked."""

    def settled() -> RunResult | None:
        runtime.recover()
        status = runtime.handle(execution_id).status
        if status == "waiting_approval":
            runtime.approve(execution_id, by="tester")
        elif status in ("completed", "failed", "cancelled"):
            return runtime.get(execution_id)
        return None

    return wait_until(settled, f"run {execution_id} to finish")


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
    """The uninterrupted run: a child runs to the approval, this process approves. Run once,
    on SQLite: what a run ends with does not depend on where it is stored."""
    root = tmp_path_factory.mktemp("baseline")
    flow_dir, home = make_dirs(root)
    with pytest.MonkeyPatch.context() as env:
        env.delenv("FRONTDESK_DATABASE_URL", raising=False)
        with Children() as children:
            run_to_approval(children, flow_dir, home)
        env.setenv("CRASHFLOW_DIR", str(flow_dir))
        with AgentRuntime(home, poll_interval=0.05) as runtime:
            result = finish(runtime, only_run(runtime))
    base = outcome(result, flow_dir)
    assert base["status"] == "completed"
    assert base["effects_per_tool"] == sorted(TOOLS)
    assert base["context"] == crashflow.Ctx(route="billing", invoice_total=99.0, refunded=True)
    assert base["model_calls"] == 4
    return base


def recover_and_compare(flow_dir: Path, home: Path, baseline: dict[str, Any]) -> RunResult:
    """Finish the run in this process (``$CRASHFLOW_DIR`` is set) and compare it."""
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
@both_backends
def test_sigkill_then_recover_matches_uninterrupted_run(
    dirs: tuple[Path, Path], children: Children, baseline: dict[str, Any], crash_at: str
) -> None:
    flow_dir, home = dirs
    proc = spawn(children, flow_dir, home, crash_at)
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


@both_backends
def test_sigkill_inside_approved_tool_runs_it_once(
    dirs: tuple[Path, Path], children: Children, baseline: dict[str, Any]
) -> None:
    """Approve from a CLI process that dies inside the approved tool; another process finishes."""
    flow_dir, home = dirs
    run_to_approval(children, flow_dir, home)
    (flow_dir / "parked").unlink()
    execution_id = (flow_dir / "execution_id").read_text()
    approver = spawn(
        children, flow_dir, home, "in_tool:refund",
        "frontdesk", "--home", str(home), "approvals", "approve", execution_id, "--by", "ops",
    )  # fmt: skip
    assert wait_parked(flow_dir, approver) == "in_tool:refund"
    sigkill(approver)
    result = recover_and_compare(flow_dir, home, baseline)
    approval = result.approvals[0]
    assert (approval.status, approval.decided_by) == ("approved", "ops")
    refunds = [line for line in lines(flow_dir, "invocations.log") if line.startswith("refund")]
    assert len(refunds) == 2 and len({line.split()[1] for line in refunds}) == 1


@both_backends
def test_journal_stores_each_output_once(
    dirs: tuple[Path, Path], children: Children, baseline: dict[str, Any]
) -> None:
    """Storage grows with the run: model outputs are journaled, never the re-sent input."""
    flow_dir, home = dirs
    run_to_approval(children, flow_dir, home)
    result = recover_and_compare(flow_dir, home, baseline)
    models = [s for s in result.steps if s.kind == "model"]
    assert len(models) == 4
    for step in models:
        stored = json.loads(step.data_json or "{}")
        assert set(stored) <= {"output", "usage", "response_id", "request_id", "raw_usage"}
        assert crashflow.MESSAGE not in (step.data_json or "")


@both_backends
def test_frontdesk_worker_resumes_a_killed_run(
    dirs: tuple[Path, Path], children: Children, baseline: dict[str, Any]
) -> None:
    """A `frontdesk worker` process picks up the orphaned run and drives it to the approval."""
    flow_dir, home = dirs
    proc = spawn(children, flow_dir, home, "after_model:1")
    wait_parked(flow_dir, proc)
    sigkill(proc)
    log = flow_dir / "worker.log"  # a file, not a pipe nobody reads while the worker runs
    with log.open("wb") as output:
        worker = children.popen(
            [PYTHON, "-m", "frontdesk", "--home", str(home), "worker", "--agents", "crashflow:triage", "--poll", "0.1"],
            env=child_env(CRASHFLOW_DIR=str(flow_dir)), stdout=output, stderr=subprocess.STDOUT,
        )  # fmt: skip
    with AgentRuntime(home, recover=False) as observer:
        execution_id = only_run(observer)

        def state() -> str:
            run = observer.get(execution_id)
            return f"run {run.status} ({run.error or run.note}); worker {worker.returncode}:\n{log.read_text()}"

        def waiting() -> bool:
            status = observer.get(execution_id).status
            assert worker.poll() is None and status in ("running", "waiting_approval"), state()
            return status == "waiting_approval"

        wait_until(waiting, "the worker to drive the run to its approval", explain=state)
        # The worker is still alive: approving here lets the worker (or us) finish it.
        observer.approve(execution_id, by="ops")
        result = observer.handle(execution_id).result(timeout=WAIT_SECONDS)
    assert outcome(result, flow_dir) == baseline


REMOTE_OWNER = str(OwnerId("elsewhere", 4242, "abcd1234", "another-boot", "4026531836", 123456))
"""A lease owner on another machine: another boot of another kernel, whose pid means
nothing here."""


def lease_remote(store: Store, execution_id: str, expires: float) -> None:
    """Pretend the run's driver lives on another host: its pid cannot be checked from here,
    only its lease (valid until the epoch time ``expires``) tells. Taken through the store's
    own claim, from whoever holds the lease now."""
    holder = store.require_run(execution_id).lease_owner
    assert store.claim(execution_id, REMOTE_OWNER, expires, time.time(), steal_from=holder)


@both_backends
def test_expired_lease_of_a_remote_owner_is_taken_over(
    dirs: tuple[Path, Path], children: Children, baseline: dict[str, Any]
) -> None:
    """A run held by a process on another machine is taken over once its lease expires."""
    flow_dir, home = dirs
    proc = spawn(children, flow_dir, home, "after_model:2")
    wait_parked(flow_dir, proc)
    sigkill(proc)
    with AgentRuntime(home, recover=False) as runtime:
        execution_id = only_run(runtime)
        lease_remote(runtime.store, execution_id, time.time() + 3600)
        assert runtime.recover() == []  # lease still valid: hands off
        assert runtime.get(execution_id).status == "running"
        lease_remote(runtime.store, execution_id, time.time() + 1.0)
        taken = wait_until(runtime.recover, "the expired lease to be taken over")
        assert taken == [execution_id]
        result = finish(runtime, execution_id)
    assert outcome(result, flow_dir) == baseline


ORPHANING_PARENT = """
import os, subprocess, sys
env = {k: v for k, v in os.environ.items() if k != "FLOW_PARENT_PID"}
child = subprocess.Popen(sys.argv[1:], env=env)
print(child.pid, flush=True)
child.wait()
"""


def test_a_parked_flow_exits_once_its_parent_is_gone(
    dirs: tuple[Path, Path], children: Children
) -> None:
    """Nothing outlives the test that started it: a parked child whose parent died exits."""
    flow_dir, home = dirs
    parent = children.popen(
        [PYTHON, "-c", ORPHANING_PARENT, PYTHON, "-m", "crashflow", str(home)],
        env=child_env(CRASHFLOW_DIR=str(flow_dir), CRASH_AT="after_model:1"),
        stdout=subprocess.PIPE,
    )
    assert parent.stdout is not None
    flow_pid = int(parent.stdout.readline())
    assert wait_parked(flow_dir, parent) == "after_model:1"
    os.kill(parent.pid, signal.SIGKILL)  # the parent only: the flow is orphaned
    parent.wait(WAIT_SECONDS)
    try:
        wait_until(lambda: not alive(flow_pid), "the orphaned flow to exit")
    finally:
        kill_group(parent.pid)  # the flow, if it did not exit (its group outlives the parent)


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie waiting for its new parent to reap it does not)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"
