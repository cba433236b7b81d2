"""Approvals an operator can edit, and that expire.

Edited arguments: the support desk's refund approved for $49.50 instead of the invoice's $99
runs with the edited arguments, which the approval, the events and the journal keep beside the
asked ones; the model answers from what ran. Edits that do not fit the tool's schema change
nothing, through the runtime, the CLI (``--args``) and the API.

Deadlines: a child process drives a run to an approval with a short timeout and is SIGKILLed
before the deadline; once the deadline passed with no process up, a new runtime on the home
rejects the call (the model is told) or escalates it. Two runtimes racing on due approvals
decide each exactly once.

What crosses processes or runtimes runs on SQLite and on PostgreSQL; the console's tests share
one console on SQLite (the API's own tests are about the API, not the store).
"""

from __future__ import annotations

import getpass
import json
import subprocess
import threading
import time
from contextlib import closing
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from agents import Agent
from agents.testing import ModelStep, ScriptedModel, assistant_message, function_call

from frontdesk import AgentRuntime, ApprovalAlreadyDecided, InvalidInput, RunResult, tool
from frontdesk.apps.support import init_db
from frontdesk.apps.support import triage_agent as support_triage
from frontdesk.apps.support._db import connect as support_db
from frontdesk.server._present import Presenter
from frontdesk.store import open_store
from test_api import Console, login, running_console
from test_support_e2e import SEED

from conftest import (
    PYTHON,
    WAIT_SECONDS,
    Children,
    both_backends,
    child_env,
    sigkill,
    wait_for_marker,
    wait_until,
)

# -- edited arguments ---------------------------------------------------------------------------


@pytest.fixture
def desk(home: Path, backend: str) -> Any:
    """A runtime on the support desk (offline rules model) with its data seeded, on the
    test's store backend."""
    init_db(home)
    with AgentRuntime(home, model="rules", recover=False) as runtime:
        yield runtime


def refunds(home: Path) -> list[tuple[str, float]]:
    """The refunds of the seed message's invoice, in the support desk's database."""
    with support_db(home) as conn:
        sql = "SELECT invoice_id, amount FROM refunds WHERE invoice_id = 'INV-8821'"
        return [(row[0], row[1]) for row in conn.execute(sql).fetchall()]


def waiting_refund(runtime: AgentRuntime) -> RunResult:
    paused = runtime.run(support_triage, SEED)
    assert paused.status == "waiting_approval", paused
    return paused


@both_backends
def test_edited_arguments_run_the_tool_and_both_are_kept(desk: AgentRuntime, home: Path) -> None:
    paused = waiting_refund(desk)
    [asked] = paused.approvals
    assert "amount" not in asked.args and asked.args["invoice_id"] == "INV-8821"

    record = desk.approve(
        paused.execution_id, by="ann", note="half: one seat", args={"amount": 49.5}
    )
    assert record.args == asked.args  # the model's ask is kept
    assert record.edited_args == {**asked.args, "amount": 49.5}
    assert (record.status, record.decided_by, record.note) == ("approved", "ann", "half: one seat")

    done = desk.handle(paused.execution_id).result(timeout=WAIT_SECONDS)
    assert done.status == "completed", done.error
    assert refunds(home) == [("INV-8821", 49.5)]
    # The model answers from what ran, and is told a reviewer changed the call.
    assert "$49.50 of the $99.00 on invoice INV-8821" in done.output
    [result] = [
        e for e in done.events if e.type == "tool_result" and e.tool_name == "process_refund"
    ]
    assert (
        result.result["amount"] == 49.5 and "amount null -> 49.5" in result.result["reviewer_edit"]
    )
    # Events: the decision names the edit; the call and its result carry both argument sets.
    [decided] = [e for e in done.events if e.type == "approval_decided"]
    assert decided.args == asked.args and decided.data["edited_args"] == record.edited_args
    [call] = [e for e in done.events if e.type == "tool_call" and e.tool_name == "process_refund"]
    assert call.args == record.edited_args and call.data["asked_args"] == asked.args
    assert result.data["asked_args"] == asked.args
    # The console's timeline shows the decision with the edit.
    timeline = Presenter(desk).run_detail(done)["timeline"]
    [shown] = [t for t in timeline if t["type"] == "approval_decided"]
    assert (shown["by"], shown["edited_args"]) == ("ann", record.edited_args)
    # Journal: the tool step ran with the edit; the model step that asked holds the ask.
    [step] = [s for s in done.steps if s.kind == "tool" and s.name == "process_refund"]
    assert json.loads(step.args_json or "{}") == record.edited_args
    asked_in = [
        json.loads(item["arguments"])
        for s in done.steps
        if s.kind == "model"
        for item in json.loads(s.data_json or "{}")["output"]
        if item.get("type") == "function_call" and item.get("name") == "process_refund"
    ]
    assert asked_in == [asked.args]
    assert desk.approvals(status=None, execution_id=paused.execution_id) == [record]


