"""Processes that share nothing but the database URL, as on different machines.

Each process here has its own ``$FRONTDESK_HOME`` and finds the others' runs only through the
PostgreSQL database ``$FRONTDESK_DATABASE_URL`` names: one starts a support run that pauses for
approval, a second approves it from the CLI, a ``frontdesk worker`` in a third completes it and
a fourth lists it. The worker scans for runs once an hour (``--poll 3600``), so only a
notification (``LISTEN``/``NOTIFY``) explains that it picks up, well within the test's
deadline, a run approved elsewhere or handed back by a driver that stopped. A driver that
died is taken over at once only from its own machine; from another, once its lease expired.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from frontdesk import AgentRuntime
from frontdesk.engine.local._identity import OwnerId

from conftest import (
    PYTHON,
    WAIT_SECONDS,
    Children,
    child_env,
    sigkill,
    stop,
    wait_for_marker,
    wait_until,
)

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.parametrize("backend", ["postgres"], indirect=True),
]

SEED = "Hi, I was charged $99 twice last month (invoice INV-8821). Can I get a refund?"
"""The support desk's duplicate-charge case: it ends in a refund that needs approval."""
HOUR = "3600"
"""The workers' poll interval: longer than any test, so polling never explains a wake-up."""


def host(tmp_path: Path, name: str) -> dict[str, str]:
    """The environment of a process on its own machine: a home of its own, the database URL
    (inherited from the test) the only thing it shares."""
    home = tmp_path / name
    home.mkdir()
    return child_env(FRONTDESK_HOME=str(home))


