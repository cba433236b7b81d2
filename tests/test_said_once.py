"""Code that says one thing once: removed dead code stays removed, docstrings name only what
exists, and only one function reads the SDK's private handoff reference."""

from __future__ import annotations

import inspect
from pathlib import Path
from types import ModuleType

import pytest

import frontdesk
from frontdesk import StaleConversation, store
from frontdesk.apps.disputes import tools as disputes_tools
from frontdesk.apps.support import tools as support_tools
from frontdesk.engine import _base as engine_base
from frontdesk.engine.local import _run as engine_run

SOURCE = Path(frontdesk.__file__).parent


@pytest.mark.parametrize("module", [support_tools, disputes_tools])
def test_the_apps_keep_no_unused_tool_tuple(module: ModuleType) -> None:
    assert not hasattr(module, "ALL_TOOLS")


def test_durable_runs_keep_no_unread_replay_counter() -> None:
    assert "replayed_steps" not in inspect.getsource(engine_run)


def test_a_stale_conversation_error_carries_only_its_history() -> None:
    assert StaleConversation("stale", history=["a"]).history == ["a"]
    with pytest.raises(TypeError):
        StaleConversation("stale", turn=3)  # type: ignore[call-arg]


def test_docstrings_name_only_what_exists() -> None:
    assert "console" not in (engine_base.__doc__ or "")
    assert "the runtime reads" in (store.__doc__ or "")


def test_only_one_function_reads_the_sdks_private_handoff_reference() -> None:
    users = sorted(
        str(path.relative_to(SOURCE))
        for path in SOURCE.rglob("*.py")
        if "_agent_ref" in path.read_text(encoding="utf-8")
    )
    assert users == ["engine/_agents.py"]