@pytest.mark.parametrize(
    ("edits", "why"),
    [
        ({"amount": "half"}, "amount: 'half' is not valid"),
        ({"amonut": 49.5}, "'amonut' was unexpected"),
        ({"invoice_id": None}, "invoice_id: None is not of type 'string'"),
        ([49.5], "must be a JSON object"),
        ({"amount": float("nan")}, "are not JSON"),
    ],
)
@both_backends
def test_edits_that_do_not_fit_the_schema_change_nothing(
    desk: AgentRuntime, edits: Any, why: str
) -> None:
    paused = waiting_refund(desk)
    with pytest.raises(InvalidInput, match="nothing changed") as caught:
        desk.approve(paused.execution_id, by="ann", args=edits)
    assert why in str(caught.value)
    after = desk.get(paused.execution_id)
    assert after.status == "waiting_approval"
    assert [(a.status, a.edited_args, a.decided_by) for a in after.approvals] == [
        ("pending", None, None)
    ]
    assert [e.type for e in after.events] == [e.type for e in paused.events]


@both_backends
def test_edits_only_go_with_a_pending_approval(desk: AgentRuntime) -> None:
    paused = waiting_refund(desk)
    desk.approve(paused.execution_id, by="ann")
    done = desk.handle(paused.execution_id).result(timeout=WAIT_SECONDS)
    with pytest.raises(ApprovalAlreadyDecided, match="already approved by ann"):
        desk.approve(paused.execution_id, by="bob", args={"amount": 1})
    assert desk.get(paused.execution_id).approvals == done.approvals
    with pytest.raises(InvalidInput, match="kept for frontdesk's own decisions"):
        desk.reject(paused.execution_id, "no", by="system:timeout")


def test_bad_approval_timeouts_are_refused_at_decoration() -> None:
    def refund(invoice_id: str) -> str:
        """Refund."""
        return invoice_id

    for kw, why in [
        ({"approval_timeout": timedelta(0)}, "more than zero"),
        ({"approval_timeout": -5}, "more than zero"),
        ({"approval_timeout": "4h"}, "timedelta"),
        (
            {"approval_timeout": timedelta(hours=4), "on_timeout": "ignore"},
            "'reject' or 'escalate'",
        ),
        ({"on_timeout": "reject"}, "needs an approval_timeout"),
    ]:
        with pytest.raises(InvalidInput, match=why):
            tool(approval_required=True, **kw)(refund)
    with pytest.raises(InvalidInput, match="approval_required=True"):
        tool(approval_timeout=timedelta(hours=4))(refund)
    # Still a drop-in for @function_tool, the timeout riding on needs_approval.
    plain = tool(approval_required=True, approval_timeout=timedelta(hours=4))(refund)
    assert plain.name == "refund" and callable(plain.needs_approval)


