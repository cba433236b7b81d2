"""Stripe into frontdesk: webhooks into ``frontdesk serve`` (the sandbox delivers real signed
events over HTTP to the server in a child process), one durable run per dispute however often
or concurrently it arrives, and which Stripe the app talks to."""

from __future__ import annotations

import json
import select
import socket
import sqlite3
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
from frontdesk.apps.disputes import (
    StripeNotConfigured,
    StripeSettings,
    dispute_runs,
    handle_event,
    run_dispute,
    start_dispute_run,
    webhook_events,
)
from frontdesk.apps.disputes._stripe import format_amount
from frontdesk.apps.disputes.intake import dispute_execution_id
from frontdesk.apps.disputes.tools import retrieve_payment_intent
from frontdesk.sandbox.stripe import SandboxServer, running_sandbox, sign_payload
from frontdesk.server import create_app
from test_disputes_app import (  # noqa: F401 (the fixtures the in-process intake tests use)
    client_fixture,
    closes,
    data_for,
    dispute_of,
    invoke,
    pay,
    rules_fixture,
    sandbox_fixture,
    stripe_message,
    wait_until,
)
from test_disputes_e2e import cli, client_for, serve_in_thread, spawn, stop

from conftest import port_from

pytestmark = pytest.mark.e2e

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
        return [
            r
            for r in runs
            if json.loads(r.input).get("dispute_id") == dispute_id
            and r.agent != "Evidence Submission Agent"  # the run that submits its evidence
        ]

    def event(self, event_type: str, object_id: str) -> Any:
        events = self.client.v1.events.list(params={"type": event_type, "limit": 100}).data
        (event,) = [e for e in events if e.data.object.id == object_id]
        return event

    def recorded(self, event_id: str) -> dict[str, Any] | None:
        return next((e for e in webhook_events(self.home) if e["event_id"] == event_id), None)


def start_server(
    home: Path, logs: Path, sock: socket.socket | None = None, **env: str
) -> tuple[subprocess.Popen[bytes], str]:
    """``frontdesk serve`` in a child process, answering /healthz when this returns, and its
    URL. It serves on ``sock`` when given, else on a port it picks; either way it writes the
    port to a file. A server that never answers is stopped."""
    port_file = logs / "serve.port"
    where = ["--port", "0"] if sock is None else ["--fd", str(sock.fileno())]
    fds = () if sock is None else (sock.fileno(),)
    server = spawn(home, logs, "serve", *where, "--port-file", str(port_file), pass_fds=fds, **env)
    try:
        url = f"http://127.0.0.1:{port_from(port_file, server)}"

        def healthy() -> bool:
            assert server.poll() is None, (logs / "serve.err").read_text()
            try:
                # Up once it answers: without the token, health is a 401.
                return httpx.get(f"{url}/healthz", timeout=2).status_code in (200, 401)
            except httpx.TransportError:
                return False

        wait_until(healthy, "frontdesk serve to answer")
    except BaseException:
        stop(server)
        raise
    return server, url


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    root = tmp_path_factory.mktemp("webhooks")
    home = root / "home"
    home.mkdir()
    with running_sandbox(root / "stripe.db", webhook_retry_delays=FAST_RETRIES) as sandbox:
        client = sandbox.client(max_network_retries=0)
        # The endpoint needs the server's URL and the server needs the endpoint's secret: the
        # socket is bound here, never released, and handed to the server.
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP) as sock:
            sock.bind(("127.0.0.1", 0))
            endpoint = client.v1.webhook_endpoints.create(
                params={
                    "url": f"http://127.0.0.1:{sock.getsockname()[1]}/webhooks/stripe",
                    "enabled_events": ["*"],
                }
            )
            assert endpoint.secret is not None
            server, url = start_server(
                home, root / "logs", sock,
                STRIPE_WEBHOOK_SECRET=endpoint.secret, FRONTDESK_STRIPE_API_BASE=sandbox.url,
            )  # fmt: skip
        try:
            with AgentRuntime(home, recover=False) as reader:
                yield Stack(home, sandbox, client, url, endpoint.secret, reader)
        finally:
            stop(server)


def disputed(stack: Stack, order_id: str) -> tuple[str, str]:
    """A disputed payment for ``order_id``: its payment intent and dispute ids."""
    intent = pay(stack.client, order_id)
    return intent.id, dispute_of(stack.client, intent.id).id


