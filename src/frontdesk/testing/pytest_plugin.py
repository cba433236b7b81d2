"""pytest fixtures for frontdesk users: an isolated runtime per test.

Installed with frontdesk (entry point ``pytest11``), so ``frontdesk_runtime`` is available in
any project's tests.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ..runtime import AgentRuntime


@pytest.fixture
def frontdesk_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh frontdesk home for this test, exported as ``$FRONTDESK_HOME``."""
    home = tmp_path / "frontdesk-home"
    home.mkdir()
    monkeypatch.setenv("FRONTDESK_HOME", str(home))
    return home


@pytest.fixture
def frontdesk_runtime(frontdesk_home: Path) -> Iterator[AgentRuntime]:
    """An :class:`AgentRuntime` on an isolated home, closed after the test."""
    with AgentRuntime(frontdesk_home, recover=False) as runtime:
        yield runtime