# -- the CLI and the API ---------------------------------------------------------------------------


def cli(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PYTHON, "-m", "frontdesk", "--home", str(home), "approvals", *args],
        env=child_env(), capture_output=True, text=True, timeout=WAIT_SECONDS,
    )  # fmt: skip


@both_backends
def test_cli_approves_with_edited_arguments_and_records_who(desk: AgentRuntime, home: Path) -> None:
    paused = waiting_refund(desk)
    ident = paused.execution_id
    for args, why in [
        ("{amount: 49.5", "not valid JSON"),
        ("[49.5]", "give a JSON object"),
        ('{"amount": "half"}', "do not match the tool's schema"),
    ]:
        bad = cli(home, "approve", ident, "--by", "ops", "--args", args)
        assert bad.returncode == 2, bad.stdout + bad.stderr
        assert len(bad.stderr.strip().splitlines()) == 1 and why in bad.stderr, bad.stderr
    no_args_on_reject = cli(home, "reject", ident, "--reason", "no", "--args", '{"amount": 1}')
    assert no_args_on_reject.returncode == 2 and "--args" in no_args_on_reject.stderr
    assert [a.status for a in desk.approvals(status=None, execution_id=ident)] == ["pending"]

    done = cli(home, "approve", ident, "--args", '{"amount": 49.5}')
    assert done.returncode == 0, done.stderr
    assert "with edited arguments" in done.stdout and "completed" in done.stdout
    [record] = desk.approvals(status=None, execution_id=ident)
    # Without --by the decider is the OS user, as the help says, and it is recorded.
    assert record.decided_by == getpass.getuser()
    assert record.edited_args is not None and record.edited_args["amount"] == 49.5
    assert refunds(home) == [("INV-8821", 49.5)]
    assert "--by" in cli(home, "approve", "--help").stdout


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory) -> Any:
    with running_console(tmp_path_factory, "approval_controls") as served:
        yield served


def test_api_approves_with_edited_arguments_or_says_422(console: Console) -> None:
    init_db(console.home, reset=True)
    paused = waiting_refund(console.runtime)
    [approval] = paused.approvals
    client, csrf = login(console, name="alice")
    headers = {"X-CSRF-Token": csrf}
    with closing(client):
        url = f"/api/approvals/{approval.approval_id}"
        bad = client.post(f"{url}/approve", json={"args": {"amount": "half"}}, headers=headers)
        assert bad.status_code == 422 and "nothing changed" in bad.json()["error"], bad.text
        not_an_object = client.post(f"{url}/approve", json={"args": [1]}, headers=headers)
        assert not_an_object.status_code == 422, not_an_object.text
        on_reject = client.post(
            f"{url}/reject", json={"reason": "no", "args": {"amount": 1}}, headers=headers
        )
        assert on_reject.status_code == 422, on_reject.text
        assert console.runtime.approvals(execution_id=paused.execution_id)[0].status == "pending"
        ok = client.post(
            f"{url}/approve", json={"note": "half", "args": {"amount": 49.5}}, headers=headers
        )
        assert ok.status_code == 200, ok.text
        body = ok.json()
        assert (body["decided_by"], body["edited_args"]["amount"]) == ("alice", 49.5)
        assert body["args"] == approval.args
    done = console.runtime.handle(paused.execution_id).result(timeout=WAIT_SECONDS)
    assert done.status == "completed" and "$49.50" in done.output
    assert refunds(console.home) == [("INV-8821", 49.5)]


