"""Lease owners are identified by boot, PID namespace, pid and start time: a run is taken
over early only from an owner that is provably dead, never from a live process that merely
cannot be seen (another container's PID namespace) or from an owner written in the old form.
"""

from __future__ import annotations

import signal
import socket
import sqlite3
import subprocess
import time
from dataclasses import replace
from pathlib import Path

import pytest

from faultkit import faultflow, finished, lines, parked, result
from frontdesk import AgentRuntime
from frontdesk.engine.local._identity import OwnerId, provably_dead, start_time, this_process
from frontdesk.store import store_path
from parking import write_marker

from conftest import PYTHON, Children, sigkill, wait_until

UNSHARE = ["unshare", "--pid", "--fork", "--mount-proc"]


@pytest.fixture
def dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    """A flow directory (also this process's ``$FAULTFLOW_DIR``) and a frontdesk home."""
    flow_dir, home = tmp_path / "flow", tmp_path / "home"
    flow_dir.mkdir()
    home.mkdir()
    monkeypatch.setenv("FAULTFLOW_DIR", str(flow_dir))
    return flow_dir, home


def require_unshare() -> None:
    """Skip, saying why, where a new PID namespace cannot be made."""
    try:
        probe = subprocess.run([*UNSHARE, "true"], capture_output=True, text=True, timeout=30)
    except FileNotFoundError:
        pytest.skip("unshare is not installed")
    if probe.returncode != 0:
        pytest.skip(f"not permitted to create a PID namespace: {probe.stderr.strip()}")


@pytest.mark.slow
@pytest.mark.e2e
def test_a_runtime_in_another_pid_namespace_waits_for_the_lease(
    dirs: tuple[Path, Path], children: Children
) -> None:
    """Same host, same home, another PID namespace: the live owner's pid is invisible there,
    which proves nothing; the run is left to its owner and the tool runs once."""
    require_unshare()
    flow_dir, home = dirs
    with AgentRuntime(home, recover=False) as observer:
        owner = faultflow(children, "drive", home, flow_dir, FAULTFLOW_PARK="tool")
        assert parked(flow_dir, owner) == "tool"
        [run] = wait_until(observer.runs, "the run to be stored")
        other = faultflow(children, "recover", home, flow_dir, *UNSHARE)
        finished(other)
        assert result(flow_dir, "recovered") == []
        write_marker(flow_dir / "go", "")
        finished(owner)
        assert result(flow_dir, "result") == {
            "status": "completed",
            "execution_id": run.execution_id,
        }
    assert len(lines(flow_dir, "invocations.log")) == 1


def set_lease(home: Path, owner: str, expires: float) -> None:
    conn = sqlite3.connect(store_path(home))
    conn.execute("UPDATE runs SET lease_owner = ?, lease_expires = ?", (owner, expires))
    conn.commit()
    conn.close()


@pytest.mark.slow
@pytest.mark.e2e
def test_a_dead_owner_is_taken_over_at_once_unless_written_in_the_old_form(
    dirs: tuple[Path, Path], children: Children
) -> None:
    flow_dir, home = dirs
    with AgentRuntime(home, recover=False) as runtime:
        child = faultflow(children, "drive", home, flow_dir, FAULTFLOW_PARK="tool")
        assert parked(flow_dir, child) == "tool"
        [run] = wait_until(runtime.runs, "the run to be stored")
        sigkill(child)
        owner = runtime.store.require_run(run.execution_id).lease_owner
        assert owner is not None and OwnerId.parse(owner) is not None
        far = time.time() + 3600
        # The same dead process recorded the old way (host:pid:nonce) proves nothing.
        set_lease(home, f"{socket.gethostname()}:{child.pid}:abcd1234", far)
        assert runtime.recover() == []
        # Recorded with its boot, namespace and start time, it is provably dead: no waiting.
        set_lease(home, owner, far)
        assert runtime.recover() == [run.execution_id]
        assert runtime.handle(run.execution_id).result(timeout=60).status == "completed"


@pytest.fixture
def sleeper(children: Children) -> subprocess.Popen[bytes]:
    """A live child process that waits for its stdin to close."""
    return children.popen([PYTHON, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE)


def test_owner_identity_round_trips_and_old_owners_do_not_parse() -> None:
    me = this_process()
    assert OwnerId.parse(str(me)) == me
    assert OwnerId.parse("myhost:4242:abcd1234") is None
    assert OwnerId.parse("elsewhere:4242:abcd") is None
    assert OwnerId.parse("") is None


def test_only_a_provably_dead_owner_counts_as_dead(sleeper: subprocess.Popen[bytes]) -> None:
    me = this_process()
    if not me.checkable:
        pytest.skip("no /proc with boot id, PID namespace and start times on this platform")
    alive = replace(me, pid=sleeper.pid, nonce="child", start_time=start_time(sleeper.pid))
    assert not provably_dead(alive, me)
    # The pid now belongs to a process that started at another time: the owner is gone.
    assert provably_dead(replace(alive, start_time=alive.start_time + 1), me)
    # Another boot or another PID namespace: its pid says nothing here.
    assert not provably_dead(replace(alive, boot_id="another-boot", pid=999_999_999), me)
    assert not provably_dead(replace(alive, pid_namespace="1", pid=999_999_999), me)
    sleeper.kill()
    sleeper.wait(30)
    assert provably_dead(alive, me)


def test_a_zombie_owner_is_dead(sleeper: subprocess.Popen[bytes]) -> None:
    me = this_process()
    if not me.checkable:
        pytest.skip("no /proc with boot id, PID namespace and start times on this platform")
    owner = replace(me, pid=sleeper.pid, nonce="child", start_time=start_time(sleeper.pid))
    sleeper.send_signal(signal.SIGKILL)
    # Killed but not reaped yet: a zombie never renews a lease again.
    wait_until(lambda: provably_dead(owner, me), "the killed child to count as dead")
