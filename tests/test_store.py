"""The store: background WAL checkpoints, schema migrations, and fenced writes (lease tokens,
insert-once journal rows, final statuses)."""

from __future__ import annotations

import ast
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest
from agents import Agent
from agents.testing import ScriptedModel, assistant_message

from frontdesk import AgentRuntime
from frontdesk.engine.local._outcomes import settle
from frontdesk.store import (
    SCHEMA_VERSION,
    AppendEvent,
    InsertRun,
    JournalRow,
    LeaseLost,
    RecordStep,
    RunRow,
    SQLiteStore,
    StepAlreadyRecorded,
    Store,
    fence,
    store_path,
)
from frontdesk.store.sqlite import _schema

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


# Fencing: lease tokens, guarded writes, insert-once journal rows, final statuses ------------


def add_run(store: Store, execution_id: str = "run-1", **columns: Any) -> None:
    values: dict[str, Any] = {
        "execution_id": execution_id,
        "agent_ref": "mod:agent",
        "agent_name": "agent",
        "status": "running",
        "input": '"hi"',
        "context_type": None,
        "context_json": None,
        "output_json": None,
        "last_agent": None,
        "error": None,
        "note": None,
        "model_label": None,
        "requests": 0,
        "input_tokens": 0,
        "output_tokens": 0,
        "total_tokens": 0,
        "created_at": 1.0,
        "started_at": None,
        "finished_at": None,
        "updated_at": 1.0,
        "lease_owner": None,
        "lease_expires": None,
        "cancel_requested": 0,
        "attempt": 1,
        "conversation_id": None,
        "turn": None,
        "model_override": None,
        "lease_epoch": 0,
        **columns,
    }
    store.write([InsertRun(RunRow(**values))])


def event_op(execution_id: str, seq: int) -> AppendEvent:
    return AppendEvent(execution_id, f"agent_start:{seq}", "agent_start", None, "{}", 1.0)


def journal_op(state: str, data: str | None) -> RecordStep:
    step = JournalRow(
        "tool:1:c1", "tool", state, "agent", "charge", "{}", data, None, 1, 1.0, None, 1
    )
    return RecordStep("run-1", step)


def test_a_run_leased_before_fencing_migrates_and_each_claim_raises_its_token(home: Path) -> None:
    conn = sqlite3.connect(store_path(home), isolation_level=None)
    for script in _schema.MIGRATIONS[:6]:
        for statement in _schema._statements(script):
            conn.execute(statement)
    conn.execute("PRAGMA user_version = 6")
    conn.execute(
        "INSERT INTO runs (execution_id, agent_ref, agent_name, status, input, created_at, "
        "updated_at, lease_owner, lease_expires) "
        "VALUES ('run-1', 'mod:agent', 'agent', 'running', '\"hi\"', 1, 1, 'host:42:abcd', 100)"
    )
    conn.close()
    store = SQLiteStore(home)
    try:
        row = store.require_run("run-1")
        assert (row.lease_owner, row.lease_expires, row.lease_epoch) == ("host:42:abcd", 100, 0)
        assert store.claim("run-1", "a", 200.0, 50.0, steal_from=None) is None  # still leased
        assert store.claim("run-1", "a", 200.0, 150.0, steal_from=None) == 1
        assert store.claim("run-1", "b", 300.0, 250.0, steal_from=None) == 2
        assert store.claim("run-1", "c", 400.0, 260.0, steal_from="b") == 3
    finally:
        store.close()


def test_a_write_under_a_stale_token_changes_nothing(home: Path) -> None:
    store = SQLiteStore(home)
    try:
        add_run(store)
        assert store.claim("run-1", "a", 10.0, 1.0, steal_from=None) == 1
        assert store.claim("run-1", "b", 30.0, 20.0, steal_from=None) == 2  # a's lease expired
        with pytest.raises(LeaseLost, match="taken over by another driver"):
            store.write([fence("run-1", "a", 1), event_op("run-1", 1)])
        assert store.events("run-1") == []
        store.write([fence("run-1", "b", 2), event_op("run-1", 1)])
        assert len(store.events("run-1")) == 1
        store.write([settle("run-1", "cancelled", None)])
        with pytest.raises(LeaseLost, match="is cancelled"):
            store.write([fence("run-1", "b", 2), event_op("run-1", 2)])
        assert len(store.events("run-1")) == 1
    finally:
        store.close()


def test_a_completed_step_is_never_replaced(home: Path) -> None:
    store = SQLiteStore(home)
    try:
        add_run(store)
        store.write([journal_op("started", None)])
        store.write([journal_op("done", '{"s": "first"}')])  # a started step may complete
        with pytest.raises(StepAlreadyRecorded, match="first record is kept"):
            store.write([journal_op("done", '{"s": "second"}')])
        with pytest.raises(StepAlreadyRecorded, match="first record is kept"):
            store.write([journal_op("started", None)])
        [step] = store.journal("run-1")
        assert (step.state, step.data_json) == ("done", '{"s": "first"}')
    finally:
        store.close()


def test_an_ended_run_keeps_its_outcome(home: Path) -> None:
    store = SQLiteStore(home)
    try:
        add_run(store)
        store.write([settle("run-1", "cancelled", None)])
        store.write([settle("run-1", "failed", None, error="too late")])
        row = store.require_run("run-1")
        assert (row.status, row.error) == ("cancelled", None)
    finally:
        store.close()


def test_every_store_dataclass_documents_each_field() -> None:
    import frontdesk.store

    undocumented = []
    for path in sorted(Path(frontdesk.store.__file__).parent.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.ClassDef) or not any(
                "dataclass" in ast.unparse(d) for d in node.decorator_list
            ):
                continue
            for field, after in zip(node.body, [*node.body[1:], None], strict=True):
                documented = (
                    isinstance(after, ast.Expr)
                    and isinstance(after.value, ast.Constant)
                    and isinstance(after.value.value, str)
                )
                if isinstance(field, ast.AnnAssign) and not documented:
                    undocumented.append(f"{path.name}: {node.name}.{ast.unparse(field.target)}")
    assert undocumented == []
