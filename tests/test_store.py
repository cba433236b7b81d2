"""The store's housekeeping: background WAL checkpoints and schema migrations."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from agents import Agent
from agents.testing import ScriptedModel, assistant_message

from frontdesk import AgentRuntime
from frontdesk.store import SCHEMA_VERSION, store_path

from conftest import WAIT_SECONDS, Children


def test_wal_is_checkpointed_in_the_background(home: Path) -> None:
    with AgentRuntime(home, recover=False) as runtime:
        db = store_path(home)
        size_before = db.stat().st_size
        for i in range(40):
            model = ScriptedModel([[assistant_message(f"answer {i} " + "x" * 2000)]])
            runtime.run(Agent(name="writer", model=model), f"message {i}")
        conn = sqlite3.connect(db)
        assert conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 1000  # others keep theirs
        conn.close()
        deadline = time.monotonic() + WAIT_SECONDS
        while db.stat().st_size == size_before:
            assert time.monotonic() < deadline, "the WAL was never folded into the database"
            time.sleep(0.1)
    conn = sqlite3.connect(db)
    assert conn.execute("SELECT COUNT(*) FROM runs").fetchone()[0] == 40
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    conn.close()


RACER = """
import sys
from frontdesk import AgentRuntime
print("ready", flush=True)
sys.stdin.read()
with AgentRuntime(sys.argv[1], recover=False) as runtime:
    print(len(runtime.runs()))
"""


def test_processes_racing_to_create_a_home_all_succeed(tmp_path: Path, children: Children) -> None:
    import subprocess
    import sys

    home = tmp_path / "fresh"
    racers = [
        children.popen(
            [sys.executable, "-c", RACER, str(home)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(6)
    ]
    for racer in racers:
        assert racer.stdout is not None and racer.stdout.readline() == "ready\n"
    for racer in racers:
        assert racer.stdin is not None
        racer.stdin.close()
    outputs = [racer.stdout.read() for racer in racers if racer.stdout is not None]
    errors = [racer.stderr.read() for racer in racers if racer.stderr is not None]
    for racer in racers:
        racer.wait(WAIT_SECONDS)
    assert [r.returncode for r in racers] == [0] * 6, errors
    assert outputs == ["0\n"] * 6
    conn = sqlite3.connect(store_path(home))
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    conn.close()
