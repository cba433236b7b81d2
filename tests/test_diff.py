"""Comparing two runs step by step: aligned by structure, the first divergence named with its
reason (another tool, other arguments, another handoff, other text...), tokens and latency on
both sides; from Python, the command line, the API and the console."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

import forkflow
from forkflow import Ctx
from frontdesk import AgentRuntime, RunDiff, RunNotFound
from frontdesk.apps.support import triage_agent as support_triage
from test_api import REFUND, Console, login, running_console
from test_fork import refunded_run

from conftest import PYTHON, child_env

LOOKUPS = [
    ("lookup_invoice", {"invoice_id": "INV-1"}),
    ("lookup_account", {"customer_id": "C-1"}),
]


@pytest.fixture
def rt(home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[AgentRuntime]:
    flow_dir = tmp_path / "flow"
    flow_dir.mkdir()
    monkeypatch.setenv("FORKFLOW_DIR", str(flow_dir))
    with AgentRuntime(home, recover=False, model_provider=forkflow.FlowProvider()) as runtime:
        yield runtime


def test_a_fork_on_another_model_diverges_at_its_first_live_step(rt: AgentRuntime) -> None:
    parent = refunded_run(rt)
    fork = rt.fork(parent.execution_id, 8, model="polite").wait(timeout=120)

    diff = rt.diff(parent.execution_id, fork.execution_id)

    assert isinstance(diff, RunDiff) and not diff.same
    d = diff.divergence
    assert d is not None
    assert (d.reason, d.model_call, d.step_a, d.step_b) == ("text", 4, 8, 8)
    assert d.message.startswith("other text: A says INV-1 done; ")
    assert "B says INV-1 refunded, with our apologies" in d.message
    assert [p.reason for p in diff.turns] == [None, None, None, "text"]
    assert diff.a.agent_path == diff.b.agent_path == ["triage", "billing"]
    assert diff.a.handoffs == diff.b.handoffs == [("triage", "billing")]
    refund = ("refund", {"invoice_id": "INV-1", "amount": 99.0})
    assert diff.a.tool_calls == diff.b.tool_calls == [*LOOKUPS, refund]
    assert diff.a.output == parent.output and diff.b.output == fork.output
    assert (diff.a.model, diff.b.model) == (None, "polite")
    # Tokens and latency of both runs, per turn and in total.
    assert diff.a.usage.total_tokens == diff.b.usage.total_tokens == 100
    for pair in diff.turns:
        assert pair.a is not None and pair.b is not None
        assert pair.a.tokens == pair.b.tokens == 25
        assert pair.a.seconds is not None and pair.b.seconds is not None
    assert diff.a.duration is not None and diff.b.duration is not None
    assert diff.a.model_seconds >= 0 and diff.b.tool_seconds >= 0
    assert (diff.b.parent_id, diff.b.fork_step) == (parent.execution_id, 8)
    assert (diff.a.parent_id, diff.a.fork_step) == (None, None)
    data = json.loads(json.dumps(diff.to_dict()))
    assert data["same"] is False and data["divergence"]["reason"] == "text"


@pytest.mark.parametrize(
    ("model", "step", "reason", "call", "message"),
    [
        ("cautious", 6, "tool", 3, "another tool: A calls refund, B calls escalate"),
        (
            "generous",
            6,
            "arguments",
            3,
            "other arguments to refund: amount 99.0 in A, 120.0 in B",
        ),
        (
            "misroute",
            1,
            "handoff",
            1,
            "another handoff: A hands off to billing, B to technical",
        ),
    ],
)
def test_the_first_divergence_says_why(
    rt: AgentRuntime, model: str, step: int, reason: str, call: int, message: str
) -> None:
    parent = refunded_run(rt)
    fork = rt.fork(parent.execution_id, step, model=model).wait(timeout=120)

    diff = rt.diff(parent.execution_id, fork.execution_id)

    d = diff.divergence
    assert d is not None
    assert (d.reason, d.model_call, d.message) == (reason, call, message)
    assert all(p.reason is None for p in diff.turns[: call - 1])


def test_a_run_that_stops_earlier_and_a_decision_not_taken_yet(rt: AgentRuntime) -> None:
    parent = refunded_run(rt)
    waiting = rt.fork(parent.execution_id, 7).wait(timeout=120)

    diff = rt.diff(parent.execution_id, waiting.execution_id)

    assert [p.reason for p in diff.turns] == [None, None, "approval", "ended"]
    d = diff.divergence
    assert d is not None and d.reason == "approval"
    assert d.message == "another decision on refund: approved in A, pending in B"
    last = diff.turns[-1]
    assert last.b is None and last.message is not None
    assert last.message.startswith(
        "B ends after model call 3 (waiting_approval); A goes on with model call 4 by billing "
        "(no tool (it says INV-1 done; "
    )


def test_the_same_steps_to_the_same_end_are_no_divergence(rt: AgentRuntime) -> None:
    parent = refunded_run(rt)
    again = rt.fork(parent.execution_id, 8).wait(timeout=120)

    assert rt.diff(parent.execution_id, parent.execution_id).same
    diff = rt.diff(parent.execution_id, again.execution_id)
    assert diff.same and diff.divergence is None
    assert all(p.reason is None for p in diff.turns)


def test_other_input_is_the_first_divergence(rt: AgentRuntime) -> None:
    first = rt.run(forkflow.triage, forkflow.MESSAGE, context=Ctx())
    second = rt.run(forkflow.triage, "Refund INV-1 please", context=Ctx())

    diff = rt.diff(first.execution_id, second.execution_id)

    assert diff.divergence is not None and diff.divergence.reason == "input"
    assert all(p.reason is None for p in diff.turns)  # the same steps otherwise
    with pytest.raises(RunNotFound):
        rt.diff(first.execution_id, "run_missing")


def cli(home: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [PYTHON, "-m", "frontdesk", "--home", str(home), *args],
        env=child_env(COLUMNS="160"), capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    if check:
        assert proc.returncode == 0, proc.stderr + proc.stdout
    return proc


def test_runs_diff_side_by_side_and_as_json(rt: AgentRuntime, home: Path) -> None:
    parent = refunded_run(rt)
    fork = rt.fork(parent.execution_id, 6, model="cautious").wait(timeout=120)

    shown = cli(home, "runs", "diff", parent.execution_id, fork.execution_id).stdout

    assert "first divergence at model call 3 (A step 6 / B step 6): tool" in shown
    assert "another tool: A calls refund, B calls escalate" in shown
    assert f"B is a fork of {parent.execution_id} at step 6" in shown
    header = next(line for line in shown.splitlines() if f"A {parent.execution_id}" in line)
    assert f"B {fork.execution_id}" in header  # side by side
    for expected in ("→ refund(", "→ escalate(", "agent path", "triage → billing", "tokens"):
        assert expected in shown, expected

    data = json.loads(
        cli(home, "runs", "diff", parent.execution_id, fork.execution_id, "--json").stdout
    )
    assert data["divergence"]["reason"] == "tool" and data["divergence"]["model_call"] == 3
    assert data["a"]["execution_id"] == parent.execution_id and data["b"]["model"] == "cautious"
    assert [t["reason"] for t in data["turns"]] == [None, None, "tool", "text"]

    missing = cli(home, "runs", "diff", parent.execution_id, "run_missing", check=False)
    assert missing.returncode == 2 and "no run with execution id 'run_missing'" in missing.stderr


# -- the console --------------------------------------------------------------------------------


@pytest.fixture
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Console]:
    with running_console(tmp_path_factory, "diff-console") as served:
        yield served


@pytest.mark.e2e
def test_the_console_shows_lineage_both_ways_and_the_diff(console: Console) -> None:
    runtime = console.runtime
    paused = runtime.run(support_triage, REFUND)
    runtime.approve(paused.execution_id, by="lead")
    parent = runtime.handle(paused.execution_id).wait(timeout=120)
    assert parent.status == "completed", parent.error
    # From step 3 billing looks the invoice up again: it is refunded now.
    fork = runtime.fork(parent.execution_id, 3).wait(timeout=120)

    with console.client() as api:
        forked = api.get(f"/api/runs/{fork.execution_id}").json()
        assert forked["lineage"]["parent"]["execution_id"] == parent.execution_id
        assert forked["lineage"]["parent"]["fork_step"] == 3
        assert forked["lineage"]["forks"] == []
        original = api.get(f"/api/runs/{parent.execution_id}").json()
        assert original["lineage"]["parent"] is None
        assert [f["execution_id"] for f in original["lineage"]["forks"]] == [fork.execution_id]
        diff = api.get(f"/api/runs/{parent.execution_id}/diff/{fork.execution_id}").json()
        assert diff["divergence"]["reason"] == "result"
        assert 'status "paid" in A, "refunded" in B' in diff["divergence"]["message"]
        assert api.get(f"/api/runs/{parent.execution_id}/diff/run_missing").status_code == 404

    client, _csrf = login(console)
    try:
        page = client.get(f"/runs/{fork.execution_id}").text
        assert f'<a href="/runs/{parent.execution_id}">{parent.execution_id}</a> at step 3' in page
        diff_url = f"/runs/{parent.execution_id}/diff/{fork.execution_id}"
        assert f'href="{diff_url}"' in page
        parent_page = client.get(f"/runs/{parent.execution_id}").text
        assert f'<a href="/runs/{fork.execution_id}">{fork.execution_id}</a> (step 3' in parent_page
        shown = client.get(diff_url)
        assert shown.status_code == 200
        assert "First divergence at model call 2: result" in shown.text
        assert "status &#34;paid&#34; in A, &#34;refunded&#34; in B" in shown.text
    finally:
        client.close()
