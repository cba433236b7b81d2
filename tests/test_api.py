"""The console's JSON API over real HTTP: ``frontdesk serve`` in a child process on a loopback
port, with its own home, driven by httpx. Authentication (401), unknown ids (404), decisions
taken twice and stale conversations (409), bad bodies (422), CSRF, and server-sent events that
resume after ``Last-Event-ID``."""

from __future__ import annotations

import json
import re
import stat
import subprocess
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from frontdesk import AgentRuntime
from frontdesk.apps.airline import AirlineAgentContext
from frontdesk.apps.airline import triage_agent as airline_triage
from frontdesk.apps.support import init_db
from frontdesk.apps.support import triage_agent as support_triage
from frontdesk.server._auth import TOKEN_FILENAME, load_token

from conftest import PYTHON, WAIT_SECONDS, child_env, port_from, wait_until

pytestmark = pytest.mark.e2e

TOKEN = "test-token-0123456789abcdef"
REFUND = "I was charged $99 twice last month (invoice INV-8821). Can I get a refund?"
WAIT = WAIT_SECONDS


@dataclass
class Console:
    """``frontdesk serve`` in a child process, and a runtime on the same home."""

    url: str
    home: Path
    runtime: AgentRuntime
    process: subprocess.Popen[bytes]

    def client(self, token: str | None = TOKEN, **kw: Any) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=WAIT, **kw)

    def log(self) -> str:
        return (self.home / "serve.log").read_text(errors="replace")


def start_console(home: Path) -> Console:
    """Serve ``home`` on a free loopback port; returns once ``/healthz`` answers."""
    home.mkdir(parents=True, exist_ok=True)
    port_file = home / "port"
    log = (home / "serve.log").open("wb")
    process = subprocess.Popen(
        [PYTHON, "-m", "frontdesk", "--home", str(home), "--model", "rules", "serve",
         "--port", "0", "--port-file", str(port_file)],
        env=child_env(FRONTDESK_API_TOKEN=TOKEN, FRONTDESK_HOME=str(home)),
        stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    log.close()
    try:
        url = f"http://127.0.0.1:{port_from(port_file, process)}"

        def ready() -> bool:
            try:
                auth = {"Authorization": f"Bearer {TOKEN}"}
                return httpx.get(f"{url}/healthz", headers=auth, timeout=5).status_code == 200
            except httpx.TransportError:
                return False

        wait_until(ready, "frontdesk serve to answer", WAIT)
        runtime = AgentRuntime(home, model="rules", recover=False)
    except BaseException:
        stop_console(process)
        raise
    return Console(url, home, runtime, process)


def stop_console(process: subprocess.Popen[bytes]) -> None:
    process.kill()
    process.wait(30)


@contextmanager
def running_console(tmp_path_factory: pytest.TempPathFactory, name: str) -> Iterator[Console]:
    """A served console on a new home with the support desk's data; stopped and reaped after."""
    home = tmp_path_factory.mktemp(name) / "home"
    init_db(home)
    served = start_console(home)
    try:
        yield served
    finally:
        served.runtime.close()
        stop_console(served.process)


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Console]:
    with running_console(tmp_path_factory, "console") as served:
        yield served


def waiting_refund(console: Console) -> str:
    """A support run paused on its refund approval; returns its id."""
    init_db(console.home, reset=True)
    result = console.runtime.run(support_triage, REFUND)
    assert result.status == "waiting_approval", result
    return result.execution_id


def login(console: Console, name: str = "alice") -> tuple[httpx.Client, str]:
    """A client logged in to the console through its form, and its CSRF token."""
    client = console.client(token=None, follow_redirects=False)
    form = client.get("/login")
    login_token = re.search(r'name="login_token" value="([^"]+)"', form.text)
    assert login_token is not None, form.text
    answer = client.post(
        "/login",
        data={"name": name, "token": TOKEN, "login_token": login_token[1], "next": "/approvals"},
    )
    assert answer.status_code == 303, answer.text
    assert answer.headers["location"] == "/approvals"
    page = client.get("/approvals")
    csrf = re.search(r'<meta name="csrf-token" content="([^"]+)"', page.text)
    assert csrf is not None
    return client, csrf[1]


def sse_events(text: str) -> list[dict[str, Any]]:
    """Parse a server-sent event stream."""
    events = []
    for block in text.split("\n\n"):
        fields: dict[str, Any] = {}
        for line in block.splitlines():
            if line.startswith(":") or ":" not in line:
                continue
            name, _, value = line.partition(":")
            fields[name] = value.removeprefix(" ")
        if "data" in fields:
            fields["data"] = json.loads(fields["data"])
            events.append(fields)
    return events


