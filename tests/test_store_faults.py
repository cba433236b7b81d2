"""When the store fails under a live process: no run is stuck, and every error says what
happened.

A commit that finds the store locked past its busy timeout is retried with backoff; a driver
that still cannot write gives its run up so it can be resumed; a full disk, a read-only home
and a write-ahead log deleted under a live process each get an error that names the cause.
The full disk and the read-only home are real: a small tmpfs, a read-only bind mount, each in
a mount namespace of the child process that uses it.
"""

from __future__ import annotations

import asyncio
import subprocess
import threading
from pathlib import Path
from typing import Any

import pytest
from agents import Agent, Model
from agents.items import ModelResponse
from agents.testing import ScriptedModel, assistant_message
from agents.usage import Usage

from faultkit import finished, result, spawn
from frontdesk import AgentRuntime, StoreError
from frontdesk.store import store_path

from conftest import PYTHON, Children, wait_until


class GatedModel(Model):
    """Answers once ``gate`` is set; ``entered`` tells that a call is waiting for it."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.gate = threading.Event()
        self.calls = 0

    async def get_response(self, *args: Any, **kwargs: Any) -> ModelResponse:
        self.calls += 1
        self.entered.set()
        await asyncio.to_thread(self.gate.wait, 120)
        return ModelResponse(
            output=[assistant_message("done")],
            usage=Usage(requests=1, input_tokens=1, output_tokens=1, total_tokens=2),
            response_id=None,
        )

    def stream_response(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError


class Lock:
    """Another connection holding the store's write lock until released."""

    def __init__(self, home: Path) -> None:
        import sqlite3

        self.conn = sqlite3.connect(store_path(home), isolation_level=None)
        self.conn.execute("BEGIN IMMEDIATE")

    def release(self) -> None:
        if self.conn.in_transaction:
            self.conn.execute("ROLLBACK")
        self.conn.close()


def logged(caplog: pytest.LogCaptureFixture, text: str) -> bool:
    return any(text in record.getMessage() for record in list(caplog.records))


def test_a_commit_that_finds_the_store_locked_is_retried(
    home: Path, caplog: pytest.LogCaptureFixture
) -> None:
    model = GatedModel()
    with AgentRuntime(home, recover=False, busy_timeout=1.0) as runtime:
        handle = runtime.start(Agent(name="gated", model=model), "hello")
        wait_until(model.entered.is_set, "the model call")
        lock = Lock(home)
        try:
            model.gate.set()
            wait_until(lambda: logged(caplog, "retrying"), "a commit to be retried")
        finally:
            lock.release()
        done = handle.result(timeout=60)
    assert (done.status, done.output, done.error) == ("completed", "done", None)
    assert model.calls == 1