def frontdesk(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """Run one ``frontdesk`` command to its end; fails unless it exits 0."""
    done = subprocess.run(
        [PYTHON, "-m", "frontdesk", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=WAIT_SECONDS,
    )
    assert done.returncode == 0, f"frontdesk {' '.join(args)}:\n{done.stdout}\n{done.stderr}"
    return done


def worker(
    children: Children, env: dict[str, str], log: Path, *args: str
) -> subprocess.Popen[bytes]:
    """A ``frontdesk worker`` polling once an hour, started and ready (it said so)."""
    with log.open("wb") as output:
        proc = children.popen(
            [PYTHON, "-m", "frontdesk", "worker", "--poll", HOUR, *args],
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    wait_until(
        lambda: "worker on" in log.read_text() or proc.poll() is not None,
        "the worker to start",
    )
    assert proc.poll() is None, log.read_text()
    return proc


@pytest.fixture
def observer(tmp_path: Path, backend: str) -> Iterator[AgentRuntime]:
    """A runtime that only reads (no recovery, no agents), on a home of its own."""
    home = tmp_path / "observer"
    home.mkdir()
    with AgentRuntime(home, recover=False) as runtime:
        yield runtime


def status_of(runtime: AgentRuntime, execution_id: str) -> str:
    return runtime.get(execution_id).status


def test_four_hosts_start_approve_complete_and_list_one_run(
    tmp_path: Path, children: Children, observer: AgentRuntime
) -> None:
    log = tmp_path / "worker.log"
    third = worker(children, host(tmp_path, "host3"), log)

    # 1. A support run on the first machine pauses for the refund's approval.
    asked = frontdesk(host(tmp_path, "host1"), "support", "ask", "--model", "rules", SEED)
    [execution_id] = set(re.findall(r"run (run_[0-9a-f]+)", asked.stdout))
    assert "waiting for approval" in asked.stdout and "process_refund" in asked.stdout
    assert status_of(observer, execution_id) == "waiting_approval"

    # 2. The second approves it from the CLI and leaves it to a worker.
    approved = frontdesk(
        host(tmp_path, "host2"), "approvals", "approve", execution_id, "--by", "ops", "--no-wait"
    )
    assert "a worker with its agent will pick it up" in approved.stdout, approved.stdout

    # 3. The worker on the third completes it, woken by the approval, not by its poll.
    def explain() -> str:
        return f"run {status_of(observer, execution_id)}; worker log:\n{log.read_text()}"

    wait_until(
        lambda: status_of(observer, execution_id) == "completed",
        "the worker on another machine to complete the approved run",
        explain=explain,
    )
    assert stop(third) == 0, log.read_text()

    # 4. The fourth lists it.
    listed = frontdesk(host(tmp_path, "host4"), "runs", "list", "--json")
    [run] = json.loads(listed.stdout)
    assert (run["execution_id"], run["status"]) == (execution_id, "completed")
    result = observer.get(execution_id)
    [approval] = result.approvals
    assert (approval.status, approval.decided_by) == ("approved", "ops")
    refunds = [
        e for e in result.events if e.type == "tool_result" and e.tool_name == "process_refund"
    ]
    assert len(refunds) == 1 and refunds[0].result["status"] == "succeeded", refunds


def test_a_run_handed_back_on_one_host_is_taken_at_once_by_a_worker_on_another(
    tmp_path: Path, children: Children, observer: AgentRuntime
) -> None:
    """A driver interrupted with Ctrl-C hands its run back; the worker elsewhere hears of it
    and drives the run on to its approval."""
    flow_dir = tmp_path / "flow"
    flow_dir.mkdir()
    log = tmp_path / "worker.log"
    env = {**host(tmp_path, "host2"), "CRASHFLOW_DIR": str(flow_dir)}
    second = worker(children, env, log, "--agents", "crashflow:triage")

    first_env = {**host(tmp_path, "host1"), "CRASHFLOW_DIR": str(flow_dir)}
    first = children.popen(
        [PYTHON, "-m", "crashflow", first_env["FRONTDESK_HOME"]],
        env={**first_env, "CRASH_AT": "after_model:1"},
        stderr=subprocess.PIPE,
    )
    assert wait_for_marker(flow_dir / "parked", first) == "after_model:1"
    [run] = observer.runs()
    first.send_signal(signal.SIGINT)
    _out, err = first.communicate(timeout=WAIT_SECONDS)
    assert "KeyboardInterrupt" in err.decode(), err.decode()

    def explain() -> str:
        row = observer.store.require_run(run.execution_id)
        return f"run {row.status}, lease {row.lease_owner}; worker log:\n{log.read_text()}"

    wait_until(
        lambda: status_of(observer, run.execution_id) == "waiting_approval",
        "the worker on another machine to take the handed-back run to its approval",
        explain=explain,
    )
    assert stop(second) == 0, log.read_text()
    models = (flow_dir / "models.log").read_text().splitlines()
    assert len(models) == 3  # each model call that returned, once: none lost, none repeated


def test_a_dead_driver_is_taken_over_at_once_only_from_its_own_machine(
    tmp_path: Path, backend: str, children: Children, monkeypatch: pytest.MonkeyPatch
) -> None:
    """'This process is dead, take over now' holds for one machine only: the killed driver's
    run is taken at once here, where its death can be proven; recorded as the same process on
    another machine (another boot), it keeps its lease until the lease expires."""
    flow_dir = tmp_path / "flow"
    flow_dir.mkdir()
    monkeypatch.setenv("CRASHFLOW_DIR", str(flow_dir))
    env = {**host(tmp_path, "host1"), "CRASHFLOW_DIR": str(flow_dir), "CRASH_AT": "after_model:1"}
    driver = children.popen([PYTHON, "-m", "crashflow", env["FRONTDESK_HOME"]], env=env)
    assert wait_for_marker(flow_dir / "parked", driver) == "after_model:1"
    sigkill(driver)
    here = tmp_path / "host2"
    here.mkdir()
    with AgentRuntime(here, recover=False) as runtime:
        [run] = runtime.runs()
        owner = runtime.store.require_run(run.execution_id).lease_owner
        parsed = OwnerId.parse(owner or "")
        if parsed is None or not parsed.checkable:
            pytest.skip("no /proc with boot id, PID namespace and start times here")
        elsewhere = str(replace(parsed, boot_id="another-boot"))
        far = time.time() + 3600
        assert runtime.store.claim(run.execution_id, elsewhere, far, time.time(), steal_from=owner)
        assert runtime.recover() == []  # another machine's process: only expiry counts
        assert runtime.store.claim(
            run.execution_id, owner or "", far, time.time(), steal_from=elsewhere
        )
        assert runtime.recover() == [run.execution_id]  # provably dead here: at once
        paused = runtime.handle(run.execution_id).wait(timeout=WAIT_SECONDS)
    assert paused.status == "waiting_approval"


def test_machines_whose_clocks_differ_agree_on_when_a_lease_expires(
    tmp_path: Path, children: Children, observer: AgentRuntime
) -> None:
    """A driver on a machine whose clock runs an hour behind keeps its run: leases are told
    by the database server's clock, so another machine does not see its live lease as long
    expired and take the run over."""
    flow_dir = tmp_path / "flow"
    flow_dir.mkdir()
    skewed = tmp_path / "skewed"
    skewed.mkdir()
    (skewed / "sitecustomize.py").write_text(
        "import time\n_real = time.time\ntime.time = lambda: _real() - 3600.0\n"
    )
    env = {**host(tmp_path, "behind"), "CRASHFLOW_DIR": str(flow_dir), "CRASH_AT": "after_model:1"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(skewed), env.get("PYTHONPATH")]))
    driver = children.popen([PYTHON, "-m", "crashflow", env["FRONTDESK_HOME"]], env=env)
    assert wait_for_marker(flow_dir / "parked", driver) == "after_model:1"

    [run] = observer.runs()
    row = observer.store.require_run(run.execution_id)
    assert row.lease_owner is not None and row.lease_expires is not None
    assert row.lease_expires > observer.store.clock()  # live, by the shared clock
    with AgentRuntime(tmp_path / "ahead", recover=False) as elsewhere:
        assert elsewhere.recover() == []
    assert driver.poll() is None
    assert observer.store.require_run(run.execution_id).lease_owner == row.lease_owner