def run_of(stack: Stack, dispute_id: str) -> str:
    found: str = wait_until(lambda: dispute_runs(stack.reader).get(dispute_id), "the dispute's run")
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


# Webhooks into frontdesk serve ------------------------------------------------------------


@pytest.mark.slow
def test_healthz_needs_the_token(stack: Stack) -> None:
    assert httpx.get(f"{stack.url}/healthz", timeout=5).status_code == 401
    token = (stack.home / "api-token").read_text().strip()
    response = httpx.get(
        f"{stack.url}/healthz", headers={"Authorization": f"Bearer {token}"}, timeout=5
    )
    assert response.status_code == 200
    assert response.json()["status"] == "ok" and "rules" in response.json()["model"]


@pytest.mark.slow
def test_a_new_dispute_starts_one_run_that_closes_it(stack: Stack) -> None:
    _, dispute_id = disputed(stack, "1234")

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


@pytest.mark.slow
def test_redelivered_events_start_nothing_new(stack: Stack) -> None:
    _, dispute_id = disputed(stack, "1234")
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


@pytest.mark.slow
def test_concurrent_duplicate_deliveries_start_one_run(stack: Stack) -> None:
    _, dispute_id = disputed(stack, "9101")
    payload = json.dumps(stack.event("charge.dispute.created", dispute_id).to_dict())

    with ThreadPoolExecutor(6) as pool:
        responses = list(pool.map(lambda _: stack.post(payload, stack.sign(payload)), range(6)))

    assert {r.status_code for r in responses} <= {200, 409}
    assert {r.json()["action"] for r in responses} <= {"started", "duplicate"}
    execution_id = run_of(stack, dispute_id)
    event_id = json.loads(payload)["id"]
    wait_until(lambda: (stack.recorded(event_id) or {}).get("deliveries", 0) >= 7, "deliveries")
    assert [r.execution_id for r in stack.runs_for(dispute_id)] == [execution_id]
    finished(stack, execution_id)  # the report; the submission waits in a run of its own
    paused = finished(stack, f"dispute-submit:{dispute_id}", "waiting_approval")
    assert [a.tool_name for a in paused.pending_approvals] == ["submit_dispute_evidence"]


@pytest.mark.slow
def test_bad_or_missing_signatures_get_400_and_start_nothing(stack: Stack) -> None:
    payload = forged_event("evt_forged_1", "dp_forged_1")
    tampered = payload.replace("4200", "1")
    attempts = {
        "no header": stack.post(payload, None),
        "garbage": stack.post(payload, "not-a-signature"),
        "wrong secret": stack.post(payload, stack.sign(payload, secret="whsec_not_ours")),
        "tampered payload": stack.post(tampered, stack.sign(payload)),
        "replayed an hour later": stack.post(payload, stack.sign(payload, age=3600)),
        "signed, not JSON": stack.post("hello", stack.sign("hello")),
        "signed, not an event": stack.post('{"id": 1}', stack.sign('{"id": 1}')),
    }

    for case, response in attempts.items():
        assert response.status_code == 400, case
        assert "error" in response.json(), case
    assert stack.recorded("evt_forged_1") is None
    assert "dp_forged_1" not in dispute_runs(stack.reader)
    assert stack.runs_for("dp_forged_1") == []


@pytest.mark.slow
def test_a_signed_event_for_an_unknown_payment_shows_stripes_message(stack: Stack) -> None:
    payload = forged_event("evt_forged_2", "dp_forged_2")

    response = stack.post(payload, stack.sign(payload))

    assert response.status_code == 200 and response.json()["action"] == "started"
    result = finished(stack, response.json()["execution_id"])
    assert result.last_agent == "Triage Agent"
    assert "No such payment_intent: 'pi_for_dp_forged_2'" in result.output


@pytest.mark.slow
def test_event_types_not_handled_get_200_and_are_recorded(stack: Stack) -> None:
    intent_id, dispute_id = disputed(stack, "1234")
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


