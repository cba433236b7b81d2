"""Forking a run from a step: the steps before it replay from the journal (no model call, no
tool invoked again, their approvals kept), the rest runs live, on another model or with
replacement agents; the fork records its parent, and bad input creates nothing."""

from __future__ import annotations

import json
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import forkflow
from forkflow import Ctx, invocations
from frontdesk import (
    AgentNotFound,
    AgentRuntime,
    InvalidFork,
    InvalidInput,
    ModelNotConfigured,
    RunNotFound,
    RunResult,
)
from frontdesk.debugging import run_steps

from conftest import PYTHON, Children, child_env, sigkill, wait_for_marker


@pytest.fixture
def flow_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "flow"
    path.mkdir()
    monkeypatch.setenv("FORKFLOW_DIR", str(path))
    return path


@pytest.fixture
def rt(home: Path, flow_dir: Path) -> Iterator[AgentRuntime]:
    with AgentRuntime(home, recover=False, model_provider=forkflow.FlowProvider()) as runtime:
        yield runtime


def refunded_run(rt: AgentRuntime) -> RunResult:
    """The flow to its end: the refund approved by ``lead``. Its 8 steps: 1 triage's model
    call, 2 the handoff, 3 billing's lookups asked, 4-5 the lookups, 6 the refund asked, 7 the
    refund, 8 the answer."""
    paused = rt.run(forkflow.triage, forkflow.MESSAGE, context=Ctx())
    assert paused.status == "waiting_approval", paused.error
    rt.approve(paused.execution_id, by="lead", note="duplicate")
    done = rt.handle(paused.execution_id).wait(timeout=120)
    assert done.status == "completed", done.error
    assert [s.kind for s in run_steps(done.steps)] == [
        "model", "handoff", "model", "tool", "tool", "model", "tool", "model",
    ]  # fmt: skip
    return done


def counts(home: Path) -> dict[str, int]:
    """How many rows each table of the store holds."""
    with sqlite3.connect(home / "frontdesk.db") as conn:
        return {
            table: conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
            for table in ("runs", "journal", "events", "approvals")
        }


def test_a_fork_replays_the_steps_before_it_without_invoking_anything(
    rt: AgentRuntime, flow_dir: Path
) -> None:
    parent = refunded_run(rt)
    before = invocations(flow_dir)
    ran = [line.split()[0] for line in before]
    # The two lookups are parallel tool calls of one response: either may start first.
    assert sorted(ran[:2]) == ["lookup_account", "lookup_invoice"] and ran[2:] == ["refund"]

    fork = rt.fork(parent.execution_id, at_step=8).wait(timeout=120)

    assert fork.status == "completed", fork.error
    # Nothing ran again: the refund of step 7 was not issued a second time.
    assert invocations(flow_dir) == before
    assert fork.output == parent.output
    assert fork.context == Ctx(route="billing", invoice_total=99.0, refunded=True)
    copied = [(s.key, s.kind, s.data_json, s.context_json) for s in fork.steps[:7]]
    assert copied == [(s.key, s.kind, s.data_json, s.context_json) for s in parent.steps[:7]]
    assert [s.ordinal for s in fork.steps] == list(range(1, 9))
    # The replayed refund keeps its recorded decision, and its events say so.
    (approval,) = fork.approvals
    assert (approval.tool_name, approval.status, approval.decided_by, approval.note) == (
        "refund", "approved", "lead", "duplicate",
    )  # fmt: skip
    assert approval.execution_id == fork.execution_id
    types = [e.type for e in fork.events]
    assert types.count("approval_required") == 1 and types.count("approval_decided") == 1
    assert [e.seq for e in fork.events] == list(range(1, len(fork.events) + 1))
    assert [e.type for e in fork.events if e.type in ("handoff", "tool_result")] == [
        "handoff", "tool_result", "tool_result", "tool_result",
    ]  # fmt: skip

    lineage = rt.lineage(fork.execution_id)
    assert lineage.parent is not None
    assert (lineage.parent.execution_id, lineage.parent.fork_step) == (parent.execution_id, 8)
    (child,) = rt.lineage(parent.execution_id).forks
    assert (child.execution_id, child.fork_step, child.status) == (
        fork.execution_id, 8, "completed",
    )  # fmt: skip


