"""Shared fixtures: every test gets its own frontdesk home (a real SQLite store on disk)."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from frontdesk import AgentRuntime

TESTS_DIR = Path(__file__).parent


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty frontdesk home, also exported as $FRONTDESK_HOME."""
    path = tmp_path / "home"
    path.mkdir()
    monkeypatch.setenv("FRONTDESK_HOME", str(path))
    monkeypatch.delenv("FRONTDESK_MODEL", raising=False)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    return path


@pytest.fixture
def runtime(home: Path) -> Iterator[AgentRuntime]:
    """A runtime on the test's home that does not scan for orphaned runs."""
    with AgentRuntime(home, recover=False) as rt:
        yield rt


def child_env(**extra: str) -> dict[str, str]:
    """Environment for child processes: the tests directory importable, no model keys."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "FRONTDESK_MODEL"))}
    env["PYTHONPATH"] = os.pathsep.join([str(TESTS_DIR), env.get("PYTHONPATH", "")])
    env.update(extra)
    return env


PYTHON = sys.executable
