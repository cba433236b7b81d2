"""Runs become regression tests: ``frontdesk runs export ID... --pytest DIR`` writes one readable
pytest file per run, which replays the recorded model responses through the current agents
and tools and fails, saying what changed, when an agent hands off differently, calls another
tool or drops an approval; ``frontdesk.testing.replay`` is the same from Python."""

from __future__ import annotations

import dataclasses
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from agents import Agent, handoff

import forkflow
from forkflow import Ctx, invocations
from frontdesk import AgentRuntime, InvalidInput, RunResult
from frontdesk.apps.support import (
    account_agent,
    billing_agent,
    init_db,
    technical_agent,
)
from frontdesk.apps.support import triage_agent as support_triage
from frontdesk.testing import ExpectationFailed, Recording, replay
from test_api import REFUND
from test_fork import refunded_run

from conftest import PYTHON, child_env

pytestmark = pytest.mark.e2e

CHANGED_SUPPORT = '''"""The support desk with one change: the billing specialist's refund needs no approval."""

import dataclasses

from agents import handoff

from frontdesk.apps.support import account_agent, billing_agent, technical_agent
from frontdesk.apps.support import triage_agent as shipped

billing_specialist = billing_agent.clone(
    tools=[
        dataclasses.replace(t, needs_approval=False) if t.name == "process_refund" else t
        for t in billing_agent.tools
    ]
)
triage_agent = shipped.clone(
    handoffs=[handoff(billing_specialist), handoff(technical_agent), handoff(account_agent)]
)
'''


def frontdesk(home: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PYTHON, "-m", "frontdesk", "--home", str(home), *args],
        env=child_env(COLUMNS="120", **env), capture_output=True, text=True, timeout=300,
    )  # fmt: skip


def pytest_in(folder: Path) -> subprocess.CompletedProcess[str]:
    """pytest on ``folder`` in a child process, as a developer runs the exported tests."""
    return subprocess.run(
        [PYTHON, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir", str(folder),
         str(folder)],
        cwd=folder, env=child_env(), capture_output=True, text=True, timeout=300,
    )  # fmt: skip


def ungated(agent: Agent[Any]) -> Agent[Any]:
    """``agent`` whose refund needs no approval."""
    return agent.clone(
        tools=[
            dataclasses.replace(t, needs_approval=False) if t.name == "process_refund" else t
            for t in agent.tools
        ]
    )


def test_the_demos_support_run_becomes_a_test_that_catches_a_dropped_approval(
    tmp_path: Path, refused_url: str
) -> None:
    home = tmp_path / "home"
    # No Stripe answers at the configured address: the demo starts a sandbox of its own.
    demo = frontdesk(home, "demo", "--no-serve", FRONTDESK_STRIPE_API_BASE=refused_url)
    assert demo.returncode == 0, demo.stderr + demo.stdout
    listed = json.loads(frontdesk(home, "runs", "list", "--json").stdout)
    (run,) = [r for r in listed if r["agent"] == "support_triage"]

    regressions = tmp_path / "regressions"
    exported = frontdesk(home, "runs", "export", run["execution_id"], "--pytest", str(regressions))
    assert exported.returncode == 0, exported.stderr
    (path,) = regressions.glob("test_*.py")
    assert f"wrote {path}" in exported.stdout
    source = path.read_text()
    for expected in (
        f'run_id="{run["execution_id"]}"',
        'agent="frontdesk.apps.support',
        json.dumps(run["input"]),
        'MockEvent.handoff("billing_specialist")',
        'MockEvent.tool_call("get_invoice", {"invoice_id": "INV-8821"})',
        'MockEvent.approve(by="supervisor", note="duplicate charge confirmed")',
        'agent_path=["support_triage", "billing_specialist"]',
        'approvals=["process_refund"]',
        'status="completed"',
        "replay(RECORDING, home=tmp_path)",
    ):
        assert expected in source, expected
    compile(source, str(path), "exec")

    # Unchanged agents: the exported test passes.
    passed = pytest_in(regressions)
    assert passed.returncode == 0, passed.stdout + passed.stderr
    assert "1 passed" in passed.stdout

    # The billing specialist's refund no longer needs approval: the exported test fails.
    changed = tmp_path / "changed"
    changed.mkdir()
    (changed / "changed_support.py").write_text(CHANGED_SUPPORT)
    reference = json.loads(source.split("agent=", 1)[1].split(",\n", 1)[0])
    (changed / path.name).write_text(
        source.replace(f'agent="{reference}"', 'agent="changed_support:triage_agent"')
    )
    failed = pytest_in(changed)
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert "1 failed" in failed.stdout
    assert (
        f"replay of run {run['execution_id']} (changed_support:triage_agent) differs from the "
        "recording: the approval of process_refund was dropped: the recorded run asked a human "
        "to approve process_refund before running it; the current agents ran process_refund("
    ) in " ".join(failed.stdout.split())

    # The same from Python, with the replacement given to replay.
    with pytest.raises(ExpectationFailed, match="the approval of process_refund was dropped"):
        replay(path, agents=[ungated(billing_agent)], home=tmp_path / "replay")


@pytest.fixture
def support_run(home: Path) -> Iterator[tuple[AgentRuntime, RunResult]]:
    init_db(home)
    with AgentRuntime(home, model="rules", recover=False) as runtime:
        paused = runtime.run(support_triage, REFUND)
        runtime.approve(paused.execution_id, by="supervisor")
        done = runtime.handle(paused.execution_id).wait(timeout=120)
        assert done.status == "completed", done.error
        yield runtime, done


