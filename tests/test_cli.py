"""The ``frontdesk`` command: history and approvals, from processes other than the run's."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from frontdesk import AgentRuntime
from test_crash_recovery import make_dirs, run_to_approval

import crashflow
from conftest import PYTHON, Children, child_env

pytestmark = pytest.mark.e2e


def cli(
    home: Path, *args: str, flow_dir: Path | None = None, check: bool = True
) -> subprocess.CompletedProcess[str]:
    env = child_env(COLUMNS="200")
    if flow_dir is not None:
        env["CRASHFLOW_DIR"] = str(flow_dir)
    proc = subprocess.run(
        [PYTHON, "-m", "frontdesk", "--home", str(home), *args],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    if check:
        assert proc.returncode == 0, proc.stderr + proc.stdout
    return proc


def start_waiting_run(children: Children, tmp_path: Path) -> tuple[Path, Path, str]:
    """A child process runs the crashflow until it waits for approval, then exits."""
    flow_dir, home = make_dirs(tmp_path)
    run_to_approval(children, flow_dir, home)
    return flow_dir, home, (flow_dir / "execution_id").read_text()


def test_approval_across_process_restarts_through_the_cli(
    children: Children, tmp_path: Path
) -> None:
    flow_dir, home, execution_id = start_waiting_run(children, tmp_path)
    listing = cli(home, "approvals", "list").stdout
    assert execution_id in listing and "refund" in listing and "pending" in listing
    out = cli(
        home,
        "approvals",
        "approve",
        execution_id,
        "--by",
        "supervisor",
        "--note",
        "ok",
        flow_dir=flow_dir,
    ).stdout
    assert "approved refund" in out and "completed" in out
    with AgentRuntime(home, recover=False) as runtime:
        result = runtime.get(execution_id)
    assert result.status == "completed"
    assert result.context == crashflow.Ctx(route="billing", invoice_total=99.0, refunded=True)
    approval = result.approvals[0]
    assert (approval.decided_by, approval.note) == ("supervisor", "ok")
    again = cli(home, "approvals", "approve", execution_id, check=False)
    assert again.returncode == 2 and "already approved" in again.stderr


def test_reject_through_the_cli_tells_the_model(children: Children, tmp_path: Path) -> None:
    flow_dir, home, execution_id = start_waiting_run(children, tmp_path)
    out = cli(
        home,
        "approvals",
        "reject",
        execution_id,
        "--reason",
        "not a billing error",
        "--by",
        "lead",
        flow_dir=flow_dir,
    ).stdout
    assert "rejected refund" in out
    with AgentRuntime(home, recover=False) as runtime:
        result = runtime.get(execution_id)
    assert result.status == "completed" and "rejected" in result.output
    assert "not a billing error" in result.output
    assert not (flow_dir / "effects.log").read_text().count(" refund ")


def test_runs_list_show_and_filters(children: Children, tmp_path: Path) -> None:
    flow_dir, home, execution_id = start_waiting_run(children, tmp_path)
    table = cli(home, "runs", "list").stdout
    assert execution_id in table and "waiting_approval" in table
    assert execution_id not in cli(home, "runs", "list", "--status", "completed").stdout
    assert execution_id in cli(home, "runs", "list", "--agent", "triage").stdout
    cli(home, "approvals", "approve", execution_id, flow_dir=flow_dir)
    shown = cli(home, "runs", "show", execution_id).stdout
    for expected in (
        "agent path: triage → billing",
        "→ routed to billing",
        "→ lookup_invoice(",
        "← lookup_invoice:",
        "approval required for refund",
        "refund approved",
        "model calls",
        "total",
        "ms",
    ):
        assert expected in shown, expected
    listed = json.loads(cli(home, "runs", "list", "--json").stdout)
    assert listed[0]["execution_id"] == execution_id and listed[0]["status"] == "completed"


def test_runs_retry_and_errors(children: Children, tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    missing = cli(home, "runs", "show", "run_missing", check=False)
    assert missing.returncode == 2 and "no run with execution id 'run_missing'" in missing.stderr
    _flow_dir, home2, execution_id = start_waiting_run(children, tmp_path / "second")
    not_failed = cli(home2, "runs", "retry", execution_id, check=False)
    assert not_failed.returncode == 2 and "only failed runs can be retried" in not_failed.stderr
    cancelled = cli(home2, "runs", "cancel", execution_id).stdout
    assert "cancelled" in cancelled
