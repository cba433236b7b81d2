"""A driver that lost its lease never writes again.

Each case stops a real child process with SIGSTOP while it drives a run with a short lease,
lets the lease expire and something else happen to the run (another runtime takes it over, or
cancels it), then resumes the child with SIGCONT. Whatever the stale driver then tries to
write is refused: its driver stops quietly and the run ends as the live side made it end.
Every case runs on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import pytest

from faultkit import faultflow, finished, lines, parked, result, stop_between_writes
from frontdesk import AgentRuntime
from parking import write_marker

from conftest import Children, both_backends, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.e2e, both_backends]

LEASE_TTL = 1.5


@pytest.fixture
def dirs(
    tmp_path: Path, home: Path, backend: str, monkeypatch: pytest.MonkeyPatch
) -> tuple[Path, Path]:
    """A flow directory (also this process's ``$FAULTFLOW_DIR``) and a frontdesk home on the
    test's store backend."""
    flow_dir = tmp_path / "flow"
    flow_dir.mkdir()
    monkeypatch.setenv("FAULTFLOW_DIR", str(flow_dir))
    return flow_dir, home


def start_stopped(
    children: Children, runtime: AgentRuntime, flow_dir: Path, agent: str, park: str
) -> subprocess.Popen[bytes]:
    """A child drives ``agent`` until it parks at ``park``, with its run stored; then it is
    stopped (SIGSTOP)."""
    home = runtime.home
    proc = faultflow(
        children,
        "drive",
        home,
        flow_dir,
        FAULTFLOW_AGENT=agent,
        FAULTFLOW_PARK=park,
        FAULTFLOW_LEASE_TTL=str(LEASE_TTL),
    )
    assert parked(flow_dir, proc) == park
    wait_until(runtime.runs, "the child's run to be stored")
    stop_between_writes(proc, runtime.home)
    return proc


def resume(flow_dir: Path, proc: subprocess.Popen[bytes]) -> dict[str, str]:
    """Release the parked child, continue it (SIGCONT) and wait for it to exit cleanly."""
    write_marker(flow_dir / "go", "")
    os.kill(proc.pid, signal.SIGCONT)
    stderr = finished(proc)
    assert "Traceback" not in stderr, stderr
    report: dict[str, str] = result(flow_dir, "result")
    return report


def take_over(runtime: AgentRuntime) -> str:
    """Wait until the stopped child's lease expires and this runtime takes the run over."""
    taken = wait_until(lambda: runtime.recover() or None, "the lease to expire")
    assert len(taken) == 1
    return taken[0]


def test_a_stale_driver_never_completes_a_tool_the_new_owner_completed(
    dirs: tuple[Path, Path], children: Children
) -> None:
    flow_dir, home = dirs
    with AgentRuntime(home, recover=False, lease_ttl=LEASE_TTL) as runtime:
        stale = start_stopped(children, runtime, flow_dir, "charger", "tool")
        execution_id = take_over(runtime)
        done = runtime.handle(execution_id).result(timeout=60)
        assert done.status == "completed"
        report = resume(flow_dir, stale)
        assert report == {"status": "completed", "execution_id": execution_id}
        final = runtime.get(execution_id)
    assert final.status == "completed" and final.error is None
    # The tool ran in both processes, with one idempotency key, and had one effect...
    invocations = lines(flow_dir, "invocations.log")
    assert len(invocations) == 2
    assert len({line.split()[1] for line in invocations}) == 1
    assert len(lines(flow_dir, "effects.log")) == 1
    # ...but only the owner's completion was recorded.
    results = [e for e in final.events if e.type == "tool_result"]
    assert len(results) == 1
    assert results[0].result == f"charged 5.0 by {os.getpid()}"
    assert [e for e in final.events if e.type == "error"] == []
    tool_steps = [s for s in final.steps if s.kind == "tool"]
    assert [(s.state, s.attempts) for s in tool_steps] == [("done", 2)]


def test_a_stale_model_response_never_replaces_the_first_and_the_approval_holds(
    dirs: tuple[Path, Path], children: Children
) -> None:
    flow_dir, home = dirs
    with AgentRuntime(home, recover=False, lease_ttl=LEASE_TTL) as runtime:
        stale = start_stopped(children, runtime, flow_dir, "refunder", "model")
        execution_id = take_over(runtime)
        waiting = runtime.handle(execution_id).wait(timeout=60)
        assert waiting.status == "waiting_approval"
        first_model_step = runtime.get(execution_id).steps[0]
        own_call = f"refund-{os.getpid()}"
        assert own_call in (first_model_step.data_json or "")
        report = resume(flow_dir, stale)
        assert report == {"status": "waiting_approval", "execution_id": execution_id}
        # The stale driver's response (another call id) was refused: the journal is unchanged.
        assert runtime.get(execution_id).steps[0] == first_model_step
        runtime.approve(execution_id, by="ops")
        final = runtime.handle(execution_id).result(timeout=60)
    assert final.status == "completed"
    assert final.output == "done: refunded 5.0"
    [approval] = final.approvals
    assert (approval.call_id, approval.status) == (own_call, "approved")
    assert len(lines(flow_dir, "effects.log")) == 1


def test_a_cancelled_run_stays_cancelled_when_its_stale_driver_wakes_up(
    dirs: tuple[Path, Path], children: Children
) -> None:
    flow_dir, home = dirs
    with AgentRuntime(home, recover=False, lease_ttl=LEASE_TTL) as runtime:
        stale = start_stopped(children, runtime, flow_dir, "charger", "tool")
        [row] = runtime.runs()
        execution_id = row.execution_id

        def cancelled() -> bool:
            # While the stopped child's lease is valid, cancelling only asks it to stop.
            return runtime.cancel(execution_id).status == "cancelled"

        wait_until(cancelled, "the run to be cancelled")
        report = resume(flow_dir, stale)
        assert report == {"status": "cancelled", "execution_id": execution_id}
        final = runtime.get(execution_id)
    assert final.status == "cancelled" and final.error is None
    # No result of the stale driver's tool, no failure: only the cancellation.
    assert [e.type for e in final.events if e.type in ("tool_result", "error")] == ["error"]
    assert [e.data.get("status") for e in final.events if e.type == "error"] == ["cancelled"]
    assert len(lines(flow_dir, "effects.log")) == 1