# -- authentication ------------------------------------------------------------------------------

ROUTES = [
    ("GET", "/healthz"),
    ("GET", "/api/runs"),
    ("GET", "/api/runs/x"),
    ("GET", "/api/runs/x/events"),
    ("POST", "/api/runs"),
    ("POST", "/api/runs/x/cancel"),
    ("POST", "/api/runs/x/retry"),
    ("GET", "/api/approvals"),
    ("POST", "/api/approvals/apv_x/approve"),
    ("POST", "/api/approvals/apv_x/reject"),
    ("GET", "/api/conversations"),
    ("POST", "/api/conversations"),
    ("GET", "/api/conversations/x"),
    ("POST", "/api/conversations/x/messages"),
    ("GET", "/api/disputes"),
    ("GET", "/api/escalations"),
    ("GET", "/api/live/runs"),
    ("GET", "/api/live/approvals"),
    ("GET", "/openapi.json"),
]


def test_every_api_route_needs_the_token(console: Console) -> None:
    for token in (None, "wrong-token-0123456789"):
        with console.client(token=token) as client:
            for method, path in ROUTES:
                answer = client.request(method, path, json={})
                assert answer.status_code == 401, (method, path, answer.text)
                assert answer.headers["www-authenticate"] == "Bearer"
                assert "Bearer" in answer.json()["error"]
    # Pages send the browser to the login form instead.
    with console.client(token=None) as client:
        for path in ("/", "/runs/x", "/approvals", "/conversations", "/disputes", "/escalations"):
            answer = client.get(path)
            assert answer.status_code == 303, path
            assert answer.headers["location"].startswith("/login?next=")
        # The webhook is the one route without the token (it has its own signature).
        assert client.post("/webhooks/stripe", content=b"{}").status_code != 401