def test_a_tool_that_runs_live_in_a_fork_asks_for_approval_again(
    rt: AgentRuntime, flow_dir: Path
) -> None:
    parent = refunded_run(rt)
    before = invocations(flow_dir)

    paused = rt.fork(parent.execution_id, at_step=7).wait(timeout=120)

    assert paused.status == "waiting_approval", paused.error
    (pending,) = paused.pending_approvals
    assert pending.tool_name == "refund" and pending.execution_id == paused.execution_id
    assert invocations(flow_dir) == before
    # The context it left off with is the one the journal recorded up to step 6.
    rt.approve(pending.approval_id, by="second reviewer")
    done = rt.handle(paused.execution_id).wait(timeout=120)
    assert done.status == "completed", done.error
    (new_refund,) = invocations(flow_dir)[len(before) :]
    assert new_refund.startswith("refund ") and new_refund not in before
    assert done.context == Ctx(route="billing", invoice_total=99.0, refunded=True)
    decisions = {a.decided_by for a in done.approvals}
    assert decisions == {"second reviewer"}


def test_a_fork_runs_live_on_another_model(rt: AgentRuntime, flow_dir: Path) -> None:
    parent = refunded_run(rt)
    before = invocations(flow_dir)

    fork = rt.fork(parent.execution_id, 8, model="polite").wait(timeout=120)

    assert fork.status == "completed", fork.error
    assert fork.model_label == "polite"
    assert (
        fork.output
        == 'INV-1 refunded, with our apologies; "'
        + str({"refund_id": "re_INV-1", "amount": 99.0})
        + '"'
    )
    assert invocations(flow_dir) == before
    stored = rt.store.require_run(fork.execution_id)
    assert stored.model_override == "polite"


def test_a_fork_with_a_replacement_agent_matched_by_name(rt: AgentRuntime, flow_dir: Path) -> None:
    parent = refunded_run(rt)
    before = invocations(flow_dir)

    # From step 6 billing asks for the refund again, with a refund that needs no approval.
    fork = rt.fork(parent.execution_id, 6, agents=[forkflow.ungated_billing]).wait(timeout=120)

    assert fork.status == "completed", fork.error
    assert fork.approvals == []
    (refund_line,) = invocations(flow_dir)[len(before) :]
    assert refund_line.startswith("refund ")
    stored = rt.store.require_run(fork.execution_id)
    assert stored.agent_ref == "forkflow:triage|forkflow:ungated_billing"


