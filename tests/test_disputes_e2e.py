"""Both dispute scenarios end to end: the real ``stripe`` SDK against the sandbox served over
HTTP, the durable runtime on the offline rules model, the CLI in child processes, and a child
SIGKILLed inside ``close_dispute`` or inside an approved submission, whose run another process
recovers."""

from __future__ import annotations

import asyncio
import re
import signal
import socket
import sqlite3
import subprocess
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import stripe
import uvicorn
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from frontdesk import AgentRuntime, RunResult
from frontdesk.apps.disputes import find_submission, process_dispute, run_dispute, triage_agent
from frontdesk.apps.disputes.reporting import DisputeSummary, build_report, summarize
from frontdesk.errors import ApprovalAlreadyDecided
from frontdesk.runtime import default_runtime
from frontdesk.sandbox.stripe import (
    DEFAULT_API_KEY,
    SandboxServer,
    configure_stripe,
    create_app,
)
from test_disputes_app import (  # noqa: F401 (the *_fixture names provide fixtures)
    SEED_CALLS,
    SNEAKERS,
    client_fixture,
    closes,
    dispute_of,
    pay,
    rules_fixture,
    sandbox_fixture,
    wait_until,
)

from conftest import PYTHON, both_backends, child_env, port_from, stop

CALLS = [call["notes"] for call in SEED_CALLS]
INVESTIGATION = re.compile(
    r"Dispute Details:\n- Dispute ID: dp_\w+\n- Amount: 20\.00 USD\n"
    r"- Reason for Dispute: fraudulent\n- Card Brand: visa\n.*"
    r"Payment & Order Details:\n.*- Order: 1121, placed 2023-01-01\n"
    r"- Fulfillment status of the order: delivered\n"
    r"- Shipping carrier and tracking number: UPS 1Z999AA10123456784 \(delivered\)\n"
    r"- Confirmation of TOS acceptance: accepted on 2023-01-01 from IP 192\.168\.1\.1\n\n"
    r"Email and Phone Records:\n.*"
    r"Evidence:\n- Staged on dp_\w+, not submitted \(the dispute is needs_response\).*"
    r"- Submission requested: dispute-submit:dp_\w+ waits for a person's approval",
    re.S,
)
ACCEPTANCE = re.compile(
    r"Dispute Details:\n- Dispute ID: dp_\w+\n- Amount: 20\.00 USD\n"
    r"- Reason for Dispute: product_not_received\n\n"
    r"Order Details:\n- Fulfillment status of the order: not_shipped\n\n"
    r"Reasoning for closing the dispute:\n.*Order 1234 was never shipped.*Stripe now shows it as lost",
    re.S,
)
WAIT_SECONDS = 60.0


# Helpers -----------------------------------------------------------------------------------


def client_for(url: str) -> stripe.StripeClient:
    return stripe.StripeClient(DEFAULT_API_KEY, base_addresses={"api": url}, max_network_retries=0)


def stripe_free_env(**extra: str) -> dict[str, str]:
    """A child's environment without the developer's Stripe keys: children talk to sandboxes."""
    env = child_env(**extra)
    env.pop("STRIPE_SECRET_KEY", None)
    return env