def test_the_token_is_generated_once_into_the_home_with_mode_0600(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("FRONTDESK_API_TOKEN", raising=False)
    first = load_token(tmp_path)
    assert first.created and len(first.value) >= 32
    path = tmp_path / TOKEN_FILENAME
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    again = load_token(tmp_path)
    assert (again.value, again.created) == (first.value, False)
    monkeypatch.setenv("FRONTDESK_API_TOKEN", "from-the-environment-123")
    assert load_token(tmp_path).value == "from-the-environment-123"
    monkeypatch.setenv("FRONTDESK_API_TOKEN", "short")
    with pytest.raises(ValueError, match="at least"):
        load_token(tmp_path)


def test_the_token_never_appears_in_pages_answers_or_logs(console: Console) -> None:
    waiting_refund(console)
    with console.client() as client:
        bodies = [
            client.get(path).text for path in ("/", "/approvals", "/api/runs", "/api/approvals")
        ]
    client, _ = login(console)
    with closing(client):
        bodies += [client.get(path).text for path in ("/", "/approvals", "/conversations")]
    for body in bodies:
        assert TOKEN not in body
    assert TOKEN not in console.log()


# -- 404, 409, 422 ---------------------------------------------------------------------------------


def test_unknown_ids_are_404(console: Console) -> None:
    with console.client() as client:
        for method, path, body in [
            ("GET", "/api/runs/run_nope", None),
            ("GET", "/api/runs/run_nope/events", None),
            ("POST", "/api/runs/run_nope/cancel", None),
            ("POST", "/api/runs/run_nope/retry", None),
            ("POST", "/api/approvals/apv_nope/approve", {}),
            ("POST", "/api/approvals/apv_nope/reject", {"reason": "no"}),
            ("GET", "/api/conversations/nope", None),
            ("POST", "/api/conversations/nope/messages", {"user_input": "hi", "chat_length": 0}),
        ]:
            answer = client.request(method, path, json=body)
            assert answer.status_code == 404, (path, answer.text)
            assert "nope" in answer.json()["error"]


def test_deciding_an_approval_twice_is_409_and_the_decider_comes_from_the_session(
    console: Console,
) -> None:
    execution_id = waiting_refund(console)
    with console.client() as client:
        pending = client.get("/api/approvals", params={"execution_id": execution_id}).json()
        (item,) = pending["items"]
        assert item["tool_name"] == "process_refund"
        assert item["run"]["input"] == REFUND
        approval_id = item["approval_id"]
        # The body cannot name the decider.
        spoof = client.post(f"/api/approvals/{approval_id}/approve", json={"by": "mallory"})
        assert spoof.status_code == 422
    client, csrf = login(console, name="alice")
    with closing(client):
        first = client.post(
            f"/api/approvals/{approval_id}/approve",
            json={"note": "duplicate charge confirmed"},
            headers={"X-CSRF-Token": csrf},
        )
        assert first.status_code == 200, first.text
        assert first.json()["decided_by"] == "alice"
        assert first.json()["note"] == "duplicate charge confirmed"
        again = client.post(
            f"/api/approvals/{approval_id}/reject",
            json={"reason": "changed my mind"},
            headers={"X-CSRF-Token": csrf},
        )
        assert again.status_code == 409, again.text
        assert "already approved by alice" in again.json()["error"]
    # The server drives the approved run to the end.
    done = console.runtime.handle(execution_id).result(timeout=WAIT)
    assert done.status == "completed"
    assert any(e.type == "tool_result" and e.tool_name == "process_refund" for e in done.events)


def test_cancel_and_retry_that_do_not_fit_the_run_are_409(console: Console) -> None:
    done = console.runtime.run(support_triage, "I cannot log in, reset my password please")
    assert done.status == "completed"
    with console.client() as client:
        for action in ("cancel", "retry"):
            answer = client.post(f"/api/runs/{done.execution_id}/{action}")
            assert answer.status_code == 409, answer.text


def test_bad_bodies_and_parameters_are_422(console: Console) -> None:
    with console.client() as client:
        for path, body in [
            ("/api/runs", {}),
            ("/api/runs", {"message": "hi"}),
            ("/api/runs", {"app": "support", "agent": "x", "message": "hi"}),
            ("/api/runs", {"app": "nope", "message": "hi"}),
            ("/api/runs", {"agent": "not-registered", "message": "hi"}),
            ("/api/runs", {"app": "support", "message": "   "}),
            ("/api/runs", {"app": "support", "message": 42}),
            ("/api/approvals/apv_x/reject", {}),
            ("/api/approvals/apv_x/reject", {"reason": ""}),
            ("/api/conversations", {"app": "disputes"}),
            ("/api/conversations/x/messages", {"user_input": "hi", "chat_length": -1}),
            ("/api/conversations/x/messages", {"user_input": "hi"}),
        ]:
            answer = client.post(path, json=body)
            assert answer.status_code == 422, (path, body, answer.text)
            assert answer.json()["error"]
        assert client.post("/api/runs", content=b"{not json").status_code == 422
        for params in [
            {"limit": 0},
            {"limit": 501},
            {"status": "bogus"},
            {"cursor": "not-a-cursor"},
            {"since": "yesterday"},
        ]:
            answer = client.get("/api/runs", params=params)
            assert answer.status_code == 422, (params, answer.text)
        assert client.get("/api/approvals", params={"status": "maybe"}).status_code == 422
        repeated = client.get("/api/runs", params=[("q", "a"), ("q", "b")])
        assert repeated.status_code == 422, repeated.text
        assert repeated.json()["error"] == (
            "query parameter 'q' is given more than once; it takes one"
        )


def test_a_stale_conversation_is_409_with_the_current_history(console: Console) -> None:
    with console.client() as client:
        created = client.post("/api/conversations", json={"app": "airline"})
        assert created.status_code == 201, created.text
        cid = created.json()["conversation_id"]
        sent = client.post(
            f"/api/conversations/{cid}/messages",
            json={"user_input": "I'd like to change my seat", "chat_length": 0},
        )
        assert sent.status_code == 200, sent.text
        lines = sent.json()["lines"]
        assert lines[0] == "User: I'd like to change my seat"
        assert sent.json()["current_agent"] == "Seat Booking Agent"
        stale = client.post(
            f"/api/conversations/{cid}/messages",
            json={"user_input": "my confirmation number is LL0EZ6", "chat_length": 0},
        )
        assert stale.status_code == 409
        assert stale.json()["history"] == lines
        assert client.get(f"/api/conversations/{cid}").json()["history"] == lines
        listed = client.get("/api/conversations").json()["items"]
        assert any(c["conversation_id"] == cid and c["turns"] == 1 for c in listed)


# -- server-sent events ------------------------------------------------------------------------------


def test_events_resume_after_last_event_id(console: Console) -> None:
    done = console.runtime.run(support_triage, "I cannot log in, reset my password please")
    seqs = [e.seq for e in done.events]
    assert len(seqs) >= 5
    with console.client() as client:
        whole = sse_events(client.get(f"/api/runs/{done.execution_id}/events").text)
        ids = [int(e["id"]) for e in whole if "id" in e]
        assert ids == seqs
        assert whole[-1]["event"] == "end" and whole[-1]["data"]["status"] == "completed"
        resumed = sse_events(
            client.get(
                f"/api/runs/{done.execution_id}/events", headers={"Last-Event-ID": str(seqs[2])}
            ).text
        )
        assert [int(e["id"]) for e in resumed if "id" in e] == seqs[3:]
        assert [e["event"] for e in resumed if "id" in e] == [e.type for e in done.events[3:]]


def test_events_stream_live_through_an_approval_and_a_reconnect(console: Console) -> None:
    init_db(console.home, reset=True)
    with console.client() as client:
        started = client.post("/api/runs", json={"app": "support", "message": REFUND})
        assert started.status_code == 201, started.text
        execution_id = started.json()["execution_id"]
        url = f"/api/runs/{execution_id}/events"
        seen: list[dict[str, Any]] = []
        # First connection: read until the run waits for its approval, then drop it.
        with client.stream("GET", url) as stream:
            buffer = ""
            for chunk in stream.iter_text():
                buffer += chunk
                seen = sse_events(buffer)
                if any(e.get("event") == "approval_required" for e in seen):
                    break
        last_id = max(int(e["id"]) for e in seen if "id" in e)
        approval_id = next(
            e["data"]["data"]["approval_id"] for e in seen if e.get("event") == "approval_required"
        )
        # Reconnect with Last-Event-ID while another client approves: nothing is missed.
        with client.stream("GET", url, headers={"Last-Event-ID": str(last_id)}) as stream:
            decided = client.post(f"/api/approvals/{approval_id}/approve", json={})
            assert decided.status_code == 200, decided.text
            rest = sse_events(stream.read().decode())
    ids = [int(e["id"]) for e in seen if "id" in e] + [int(e["id"]) for e in rest if "id" in e]
    final = console.runtime.get(execution_id)
    assert ids == [e.seq for e in final.events]
    assert rest[-1]["event"] == "end" and rest[-1]["data"]["status"] == "completed"
    assert any(e.get("event") == "approval_decided" for e in rest)


# -- CSRF and headers ----------------------------------------------------------------------------------


def test_cookie_authenticated_changes_need_the_csrf_token(console: Console) -> None:
    execution_id = waiting_refund(console)
    (approval,) = console.runtime.approvals(execution_id=execution_id)
    client, csrf = login(console, name="bob")
    with closing(client):
        # A cross-site request carries the cookie but cannot know the token.
        for headers in ({}, {"X-CSRF-Token": "forged"}):
            refused = client.post(
                f"/api/approvals/{approval.approval_id}/approve", json={}, headers=headers
            )
            assert refused.status_code == 403, refused.text
        form = client.post(f"/approvals/{approval.approval_id}/approve", data={"note": "x"})
        assert form.status_code == 403
        assert console.runtime.approvals(execution_id=execution_id)[0].status == "pending"
        # Reading needs no CSRF token; the page's form carries it.
        assert client.get("/api/approvals").status_code == 200
        accepted = client.post(
            f"/approvals/{approval.approval_id}/reject",
            data={"reason": "not a duplicate", "csrf_token": csrf},
        )
        assert accepted.status_code == 303
    (decided,) = console.runtime.approvals(status=None, execution_id=execution_id)
    assert (decided.status, decided.decided_by, decided.reason) == (
        "rejected",
        "bob",
        "not a duplicate",
    )


def test_login_refuses_a_wrong_token_and_a_form_from_elsewhere(console: Console) -> None:
    with console.client(token=None, follow_redirects=False) as client:
        page = client.get("/login")
        login_token = re.search(r'name="login_token" value="([^"]+)"', page.text)
        assert login_token is not None
        wrong = client.post(
            "/login", data={"name": "eve", "token": "nope", "login_token": login_token[1]}
        )
        assert wrong.status_code == 401 and "frontdesk_session" not in wrong.cookies
    with console.client(token=None, follow_redirects=False) as other:
        # No login cookie: the form was not loaded by this browser.
        forged = other.post(
            "/login", data={"name": "eve", "token": TOKEN, "login_token": login_token[1]}
        )
        assert forged.status_code == 401 and "frontdesk_session" not in forged.cookies


def test_session_cookie_flags_and_security_headers(console: Console) -> None:
    with console.client(token=None, follow_redirects=False) as client:
        page = client.get("/login")
        login_token = re.search(r'name="login_token" value="([^"]+)"', page.text)
        assert login_token is not None
        answer = client.post(
            "/login", data={"name": "carol", "token": TOKEN, "login_token": login_token[1]}
        )
        cookie = answer.headers["set-cookie"]
        assert "frontdesk_session=" in cookie
        assert "httponly" in cookie.lower() and "samesite=strict" in cookie.lower()
        for path in ("/", "/api/runs", "/login"):
            headers = client.get(path).headers
            csp = headers["content-security-policy"]
            assert "script-src 'self'" in csp and "default-src 'none'" in csp
            assert "unsafe-inline" not in csp
            assert headers["x-content-type-options"] == "nosniff"


def test_customer_text_is_escaped_in_pages_and_json(console: Console) -> None:
    payload = '<script>alert("xss")</script><img src=x onerror=alert(1)>'
    result = console.runtime.run(support_triage, f"My invoice INV-8821 {payload}")
    with console.client() as client:
        page = client.get(f"/runs/{result.execution_id}").text
        assert payload not in page
        assert "&lt;script&gt;alert(&#34;xss&#34;)&lt;/script&gt;" in page
        listing = client.get("/").text
        assert "<script>alert" not in listing
        assert client.get(f"/api/runs/{result.execution_id}").json()["input"].endswith(payload)


def test_the_openapi_schema_is_served_behind_the_token(console: Console) -> None:
    with console.client() as client:
        schema = client.get("/openapi.json").json()
    assert {"/api/runs", "/api/approvals", "/api/conversations/{conversation_id}/messages"} <= set(
        schema["paths"]
    )
    assert schema["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"


def test_a_conversation_started_for_airline_keeps_its_context(console: Console) -> None:
    conversation = console.runtime.conversation(
        "api-airline-1", agent=airline_triage, context=AirlineAgentContext()
    )
    conversation.send("I'd like to change my seat", chat_length=0)
    with console.client() as client:
        detail = client.get("/api/conversations/api-airline-1").json()
    assert detail["current_agent"] == "Seat Booking Agent"
    assert detail["agent_view"]["current"] == "Seat Booking Agent"
    assert detail["agent_view"]["path"] == ["Triage Agent", "Seat Booking Agent"]
    assert set(detail["context"]) == {
        "passenger_name",
        "confirmation_number",
        "seat_number",
        "flight_number",
    }


def test_the_server_warns_when_bound_beyond_loopback() -> None:
    from frontdesk.server._auth import bind_warning

    assert bind_warning("127.0.0.1") is None
    assert bind_warning("::1") is None
    assert bind_warning("localhost") is None
    warning = bind_warning("0.0.0.0")
    assert warning is not None and "0.0.0.0" in warning


def test_serve_prints_a_generated_token_once(tmp_path: Path) -> None:
    home = tmp_path / "home"
    outputs = []
    for attempt in range(2):
        log = tmp_path / f"serve-{attempt}.log"
        env = child_env(FRONTDESK_HOME=str(home), PYTHONUNBUFFERED="1")
        env.pop("FRONTDESK_API_TOKEN", None)
        with log.open("wb") as out:
            process = subprocess.Popen(
                [PYTHON, "-m", "frontdesk", "--home", str(home), "--model", "rules", "serve",
                 "--port", "0"],
                env=env, stdout=out, stderr=subprocess.STDOUT,
            )  # fmt: skip
        try:
            wait_until(lambda log=log: "console: " in log.read_text(), "serve to start", WAIT)
        finally:
            stop_console(process)
        outputs.append(log.read_text())
    token = (home / TOKEN_FILENAME).read_text().strip()
    assert f"API token, shown this once (kept in {home / TOKEN_FILENAME}): {token}" in outputs[0]
    assert token not in outputs[1]
    assert "console: http://127.0.0.1:" in outputs[1]


def test_the_console_script_follows_every_event_type_a_run_stream_sends() -> None:
    """A run page refreshes on each persisted event type the SSE stream names (``text_delta``
    is live only and never stored, so never streamed from the store)."""
    from frontdesk.events import EVENT_TYPES
    from frontdesk.server._console import STATIC

    script = (Path(STATIC) / "console.js").read_text()
    listed = re.search(r"var RUN_EVENTS = \[(.*?)\];", script, re.S)
    assert listed is not None
    names = set(re.findall(r'"(\w+)"', listed.group(1)))
    assert names == (set(EVENT_TYPES) - {"text_delta"}) | {"status"}