def test_console_inbox_approves_with_edited_arguments(console: Console) -> None:
    init_db(console.home, reset=True)
    paused = waiting_refund(console.runtime)
    [approval] = paused.approvals
    client, csrf = login(console, name="bea")
    with closing(client):
        inbox = client.get("/approvals")
        assert 'name="args"' in inbox.text and "edit arguments" in inbox.text
        url = f"/approvals/{approval.approval_id}/approve"
        bad = client.post(url, data={"csrf_token": csrf, "args": "{amount: 49.5"})
        assert bad.status_code == 422 and "not valid JSON" in bad.text, bad.text
        assert console.runtime.approvals(execution_id=paused.execution_id)[0].status == "pending"
        ok = client.post(url, data={"csrf_token": csrf, "args": '{"amount": 49.5}'})
        assert ok.status_code == 303, ok.text
    [record] = console.runtime.approvals(status=None, execution_id=paused.execution_id)
    assert (record.decided_by, record.edited_args) == ("bea", {**approval.args, "amount": 49.5})
    done = console.runtime.handle(paused.execution_id).result(timeout=WAIT_SECONDS)
    assert done.status == "completed" and refunds(console.home) == [("INV-8821", 49.5)]


# -- deadlines -----------------------------------------------------------------------------------------


def _pending_past_deadline(home: Path, execution_id: str) -> Any:
    """Wait, with no process up, until the run's approval is past its deadline; it must still
    be pending then: nothing decides while every process is down."""
    store = open_store(home=home)
    try:
        [approval] = [a for a in store.approvals(execution_id=execution_id)]
        assert approval.deadline is not None and approval.on_timeout is not None
        wait_until(lambda: time.time() > approval.deadline, "the approval's deadline to pass")  # type: ignore[operator]
        [still] = store.approvals(execution_id=execution_id)
        assert (still.status, still.escalated_at) == ("pending", None)
        assert still.approval_id in {a.approval_id for a in store.due_approvals(time.time())}
        return still
    finally:
        store.close()


def killed_before_the_deadline(
    children: Children, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, on_timeout: str
) -> tuple[Path, Path, str]:
    """A child drives the approval flow to its refund approval and is SIGKILLed there."""
    flow_dir, home = tmp_path / "flow", tmp_path / "home"
    flow_dir.mkdir()
    home.mkdir(exist_ok=True)
    monkeypatch.setenv("CRASHFLOW_DIR", str(flow_dir))
    env = child_env(CRASHFLOW_DIR=str(flow_dir), CRASH_AT="waiting_approval")
    proc = children.popen(
        [PYTHON, "-m", "approvalflow", str(home), on_timeout], env=env, stderr=subprocess.PIPE
    )
    assert wait_for_marker(flow_dir / "parked", proc) == "waiting_approval"
    sigkill(proc)
    return flow_dir, home, (flow_dir / "execution_id").read_text()


def effects(flow_dir: Path) -> list[str]:
    path = flow_dir / "effects.log"
    return (
        [line.split(" ", 1)[1] for line in path.read_text().splitlines()] if path.exists() else []
    )


@pytest.mark.e2e
@both_backends
def test_a_deadline_passed_while_every_process_was_down_rejects_the_call(
    children: Children, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, backend: str
) -> None:
    flow_dir, home, execution_id = killed_before_the_deadline(
        children, tmp_path, monkeypatch, "reject"
    )
    asked = _pending_past_deadline(home, execution_id)
    assert (asked.on_timeout, asked.timeout) == ("reject", timedelta(seconds=3))
    with AgentRuntime(home, poll_interval=0.05) as runtime:  # recovers: fires the deadline
        done = runtime.handle(execution_id).result(timeout=WAIT_SECONDS)
    assert done.status == "completed", done.error
    [approval] = done.approvals
    assert (approval.status, approval.decided_by) == ("rejected", "system:timeout")
    assert approval.reason == "approval timed out after 0:00:03 (nobody decided in time)"
    # The model received the reason, and the refund never ran.
    assert "rejected" in done.output and approval.reason in done.output
    assert not any(e.startswith("refund") for e in effects(flow_dir))
    [decided] = [e for e in done.events if e.type == "approval_decided"]
    assert decided.data["by"] == "system:timeout" and decided.data["timed_out"] is True