def test_the_replacement_agents_hold_in_any_process_that_resumes_the_fork(
    rt: AgentRuntime, home: Path, flow_dir: Path
) -> None:
    parent = refunded_run(rt)
    paused = rt.fork(parent.execution_id, 7, agents=[forkflow.billing_v2]).wait(timeout=120)
    assert paused.status == "waiting_approval", paused.error

    # Another process approves and drives the fork: it finds billing_v2 by its reference.
    approver = subprocess.run(
        [PYTHON, "-m", "frontdesk", "--home", str(home), "approvals", "approve",
         paused.execution_id, "--by", "lead"],
        env=child_env(FORKFLOW_DIR=str(flow_dir)), capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert approver.returncode == 0, approver.stderr

    done = rt.handle(paused.execution_id).wait(timeout=120)
    assert done.status == "completed", done.error
    assert done.output is not None and done.output.startswith("INV-1 handled by billing v2")


def test_a_fork_starts_from_the_context_the_run_started_with(
    rt: AgentRuntime, flow_dir: Path
) -> None:
    parent = refunded_run(rt)
    assert parent.context == Ctx(route="billing", invoice_total=99.0, refunded=True)

    # From step 1 nothing replays: it starts from the parent's first context, not its last.
    fresh = rt.fork(parent.execution_id, 1).wait(timeout=120)
    assert fresh.status == "waiting_approval", fresh.error
    assert fresh.context == Ctx()

    # From step 7 the steps before restore the context they recorded: the live refund sees it.
    resumed = rt.fork(parent.execution_id, 7).wait(timeout=120)
    rt.approve(resumed.execution_id)
    done = rt.handle(resumed.execution_id).wait(timeout=120)
    assert done.context == Ctx(route="billing", invoice_total=99.0, refunded=True)


def test_a_fork_from_a_given_context(rt: AgentRuntime, flow_dir: Path) -> None:
    parent = refunded_run(rt)

    paused = rt.fork(parent.execution_id, 7, context=Ctx(route="vip")).wait(timeout=120)
    rt.approve(paused.execution_id)
    done = rt.handle(paused.execution_id).wait(timeout=120)

    # The given context is what the live steps start from: no recorded snapshot replaces it.
    assert done.context == Ctx(route="vip", invoice_total=None, refunded=True)


def test_a_fork_of_a_fork_keeps_its_replacements_and_its_own_lineage(
    rt: AgentRuntime, flow_dir: Path
) -> None:
    parent = refunded_run(rt)
    first = rt.fork(parent.execution_id, 8, agents=[forkflow.billing_v2]).wait(timeout=120)
    second = rt.fork(first.execution_id, 8, model="polite").wait(timeout=120)

    assert second.status == "completed", second.error
    stored = rt.store.require_run(second.execution_id)
    assert stored.agent_ref == "forkflow:triage|forkflow:billing_v2"
    lineage = rt.lineage(first.execution_id)
    assert lineage.parent is not None and lineage.parent.execution_id == parent.execution_id
    assert [f.execution_id for f in lineage.forks] == [second.execution_id]


@pytest.mark.parametrize(
    ("make_args", "error", "message"),
    [
        (lambda run: ("run_missing", 1, {}), RunNotFound, "no run with execution id"),
        (lambda run: (run, 0, {}), InvalidFork, "step 0 is out of range: run .* steps 1 to 8"),
        (lambda run: (run, 9, {}), InvalidFork, "step 9 is out of range"),
        (lambda run: (run, "3", {}), InvalidFork, "must be a whole number"),
        (lambda run: (run, True, {}), InvalidFork, "must be a whole number"),
        (
            lambda run: (run, 3, {"agents": [forkflow.stranger]}),
            InvalidFork,
            "no agent named 'stranger' in the graph of 'triage' \\(its agents: triage, ",
        ),
        (
            lambda run: (run, 3, {"agents": [forkflow.billing_v2, forkflow.ungated_billing]}),
            InvalidFork,
            "two replacements for the agent named 'billing'",
        ),
        (lambda run: (run, 3, {"model": " "}), InvalidFork, "must be a model name"),
        (lambda run: (run, 3, {"context": object()}), InvalidInput, "cannot be persisted"),
    ],
)
def test_bad_forks_are_refused_and_create_nothing(
    rt: AgentRuntime,
    home: Path,
    make_args: Any,
    error: type[Exception],
    message: str,
) -> None:
    parent = refunded_run(rt)
    before = counts(home)
    execution_id, step, kw = make_args(parent.execution_id)

    with pytest.raises(error, match=message):
        rt.fork(execution_id, step, **kw)

    assert issubclass(error, ValueError)
    assert counts(home) == before


def test_a_step_inside_a_pending_approval_is_refused(rt: AgentRuntime, home: Path) -> None:
    paused = rt.run(forkflow.triage, forkflow.MESSAGE, context=Ctx())
    assert paused.status == "waiting_approval"
    steps = run_steps(paused.steps, paused.approvals)
    assert [s.kind for s in steps][-2:] == ["model", "approval"]  # 6 asks, 7 waits
    before = counts(home)

    for step in (7, 8):
        with pytest.raises(InvalidFork, match="inside a pending approval: step 6 \\(billing\\)"):
            rt.fork(paused.execution_id, step)
    assert counts(home) == before

    # Up to the step that asked, the fork is fine: it asks again.
    again = rt.fork(paused.execution_id, 6).wait(timeout=120)
    assert again.status == "waiting_approval"


def test_a_fork_of_a_run_whose_agent_this_process_cannot_find_is_refused(
    home: Path, flow_dir: Path
) -> None:
    from agents import Agent

    local = Agent(name="local", model=forkflow.FlowModel(answer="hi"))
    with AgentRuntime(home, recover=False) as first:
        run = first.run(local, "hello")
        assert run.status == "completed", run.error
    with AgentRuntime(home, recover=False) as second:
        before = counts(home)
        with pytest.raises(AgentNotFound, match="not registered in this process"):
            second.fork(run.execution_id, 1)
        assert counts(home) == before


# -- the command line -------------------------------------------------------------------------


def cli(
    home: Path, flow_dir: Path, *args: str, check: bool = True
) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [PYTHON, "-m", "frontdesk", "--home", str(home), *args],
        env=child_env(FORKFLOW_DIR=str(flow_dir), COLUMNS="200"),
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    if check:
        assert proc.returncode == 0, proc.stderr + proc.stdout
    return proc


def test_runs_fork_and_runs_show_with_step_numbers_and_lineage(
    rt: AgentRuntime, home: Path, flow_dir: Path
) -> None:
    parent = refunded_run(rt)
    before = invocations(flow_dir)

    out = cli(
        home, flow_dir, "runs", "fork", parent.execution_id, "--at", "6",
        "--agents", "forkflow:ungated_billing",
    ).stdout  # fmt: skip

    fork_id = out.split(" as ", 1)[1].split()[0]
    assert f"forked {parent.execution_id} at step 6 as {fork_id}" in out
    assert "steps 1 to 5 replayed" in out and "completed" in out
    assert f"frontdesk runs diff {parent.execution_id} {fork_id}" in out
    assert [line.split()[0] for line in invocations(flow_dir)[len(before) :]] == ["refund"]

    shown = cli(home, flow_dir, "runs", "show", fork_id).stdout
    assert f"forked from {parent.execution_id} at step 6" in shown
    assert "steps 1 to 5 replayed from its journal" in shown
    parent_shown = cli(home, flow_dir, "runs", "show", parent.execution_id).stdout
    assert f"forks: {fork_id} (at step 6, completed)" in parent_shown
    assert "frontdesk runs fork ID --at STEP" in parent_shown
    cells = [[c.strip() for c in line.split("│")[1:-1]] for line in parent_shown.splitlines()]
    rows = {c[0]: c for c in cells if len(c) == 6 and c[1] in ("model", "tool", "handoff")}
    assert [rows[str(n)][1] for n in range(1, 9)] == [
        "model", "handoff", "model", "tool", "tool", "model", "tool", "model",
    ]  # fmt: skip
    assert rows["7"][3].startswith("refund [approved by lead]")
    assert rows["1"][3] == "hands off to billing"

    listed = json.loads(cli(home, flow_dir, "runs", "list", "--json").stdout)
    assert {r["execution_id"] for r in listed} == {parent.execution_id, fork_id}


def test_runs_fork_refuses_bad_input_with_a_clear_error(
    rt: AgentRuntime, home: Path, flow_dir: Path
) -> None:
    parent = refunded_run(rt)
    before = counts(home)
    cases = [
        (["--at", "12"], "step 12 is out of range"),
        (["--at", "3", "--agents", "forkflow:stranger"], "no agent named 'stranger'"),
        (["--at", "3", "--agents", "forkflow:missing"], "has no attribute 'missing'"),
    ]
    for extra, message in cases:
        proc = cli(home, flow_dir, "runs", "fork", parent.execution_id, *extra, check=False)
        assert proc.returncode == 2, proc.stdout
        assert message in proc.stderr, proc.stderr
    missing = cli(home, flow_dir, "runs", "fork", "run_missing", "--at", "1", check=False)
    assert missing.returncode == 2 and "no run with execution id 'run_missing'" in missing.stderr
    assert counts(home) == before


def test_a_model_this_process_cannot_provide_is_refused_before_anything_is_created(
    home: Path, flow_dir: Path
) -> None:
    with AgentRuntime(home, recover=False, model_provider=forkflow.FlowProvider()) as runtime:
        parent = refunded_run(runtime)
    before = counts(home)
    # No provider and no OpenAI key here.
    with (
        AgentRuntime(home, recover=False) as runtime,
        pytest.raises(ModelNotConfigured, match="no model is configured"),
    ):
        runtime.fork(parent.execution_id, 8, model="gpt-4o")
    assert counts(home) == before


def test_a_turn_of_a_conversation_forks_into_a_run_of_its_own(home: Path) -> None:
    from frontdesk.apps.airline import AirlineAgentContext, init_db
    from frontdesk.apps.airline import triage_agent as airline_triage

    init_db(home)
    with AgentRuntime(home, model="rules", recover=False) as runtime:
        chat = runtime.conversation("c-1", agent=airline_triage, context=AirlineAgentContext())
        chat.send("What is the baggage allowance?", chat_length=0)
        chat.send("I'd like to change my seat", chat_length=len(chat.history()))
        turn = runtime.runs(conversation_id="c-1")[0]
        lines = chat.history()

        fork = runtime.fork(turn.execution_id, 1).wait(timeout=120)

        assert fork.status == "completed", fork.error
        assert fork.conversation_id is None and runtime.conversation("c-1").history() == lines
        # It was given what the turn was given: the conversation so far, then the message.
        assert fork.input[0]["content"] == "What is the baggage allowance?"
        assert fork.input[-1] == {"content": "I'd like to change my seat", "role": "user"}
        diff = runtime.diff(turn.execution_id, fork.execution_id)
        assert diff.same, diff.divergence


def test_a_step_after_a_tool_whose_result_was_never_recorded_is_refused(
    children: Children, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    flow_dir, home = tmp_path / "crashflow", tmp_path / "crash-home"
    flow_dir.mkdir()
    home.mkdir()
    monkeypatch.setenv("CRASHFLOW_DIR", str(flow_dir))
    # A process dies inside the invoice lookup: its step is started, never done.
    proc = children.popen(
        [PYTHON, "-m", "crashflow", str(home)],
        env=child_env(CRASHFLOW_DIR=str(flow_dir), CRASH_AT="in_tool:lookup_invoice"),
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    assert wait_for_marker(flow_dir / "parked", proc) == "in_tool:lookup_invoice"
    sigkill(proc)

    with AgentRuntime(home, recover=False) as runtime:
        (run,) = runtime.runs()
        steps = run_steps(runtime.get(run.execution_id).steps)
        started = next(s for s in steps if s.state == "started")
        assert started.name == "lookup_invoice"
        before = counts(home)
        with pytest.raises(InvalidFork, match=f"step {started.number} \\(lookup_invoice\\) has no"):
            runtime.fork(run.execution_id, len(steps) + 1)
        assert counts(home) == before
