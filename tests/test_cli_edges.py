"""``frontdesk`` at its edges: one-line errors for bad command lines, a non-zero exit for a
failed run, and a worker that loads agents from a script file."""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import typer

from frontdesk import AgentRuntime

from conftest import PYTHON, child_env

pytestmark = pytest.mark.e2e

DEADLINE = 90.0


def frontdesk(
    home: Path, *args: str | bytes, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """``frontdesk --home HOME ARGS``, run to its end (never started in a directory holding
    a developer's ``.env``)."""
    return subprocess.run(
        [PYTHON, "-m", "frontdesk", "--home", str(home), *args],
        cwd=cwd or home.parent, env=child_env(COLUMNS="80"), capture_output=True, text=True,
        encoding="utf-8", errors="replace", timeout=180,
    )  # fmt: skip


def refused(proc: subprocess.CompletedProcess[str], *fragments: str) -> str:
    """Check that the command failed as a usage error: exit code 2, one line on stderr."""
    assert proc.returncode == 2, proc.stderr + proc.stdout
    assert "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


def stored_runs(home: Path) -> int:
    if not (home / "frontdesk.db").exists():
        return 0
    with AgentRuntime(home, recover=False) as runtime:
        return len(runtime.runs())


@pytest.fixture
def place(tmp_path: Path) -> Path:
    """An empty home, beside a plain file."""
    home = tmp_path / "home"
    home.mkdir()
    (tmp_path / "notes.txt").write_text("not a directory")
    return home


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (("--home", "{file}", "runs", "list"), ("notes.txt", "is a file")),
        (("--home", "", "runs", "list"), ("--home", "empty")),
        (("worker", "--agents", "frontdesk.apps.support"), ("module:attribute", "script.py")),
        (("worker", "--agents", "no_such_module_here:agent"), ("no module named",)),
        (("worker", "--agents", "frontdesk.apps.support:nobody"), ("no attribute 'nobody'",)),
        (("worker", "--agents", "{missing}/script.py:agent"), ("no such file",)),
        (("runs", "list", "--limit", "-5"), ("--limit",)),
        (("serve", "--port", "99999"), ("--port", "65535")),
        (("eval", "support", "--json", "{missing}/report.json"), ("--json", "does not exist")),
    ],
    ids=["home-is-a-file", "empty-home", "agents-without-attribute", "unknown-module",
         "unknown-attribute", "missing-script", "negative-limit", "port-out-of-range",
         "report-into-no-directory"],
)  # fmt: skip
def test_bad_command_lines_get_one_line_errors(
    place: Path, args: tuple[str, ...], fragments: tuple[str, ...]
) -> None:
    paths = {"file": str(place.parent / "notes.txt"), "missing": str(place.parent / "missing")}
    argv = [arg.format(**paths) for arg in args]
    if argv[0] == "--home":
        proc = subprocess.run(
            [PYTHON, "-m", "frontdesk", *argv], cwd=place.parent, env=child_env(),
            capture_output=True, text=True, timeout=180,
        )  # fmt: skip
    else:
        proc = frontdesk(place, *argv)
    refused(proc, *fragments)
    # Nothing ran: the eval checks where its report goes before running any case.
    assert stored_runs(place) == 0
    assert not (place.parent / "missing").exists()


def test_an_argument_that_is_not_utf8_is_refused_before_anything_runs(place: Path) -> None:
    # Bytes that are not UTF-8 reach Python as lone surrogates.
    proc = frontdesk(place, "--model", "rules", "support", "ask", b"Thanks \xf0\x9f")
    refused(proc, "argument 7", "not valid text", "lone surrogate")
    assert stored_runs(place) == 0


def test_support_ask_exits_non_zero_when_its_run_failed(place: Path) -> None:
    # No model is configured (no key, no --model): the run fails at once.
    failed = frontdesk(place, "support", "ask", "My invoice INV-8821 looks wrong")
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert "run failed" in failed.stdout and "Traceback" not in failed.stderr
    with AgentRuntime(place, recover=False) as runtime:
        assert [r.status for r in runtime.runs()] == ["failed"]