def test_replaying_a_run_through_unchanged_agents_passes(
    support_run: tuple[AgentRuntime, RunResult], tmp_path: Path
) -> None:
    _runtime, run = support_run
    replayed = replay(run, home=tmp_path / "replay")
    assert replayed.status == "completed"
    assert replayed.output == run.output
    assert [a.tool_name for a in replayed.approvals] == ["process_refund"]


def test_replay_names_a_changed_handoff_another_tool_and_a_new_approval(
    support_run: tuple[AgentRuntime, RunResult], tmp_path: Path
) -> None:
    _runtime, run = support_run
    no_billing = support_triage.clone(handoffs=[handoff(technical_agent), handoff(account_agent)])
    with pytest.raises(ExpectationFailed) as handed:
        replay(run, agents=[no_billing], home=tmp_path / "a")
    assert (
        "differs from the recording: expected the agent path support_triage → "
        "billing_specialist, the run went support_triage (the run failed: "
    ) in str(handed.value)
    assert "the current agent cannot hand off to it" in str(handed.value)

    no_account = billing_agent.clone(
        tools=[t for t in billing_agent.tools if t.name != "get_account"]
    )
    with pytest.raises(ExpectationFailed) as tools:
        replay(run, agents=[no_account], home=tmp_path / "b")
    assert "expected the tool calls get_invoice(" in str(tools.value)
    assert "the run made get_invoice(" in str(tools.value)
    assert "Tool get_account not found in agent billing_specialist" in str(tools.value)

    gated = billing_agent.clone(
        tools=[
            dataclasses.replace(t, needs_approval=True) if t.name == "get_invoice" else t
            for t in billing_agent.tools
        ]
    )
    with pytest.raises(ExpectationFailed) as asked:
        replay(run, agents=[gated], home=tmp_path / "c")
    assert "the current agents ask a human to approve get_invoice(" in str(asked.value)
    assert "where the recorded run asked for process_refund" in str(asked.value)


def test_parallel_calls_context_and_a_run_left_waiting_are_exported(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    flow_dir = tmp_path / "flow"
    flow_dir.mkdir()
    monkeypatch.setenv("FORKFLOW_DIR", str(flow_dir))
    with AgentRuntime(home, recover=False) as runtime:
        done = refunded_run(runtime)
        waiting = runtime.run(forkflow.triage, forkflow.MESSAGE, context=Ctx())
    out = tmp_path / "out"

    proc = frontdesk(
        home, "runs", "export", done.execution_id, waiting.execution_id, "--pytest", str(out)
    )

    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in out.glob("*.py")) == sorted(
        f"test_{r.execution_id}.py" for r in (done, waiting)
    )
    source = (out / f"test_{done.execution_id}.py").read_text()
    assert "MockEvent.parallel(" in source and 'context_type="pydantic:forkflow:Ctx"' in source
    assert 'MockEvent.approve(by="lead", note="duplicate")' in source
    before = len(invocations(flow_dir))
    replayed = replay(out / f"test_{done.execution_id}.py", home=tmp_path / "r1")
    assert replayed.status == "completed" and replayed.context == Ctx(
        route="billing", invoice_total=99.0, refunded=True
    )
    assert len(invocations(flow_dir)) == before + 3  # the real tools ran
    left = replay(out / f"test_{waiting.execution_id}.py", home=tmp_path / "r2")
    assert left.status == "waiting_approval"
    assert [a.tool_name for a in left.pending_approvals] == ["refund"]


def test_export_refuses_what_cannot_become_a_test_and_writes_nothing(
    home: Path, tmp_path: Path
) -> None:
    local = Agent(name="local", model=forkflow.FlowModel(answer="hi"))
    with AgentRuntime(home, recover=False) as runtime:
        unnamed = runtime.run(local, "hello")
    out = tmp_path / "out"

    for ids, message in (
        (["run_missing"], "no run with execution id 'run_missing'"),
        ([unnamed.execution_id], "known only by the name it was registered under"),
    ):
        proc = frontdesk(home, "runs", "export", *ids, "--pytest", str(out))
        assert proc.returncode == 2, proc.stdout
        assert message in proc.stderr, proc.stderr
        assert not out.exists()
    missing_option = frontdesk(home, "runs", "export", unnamed.execution_id)
    assert missing_option.returncode == 2 and "--pytest" in missing_option.stderr
    with pytest.raises(InvalidInput, match="no recorded test at"):
        replay(tmp_path / "nothing.py")
    with pytest.raises(InvalidInput, match="replay takes the path of an exported test"):
        replay(42)  # type: ignore[arg-type]
    assert isinstance(Recording, type)


def test_an_approval_with_edited_arguments_is_replayed_as_edited(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    flow_dir = tmp_path / "flow"
    flow_dir.mkdir()
    monkeypatch.setenv("FORKFLOW_DIR", str(flow_dir))
    with AgentRuntime(home, recover=False) as runtime:
        paused = runtime.run(forkflow.triage, forkflow.MESSAGE, context=Ctx())
        runtime.approve(paused.execution_id, by="lead", args={"amount": 49.5})
        done = runtime.handle(paused.execution_id).wait(timeout=120)
    assert done.status == "completed", done.error
    out = tmp_path / "out"

    proc = frontdesk(home, "runs", "export", done.execution_id, "--pytest", str(out))

    assert proc.returncode == 0, proc.stderr
    path = out / f"test_{done.execution_id}.py"
    edited = 'MockEvent.approve(by="lead", args={"invoice_id": "INV-1", "amount": 49.5})'
    assert edited in path.read_text()
    replayed = replay(path, home=tmp_path / "replay")
    (refunded,) = [
        e for e in replayed.events if e.type == "tool_result" and e.tool_name == "refund"
    ]
    assert (refunded.result["refund_id"], refunded.result["amount"]) == ("re_INV-1", 49.5)