@pytest.mark.e2e
@both_backends
def test_a_deadline_passed_while_every_process_was_down_escalates_the_request(
    children: Children, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, backend: str
) -> None:
    flow_dir, home, execution_id = killed_before_the_deadline(
        children, tmp_path, monkeypatch, "escalate"
    )
    _pending_past_deadline(home, execution_id)
    with AgentRuntime(home, poll_interval=0.05) as runtime:

        def escalated() -> Any:
            return next((e for e in runtime.events(execution_id) if e.type == "approval_escalated"), None)  # fmt: skip

        event = wait_until(escalated, "the approval to be escalated")
        assert "nobody decided within 0:00:03" in event.data["note"]
        run = runtime.get(execution_id)
        [approval] = run.approvals
        assert run.status == "waiting_approval"
        assert (approval.status, approval.decided_by) == ("pending", None)
        assert approval.escalated_at is not None
        assert runtime.expire_approvals() == []  # escalated once, not at every poll
        # Someone takes it from there.
        runtime.approve(execution_id, by="lead")
        done = runtime.handle(execution_id).result(timeout=WAIT_SECONDS)
    assert done.status == "completed" and "refunded" in done.output
    assert [e.type for e in done.events].count("approval_escalated") == 1
    with AgentRuntime(home, recover=False) as reader:
        timeline = Presenter(reader).run_detail(done)["timeline"]
    [shown] = [t for t in timeline if t["type"] == "approval_escalated"]
    assert shown["tool_name"] == "refund" and "nobody decided" in shown["note"]
    assert any(e.startswith("refund") for e in effects(flow_dir))


def _due_flow(count: int) -> Agent[Any]:
    @tool(approval_required=True, approval_timeout=timedelta(milliseconds=50))
    def wire(amount: float) -> str:
        """Wire money (needs approval within 50 ms)."""
        return f"wired {amount}"

    def respond(call: Any) -> Any:
        items = [i if isinstance(i, dict) else i.model_dump() for i in call.input]
        outputs = [i["output"] for i in items if i.get("type") == "function_call_output"]
        if outputs:
            return [assistant_message(f"outcome: {outputs[-1]}")]
        return [function_call("wire", {"amount": 10.0}, call_id="w-1")]

    model = ScriptedModel([ModelStep.respond(respond) for _ in range(count * 4)])
    return Agent(name="treasurer", model=model, tools=[wire])


@both_backends
def test_racing_runtimes_decide_each_due_approval_once(home: Path, backend: str) -> None:
    agent = _due_flow(count=6)
    with (
        AgentRuntime(home, agents=[agent], recover=False) as first,
        AgentRuntime(home, agents=[agent], recover=False) as second,
    ):
        paused = [first.run(agent, f"wire {i}") for i in range(6)]
        assert {p.status for p in paused} == {"waiting_approval"}
        deadline = max(a.deadline or 0 for p in paused for a in p.approvals)
        wait_until(lambda: time.time() > deadline, "every deadline to pass")
        barrier = threading.Barrier(2)
        decided: dict[str, list[str]] = {}

        def expire(name: str, runtime: AgentRuntime) -> None:
            barrier.wait()
            decided[name] = [a.approval_id for a in runtime.expire_approvals()]

        threads = [
            threading.Thread(target=expire, args=("first", first)),
            threading.Thread(target=expire, args=("second", second)),
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(WAIT_SECONDS)
        every = {a.approval_id for p in paused for a in p.approvals}
        assert set(decided["first"]).isdisjoint(decided["second"])
        assert set(decided["first"]) | set(decided["second"]) == every
        for p in paused:
            done = first.handle(p.execution_id).result(timeout=WAIT_SECONDS)
            assert done.status == "completed" and "approval timed out" in done.output
            assert [e.type for e in done.events].count("approval_decided") == 1
            assert [a.decided_by for a in done.approvals] == ["system:timeout"]
