"""A resumed run uses its own model: the one it recorded when it started, never the override of
the process that approves, retries or recovers it. A process that cannot provide that model
leaves the run, with a note saying why, for one that can."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
from agents import Model, ModelProvider

from frontdesk import AgentRuntime
from frontdesk.apps.support import triage_agent
from frontdesk.models.rules import RULES_LABEL
from test_cli import start_waiting_run
from test_support_e2e import SEED

import crashflow
from conftest import PYTHON, Children, child_env

pytestmark = pytest.mark.e2e


class ScriptedProvider(ModelProvider):
    """Serves every model name with crashflow's scripted model and remembers the names."""

    def __init__(self) -> None:
        self.names: list[str | None] = []

    def get_model(self, model_name: str | None) -> Model:
        self.names.append(model_name)
        return crashflow._model()


def cli(home: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """``frontdesk`` in a child process without any OpenAI key."""
    proc = subprocess.run(
        [PYTHON, "-m", "frontdesk", "--home", str(home), *args],
        env=child_env(COLUMNS="250", **env), capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr + proc.stdout
    return proc


def refunds(flow_dir: Path) -> list[str]:
    path = flow_dir / "effects.log"
    lines = path.read_text().splitlines() if path.exists() else []
    return [line for line in lines if " refund " in line]


def test_approving_with_another_model_continues_on_the_rules_it_started_on(home: Path) -> None:
    with AgentRuntime(home, model="rules", recover=False) as runtime:
        paused = runtime.run(triage_agent, SEED)
    assert paused.status == "waiting_approval"

    cli(home, "--model", "gpt-4o-mini", "approvals", "approve", paused.execution_id)

    with AgentRuntime(home, recover=False) as reader:
        done = reader.get(paused.execution_id)
    assert done.status == "completed", done.error
    assert "RF-" in (done.output or "")
    assert done.model_label == RULES_LABEL


def test_a_run_on_each_agents_own_model_is_not_switched_to_the_approvers_override(
    children: Children, tmp_path: Path
) -> None:
    flow_dir, home, execution_id = start_waiting_run(children, tmp_path)

    cli(
        home, "--model", "rules", "approvals", "approve", execution_id,
        CRASHFLOW_DIR=str(flow_dir),
    )  # fmt: skip

    with AgentRuntime(home, recover=False) as reader:
        done = reader.get(execution_id)
    assert done.status == "completed", done.error
    assert done.output is not None and done.output.startswith("INV-1 refunded; account plan pro")
    assert len(refunds(flow_dir)) == 1


def test_a_process_that_cannot_provide_the_model_leaves_the_run_with_a_note(
    tmp_path: Path, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    flow_dir = tmp_path / "flow"
    flow_dir.mkdir()
    monkeypatch.setenv("CRASHFLOW_DIR", str(flow_dir))
    with AgentRuntime(
        home, model="gpt-4o-mini", model_provider=ScriptedProvider(), recover=False
    ) as first:
        paused = first.run(crashflow.triage, crashflow.MESSAGE, context=crashflow.Ctx())
    assert paused.status == "waiting_approval"

    # No OpenAI key in this process: it cannot provide gpt-4o-mini, whatever its --model.
    cli(
        home, "--model", "rules", "approvals", "approve", paused.execution_id, "--by", "ops",
        CRASHFLOW_DIR=str(flow_dir),
    )  # fmt: skip

    provider = ScriptedProvider()
    with AgentRuntime(home, model="rules", model_provider=provider, recover=False) as able:
        left = able.get(paused.execution_id)
        assert left.status == "running"
        assert left.note is not None and "'gpt-4o-mini'" in left.note
        assert "OPENAI_API_KEY" in left.note
        assert [a.status for a in left.approvals] == ["approved"]
        assert refunds(flow_dir) == []

        assert able.recover() == [paused.execution_id]
        done = able.handle(paused.execution_id).wait(timeout=60)
    assert done.status == "completed", done.error
    assert done.output is not None and done.output.startswith("INV-1 refunded")
    assert set(provider.names) == {"gpt-4o-mini"}
    assert done.note is None
    assert len(refunds(flow_dir)) == 1


def test_a_model_instance_override_is_only_continued_by_a_runtime_given_one(
    tmp_path: Path, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CRASHFLOW_DIR", str(tmp_path))
    with AgentRuntime(home, model=crashflow._model(), recover=False) as first:
        paused = first.run(crashflow.triage, crashflow.MESSAGE, context=crashflow.Ctx())
        with AgentRuntime(home, recover=False) as other:
            other.approve(paused.execution_id, by="ops")
            left: Any = other.get(paused.execution_id)
        assert left.status == "running"
        assert "ScriptedModel instance" in (left.note or "")
        assert refunds(tmp_path) == []

        assert first.recover() == [paused.execution_id]
        done = first.handle(paused.execution_id).wait(timeout=60)
    assert done.status == "completed", done.error
    assert len(refunds(tmp_path)) == 1