SCRIPT = '''
"""A script that defines its agent in ``__main__`` and starts a run that waits for approval."""

import os
import sys
from pathlib import Path

from agents import Agent
from agents.testing import ModelStep, ScriptedModel, assistant_message, function_call

from frontdesk import AgentRuntime, tool

FLOW = Path(os.environ["SCRIPT_FLOW_DIR"])


@tool(approval_required=True)
def close_ticket(ticket_id: str) -> str:
    """Close a ticket (needs a human's approval)."""
    with open(FLOW / "closed.log", "a") as log:
        log.write(ticket_id + "\\n")
    return f"closed {ticket_id}"


def decide(call):
    items = [i if isinstance(i, dict) else i.model_dump() for i in call.input]
    if any(i.get("type") == "function_call_output" for i in items):
        return [assistant_message("ticket T-1 is closed")]
    return [function_call("close_ticket", {"ticket_id": "T-1"}, call_id="close-1")]


triage_agent = Agent(
    name="script_triage",
    model=ScriptedModel([ModelStep.respond(decide) for _ in range(20)]),
    tools=[close_ticket],
)

if __name__ == "__main__":
    with AgentRuntime(sys.argv[1], recover=False) as runtime:
        result = runtime.run(triage_agent, "Please close ticket T-1")
    marker = FLOW / "execution_id.tmp"
    marker.write_text(f"{result.execution_id} {result.status}")
    os.replace(marker, FLOW / "execution_id")
'''


@pytest.fixture
def children() -> Iterator[list[subprocess.Popen[bytes]]]:
    """Child processes started by a test, killed and reaped at teardown, pass or fail."""
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for child in started:
        if child.poll() is None:
            child.kill()
        child.wait(30)


def test_a_worker_loads_agents_from_a_script_file(
    tmp_path: Path, children: list[subprocess.Popen[bytes]]
) -> None:
    home, flow = tmp_path / "home", tmp_path / "flow"
    home.mkdir()
    flow.mkdir()
    script = tmp_path / "desk_script.py"
    script.write_text(SCRIPT)
    env = child_env(SCRIPT_FLOW_DIR=str(flow))
    subprocess.run([PYTHON, str(script), str(home)], env=env, check=True, timeout=120)
    execution_id, status = (flow / "execution_id").read_text().split()
    assert status == "waiting_approval"

    with AgentRuntime(home, recover=False) as runtime:
        runtime.approve(execution_id, by="tester")
        # The script has exited: no process here has its agent, and the note says what to do.
        note = runtime.get(execution_id).note or ""
    assert "not registered" in note and "--agents path/to/script.py:attribute" in note
    assert not (flow / "closed.log").exists()

    with (tmp_path / "worker.err").open("wb") as errors:
        worker = subprocess.Popen(
            [PYTHON, "-m", "frontdesk", "--home", str(home), "worker", "--poll", "0.1",
             "--agents", f"{script}:triage_agent"],
            env=env, stdout=subprocess.DEVNULL, stderr=errors, cwd=tmp_path,
        )  # fmt: skip
    children.append(worker)
    with AgentRuntime(home, recover=False) as runtime:
        deadline = time.monotonic() + DEADLINE
        while (result := runtime.get(execution_id)).status != "completed":
            assert worker.poll() is None, (tmp_path / "worker.err").read_text()
            assert result.status in ("running", "waiting_approval"), result.error
            assert time.monotonic() < deadline, f"still {result.status}: {result.note}"
            time.sleep(0.1)
    assert result.output == "ticket T-1 is closed"
    assert (flow / "closed.log").read_text().splitlines() == ["T-1"]
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(30) == 0


def test_agents_load_from_relative_script_paths_and_from_modules(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from frontdesk.cli._worker import load_agent

    (tmp_path / "tiny_agents.py").write_text(
        "from agents import Agent\nhelper = Agent(name='helper')\nnot_an_agent = 3\n"
    )
    monkeypatch.chdir(tmp_path)
    assert load_agent("./tiny_agents.py:helper").name == "helper"
    assert load_agent(f"{tmp_path / 'tiny_agents.py'}:helper").name == "helper"
    assert load_agent("frontdesk.apps.support:triage_agent").name == "support_triage"
    with pytest.raises(typer.BadParameter, match=r"not an agents\.Agent"):
        load_agent("tiny_agents.py:not_an_agent")