def test_a_driver_that_cannot_write_leaves_its_run_resumable(
    home: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The lock outlasts every retry: the driver stops, and once the store works again the
    run is resumed (here by the same runtime's recovery) instead of staying `running`."""
    model = GatedModel()
    with AgentRuntime(home, busy_timeout=0.1, lease_ttl=1.0, poll_interval=0.05) as runtime:
        handle = runtime.start(Agent(name="gated", model=model), "hello")
        wait_until(model.entered.is_set, "the model call")
        lock = Lock(home)
        try:
            model.gate.set()
            wait_until(lambda: logged(caplog, "driver stops"), "the driver to give up")
        finally:
            lock.release()
        done = handle.result(timeout=60)
    assert (done.status, done.output, done.error) == ("completed", "done", None)
    assert model.calls == 2  # the first answer was never committed


def echo_agent() -> Agent[Any]:
    return Agent(name="echo", model=ScriptedModel([[assistant_message("hi")] for _ in range(9)]))


def test_deleting_the_wal_under_a_live_process_says_so(home: Path) -> None:
    with AgentRuntime(home, recover=False) as runtime:
        runtime.run(echo_agent(), "before")
        store_path(home).with_name("frontdesk.db-wal").unlink()
        with pytest.raises(StoreError) as info:
            AgentRuntime(home, recover=False)
        message = str(info.value)
        assert "write-ahead log frontdesk.db-wal" in message
        assert "while a process had the store open" in message
        assert "backup" not in message
        # The live process still reads a consistent database.
        assert [run.input for run in runtime.runs()] == ["before"]
        assert len(runtime.runs()) == 1


def require_mount_namespace(tmp_path: Path) -> None:
    """Skip, saying why, where this process cannot mount in a mount namespace of its own."""
    probe_dir = tmp_path / "probe"
    probe_dir.mkdir()
    try:
        probe = subprocess.run(
            ["unshare", "--mount", "sh", "-c", f"mount -t tmpfs -o size=64k tmpfs {probe_dir}"],
            capture_output=True,
            text=True,
            timeout=30,
        )
    except FileNotFoundError:
        pytest.skip("unshare is not installed")
    if probe.returncode != 0:
        pytest.skip(f"not permitted to mount in a mount namespace: {probe.stderr.strip()}")


@pytest.fixture
def flow_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "flow"
    path.mkdir()
    monkeypatch.setenv("FAULTFLOW_DIR", str(path))
    return path


@pytest.mark.slow
@pytest.mark.e2e
def test_a_full_disk_says_so_and_leaves_no_run_stuck(
    tmp_path: Path, flow_dir: Path, children: Children
) -> None:
    require_mount_namespace(tmp_path)
    small = tmp_path / "small"
    small.mkdir()
    script = 'mount -t tmpfs -o size=2m tmpfs "$1" && exec "$2" -m faultflow full "$1"'
    argv = ["unshare", "--mount", "sh", "-c", script, "sh", str(small), PYTHON]
    finished(spawn(children, argv, flow_dir), seconds=300)
    report = result(flow_dir, "full")
    assert report["before"] == "completed"
    # A run started on the full disk: the disk's error, never RunNotFound or a rollback error.
    assert report["new_run"].startswith("StoreError: ")
    assert "database or disk is full" in report["new_run"]
    assert "cannot rollback" not in report["new_run"]
    # The run in flight when the disk filled stopped, and was resumed once there was room.
    assert report["driver_stopped"] is True
    assert report["in_flight"] == "completed"
    assert report["after"] == "completed"
    assert report["runs"] == ["completed"] * 3


def read_only(children: Children, home: Path, flow_dir: Path) -> dict[str, str]:
    """Run ``faultflow readonly`` on ``home`` bind-mounted read-only."""
    (flow_dir / "readonly").unlink(missing_ok=True)
    script = (
        'mount --bind "$1" "$1" && mount -o remount,bind,ro "$1" '
        '&& exec "$2" -m faultflow readonly "$1"'
    )
    argv = ["unshare", "--mount", "sh", "-c", script, "sh", str(home), PYTHON]
    finished(spawn(children, argv, flow_dir))
    report: dict[str, str] = result(flow_dir, "readonly")
    return report


@pytest.mark.slow
@pytest.mark.e2e
def test_a_read_only_home_says_so(
    home: Path, tmp_path: Path, flow_dir: Path, children: Children
) -> None:
    require_mount_namespace(tmp_path)
    with AgentRuntime(home, recover=False) as runtime:
        runtime.run(echo_agent(), "stored before")
        # While this process has the store open, the other can read but not write.
        report = read_only(children, home, flow_dir)
        assert report["read"] == "1"
        assert report["error"].startswith("StoreError: the store at ")
        assert f"its home directory {home} is read-only" in report["error"]
        assert "backup" not in report["error"]
    # With nobody else on it, it cannot even open the store.
    report = read_only(children, home, flow_dir)
    assert "read" not in report
    assert report["error"].startswith("StoreError: cannot open the store at ")
    assert f"its home directory {home} is read-only" in report["error"]
