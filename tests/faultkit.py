"""Test-side helpers for the fault tests: starting :mod:`faultflow` children (through the
shared :class:`conftest.Children`, so each is killed and reaped) and reading what they wrote."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
from pathlib import Path
from typing import Any

import psycopg

from frontdesk.store import store_path

from conftest import PYTHON, WAIT_SECONDS, Children, child_env, wait_for_marker, wait_until


def spawn(
    children: Children, argv: list[str], flow_dir: Path, **env: str
) -> subprocess.Popen[bytes]:
    """Start ``argv`` with the tests importable and ``$FAULTFLOW_DIR`` set."""
    return children.popen(
        argv,
        env=child_env(FAULTFLOW_DIR=str(flow_dir), **env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def faultflow(
    children: Children, command: str, home: Path, flow_dir: Path, *prefix: str, **env: str
) -> subprocess.Popen[bytes]:
    """Start ``python -m faultflow COMMAND HOME``, after ``prefix`` (e.g. ``unshare ...``)."""
    return spawn(
        children, [*prefix, PYTHON, "-m", "faultflow", command, str(home)], flow_dir, **env
    )


def finished(proc: subprocess.Popen[bytes], seconds: float = WAIT_SECONDS) -> str:
    """Wait for a child to exit by itself; its stderr. Fails unless it exited 0."""
    _out, err = proc.communicate(timeout=seconds)
    assert proc.returncode == 0, f"child exited {proc.returncode}:\n{err.decode()}"
    return err.decode()


def parked(flow_dir: Path, proc: subprocess.Popen[bytes]) -> str:
    """Where the child parked, once it has."""
    return wait_for_marker(flow_dir / "parked", proc)


def lines(flow_dir: Path, name: str) -> list[str]:
    """The lines of a log under ``flow_dir``."""
    path = flow_dir / name
    return path.read_text().splitlines() if path.exists() else []


def result(flow_dir: Path, name: str) -> Any:
    """A JSON marker's content."""
    path = flow_dir / name
    assert path.exists(), f"no marker {name}"
    return json.loads(path.read_text())


def stop_between_writes(proc: subprocess.Popen[bytes], home: Path) -> None:
    """SIGSTOP the child at a moment it holds no write lock on the store.

    A child stopped inside a write transaction (its heartbeat renewing a lease, say) would
    block every other process's writes until it is continued: stop it again until it is not.
    On PostgreSQL ($FRONTDESK_DATABASE_URL), until no other session is inside a transaction.
    """
    url = os.environ.get("FRONTDESK_DATABASE_URL")
    while True:
        os.kill(proc.pid, signal.SIGSTOP)
        wait_until(lambda: _state(proc.pid) == "T", f"pid {proc.pid} to stop")
        if _no_open_transaction(url) if url else _write_lock_free(store_path(home)):
            return
        os.kill(proc.pid, signal.SIGCONT)


def _state(pid: int) -> str:
    return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]


def _no_open_transaction(url: str) -> bool:
    """Whether no session on the database but this one is inside a transaction."""
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid() AND xact_start IS NOT NULL"
        ).fetchone()
    return row is not None and row[0] == 0


def _write_lock_free(db: Path) -> bool:
    conn = sqlite3.connect(db, timeout=0, isolation_level=None)
    try:
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("ROLLBACK")
        return True
    except sqlite3.OperationalError:
        return False
    finally:
        conn.close()
