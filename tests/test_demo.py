"""``frontdesk demo``: the three apps' demo cases into the home, then the console until Ctrl-C."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest

from conftest import PYTHON, Children, child_env, port_from, stop, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

DEMO_SECONDS = 300


def demo_env(stripe_url: str) -> dict[str, str]:
    """No Stripe key and no Stripe answering at ``stripe_url``: the demo starts a sandbox."""
    env = child_env(COLUMNS="80", FRONTDESK_STRIPE_API_BASE=stripe_url)
    for name in ("STRIPE_SECRET_KEY", "FRONTDESK_API_TOKEN"):
        env.pop(name, None)
    return env


def listed_runs(home: Path) -> list[dict[str, Any]]:
    proc = subprocess.run(
        [PYTHON, "-m", "frontdesk", "--home", str(home), "runs", "list", "--json"],
        env=child_env(), capture_output=True, text=True, encoding="utf-8", timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    runs: list[dict[str, Any]] = json.loads(proc.stdout)
    return runs


def assert_three_apps_ran(runs: list[dict[str, Any]]) -> None:
    """A completed run of each app: the support refund, both disputes and the evidence
    submission, and the airline conversation's turns."""
    completed = [r for r in runs if r["status"] == "completed"]
    support = [r for r in completed if r["agent"] == "support_triage"]
    disputes = [r for r in completed if r["execution_id"].startswith("dispute:")]
    submissions = [r for r in completed if r["execution_id"].startswith("dispute-submit:")]
    airline = [r for r in completed if r["conversation_id"] is not None]
    assert len(support) == 1, runs
    assert support[0]["last_agent"] == "billing_specialist"
    assert {r["last_agent"] for r in disputes} == {"Accept Dispute Agent", "Dispute Intake Agent"}
    assert len(submissions) == 1, runs
    assert len(airline) == 3, runs
    assert len({r["conversation_id"] for r in airline}) == 1
    assert {r["last_agent"] for r in airline} == {"FAQ Agent", "Seat Booking Agent"}


def test_demo_no_serve_runs_all_three_apps_and_exits(tmp_path: Path, refused_url: str) -> None:
    home = tmp_path / "home"
    proc = subprocess.run(
        [PYTHON, "-m", "frontdesk", "--home", str(home), "demo", "--no-serve"],
        env=demo_env(refused_url), capture_output=True, text=True, encoding="utf-8",
        timeout=DEMO_SECONDS,
    )  # fmt: skip

    assert proc.returncode == 0, proc.stderr + proc.stdout
    assert "Traceback" not in proc.stderr
    out = proc.stdout
    assert "Refund RF-" in out
    assert "Stripe now shows the dispute as lost" in out
    assert "Stripe now shows the dispute as under_review" in out
    assert "Your seat is now 14C" in out
    assert "API token" not in out and not (home / "api-token").exists()
    assert_three_apps_ran(listed_runs(home))


def test_demo_serves_the_console_until_ctrl_c(
    tmp_path: Path, refused_url: str, children: Children
) -> None:
    home, port_file, log = tmp_path / "home", tmp_path / "port", tmp_path / "demo.log"
    with log.open("wb") as out:
        proc = children.popen(
            [PYTHON, "-m", "frontdesk", "--home", str(home), "demo", "--port", "0",
             "--port-file", str(port_file)],
            env=demo_env(refused_url), stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port_from(port_file, proc)}"

    def answers() -> httpx.Response | None:
        try:
            return httpx.get(f"{url}/healthz", timeout=10)
        except httpx.TransportError:
            return None

    # Health, like every route but the webhook, needs the token the demo printed.
    assert wait_until(answers, "the console to answer", DEMO_SECONDS).status_code == 401
    login = httpx.get(f"{url}/login", timeout=10)
    assert login.status_code == 200 and "<form" in login.text
    token = (home / "api-token").read_text().strip()
    health = httpx.get(f"{url}/healthz", headers={"Authorization": f"Bearer {token}"}, timeout=10)
    assert health.status_code == 200 and health.json()["status"] == "ok"
    api = httpx.get(f"{url}/api/runs", headers={"Authorization": f"Bearer {token}"}, timeout=30)
    assert api.status_code == 200
    assert httpx.get(f"{url}/api/runs", timeout=10).status_code == 401

    assert stop(proc) == 0
    printed = log.read_text(encoding="utf-8", errors="replace")
    assert f"console: {url}/" in printed
    assert f"API token: {token}" in printed
    assert "Your seat is now 14C" in printed
    assert_three_apps_ran(listed_runs(home))