def cli(
    home: Path, *args: str, stripe_url: str, check: bool = True
) -> subprocess.CompletedProcess[str]:
    env = stripe_free_env(COLUMNS="250", FRONTDESK_STRIPE_API_BASE=stripe_url)
    proc = subprocess.run(
        [PYTHON, "-m", "frontdesk", "--home", str(home), "--model", "rules", *args],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    if check:
        assert proc.returncode == 0, proc.stderr + proc.stdout
    return proc


def spawn(
    home: Path, logs: Path, *args: str, pass_fds: tuple[int, ...] = (), **env: str
) -> subprocess.Popen[bytes]:
    """A ``frontdesk`` child process on the rules model, its output in ``logs/<command>.*``."""
    logs.mkdir(parents=True, exist_ok=True)
    return subprocess.Popen(
        [PYTHON, "-m", "frontdesk", "--home", str(home), "--model", "rules", *args],
        env=stripe_free_env(**env), pass_fds=pass_fds,
        stdout=(logs / f"{args[0]}.out").open("wb"), stderr=(logs / f"{args[0]}.err").open("wb"),
    )  # fmt: skip


def approve_and_finish(runtime: AgentRuntime, execution_id: str) -> RunResult:
    runtime.approve(execution_id, by="tester")
    return runtime.handle(execution_id).result(timeout=WAIT_SECONDS)


# The two scenarios -------------------------------------------------------------------------


@pytest.fixture
def tutorial_stripe(sandbox: SandboxServer, monkeypatch: pytest.MonkeyPatch) -> SandboxServer:
    """The module-level ``stripe`` the tutorial uses, pointed at the sandbox; the rules model."""
    monkeypatch.setenv("FRONTDESK_MODEL", "rules")
    monkeypatch.setattr(stripe, "api_base", stripe.api_base)
    monkeypatch.setattr(stripe, "api_key", stripe.api_key)
    configure_stripe(sandbox.url)
    return sandbox


async def tutorial_scenario(payment_method: str, order_id: str) -> tuple[Any, Any, Any]:
    """A scenario as the tutorial writes it for Stripe test mode, on the default runtime.
    Returns the payment, what ``process_dispute`` returned and the dispute."""
    try:
        payment = stripe.PaymentIntent.create(
            amount=2000,
            currency="usd",
            payment_method=payment_method,
            confirm=True,
            metadata={"order_id": order_id},
            off_session=True,
            automatic_payment_methods={"enabled": True},
        )
        processed = await process_dispute(payment.id, triage_agent)
    finally:
        default_runtime().close()
    assert processed is not None
    dispute = stripe.Dispute.retrieve(processed[0]["dispute_id"])
    assert processed[0] == {
        "dispute_id": dispute.id,
        "amount": 2000,
        "due_by": dispute.evidence_details.due_by,
        "payment_intent": payment.id,
        "reason": dispute.reason,
        "status": "needs_response",
        "card_brand": "visa",
    }
    return payment, processed, dispute


@both_backends
@pytest.mark.e2e
async def test_unshipped_order_with_the_tutorial_code_is_accepted_and_closed(
    backend: str, tutorial_stripe: SandboxServer, home: Path
) -> None:
    _, (relevant_data, final_output), dispute = await tutorial_scenario(
        "pm_card_createDisputeProductNotReceived", "1234"
    )

    assert relevant_data["reason"] == "product_not_received"
    assert ACCEPTANCE.match(final_output), final_output
    assert dispute.status == "lost"
    with AgentRuntime(home, recover=False) as runtime:
        runs = runtime.runs()
    assert [(r.status, r.last_agent) for r in runs] == [("completed", "Accept Dispute Agent")]


@both_backends
@pytest.mark.e2e
async def test_delivered_order_with_the_tutorial_code_returns_the_investigators_report(
    backend: str, tutorial_stripe: SandboxServer, home: Path
) -> None:
    _, (relevant_data, report), dispute = await tutorial_scenario("pm_card_createDispute", "1121")

    assert relevant_data["reason"] == "fraudulent"
    # The investigator's full report: dispute, order, the email bodies, the calls, tracking.
    assert INVESTIGATION.match(report), report
    assert SNEAKERS in report and all(call in report for call in CALLS)
    # The evidence is staged, not submitted; the submission waits for a person.
    assert report.startswith(dispute.evidence.uncategorized_text)
    assert (dispute.status, dispute.evidence_details.submission_count) == ("needs_response", 0)
    assert dispute.evidence_details.has_evidence
    submit_run = f"dispute-submit:{dispute.id}"
    assert f"frontdesk approvals approve {submit_run}" in report
    with AgentRuntime(home, recover=False) as runtime:
        assert [(r.execution_id, r.status, r.last_agent) for r in runtime.runs()] == [
            (submit_run, "waiting_approval", "Evidence Submission Agent"),
            (f"dispute:{dispute.id}", "completed", "Dispute Intake Agent"),
        ]
        (approval,) = runtime.approvals()
        request = find_submission(runtime, dispute.id)
    assert (approval.execution_id, approval.tool_name, approval.args) == (
        submit_run,
        "submit_dispute_evidence",
        {"dispute_id": dispute.id},
    )
    assert request is not None and request.dispute_run == f"dispute:{dispute.id}"


@both_backends
@pytest.mark.e2e
async def test_approving_the_staged_evidence_submits_it_once(
    backend: str, home: Path, sandbox: SandboxServer
) -> None:
    client = sandbox.client(max_network_retries=0)
    payment = pay(client, "1121", "pm_card_createDispute")
    with AgentRuntime(home, model="rules", recover=False) as runtime:
        processed = await process_dispute(payment.id, triage_agent, runtime=runtime)
        assert processed is not None
        relevant_data, report = processed
        dispute_id = relevant_data["dispute_id"]
        (run,) = [r for r in runtime.runs() if r.execution_id == f"dispute:{dispute_id}"]
        assert (run.status, run.output) == ("completed", report)

        evidence = client.v1.disputes.retrieve(dispute_id).evidence
        assert (evidence.shipping_carrier, evidence.shipping_tracking_number) == ("UPS", "1Z999AA10123456784")  # fmt: skip
        assert (evidence.customer_email_address, evidence.customer_purchase_ip) == ("customer1@example.com", "192.168.1.1")  # fmt: skip
        assert "final sale" in evidence.refund_refusal_explanation

        done = approve_and_finish(runtime, f"dispute-submit:{dispute_id}")
        with pytest.raises(ApprovalAlreadyDecided):
            runtime.approve(done.execution_id, by="someone else")
        # Processing the dispute again finds both runs and starts nothing.
        again = await run_dispute(payment.id, triage_agent, runtime=runtime)
        assert len(runtime.runs()) == 2

    assert done.status == "completed" and done.last_agent == "Evidence Submission Agent"
    assert done.output == (
        f"Submitted the evidence on {dispute_id} to the card issuer; the dispute is now "
        "under_review."
    )
    assert not again.started and again.final_output == report
    assert again.submission is not None and again.submission.decision == "approved"
    submitted = client.v1.disputes.retrieve(dispute_id)
    assert (submitted.status, submitted.evidence_details.submission_count) == ("under_review", 1)


@both_backends
@pytest.mark.e2e
async def test_every_stripe_write_replays_under_its_idempotency_key(
    backend: str, home: Path, sandbox: SandboxServer
) -> None:
    client = sandbox.client(max_network_retries=0)
    accepted, contested = pay(client, "1234"), pay(client, "1121")
    with AgentRuntime(home, model="rules", recover=False) as runtime:
        await run_dispute(accepted.id, runtime=runtime)
        investigated = await run_dispute(contested.id, runtime=runtime)
        assert investigated.submission is not None
        approve_and_finish(runtime, investigated.submission.execution_id)
    closed, submitted = dispute_of(client, accepted.id).id, dispute_of(client, contested.id).id
    with sqlite3.connect(sandbox.db_path) as conn:
        writes = conn.execute(
            "SELECT key, path, fingerprint FROM idempotency_keys WHERE method = 'POST'"
            " AND path LIKE '/v1/disputes/%' ORDER BY created"
        ).fetchall()
    keys = {(path, "evidence" in fingerprint): key for key, path, fingerprint in writes}
    assert len(writes) == len(keys) == 3 and all(k.startswith("fd_") for k in keys.values())
    before = len(client.v1.events.list(params={"limit": 100}).data)

    close_again = client.v1.disputes.close(
        closed, options={"idempotency_key": keys[(f"/v1/disputes/{closed}/close", False)]}
    )
    submit_again = client.v1.disputes.update(
        submitted,
        params={"submit": True},
        options={"idempotency_key": keys[(f"/v1/disputes/{submitted}", False)]},
    )

    for replay in (close_again, submit_again):
        assert replay.last_response.headers["Idempotent-Replayed"] == "true"
    assert close_again.status == "lost" and submit_again.status == "under_review"
    assert len(client.v1.events.list(params={"limit": 100}).data) == before
    assert closes(client, closed) == 1
    assert client.v1.disputes.retrieve(submitted).evidence_details.submission_count == 1


# A crash inside close_dispute or inside the submission -------------------------------------


def closing(scope: Scope) -> bool:
    return bool(scope["path"].endswith("/close"))


def updating(scope: Scope) -> bool:
    """A dispute update: staging or submitting evidence."""
    path = scope["path"]
    return scope["method"] == "POST" and path.startswith("/v1/disputes/") and path.count("/") == 3


class HoldFirst:
    """The sandbox, except that the first request that :attr:`matches` is committed but not
    answered until :attr:`release` is set, so a client can be killed right after Stripe acted."""

    def __init__(self, app: ASGIApp, matches: Callable[[Scope], bool] = closing) -> None:
        self.app = app
        self.matches = matches
        self.held = threading.Event()
        self.release = threading.Event()
        self.keys: list[str] = []
        """The idempotency keys of the matching requests."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.matches(scope):
            return await self.app(scope, receive, send)
        self.keys.append(dict(scope["headers"]).get(b"idempotency-key", b"").decode())
        if len(self.keys) > 1:
            return await self.app(scope, receive, send)

        async def held_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                self.held.set()
                await asyncio.to_thread(self.release.wait, WAIT_SECONDS)
            await send(message)

        await self.app(scope, receive, held_send)


@contextmanager
def serve_in_thread(app: ASGIApp) -> Iterator[str]:
    """Serve an ASGI app over HTTP on a free loopback port; yields its URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(app, log_level="warning", lifespan="on", timeout_graceful_shutdown=2)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    wait_until(lambda: server.started, "the server to start")
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(10)


@pytest.fixture
def held(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[HoldFirst, str]]:
    holder = HoldFirst(create_app(tmp_path / "held-stripe.db"))
    with serve_in_thread(holder) as url:
        monkeypatch.delenv("STRIPE_SECRET_KEY", raising=False)
        monkeypatch.setenv("FRONTDESK_STRIPE_API_BASE", url)
        yield holder, url
        holder.release.set()


def kill_once_held(
    home: Path, holder: HoldFirst, url: str, *args: str, acted: Callable[[], bool]
) -> None:
    """``frontdesk <args>`` in a child, SIGKILLed once the sandbox has committed the held
    request (``acted()`` checks it did) and before the child hears back."""
    child = spawn(home, home.parent / "logs", *args, FRONTDESK_STRIPE_API_BASE=url)
    try:
        wait_until(lambda: holder.held.is_set() or child.poll() is not None, "the held request")
        assert child.poll() is None, (home.parent / "logs" / f"{args[0]}.err").read_text()
        assert acted()
    finally:
        child.kill()
        child.wait(10)
    assert child.returncode == -signal.SIGKILL
    holder.release.set()


def kill_inside_close(home: Path, holder: HoldFirst, url: str) -> tuple[stripe.StripeClient, str]:
    """``frontdesk disputes process`` in a child, SIGKILLed once the sandbox has closed the
    dispute and before the child hears back. Returns the client and the dispute id."""
    client = client_for(url)
    intent = pay(client, "1234")
    kill_once_held(
        home, holder, url, "disputes", "process", intent.id,
        acted=lambda: dispute_of(client, intent.id).status == "lost",
    )  # fmt: skip
    return client, dispute_of(client, intent.id).id


def assert_closed_once(
    result: RunResult, client: stripe.StripeClient, dispute_id: str, holder: HoldFirst
) -> None:
    assert result.status == "completed" and ACCEPTANCE.match(result.output), result.output
    assert closes(client, dispute_id) == 1
    # The recovered call asked again with the same key, and Stripe replayed its answer.
    assert len(holder.keys) == 2 and len(set(holder.keys)) == 1
    assert holder.keys[0].startswith("fd_")
    retries = [
        e for e in result.events if e.type == "tool_call" and e.data.get("interrupted_attempt")
    ]
    assert [e.tool_name for e in retries] == ["close_dispute"]


@both_backends
@pytest.mark.slow
@pytest.mark.e2e
def test_a_run_killed_inside_close_dispute_closes_the_dispute_once(
    backend: str, home: Path, held: tuple[HoldFirst, str]
) -> None:
    holder, url = held
    client, dispute_id = kill_inside_close(home, holder, url)

    with AgentRuntime(home, model="rules", recover=False) as runtime:
        (orphan,) = runtime.runs()
        assert orphan.status == "running"
        assert runtime.recover() == [orphan.execution_id]
        result = runtime.handle(orphan.execution_id).result(timeout=WAIT_SECONDS)

    assert_closed_once(result, client, dispute_id, holder)


@both_backends
@pytest.mark.slow
@pytest.mark.e2e
def test_frontdesk_serve_recovers_an_orphaned_dispute_run(
    backend: str, home: Path, held: tuple[HoldFirst, str]
) -> None:
    holder, url = held
    client, dispute_id = kill_inside_close(home, holder, url)
    port_file = home.parent / "serve.port"
    server = spawn(
        home, home.parent / "logs", "serve", "--port", "0", "--port-file", str(port_file),
        FRONTDESK_STRIPE_API_BASE=url,
    )  # fmt: skip
    try:
        port = port_from(port_file, server)
        with AgentRuntime(home, recover=False) as reader:
            (orphan,) = reader.runs()
            result = wait_until(
                lambda: (r := reader.get(orphan.execution_id)).status == "completed" and r,
                "frontdesk serve to finish the orphaned run",
            )
        token = (home / "api-token").read_text().strip()
        health = httpx.get(
            f"http://127.0.0.1:{port}/healthz",
            headers={"Authorization": f"Bearer {token}"},
            timeout=5,
        ).json()
    finally:
        stop(server)

    assert health["status"] == "ok"
    assert server.returncode == 0
    assert_closed_once(result, client, dispute_id, holder)


@both_backends
@pytest.mark.slow
@pytest.mark.e2e
def test_an_approval_killed_inside_the_submission_submits_once(
    backend: str, home: Path, held: tuple[HoldFirst, str]
) -> None:
    holder, url = held
    holder.matches = lambda scope: False
    client = client_for(url)
    intent = pay(client, "1121", "pm_card_createDispute")
    with AgentRuntime(home, model="rules", recover=False) as runtime:
        request = asyncio.run(run_dispute(intent.id, runtime=runtime)).submission
    assert request is not None and request.waiting
    holder.matches = updating

    # Approved from another process, which dies once Stripe has taken the submission.
    kill_once_held(
        home, holder, url, "approvals", "approve", request.execution_id,
        acted=lambda: client.v1.disputes.retrieve(request.dispute_id).status == "under_review",
    )  # fmt: skip

    with AgentRuntime(home, model="rules", recover=False) as runtime:
        assert runtime.get(request.execution_id).status == "running"
        assert runtime.recover() == [request.execution_id]
        done = runtime.handle(request.execution_id).result(timeout=WAIT_SECONDS)

    assert done.status == "completed" and done.output.endswith("the dispute is now under_review.")
    # The recovered call asked again with the same key, and Stripe replayed its answer.
    assert len(holder.keys) == 2 and len(set(holder.keys)) == 1 and holder.keys[0].startswith("fd_")
    submitted = client.v1.disputes.retrieve(request.dispute_id)
    assert submitted.evidence_details.submission_count == 1


# Deadlines and reporting -------------------------------------------------------------------

NOW = 1_700_000_000


def summary(status: str, due_in_hours: float = 100, **kw: Any) -> DisputeSummary:
    fields: dict[str, Any] = {
        "dispute_id": f"dp_{status}",
        "payment_intent": "pi_1",
        "amount": 2000,
        "currency": "usd",
        "reason": "fraudulent",
        "status": status,
        "due_by": int(NOW + due_in_hours * 3600),
    }
    return DisputeSummary(**{**fields, **kw})


def test_deadlines_flag_open_disputes_due_within_48_hours() -> None:
    assert summary("needs_response", due_in_hours=47).due_within(now=NOW)
    assert summary("needs_response", due_in_hours=-1).due_within(now=NOW)
    assert summary("warning_needs_response", due_in_hours=12).due_within(now=NOW)
    assert not summary("needs_response", due_in_hours=49).due_within(now=NOW)
    assert not summary("under_review", due_in_hours=2).due_within(now=NOW)
    assert summary("needs_response", due_in_hours=49).due_within(72, now=NOW)
    assert summary("needs_response", due_by=None).hours_left(NOW) is None


def test_handling_follows_the_run_then_stripe() -> None:
    assert summary("lost", handled_by="Accept Dispute Agent").handling == "accepted"
    assert summary("needs_response", handled_by="Dispute Intake Agent").handling == "contested"
    assert summary("won", submission_count=1).handling == "contested"
    assert summary("lost").handling == "accepted"
    assert summary("needs_response", handled_by="Triage Agent").handling == "pending"


def test_report_counts_and_win_rate() -> None:
    open_only = build_report([summary("needs_response", handled_by="Dispute Intake Agent")])
    assert open_only.win_rate is None

    report = build_report(
        [
            summary("lost", handled_by="Accept Dispute Agent", reason="product_not_received"),
            summary("won", submission_count=1),
            summary("won", submission_count=1),
            summary("lost", submission_count=1),
            summary("under_review", submission_count=1, reason="product_not_received"),
        ]
    )
    assert report.total == 5
    assert report.by_status == {"lost": 2, "won": 2, "under_review": 1}
    assert report.by_reason == {"fraudulent": 3, "product_not_received": 2}
    assert (report.accepted, report.contested) == (1, 4)
    assert (report.won, report.lost) == (2, 1)
    assert report.win_rate == pytest.approx(2 / 3)


@both_backends
@pytest.mark.e2e
async def test_summaries_join_stripe_with_the_run(
    backend: str, client: stripe.StripeClient, rules: AgentRuntime
) -> None:
    intent = pay(client, "1234")
    processed = await run_dispute(intent.id, runtime=rules)
    dispute = client.v1.disputes.retrieve(processed.relevant_data["dispute_id"]).to_dict()

    joined = summarize(dispute, processed.run)

    assert (joined.status, joined.handling, joined.run_status) == ("lost", "accepted", "completed")
    assert (
        joined.payment_intent == intent.id
        and joined.due_by == dispute["evidence_details"]["due_by"]
    )


# The command line --------------------------------------------------------------------------


@pytest.mark.e2e
def test_cli_process_explains_a_missing_payment_intent_or_dispute(
    home: Path, sandbox: SandboxServer
) -> None:
    undisputed = pay(sandbox.client(), "1234", "pm_card_visa")

    missing = cli(home, "disputes", "process", "pi_nope", stripe_url=sandbox.url, check=False)
    calm = cli(home, "disputes", "process", undisputed.id, stripe_url=sandbox.url, check=False)

    assert missing.returncode == 1 and "Traceback" not in missing.stderr
    assert "Payment intent 'pi_nope' could not be found: No such payment_intent" in missing.stderr
    assert calm.returncode == 1
    assert f"No dispute data found for PaymentIntent: {undisputed.id}" in " ".join(
        calm.stderr.split()
    )


@both_backends
@pytest.mark.e2e
def test_cli_process_runs_the_dispute_once(
    backend: str, home: Path, sandbox: SandboxServer
) -> None:
    intent = pay(sandbox.client(), "1121", "pm_card_createDispute")

    first = cli(home, "disputes", "process", intent.id, stripe_url=sandbox.url).stdout
    again = cli(home, "disputes", "process", intent.id, stripe_url=sandbox.url).stdout

    assert "started run" in first and "completed (Dispute Intake Agent)" in " ".join(first.split())
    assert INVESTIGATION.search(first) and SNEAKERS in first
    run_id = re.search(r"run (dispute:\w+)", first)
    assert run_id is not None and f"already handled by run {run_id.group(1)}" in again
    submit_run = run_id.group(1).replace("dispute:", "dispute-submit:")
    assert f"{submit_run} waits for approval: frontdesk approvals approve {submit_run}" in first


@both_backends
@pytest.mark.e2e
def test_cli_lists_staged_evidence_and_approving_it_submits_once(
    backend: str, home: Path, sandbox: SandboxServer
) -> None:
    client = sandbox.client(max_network_retries=0)
    contested, accepted = pay(client, "1121"), pay(client, "1234")
    for intent in (contested, accepted):
        cli(home, "disputes", "process", intent.id, stripe_url=sandbox.url)
    dispute_id = dispute_of(client, contested.id).id
    submit_run = f"dispute-submit:{dispute_id}"

    staged = cli(home, "disputes", "list", "--staged", stripe_url=sandbox.url).stdout
    approved = cli(home, "approvals", "approve", submit_run, stripe_url=sandbox.url).stdout
    twice = cli(home, "approvals", "approve", submit_run, stripe_url=sandbox.url, check=False)
    after = cli(home, "disputes", "list", stripe_url=sandbox.url).stdout

    assert "1 with evidence staged, not submitted" in staged
    (row,) = [line for line in staged.splitlines() if "dp_" in line]
    assert dispute_id in row and "h left" in row and "staged, submission awaits approval" in row
    assert dispute_of(client, accepted.id).id not in staged
    assert f"on run {submit_run}" in approved and "completed" in approved
    assert twice.returncode != 0
    assert "0 with evidence staged, not submitted" in after
    (row,) = [line for line in after.splitlines() if dispute_id in line]
    assert "submitted" in row and "under_review" in row
    submitted = client.v1.disputes.retrieve(dispute_id)
    assert (submitted.status, submitted.evidence_details.submission_count) == ("under_review", 1)


@pytest.mark.e2e
async def test_cli_lists_disputes_with_deadlines_and_reports_outcomes(
    home: Path, sandbox: SandboxServer
) -> None:
    client = sandbox.client(max_network_retries=0)
    untouched = pay(client, "1510")
    with AgentRuntime(home, model="rules", recover=False) as runtime:
        await run_dispute(pay(client, "1234").id, runtime=runtime)
        for order_id, outcome in (("1121", "won"), ("1802", "lost")):
            investigated = await run_dispute(pay(client, order_id).id, runtime=runtime)
            assert investigated.submission is not None
            approve_and_finish(runtime, investigated.submission.execution_id)
            sandbox.resolve_dispute(investigated.relevant_data["dispute_id"], outcome)

    default = cli(home, "disputes", "list", stripe_url=sandbox.url).stdout
    wide = cli(home, "disputes", "list", "--within", "200", stripe_url=sandbox.url).stdout
    report = " ".join(cli(home, "disputes", "report", stripe_url=sandbox.url).stdout.split())

    assert "disputes (0 open and due within 48h;" in default and "⚠" not in default
    assert "disputes (1 open and due within 200h;" in wide
    (flagged,) = [line for line in wide.splitlines() if "⚠" in line]
    assert dispute_of(client, untouched.id).id in flagged and "pending" in flagged
    assert wide.count("accepted") == 1 and wide.count("contested") == 2
    assert "lost │ 2" in report and "won │ 1" in report and "needs_response │ 1" in report
    assert "product_not_received │ 4" in report
    assert "total 4: accepted 1, contested 2, not yet decided 1" in report
    assert "won 1, lost 1; win rate 50.0%" in report
