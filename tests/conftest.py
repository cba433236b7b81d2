"""Shared fixtures and helpers.

Every test gets its own frontdesk home (a real SQLite store on disk). Child processes are
started through :class:`Children`, which kills and reaps each of them when the test ends,
whether it passed or failed. Waits poll a condition against a generous deadline.
"""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

import psycopg
import pytest

from frontdesk import AgentRuntime
from frontdesk.store import store_path
from frontdesk.store.postgres._cluster import LocalPostgres
from parking import PARENT_ENV
from pgcluster import throwaway_cluster
from pgdb import fresh_database

# A shell that starts the suite in the background (`pytest ... &`, a CI script) makes it ignore
# SIGINT, as POSIX asks, and every child inherits that: a test that interrupts a child (Ctrl-C
# in a chat, a driver handing its run back) would wait for it forever. Children exec'd from
# here start with the default disposition again.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

TESTS_DIR = Path(__file__).parent
PYTHON = sys.executable
WAIT_SECONDS = 120.0
"""How long a test waits for a condition before it fails: generous, for a loaded machine."""

T = TypeVar("T")


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty frontdesk home, also exported as $FRONTDESK_HOME."""
    path = tmp_path / "home"
    path.mkdir()
    monkeypatch.setenv("FRONTDESK_HOME", str(path))
    monkeypatch.delenv("FRONTDESK_DATABASE_URL", raising=False)
    monkeypatch.delenv("FRONTDESK_MODEL", raising=False)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    return path


BACKENDS = ("sqlite", "postgres")
"""The store backends a behavioural test runs against."""

both_backends = pytest.mark.parametrize("backend", BACKENDS, indirect=True)
"""Runs a test (or, as ``pytestmark``, a module) once per store backend: on PostgreSQL the test
and every child process it starts share a fresh database through $FRONTDESK_DATABASE_URL."""


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[LocalPostgres]:
    """One throw-away PostgreSQL cluster for this test process (started on first use)."""
    with throwaway_cluster() as cluster:
        yield cluster


@pytest.fixture
def backend(request: pytest.FixtureRequest, home: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """The store backend of the test: ``sqlite`` (the home's file) unless parametrised with
    :data:`both_backends`; for ``postgres`` a fresh database, exported as
    $FRONTDESK_DATABASE_URL and dropped afterwards."""
    name = str(getattr(request, "param", "sqlite"))
    if name == "postgres":
        cluster = request.getfixturevalue("pg_cluster")
        database = fresh_database(cluster)
        url = database.__enter__()
        request.addfinalizer(lambda: database.__exit__(None, None, None))
        monkeypatch.setenv("FRONTDESK_DATABASE_URL", url)
    return name


@pytest.fixture
def runtime(home: Path, backend: str) -> Iterator[AgentRuntime]:
    """A runtime on the test's home (and backend) that does not scan for orphaned runs."""
    with AgentRuntime(home, recover=False) as rt:
        yield rt


def sql_rows(home: Path, query: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
    """Rows of a query run straight on the SQLite store of ``home`` (to look at what the store
    wrote, beneath its interface)."""
    conn = sqlite3.connect(store_path(home), timeout=30)
    try:
        return conn.execute(query, params).fetchall()
    finally:
        conn.close()


def sql_execute(home: Path, statement: str, params: Sequence[Any] = ()) -> None:
    """Run one statement straight on the SQLite store of ``home`` and commit it (to put the
    store in a state no frontdesk version writes any more)."""
    conn = sqlite3.connect(store_path(home), timeout=30)
    try:
        with conn:
            conn.execute(statement, params)
    finally:
        conn.close()


def child_env(**extra: str) -> dict[str, str]:
    """Environment for child processes: the tests directory importable, no model keys, and
    this process's pid, so a parked flow exits once this process is gone."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "FRONTDESK_MODEL"))}
    env["PYTHONPATH"] = os.pathsep.join([str(TESTS_DIR), env.get("PYTHONPATH", "")])
    env[PARENT_ENV] = str(os.getpid())
    env.update(extra)
    return env


# Waiting -----------------------------------------------------------------------------------


def wait_until(
    condition: Callable[[], T | None],
    what: str,
    seconds: float = WAIT_SECONDS,
    explain: Callable[[], str] | None = None,
) -> T:
    """Poll ``condition`` until it returns something truthy, and return that. A timeout says
    what was awaited, and what ``explain()`` tells about the state it was left in."""
    deadline = time.monotonic() + seconds
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            detail = f"\n{explain()}" if explain is not None else ""
            raise AssertionError(f"timed out after {seconds:.0f}s waiting for {what}{detail}")
        time.sleep(0.02)


def _exited(proc: subprocess.Popen[Any], waiting_for: str) -> AssertionError:
    _out, err = proc.communicate()
    detail = err.decode() if isinstance(err, bytes) else err or ""
    return AssertionError(f"child exited {proc.returncode} before {waiting_for}:\n{detail}")


def wait_for_marker(path: Path, proc: subprocess.Popen[Any], seconds: float = WAIT_SECONDS) -> str:
    """The text of a marker file the child writes atomically, once it exists.

    Fails at once if the child exits first, with the child's stderr when it was piped.
    """

    def written() -> str | None:
        if path.exists():
            return path.read_text()
        if proc.poll() is not None:
            raise _exited(proc, f"writing {path.name}")
        return None

    return wait_until(written, f"{path.name} from pid {proc.pid}", seconds)


def port_from(path: Path, proc: subprocess.Popen[Any]) -> int:
    """The port a server child wrote to its ``--port-file``."""
    return int(wait_for_marker(path, proc))


@pytest.fixture
def refused_url() -> Iterator[str]:
    """The URL of a loopback port that refuses connections: bound here, never listening, so
    no other process can take it while the test runs."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"


# Child processes ---------------------------------------------------------------------------


class Children:
    """Child processes of a test, each in its own process group (session).

    :meth:`close` (or leaving the ``with`` block) SIGKILLs every group still running and
    reaps every child, so nothing outlives the test whether it passed or failed.
    """

    def __init__(self) -> None:
        self._procs: list[subprocess.Popen[Any]] = []
        self._pids: list[int] = []

    def popen(self, args: Sequence[str], **kwargs: Any) -> subprocess.Popen[Any]:
        """``subprocess.Popen(args, **kwargs)`` in a new session, killed at the end."""
        proc: subprocess.Popen[Any] = subprocess.Popen(args, start_new_session=True, **kwargs)
        self._procs.append(proc)
        return proc

    def adopt(self, pid: int) -> int:
        """Kill and reap ``pid`` at the end too (a child forked another way, e.g. ``pty.fork``,
        which makes it a session leader)."""
        self._pids.append(pid)
        return pid

    def close(self) -> None:
        """SIGKILL every child's process group still there, then reap every child."""
        for proc in self._procs:
            if proc.returncode is None and _unreaped(proc.pid):
                kill_group(proc.pid)
            proc.wait()
            for stream in (proc.stdin, proc.stdout, proc.stderr):
                if stream is not None:
                    stream.close()
        for pid in self._pids:
            if _unreaped(pid):
                kill_group(pid)
                os.waitpid(pid, 0)
        self._procs.clear()
        self._pids.clear()

    def __enter__(self) -> Children:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _unreaped(pid: int) -> bool:
    """Whether ``pid`` is a child of ours not yet reaped (running or a zombie), so its pid and
    process group cannot belong to anyone else. Looks without reaping."""
    try:
        os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    except ChildProcessError:
        return False
    return True


def kill_group(pid: int) -> None:
    """SIGKILL the process group ``pid`` leads, if it still exists."""
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


@pytest.fixture
def children() -> Iterator[Children]:
    """Start the test's child processes here; all are killed and reaped when it ends."""
    with Children() as started:
        yield started


def stop(proc: subprocess.Popen[Any], seconds: float = WAIT_SECONDS) -> int:
    """Stop a server child as Ctrl-C does and reap it; its exit status. A child still there
    after ``seconds`` is SIGKILLed (its process group, when it leads one)."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(seconds)
        except subprocess.TimeoutExpired:
            if os.getpgid(proc.pid) == proc.pid:
                kill_group(proc.pid)
            else:
                proc.kill()
            proc.wait()
    return proc.returncode


def sigkill(proc: subprocess.Popen[Any]) -> None:
    """SIGKILL a child (and its process group) now, reap it, and check it died of the kill."""
    assert proc.returncode is None, f"pid {proc.pid} was already reaped"
    kill_group(proc.pid)
    proc.wait(WAIT_SECONDS)
    assert proc.returncode == -signal.SIGKILL, proc.returncode


# Engines -------------------------------------------------------------------------------------

ENGINES = ("local", "temporal")
"""The engines a behavioural test runs on."""

both_engines = pytest.mark.parametrize("engine", ENGINES, indirect=True)
"""Runs a test (or, as ``pytestmark``, a module) once per engine: on Temporal every runtime the
test (or a child process) opens drives its runs as workflows on this test process's dev
server, on a task queue of the test's own."""


@pytest.fixture(scope="session")
def temporal_server() -> Iterator[Any]:
    """One Temporal dev server for this test process (started on first use)."""
    from temporalserver import dev_server

    with dev_server() as server:
        yield server


@pytest.fixture
def engine(request: pytest.FixtureRequest, home: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """The engine of the test: ``local`` unless parametrised with :data:`both_engines`; for
    ``temporal`` the session's dev server and a fresh task queue, exported as
    $FRONTDESK_ENGINE, $FRONTDESK_TEMPORAL_ADDRESS and $FRONTDESK_TEMPORAL_TASK_QUEUE."""
    name = str(getattr(request, "param", "local"))
    if name == "temporal":
        import uuid

        server = request.getfixturevalue("temporal_server")
        monkeypatch.setenv("FRONTDESK_ENGINE", "temporal")
        monkeypatch.setenv("FRONTDESK_TEMPORAL_ADDRESS", server.address)
        monkeypatch.setenv("FRONTDESK_TEMPORAL_TASK_QUEUE", f"test-{uuid.uuid4().hex[:12]}")
    else:
        monkeypatch.delenv("FRONTDESK_ENGINE", raising=False)
    return name


def store_rows(home: Path, query: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
    """Rows of a query run straight on the test's store, whichever backend it is: the
    database ``$FRONTDESK_DATABASE_URL`` names (in frontdesk's schema), else the SQLite file
    of ``home``. Written with ``?`` placeholders; to look at what the store keeps beneath its
    interface (how much, not what it means)."""
    url = os.environ.get("FRONTDESK_DATABASE_URL")
    if not url:
        return sql_rows(home, query, params)
    with psycopg.connect(url, autocommit=True, options="-c search_path=frontdesk") as conn:
        return conn.execute(query.replace("?", "%s"), tuple(params)).fetchall()
