"""The store's housekeeping: background WAL checkpoints and schema migrations."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from agents import Agent
from agents.testing import ScriptedModel, assistant_message

from frontdesk import AgentRuntime
from frontdesk.store import SCHEMA_VERSION, store_path


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
        deadline = time.monotonic() + 10
        while db.stat().st_size == size_before:
            assert time.monotonic() < deadline, "the WAL was never folded into the database"
            time.sleep(0.1)
    conn = sqlite3.connect(db)
    assert conn.execute("SELECT COUNT(*) FROM runs").fetchone()[0] == 40
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    conn.close()
