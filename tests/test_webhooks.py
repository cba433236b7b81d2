"""Stripe webhooks into ``frontdesk serve``: the sandbox delivers real signed events over HTTP
to the server, running in a child process, which starts one durable run per dispute."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import stripe

from frontdesk import AgentRuntime, RunResult
from frontdesk.apps.disputes import dispute_runs, webhook_events
from frontdesk.sandbox.stripe import SandboxServer, running_sandbox, sign_payload
from test_disputes_app import free_port, wait_until

from conftest import PYTHON, child_env

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

FAST_RETRIES = (0.2, 0.5, 1.0)


@dataclass
class Stack:
    """The sandbox, and ``frontdesk serve`` subscribed to it as a webhook endpoint."""

    home: Path
    sandbox: SandboxServer
    client: stripe.StripeClient
    url: str
    secret: str
    reader: AgentRuntime

    def post(self, payload: str, signature: str | None) -> httpx.Response:
        headers = {"Content-Type": "application/json"}
        if signature is not None:
            headers["Stripe-Signature"] = signature
        return httpx.post(
            f"{self.url}/webhooks/stripe", content=payload, headers=headers, timeout=30
        )

    def sign(self, payload: str, secret: str | None = None, age: int = 0) -> str:
        return sign_payload(payload, secret or self.secret, int(time.time()) - age)

    def runs_for(self, dispute_id: str) -> list[RunResult]:
        runs = self.reader.runs(limit=1000)
        return [r for r in runs if json.loads(r.input).get("dispute_id") == dispute_id]

    def event(self, event_type: str, object_id: str) -> Any:
        events = self.client.v1.events.list(params={"type": event_type, "limit": 100}).data
        (event,) = [e for e in events if e.data.object.id == object_id]
        return event

    def recorded(self, event_id: str) -> dict[str, Any] | None:
        return next((e for e in webhook_events(self.home) if e["event_id"] == event_id), None)


def start_server(home: Path, port: int, logs: Path, **env: str) -> subprocess.Popen[bytes]:
    """``frontdesk serve`` in a child process, answering /healthz when this returns."""
    logs.mkdir(parents=True, exist_ok=True)
    server = subprocess.Popen(
        [PYTHON, "-m", "frontdesk", "--home", str(home), "--model", "rules", "serve",
         "--port", str(port)],
        env=child_env(**env),
        stdout=(logs / f"serve-{port}.out").open("wb"),
        stderr=(logs / f"serve-{port}.err").open("wb"),
    )  # fmt: skip

    def healthy() -> bool:
        assert server.poll() is None, (logs / f"serve-{port}.err").read_text()
        try:
            return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200
        except httpx.TransportError:
            return False

    wait_until(healthy, "frontdesk serve to answer")
    return server


def stop(server: subprocess.Popen[bytes]) -> None:
    server.send_signal(signal.SIGINT)
    server.wait(20)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    root = tmp_path_factory.mktemp("webhooks")
    home = root / "home"
    home.mkdir()
    with running_sandbox(root / "stripe.db", webhook_retry_delays=FAST_RETRIES) as sandbox:
        client = sandbox.client(max_network_retries=0)
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        endpoint = client.v1.webhook_endpoints.create(
            params={"url": f"{url}/webhooks/stripe", "enabled_events": ["*"]}
        )
        assert endpoint.secret is not None
        server = start_server(
            home, port, root / "logs",
            STRIPE_WEBHOOK_SECRET=endpoint.secret, FRONTDESK_STRIPE_API_BASE=sandbox.url,
        )  # fmt: skip
        try:
            with AgentRuntime(home, recover=False) as reader:
                yield Stack(home, sandbox, client, url, endpoint.secret, reader)
        finally:
            stop(server)


def pay(stack: Stack, order_id: str) -> tuple[str, str]:
    """A disputed payment for ``order_id``; returns the payment intent and dispute ids."""
    intent = stack.client.v1.payment_intents.create(
        params={
            "amount": 2000,
            "currency": "usd",
            "payment_method": "pm_card_createDisputeProductNotReceived",
            "confirm": True,
            "off_session": True,
            "metadata": {"order_id": order_id},
        }
    )
    (dispute,) = stack.client.v1.disputes.list(params={"payment_intent": intent.id}).data
    return intent.id, dispute.id


def run_of(stack: Stack, dispute_id: str) -> str:
    found: str = wait_until(lambda: dispute_runs(stack.home).get(dispute_id), "the dispute's run")
    return found


def finished(stack: Stack, execution_id: str, status: str = "completed") -> RunResult:
    result: RunResult = wait_until(
        lambda: (r := stack.reader.get(execution_id)).status == status and r, f"the run: {status}"
    )
    return result


def forged_event(event_id: str, dispute_id: str) -> str:
    """A ``charge.dispute.created`` payload for a dispute Stripe never opened."""
    return json.dumps(
        {
            "id": event_id,
            "object": "event",
            "type": "charge.dispute.created",
            "created": int(time.time()),
            "livemode": False,
            "data": {
                "object": {
                    "id": dispute_id,
                    "object": "dispute",
                    "amount": 4200,
                    "currency": "usd",
                    "payment_intent": f"pi_for_{dispute_id}",
                    "reason": "fraudulent",
                    "status": "needs_response",
                    "evidence_details": {"due_by": int(time.time()) + 86400},
                    "payment_method_details": {"card": {"brand": "visa"}},
                }
            },
        }
    )


# Tests -------------------------------------------------------------------------------------


def test_healthz(stack: Stack) -> None:
    response = httpx.get(f"{stack.url}/healthz", timeout=5)
    assert response.status_code == 200
    assert response.json()["status"] == "ok" and "rules" in response.json()["model"]


def test_a_new_dispute_starts_one_run_that_closes_it(stack: Stack) -> None:
    _, dispute_id = pay(stack, "1234")

    result = finished(stack, run_of(stack, dispute_id))

    assert result.last_agent == "Accept Dispute Agent"
    assert result.output.startswith(f"Dispute Details:\n- Dispute ID: {dispute_id}\n")
    assert stack.client.v1.disputes.retrieve(dispute_id).status == "lost"
    assert [r.execution_id for r in stack.runs_for(dispute_id)] == [result.execution_id]
    created = stack.event("charge.dispute.created", dispute_id)
    recorded = stack.recorded(created.id)
    assert recorded is not None
    assert (recorded["action"], recorded["execution_id"]) == ("started", result.execution_id)
    attempts = stack.sandbox.delivery_attempts(created.id)
    assert [a["status_code"] for a in attempts] == [200]


def test_redelivered_events_start_nothing_new(stack: Stack) -> None:
    _, dispute_id = pay(stack, "1234")
    execution_id = run_of(stack, dispute_id)
    created = stack.event("charge.dispute.created", dispute_id)

    stack.sandbox.resend_event(created.id)
    stack.sandbox.resend_event(created.id)

    attempts = wait_until(
        lambda: len(a := stack.sandbox.delivery_attempts(created.id)) == 3 and a, "redeliveries"
    )
    assert [a["status_code"] for a in attempts] == [200, 200, 200]
    recorded = stack.recorded(created.id)
    assert recorded is not None
    assert (recorded["deliveries"], recorded["action"]) == (3, "started")
    assert [r.execution_id for r in stack.runs_for(dispute_id)] == [execution_id]
    finished(stack, execution_id)


def test_concurrent_duplicate_deliveries_start_one_run(stack: Stack) -> None:
    _, dispute_id = pay(stack, "9101")
    payload = json.dumps(stack.event("charge.dispute.created", dispute_id).to_dict())

    with ThreadPoolExecutor(6) as pool:
        responses = list(pool.map(lambda _: stack.post(payload, stack.sign(payload)), range(6)))

    assert {r.status_code for r in responses} <= {200, 409}
    assert {r.json()["action"] for r in responses} <= {"started", "duplicate", "in_progress"}
    execution_id = run_of(stack, dispute_id)
    event_id = json.loads(payload)["id"]
    wait_until(lambda: (stack.recorded(event_id) or {}).get("deliveries", 0) >= 7, "deliveries")
    assert [r.execution_id for r in stack.runs_for(dispute_id)] == [execution_id]
    paused = finished(stack, execution_id, "waiting_approval")
    assert [a.tool_name for a in paused.pending_approvals] == ["submit_dispute_evidence"]


def test_bad_or_missing_signatures_get_400_and_start_nothing(stack: Stack) -> None:
    payload = forged_event("evt_forged_1", "dp_forged_1")
    tampered = payload.replace("4200", "1")
    attempts = {
        "no header": stack.post(payload, None),
        "garbage": stack.post(payload, "not-a-signature"),
        "wrong secret": stack.post(payload, stack.sign(payload, secret="whsec_not_ours")),
        "tampered payload": stack.post(tampered, stack.sign(payload)),
        "replayed an hour later": stack.post(payload, stack.sign(payload, age=3600)),
    }

    for case, response in attempts.items():
        assert response.status_code == 400, case
        assert "error" in response.json(), case
    assert stack.recorded("evt_forged_1") is None
    assert "dp_forged_1" not in dispute_runs(stack.home)
    assert stack.runs_for("dp_forged_1") == []


def test_a_signed_event_for_an_unknown_payment_shows_stripes_message(stack: Stack) -> None:
    payload = forged_event("evt_forged_2", "dp_forged_2")

    response = stack.post(payload, stack.sign(payload))

    assert response.status_code == 200 and response.json()["action"] == "started"
    result = finished(stack, response.json()["execution_id"])
    assert result.last_agent == "Triage Agent"
    assert "No such payment_intent: 'pi_for_dp_forged_2'" in result.output


def test_event_types_not_handled_get_200_and_are_recorded(stack: Stack) -> None:
    intent_id, dispute_id = pay(stack, "1234")
    finished(stack, run_of(stack, dispute_id))
    others = [
        stack.event("payment_intent.succeeded", intent_id),
        stack.event("charge.dispute.funds_withdrawn", dispute_id),
        stack.event("charge.dispute.closed", dispute_id),
    ]

    for event in others:
        recorded = wait_until(lambda e=event: stack.recorded(e.id), f"{event.type} recorded")
        assert (recorded["type"], recorded["action"]) == (event.type, "ignored")
        assert recorded["execution_id"] is None
        assert [a["status_code"] for a in stack.sandbox.delivery_attempts(event.id)] == [200]
    assert len(stack.runs_for(dispute_id)) == 1


def test_without_a_secret_events_are_refused_for_a_retry(tmp_path: Path) -> None:
    home, port = tmp_path / "home", free_port()
    home.mkdir()
    server = start_server(home, port, tmp_path / "logs")
    try:
        payload = forged_event("evt_forged_3", "dp_forged_3")
        response = httpx.post(
            f"http://127.0.0.1:{port}/webhooks/stripe",
            content=payload,
            headers={"Stripe-Signature": sign_payload(payload, "whsec_x", int(time.time()))},
            timeout=10,
        )
    finally:
        stop(server)
    assert response.status_code == 503
    assert "STRIPE_WEBHOOK_SECRET is not set" in response.json()["error"]
    assert webhook_events(home) == []
