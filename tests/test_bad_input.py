"""Bad input gets a clear error and nothing is stored or lost."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest
from agents import Agent
from agents.testing import ScriptedModel, assistant_message

from frontdesk import (
    AgentRuntime,
    EmptyMessage,
    InvalidInput,
    MessageTooLong,
    RunNotFound,
    SchemaTooNew,
    StoreCorrupt,
    StoreLocked,
)
from frontdesk.engine._context import ContextNotSerializable
from frontdesk.store import SCHEMA_VERSION, store_path
from frontdesk.store.sqlite import _schema


def echo_agent() -> Agent[None]:
    return Agent(name="echo", model=ScriptedModel([[assistant_message("hi")]]))


@pytest.mark.parametrize("message", ["", "   ", "\n\t"])
def test_empty_message_is_refused_and_nothing_is_stored(
    runtime: AgentRuntime, message: str
) -> None:
    with pytest.raises(EmptyMessage) as info:
        runtime.run(echo_agent(), message)
    assert isinstance(info.value, ValueError)
    with pytest.raises(EmptyMessage):
        runtime.start(echo_agent(), message)
    assert runtime.runs() == []


def test_message_over_the_limit_is_refused(home: Path) -> None:
    with AgentRuntime(home, recover=False, max_message_chars=100) as runtime:
        with pytest.raises(MessageTooLong) as info:
            runtime.run(echo_agent(), "x" * 101)
        assert "101" in str(info.value) and "100" in str(info.value)
        assert runtime.run(echo_agent(), "x" * 100).status == "completed"
        assert len(runtime.runs()) == 1


def test_default_limit_is_4000_characters(runtime: AgentRuntime) -> None:
    with pytest.raises(MessageTooLong):
        runtime.run(echo_agent(), "y" * 4001)


def test_unknown_execution_id(runtime: AgentRuntime) -> None:
    for call in (runtime.get, runtime.handle, runtime.cancel, runtime.retry):
        with pytest.raises(RunNotFound) as info:
            call("run_does_not_exist")
        assert "run_does_not_exist" in str(info.value)
        assert isinstance(info.value, ValueError)


def test_context_that_cannot_be_persisted_is_refused_up_front(runtime: AgentRuntime) -> None:
    with pytest.raises(ContextNotSerializable) as info:
        runtime.run(echo_agent(), "hello", context=threading.Lock())
    assert isinstance(info.value, InvalidInput)
    assert runtime.runs() == []


def test_not_an_agent(runtime: AgentRuntime) -> None:
    with pytest.raises(TypeError):
        runtime.run("triage", "hello")  # type: ignore[arg-type]


def test_corrupt_store_is_reported_and_left_untouched(tmp_path: Path) -> None:
    home = tmp_path / "corrupt"
    home.mkdir()
    garbage = b"this is not a sqlite database" * 100
    store_path(home).write_bytes(garbage)
    with pytest.raises(StoreCorrupt) as info:
        AgentRuntime(home)
    assert "not a readable frontdesk database" in str(info.value)
    assert store_path(home).read_bytes() == garbage


def test_store_from_a_newer_schema_is_refused_and_left_untouched(home: Path) -> None:
    with AgentRuntime(home, recover=False) as runtime:
        runtime.run(echo_agent(), "keep me")
    conn = sqlite3.connect(store_path(home))
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(SchemaTooNew) as info:
        AgentRuntime(home)
    assert "upgrade frontdesk" in str(info.value)
    conn = sqlite3.connect(store_path(home))
    assert conn.execute("SELECT input FROM runs").fetchall() == [('"keep me"',)]
    conn.close()


def test_locked_store_gives_a_clear_error_and_loses_nothing(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with AgentRuntime(home, recover=False) as runtime:
        runtime.run(echo_agent(), "before the lock")
    blocker = sqlite3.connect(store_path(home), isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    try:
        with (
            pytest.raises(StoreLocked) as info,
            AgentRuntime(home, recover=False, busy_timeout=0.2) as runtime,
        ):
            runtime.run(echo_agent(), "during the lock")
        assert "locked by another process" in str(info.value)
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    with AgentRuntime(home, recover=False) as runtime:
        assert [r.input for r in runtime.runs()] == ["before the lock"]
        assert runtime.run(echo_agent(), "after the lock").status == "completed"


def test_store_is_migrated_from_an_older_schema(home: Path) -> None:
    conn = sqlite3.connect(store_path(home), isolation_level=None)
    for statement in _schema._statements(_schema.MIGRATIONS[0]):
        conn.execute(statement)
    conn.execute("PRAGMA user_version = 1")
    conn.close()
    with AgentRuntime(home, recover=False) as runtime:
        assert runtime.run(echo_agent(), "after migration").status == "completed"
    conn = sqlite3.connect(store_path(home))
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.close()