@pytest.mark.slow
def test_without_a_secret_events_are_refused_for_a_retry(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    server, url = start_server(home, tmp_path / "logs")
    try:
        payload = forged_event("evt_forged_3", "dp_forged_3")
        response = httpx.post(
            f"{url}/webhooks/stripe",
            content=payload,
            headers={"Stripe-Signature": sign_payload(payload, "whsec_x", int(time.time()))},
            timeout=10,
        )
    finally:
        stop(server)
    assert response.status_code == 503
    assert "STRIPE_WEBHOOK_SECRET is not set" in response.json()["error"]
    assert webhook_events(home) == []


# Hostile and malformed webhooks: a 4xx with the reason, never a 500 -------------------------

SECRET = "whsec_hostile_input"
CAP = 256 * 1024


@dataclass
class Served:
    """``create_app`` served over HTTP on a loopback port, on a rules runtime."""

    home: Path
    url: str
    runtime: AgentRuntime

    def post(self, payload: str) -> httpx.Response:
        headers = {"Content-Type": "application/json", "Stripe-Signature": signed(payload)}
        return httpx.post(
            f"{self.url}/webhooks/stripe", content=payload, headers=headers, timeout=30
        )

    def address(self) -> tuple[str, int]:
        host, _, port = self.url.removeprefix("http://").partition(":")
        return host, int(port)


def signed(payload: str) -> str:
    return sign_payload(payload, SECRET, int(time.time()))


@pytest.fixture
def served(home: Path, sandbox: SandboxServer) -> Iterator[Served]:
    with (
        AgentRuntime(home, model="rules", recover=False) as runtime,
        serve_in_thread(create_app(runtime, webhook_secret=SECRET)) as url,
    ):
        yield Served(home, url, runtime)


def dispute_event(**dispute: Any) -> dict[str, Any]:
    """A signed-able ``charge.dispute.created`` event whose dispute has ``dispute`` changed
    (a value of None removes the field)."""
    event: dict[str, Any] = json.loads(forged_event("evt_hostile", "dp_hostile"))
    obj = event["data"]["object"]
    for key, value in dispute.items():
        if value is None:
            obj.pop(key, None)
        else:
            obj[key] = value
    return event


HOSTILE = {
    "dispute id with ../": (
        dispute_event(id="../../../etc/passwd"),
        "is not a Stripe id",
    ),
    "non-ASCII dispute id": (
        dispute_event(id="dp_\u00fcn\u00efc\u00f8d\u00e9"),
        "is not a Stripe id",
    ),
    "dispute id of 186 characters": (dispute_event(id="dp_" + "x" * 183), "is not a Stripe id"),
    "dispute id of 250 characters": (dispute_event(id="dp_" + "y" * 247), "is not a Stripe id"),
    "reason past 4,000 characters": (dispute_event(reason="x" * 4000), "the limit is 4000"),
    "dispute without an id": (dispute_event(id=None), "the dispute has no id"),
    "data a string": ({**dispute_event(), "data": "a string"}, "data is a JSON string"),
    "data a list": ({**dispute_event(), "data": [{"object": {}}]}, "data is a JSON array"),
    "data.object null": (
        {**dispute_event(), "data": {"object": None}},
        "data.object is a JSON null",
    ),
    "JSON array body": ([dispute_event()], "the payload is a JSON array"),
    "JSON string body": ("charge.dispute.created", "the payload is a JSON string"),
    "JSON null body": (None, "the payload is a JSON null"),
    "event id with a lone surrogate": (
        {**dispute_event(), "id": "evt_\ud83d"},
        "lone surrogate",
    ),
}


@pytest.mark.parametrize("case", HOSTILE)
def test_signed_but_unusual_payloads_get_400_with_the_reason(served: Served, case: str) -> None:
    event, reason = HOSTILE[case]
    payload = json.dumps(event)

    response = served.post(payload)

    assert response.status_code == 400, response.text
    assert reason in response.json()["error"]
    assert webhook_events(served.home) == []
    assert served.runtime.runs() == [] and dispute_runs(served.runtime) == {}
    # The server is fine: a well-formed event is still handled.
    good = served.post(forged_event("evt_fine", "dp_fine"))
    assert (good.status_code, good.json()["action"]) == (200, "started")
    assert list(dispute_runs(served.runtime)) == ["dp_fine"]


def test_the_longest_accepted_dispute_id_starts_its_run(served: Served) -> None:
    dispute_id = "dp_" + "z" * 182
    response = served.post(json.dumps(dispute_event(id=dispute_id)))
    assert response.status_code == 200 and response.json()["action"] == "started"
    assert dispute_runs(served.runtime) == {dispute_id: dispute_execution_id(dispute_id)}


def read_response(sock: socket.socket) -> bytes:
    """The server's answer: its head and as much of the body as its Content-Length says,
    or whatever came before the server closed the connection."""
    data = b""
    while True:
        head, found, body = data.partition(b"\r\n\r\n")
        if found:
            length = next(
                (
                    int(line.split(b":", 1)[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length:")
                ),
                0,
            )
            if len(body) >= length:
                return data
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            return data
        if not chunk:
            return data
        data += chunk


def request_head(*headers: str) -> bytes:
    lines = ["POST /webhooks/stripe HTTP/1.1", "Host: 127.0.0.1", *headers, "", ""]
    return "\r\n".join(lines).encode()


def test_a_body_declared_over_the_cap_gets_413_before_it_is_sent(served: Served) -> None:
    with socket.create_connection(served.address(), timeout=60) as sock:
        sock.sendall(
            request_head(
                "Content-Type: application/json",
                f"Stripe-Signature: {signed('x')}",
                f"Content-Length: {300 * 1024 * 1024}",
            )
        )
        sock.sendall(b'{"id": "evt_')  # the start of 300 MB that never comes
        response = read_response(sock)
    assert response.startswith(b"HTTP/1.1 413"), response[:200]
    assert b"larger than 256 KiB" in response


def test_a_chunked_body_is_cut_off_once_it_passes_the_cap(served: Served) -> None:
    chunk = b"x" * 65536
    frame = b"%x\r\n%s\r\n" % (len(chunk), chunk)
    budget = 64 * 1024 * 1024  # the old server read all of it before answering
    sent = 0
    with socket.create_connection(served.address(), timeout=60) as sock:
        sock.sendall(
            request_head(
                "Content-Type: application/json",
                f"Stripe-Signature: {signed('x')}",
                "Transfer-Encoding: chunked",
            )
        )
        while sent < budget and not select.select([sock], [], [], 0)[0]:
            try:
                sock.sendall(frame)
            except (BrokenPipeError, ConnectionResetError):
                break
            sent += len(frame)
        response = read_response(sock)
    assert response.startswith(b"HTTP/1.1 413"), (sent, response[:200])
    assert sent < budget, sent


def test_a_body_at_the_cap_is_read_and_one_byte_more_is_not(served: Served) -> None:
    bare = dispute_event(padding="")
    payload = json.dumps(dispute_event(padding="p" * (CAP - len(json.dumps(bare)))))
    assert len(payload) == CAP
    assert served.post(payload).status_code == 200
    assert served.post(payload + " ").status_code == 413


# Intake in one process: one run per dispute ------------------------------------------------


async def test_a_second_process_finds_the_run_the_first_started(
    client: stripe.StripeClient, rules: AgentRuntime, home: Path
) -> None:
    data = data_for(client, pay(client, "1234").id)

    first = start_dispute_run(rules, data)
    with AgentRuntime(home, model="rules", recover=False) as other:
        second = start_dispute_run(other, data)

    assert first.started and not second.started
    assert first.execution_id == second.execution_id == dispute_execution_id(data["dispute_id"])
    assert dispute_runs(rules) == {data["dispute_id"]: first.execution_id}
    assert len(rules.runs()) == 1


async def test_concurrent_starts_of_one_dispute_make_one_run(
    client: stripe.StripeClient, rules: AgentRuntime
) -> None:
    data = data_for(client, pay(client, "9101").id)
    with ThreadPoolExecutor(8) as pool:
        runs = list(pool.map(lambda _: start_dispute_run(rules, data), range(8)))
    assert sum(r.started for r in runs) == 1 and len({r.execution_id for r in runs}) == 1
    assert len(rules.runs()) == 1


async def test_events_are_recorded_and_only_new_disputes_start_runs(
    client: stripe.StripeClient, rules: AgentRuntime, home: Path
) -> None:
    intent = pay(client, "1234")
    events = {e.type: e.to_dict() for e in client.v1.events.list(params={"limit": 100}).data}

    started = handle_event(rules, events["charge.dispute.created"])
    again = handle_event(rules, events["charge.dispute.created"])
    ignored = handle_event(rules, events["payment_intent.succeeded"])

    assert (started.action, again.action, ignored.action) == ("started", "duplicate", "ignored")
    assert again.execution_id == started.execution_id
    recorded = {e["type"]: e for e in webhook_events(home)}
    assert recorded["charge.dispute.created"]["deliveries"] == 2
    assert recorded["charge.dispute.created"]["execution_id"] == started.execution_id
    assert recorded["payment_intent.succeeded"]["object_id"] == intent.id
    assert recorded["payment_intent.succeeded"]["action"] == "ignored"
    assert started.execution_id is not None
    assert rules.handle(started.execution_id).result(timeout=30).status == "completed"


async def test_processing_a_dispute_twice_reuses_its_run(
    client: stripe.StripeClient, rules: AgentRuntime
) -> None:
    intent = pay(client, "1234")

    first = await run_dispute(intent.id, runtime=rules)
    second = await run_dispute(intent.id, runtime=rules)

    assert first.started and not second.started
    assert first.run is not None and second.run is not None
    assert second.run.execution_id == first.run.execution_id
    assert second.final_output == first.final_output
    assert len(rules.runs()) == 1
    assert closes(client, first.relevant_data["dispute_id"]) == 1


# Which Stripe the app talks to -------------------------------------------------------------


def test_without_a_secret_key_the_app_uses_the_sandbox(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("STRIPE_SECRET_KEY", raising=False)
    monkeypatch.delenv("FRONTDESK_STRIPE_API_BASE", raising=False)
    default = StripeSettings.from_env()
    assert (default.api_base, default.is_sandbox) == ("http://127.0.0.1:12111", True)
    assert default.api_key.startswith("sk_test_")
    monkeypatch.setenv("FRONTDESK_STRIPE_API_BASE", "http://127.0.0.1:4000/")
    assert StripeSettings.from_env().api_base == "http://127.0.0.1:4000"


def test_a_secret_key_means_stripe_and_a_live_key_never_goes_elsewhere(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("FRONTDESK_STRIPE_API_BASE", raising=False)
    monkeypatch.setenv("STRIPE_SECRET_KEY", "sk_test_mine")
    assert StripeSettings.from_env() == StripeSettings("sk_test_mine", "https://api.stripe.com")
    monkeypatch.setenv("STRIPE_SECRET_KEY", "sk_live_mine")
    assert StripeSettings.from_env().api_base == "https://api.stripe.com"
    monkeypatch.setenv("FRONTDESK_STRIPE_API_BASE", "http://127.0.0.1:12111")
    with pytest.raises(StripeNotConfigured, match="live key"):
        StripeSettings.from_env()


async def test_the_address_is_read_at_every_call(
    home: Path, client: stripe.StripeClient, sandbox: SandboxServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    intent = pay(client, "1234")
    assert (await invoke(retrieve_payment_intent, payment_intent_id=intent.id))["id"] == intent.id
    with running_sandbox(home.parent / "other.db") as other:
        monkeypatch.setenv("FRONTDESK_STRIPE_API_BASE", other.url)
        result = await invoke(retrieve_payment_intent, payment_intent_id=intent.id)
    assert stripe_message(result) == f"No such payment_intent: '{intent.id}'"


def test_amounts_are_shown_in_major_units() -> None:
    assert format_amount(2000, "usd") == "20.00 USD"
    assert format_amount(123456, "eur") == "1,234.56 EUR"
    assert format_amount(500, "jpy") == "500 JPY"
    assert format_amount(None, "usd") == "unknown amount"


@pytest.mark.slow
def test_stripe_sandbox_command_serves_the_sandbox(home: Path) -> None:
    port_file = home.parent / "sandbox.port"
    server = spawn(
        home, home.parent / "logs", "stripe-sandbox", "--port", "0", "--port-file", str(port_file)
    )
    try:
        client = client_for(f"http://127.0.0.1:{port_from(port_file, server)}")

        def created() -> Any:
            try:
                return pay(client, "1234")
            except stripe.APIConnectionError:
                return None

        intent = wait_until(created, "the sandbox to answer")
    finally:
        stop(server)
    assert intent.status == "succeeded"
    with sqlite3.connect(home / "stripe-sandbox.db") as conn:
        assert (
            conn.execute("SELECT count(*) FROM objects WHERE id = ?", (intent.id,)).fetchone()[0]
            == 1
        )


@pytest.mark.slow
def test_the_disputes_demo_starts_a_sandbox_when_none_answers(home: Path, refused_url: str) -> None:
    nobody = refused_url

    out = " ".join(cli(home, "disputes", "demo", stripe_url=nobody).stdout.split())

    assert "Stripe at http://127.0.0.1:" in out and f"Stripe at {nobody}" not in out
    assert "Reasoning for closing the dispute:" in out and "Stripe now shows it as lost" in out
    assert "approved by demo; run completed" in out and "the dispute is now under_review" in out
    with running_sandbox(home / "stripe-sandbox.db") as kept:
        disputes = kept.client().v1.disputes.list().data
    assert sorted(d.status for d in disputes) == ["lost", "under_review"]
