"""``frontdesk`` output that reads well in any terminal: read through a pipe at 80 columns,
ids and statuses are whole on one line, every listing has ``--json``, the trace is one event
per line, and text stored by older versions never breaks a listing."""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from agents import Agent
from agents.testing import ScriptedModel, assistant_message
from rich.cells import cell_len

from frontdesk import AgentRuntime, InvalidInput
from frontdesk.apps.support import triage_agent
from frontdesk.sandbox.stripe import SandboxServer
from test_disputes_app import (  # noqa: F401 (the sandbox and its client are fixtures)
    client_fixture,
    dispute_of,
    pay,
    sandbox_fixture,
)

from conftest import PYTHON, child_env, sql_execute

pytestmark = pytest.mark.e2e

REFUND = "Hi, I was charged $99 twice last month (invoice INV-8821). Can I get a refund?"
OUTAGE = "We're getting 500 errors from the API in us-east and it's hitting production! CUST-1006"
BROKEN = "Thanks \ud83d"  # half an emoji, as a web front end may cut it
TRACE_LINE = re.compile(r"^\s*(\d+) \+\d+\.\d{3}s (.*)$")


def frontdesk(
    home: Path, *args: str, columns: int = 80, **env: str
) -> subprocess.CompletedProcess[str]:
    """``frontdesk --home HOME ARGS`` with its output read through a pipe."""
    proc = subprocess.run(
        [PYTHON, "-m", "frontdesk", "--home", str(home), *args],
        env=child_env(COLUMNS=str(columns), **env), capture_output=True, text=True,
        encoding="utf-8", timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr + proc.stdout
    assert "Traceback" not in proc.stderr
    return proc


def fits(output: str, columns: int = 80) -> list[str]:
    """The output's lines, after checking that none is wider than the terminal."""
    lines = output.splitlines()
    too_wide = [line for line in lines if cell_len(line) > columns]
    assert not too_wide, too_wide
    return lines


def line_with(lines: list[str], *words: str) -> str:
    """The one line holding every word whole."""
    found = [line for line in lines if all(word in line for word in words)]
    assert len(found) == 1, (words, lines)
    return found[0]


@dataclass
class Desk:
    """A home with a refund waiting for approval and an outage escalated to a human."""

    home: Path
    waiting: str
    approval_id: str
    escalated: str


@pytest.fixture(scope="module")
def desk(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Desk]:
    home = tmp_path_factory.mktemp("desk")
    with AgentRuntime(home, model="rules", recover=False) as runtime:
        waiting = runtime.run(triage_agent, REFUND)
        escalated = runtime.run(triage_agent, OUTAGE)
    assert waiting.status == "waiting_approval" and escalated.status == "completed"
    yield Desk(home, waiting.execution_id, waiting.pending_approvals[0].approval_id,
               escalated.execution_id)  # fmt: skip


def test_runs_list_at_80_columns_shows_ids_and_statuses_whole(desk: Desk) -> None:
    lines = fits(frontdesk(desk.home, "runs", "list").stdout)
    line_with(lines, desk.waiting, "waiting_approval")
    line_with(lines, desk.escalated, "completed")
    line_with(lines, "execution id", "status")


def test_approvals_list_at_80_columns_never_wraps_an_id(desk: Desk) -> None:
    lines = fits(frontdesk(desk.home, "approvals", "list").stdout)
    line_with(lines, "approval id", "status")
    row = line_with(lines, desk.approval_id, "pending")
    assert "process_refund" in row
    # Long arguments are cut with an ellipsis on the same line, never continued below.
    assert "…" in row and not any("INV-8821" in line for line in lines if line != row)


def test_wide_terminals_show_every_column(desk: Desk) -> None:
    lines = fits(frontdesk(desk.home, "approvals", "list", columns=200).stdout, 200)
    row = line_with(lines, desk.approval_id, desk.waiting, "pending")
    assert "billing_specialist" in row
    header = line_with(lines, "approval id", "run", "agent", "tool", "arguments", "requested")
    assert "decided by" in header


def test_every_listing_has_json(desk: Desk) -> None:
    runs = json.loads(frontdesk(desk.home, "runs", "list", "--json").stdout)
    assert {r["execution_id"]: r["status"] for r in runs} == {
        desk.waiting: "waiting_approval",
        desk.escalated: "completed",
    }
    assert {r["input"] for r in runs} == {REFUND, OUTAGE}

    approvals = json.loads(frontdesk(desk.home, "approvals", "list", "--json").stdout)
    assert [(a["approval_id"], a["execution_id"], a["tool_name"], a["status"])
            for a in approvals] == [(desk.approval_id, desk.waiting, "process_refund", "pending")]  # fmt: skip
    assert approvals[0]["args"]["invoice_id"] == "INV-8821"

    escalations = json.loads(frontdesk(desk.home, "support", "escalations", "--json").stdout)
    assert len(escalations) == 1 and escalations[0]["customer_id"] == "CUST-1006"
    lines = fits(frontdesk(desk.home, "support", "escalations").stdout)
    line_with(lines, escalations[0]["escalation_id"], escalations[0]["priority"])


def test_disputes_list_fits_80_columns_and_lists_and_reports_in_json(
    home: Path, sandbox: SandboxServer, client: Any
) -> None:
    dispute = dispute_of(client, pay(client, "1121").id)
    lines = fits(frontdesk(home, "disputes", "list").stdout)
    line_with(lines, dispute.id, "needs_response")

    (listed,) = json.loads(frontdesk(home, "disputes", "list", "--json").stdout)
    assert (listed["dispute_id"], listed["status"], listed["amount"]) == (
        dispute.id,
        "needs_response",
        2000,
    )
    assert listed["due_soon"] is False and listed["evidence"] == "none"
    report = json.loads(frontdesk(home, "disputes", "report", "--json").stdout)
    assert report["total"] == 1 and report["by_status"] == {"needs_response": 1}


def test_the_trace_is_one_event_per_line_in_a_narrow_terminal(desk: Desk) -> None:
    with AgentRuntime(desk.home, recover=False) as runtime:
        events = runtime.get(desk.waiting).events
    lines = fits(frontdesk(desk.home, "runs", "show", desk.waiting).stdout)
    trace = {int(m[1]): m[2] for m in map(TRACE_LINE.match, lines) if m}
    assert sorted(trace) == [e.seq for e in events]
    for event in events:
        if event.tool_name is not None:
            assert event.tool_name in trace[event.seq]
    # The approval's id comes first, so a line cut at the edge still shows it.
    (paused,) = [e for e in events if e.type == "approval_required"]
    assert desk.approval_id in trace[paused.seq]

    wide = fits(frontdesk(desk.home, "runs", "show", desk.waiting, columns=160).stdout, 160)
    line_with(wide, "#", "time", "agent", "step", "duration", "tokens")


def test_demo_keeps_its_runs_in_the_default_home_and_runs_again(
    tmp_path: Path, refused_url: str
) -> None:
    # No Stripe answers at the configured address: the demo starts a sandbox of its own.
    env = child_env(COLUMNS="80", FRONTDESK_STRIPE_API_BASE=refused_url)
    for name in ("FRONTDESK_HOME", "STRIPE_SECRET_KEY"):
        env.pop(name, None)

    def run(*args: str) -> str:
        proc = subprocess.run(
            [PYTHON, "-m", "frontdesk", *args], cwd=tmp_path, env=env, capture_output=True,
            text=True, encoding="utf-8", timeout=180,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr + proc.stdout
        return proc.stdout

    first, second = run("demo", "--no-serve"), run("demo", "--no-serve")
    home_line = f"home: {(tmp_path / '.frontdesk').resolve()}"
    for output in (first, second):
        # The home's path is printed whole on its line, however long; all else fits.
        lines = fits("\n".join(line for line in output.splitlines() if line != home_line))
        assert home_line in output.splitlines()
        assert any(TRACE_LINE.match(line) for line in lines)
        assert "Refund RF-" in output
    listed = [
        r for r in json.loads(run("runs", "list", "--json")) if r["agent"] == "support_triage"
    ]
    assert [r["status"] for r in listed] == ["completed", "completed"]
    assert len({r["execution_id"] for r in listed}) == 2
    assert all(r["execution_id"] in first + second for r in listed)
    assert (tmp_path / ".frontdesk" / "frontdesk.db").is_file()


def _stored_with_lone_surrogates(home: Path) -> str:
    """A run whose stored input and output hold lone surrogates, as older versions stored
    them (JSON escapes that decode to half a character)."""
    agent = Agent(name="echo", model=ScriptedModel([[assistant_message("You're welcome")]]))
    with AgentRuntime(home, recover=False) as runtime:
        try:
            result = runtime.run(agent, BROKEN)
        except InvalidInput:  # this version refuses such text; older ones stored it
            result = runtime.run(agent, "Thanks")
        sql_execute(
            home,
            "UPDATE runs SET input = ?, output_json = ?, last_agent = ? WHERE execution_id = ?",
            (json.dumps(BROKEN), json.dumps(f"reply {BROKEN}"), "echo", result.execution_id),
        )
        stored = runtime.get(result.execution_id)
    assert stored.input == BROKEN
    return result.execution_id


def test_stored_lone_surrogates_never_break_a_listing(home: Path) -> None:
    execution_id = _stored_with_lone_surrogates(home)
    table = frontdesk(home, "runs", "list").stdout
    assert execution_id in table and "Thanks \ufffd" in table
    listed: list[dict[str, Any]] = json.loads(frontdesk(home, "runs", "list", "--json").stdout)
    assert listed[0]["execution_id"] == execution_id and listed[0]["input"] == "Thanks \ufffd"
    shown = frontdesk(home, "runs", "show", execution_id).stdout
    assert "Thanks \ufffd" in shown and "reply Thanks \ufffd" in shown

    # A terminal that shows only ASCII gets question marks, not a crash.
    ascii_only = frontdesk(home, "runs", "show", execution_id, PYTHONIOENCODING="ascii").stdout
    assert execution_id in ascii_only and "Thanks ?" in ascii_only
