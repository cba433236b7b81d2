"""Conformance tests for the local Stripe sandbox, driven by the official ``stripe`` SDK."""

from __future__ import annotations

import queue
import re
import socket
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
import stripe

from frontdesk.sandbox.stripe import (
    DEFAULT_API_KEY,
    DEFAULT_SANDBOX_URL,
    EVIDENCE_FIELDS,
    SandboxServer,
    configure_stripe,
    create_app,
    default_db_path,
    running_sandbox,
    serve,
)

from conftest import WAIT_SECONDS, Children, port_from, stop, wait_until

FAST_RETRIES = (0.05, 0.1)


# Helpers -----------------------------------------------------------------------------------


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[SandboxServer]:
    with running_sandbox(tmp_path / "stripe.db", webhook_retry_delays=FAST_RETRIES) as server:
        yield server


def make_client(server: SandboxServer, api_key: str | None = None) -> stripe.StripeClient:
    return stripe.StripeClient(
        api_key or server.api_key,
        base_addresses={"api": server.url, "files": server.url, "connect": server.url},
        max_network_retries=0,
    )


@pytest.fixture
def client(sandbox: SandboxServer) -> stripe.StripeClient:
    return make_client(sandbox)


@pytest.fixture
def http(sandbox: SandboxServer) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {sandbox.api_key}"}
    with httpx.Client(base_url=sandbox.url, headers=headers) as raw:
        yield raw


def pay(client: stripe.StripeClient, payment_method: str = "pm_card_visa", **params: Any) -> Any:
    """Create and confirm a 20.00 USD PaymentIntent."""
    base = {"amount": 2000, "currency": "usd", "payment_method": payment_method, "confirm": True}
    return client.v1.payment_intents.create(params={**base, **params})


def dispute_for(client: stripe.StripeClient, intent_id: str) -> Any:
    (dispute,) = client.v1.disputes.list(params={"payment_intent": intent_id}).data
    return dispute


@dataclass
class Received:
    headers: dict[str, str]
    body: str


@dataclass
class Receiver:
    """A local HTTP server standing in for a merchant's webhook endpoint."""

    url: str
    statuses: list[int] = field(default_factory=list)
    requests: queue.Queue[Received] = field(default_factory=queue.Queue)

    def next(self) -> Received:
        try:
            return self.requests.get(timeout=WAIT_SECONDS)
        except queue.Empty:
            raise AssertionError("no webhook delivery arrived") from None


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"])).decode()
            status = state.statuses.pop(0) if state.statuses else 200
            self.send_response(status)
            self.end_headers()
            state.requests.put(Received(dict(self.headers.items()), body))

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}/webhooks"
    yield state
    server.shutdown()
    server.server_close()


# The scenario of the disputes app, with the global stripe configuration -------------------


def test_dispute_scenario_with_global_stripe_module(
    sandbox: SandboxServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(stripe, "api_base", stripe.api_base)
    monkeypatch.setattr(stripe, "api_key", stripe.api_key)
    url = sandbox.url

    stripe.api_base = url
    stripe.api_key = "sk_test_x"
    payment = stripe.PaymentIntent.create(
        amount=2000,
        currency="usd",
        payment_method="pm_card_createDisputeProductNotReceived",
        confirm=True,
        metadata={"order_id": "1234"},
        off_session=True,
        automatic_payment_methods={"enabled": True},
    )
    disputes = stripe.Dispute.list(payment_intent=payment.id)
    d = disputes.data[0]
    assert d.reason == "product_not_received"
    assert d.status == "needs_response"
    assert d.evidence_details.due_by
    assert d.payment_method_details.card.brand == "visa"
    closed = stripe.Dispute.close(d.id)

    assert closed.status == "lost"
    assert stripe.Dispute.retrieve(d.id).status == "lost"
    assert payment.status == "succeeded"
    assert payment.metadata["order_id"] == "1234"


def test_configure_stripe_points_the_global_module_at_the_sandbox(
    sandbox: SandboxServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(stripe, "api_base", stripe.api_base)
    monkeypatch.setattr(stripe, "api_key", stripe.api_key)

    configure_stripe(sandbox.url, "sk_test_configured")

    assert (stripe.api_base, stripe.api_key) == (sandbox.url, "sk_test_configured")
    assert stripe.PaymentIntent.create(amount=500, currency="usd").status == (
        "requires_payment_method"
    )
    assert DEFAULT_SANDBOX_URL == "http://127.0.0.1:12111"


# Server lifecycle and persistence ---------------------------------------------------------


def test_running_sandbox_exposes_url_and_test_key(tmp_path: Path) -> None:
    with running_sandbox(tmp_path / "s.db") as server:
        assert server.url.startswith("http://127.0.0.1:")
        assert server.api_key.startswith("sk_test_")
        assert make_client(server).v1.events.list().data == []
    with pytest.raises(RuntimeError, match="not running"):
        _ = server.url


def test_state_survives_a_server_restart(tmp_path: Path) -> None:
    db = tmp_path / "persist.db"
    with running_sandbox(db) as first:
        intent = make_client(first).v1.payment_intents.create(
            params={"amount": 700, "currency": "eur"}, options={"idempotency_key": "restart-key"}
        )
    with running_sandbox(db) as second:
        restarted = make_client(second)
        assert restarted.v1.payment_intents.retrieve(intent.id).amount == 700
        replay = restarted.v1.payment_intents.create(
            params={"amount": 700, "currency": "eur"}, options={"idempotency_key": "restart-key"}
        )
        assert replay.id == intent.id
        assert replay.last_response.headers["Idempotent-Replayed"] == "true"
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        (data,) = conn.execute("SELECT data FROM objects WHERE id = ?", (intent.id,)).fetchone()
        assert '"object": "payment_intent"' in data


def test_create_app_defaults_to_frontdesk_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FRONTDESK_HOME", str(tmp_path / "home"))

    app = create_app()

    assert default_db_path() == tmp_path / "home" / "stripe-sandbox.db"
    assert default_db_path().exists()
    assert app.state.sandbox.config.db_path == default_db_path()


SERVE = """
import sys
from frontdesk.sandbox.stripe import serve
serve(port=0, db_path=sys.argv[1], port_file=sys.argv[2], on_listening=print)
"""


def test_serve_picks_a_free_port_and_says_which(tmp_path: Path, children: Children) -> None:
    db, port_file = tmp_path / "served.db", tmp_path / "port"
    proc = children.popen(
        [sys.executable, "-u", "-c", SERVE, str(db), str(port_file)],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port_from(port_file, proc)}"
    assert proc.stdout is not None and proc.stdout.readline() == f"{url}\n"
    client = stripe.StripeClient(DEFAULT_API_KEY, base_addresses={"api": url})

    intent = pay(client)

    assert stop(proc) == 0  # Ctrl-C stops it cleanly
    with sqlite3.connect(db) as conn:
        stored = conn.execute("SELECT count(*) FROM objects WHERE id = ?", (intent.id,))
        assert stored.fetchone() == (1,)


def test_serve_on_a_taken_port_says_so(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(OSError, match=f"cannot listen on 127.0.0.1:{port}: "):
            serve(port=port, db_path=tmp_path / "served.db")


# PaymentIntents and Charges ----------------------------------------------------------------


def test_create_then_confirm_payment_intent(client: stripe.StripeClient) -> None:
    intent = client.v1.payment_intents.create(
        params={
            "amount": 1500,
            "currency": "USD",
            "payment_method": "pm_card_visa",
            "description": "Order 42",
            "customer": "cus_123",
            "receipt_email": "ada@example.com",
            "metadata": {"order_id": "42"},
        }
    )
    assert intent.id.startswith("pi_")
    assert intent.object == "payment_intent"
    assert intent.status == "requires_confirmation"
    assert intent.currency == "usd"
    assert intent.latest_charge is None
    assert intent.client_secret.startswith(f"{intent.id}_secret_")

    confirmed = client.v1.payment_intents.confirm(intent.id)

    assert confirmed.status == "succeeded"
    assert confirmed.amount_received == 1500
    assert confirmed.payment_method.startswith("pm_")
    charge = client.v1.charges.retrieve(confirmed.latest_charge)
    assert charge.id.startswith("ch_")
    assert charge.paid and charge.captured and charge.status == "succeeded"
    assert (charge.amount, charge.payment_intent, charge.customer) == (1500, intent.id, "cus_123")
    assert charge.metadata["order_id"] == "42"
    assert charge.disputed is False
    assert charge.balance_transaction.startswith("txn_")
    assert charge.payment_method_details.card.last4 == "4242"
    method = client.v1.payment_methods.retrieve(confirmed.payment_method)
    assert (method.object, method.card.brand) == ("payment_method", "visa")
    txn = client.v1.balance_transactions.retrieve(charge.balance_transaction)
    assert (txn.amount, txn.fee, txn.net, txn.source) == (1500, 74, 1426, charge.id)


def test_confirm_without_payment_method_then_with_one(client: stripe.StripeClient) -> None:
    intent = client.v1.payment_intents.create(params={"amount": 900, "currency": "usd"})
    assert intent.status == "requires_payment_method"

    with pytest.raises(stripe.InvalidRequestError, match="missing a payment method") as missing:
        client.v1.payment_intents.confirm(intent.id)
    assert missing.value.http_status == 400

    confirmed = client.v1.payment_intents.confirm(
        intent.id,
        params={"payment_method": "pm_card_mastercard", "return_url": "https://shop.test/done"},
    )
    assert confirmed.status == "succeeded"
    charge = client.v1.charges.retrieve(confirmed.latest_charge)
    assert charge.payment_method_details.card.brand == "mastercard"

    with pytest.raises(stripe.InvalidRequestError, match="status of succeeded") as again:
        client.v1.payment_intents.confirm(intent.id)
    assert again.value.code == "payment_intent_unexpected_state"


def test_automatic_payment_methods_need_return_url_unless_off_session(
    client: stripe.StripeClient,
) -> None:
    params = {"automatic_payment_methods": {"enabled": True}}
    with pytest.raises(stripe.InvalidRequestError, match="return_url") as error:
        pay(client, **params)
    assert error.value.param == "return_url"

    assert pay(client, **params, return_url="https://shop.test/r").status == "succeeded"
    assert pay(client, **params, off_session=True).status == "succeeded"
    no_redirects = {"automatic_payment_methods": {"enabled": True, "allow_redirects": "never"}}
    intent = pay(client, **no_redirects)
    assert intent.automatic_payment_methods.allow_redirects == "never"
    # The failed attempt created nothing.
    assert len(client.v1.payment_intents.list().data) == 3


@pytest.mark.parametrize(
    ("params", "message", "param"),
    [
        ({"currency": "usd"}, "Missing required param: amount.", "amount"),
        ({"amount": "abc", "currency": "usd"}, "Invalid integer: abc", "amount"),
        ({"amount": 0, "currency": "usd"}, "greater than or equal to 1", "amount"),
        ({"amount": 100}, "Missing required param: currency.", "currency"),
        ({"amount": 100, "currency": "usd", "foo": "x"}, "Received unknown parameter: foo", "foo"),
        (
            {"amount": 100, "currency": "usd", "automatic_payment_methods": {"bogus": "1"}},
            "Received unknown parameter: automatic_payment_methods[bogus]",
            "automatic_payment_methods[bogus]",
        ),
        (
            {
                "amount": 100,
                "currency": "usd",
                "automatic_payment_methods": {"allow_redirects": "never"},
            },
            "Missing required param: automatic_payment_methods[enabled].",
            "automatic_payment_methods[enabled]",
        ),
        ({"amount": 100, "currency": "usd", "confirm": "maybe"}, "Invalid boolean", "confirm"),
    ],
)
def test_payment_intent_parameter_errors(
    client: stripe.StripeClient, params: dict[str, Any], message: str, param: str
) -> None:
    with pytest.raises(stripe.InvalidRequestError) as error:
        client.v1.payment_intents.create(params=params)
    assert message in error.value.user_message
    assert error.value.param == param
    assert error.value.http_status == 400
    assert error.value.error.type == "invalid_request_error"


def test_unknown_ids_are_stripe_404s(client: stripe.StripeClient) -> None:
    cases: list[tuple[Callable[[], Any], str, str]] = [
        (lambda: client.v1.payment_intents.retrieve("pi_nope"), "payment_intent", "intent"),
        (lambda: client.v1.charges.retrieve("ch_nope"), "charge", "charge"),
        (lambda: client.v1.disputes.retrieve("dp_nope"), "dispute", "dispute"),
        (lambda: client.v1.refunds.retrieve("re_nope"), "refund", "refund"),
        (lambda: client.v1.events.retrieve("evt_nope"), "event", "id"),
        (lambda: client.v1.disputes.close("dp_nope"), "dispute", "dispute"),
        (lambda: pay(client, "pm_nope"), "PaymentMethod", "payment_method"),
    ]
    for call, label, param in cases:
        with pytest.raises(stripe.InvalidRequestError) as error:
            call()
        assert error.value.http_status == 404
        assert error.value.code == "resource_missing"
        assert error.value.param == param
        assert f"No such {label}: '" in error.value.user_message
    assert client.v1.payment_intents.list().data == []


def test_declined_card_is_a_402_card_error(client: stripe.StripeClient) -> None:
    with pytest.raises(stripe.CardError) as declined:
        pay(client, "pm_card_chargeDeclined")
    error = declined.value
    assert error.http_status == 402
    assert error.user_message == "Your card was declined."
    assert error.code == "card_declined"
    assert error.error.decline_code == "generic_decline"
    intent = client.v1.payment_intents.retrieve(error.error.payment_intent.id)
    assert intent.status == "requires_payment_method"
    assert intent.last_payment_error.decline_code == "generic_decline"
    charge = client.v1.charges.retrieve(intent.latest_charge)
    assert (charge.status, charge.paid, charge.failure_code) == ("failed", False, "card_declined")

    with pytest.raises(stripe.CardError, match="insufficient funds") as poor:
        pay(client, "pm_card_chargeDeclinedInsufficientFunds")
    assert poor.value.error.decline_code == "insufficient_funds"


def test_list_pagination_is_newest_first(client: stripe.StripeClient) -> None:
    ids = [
        client.v1.payment_intents.create(params={"amount": 100 + i, "currency": "usd"}).id
        for i in range(5)
    ]
    newest_first = ids[::-1]

    page1 = client.v1.payment_intents.list(params={"limit": 2})
    assert [p.id for p in page1.data] == newest_first[:2]
    assert page1.has_more is True
    assert page1.object == "list"
    assert page1.url == "/v1/payment_intents"
    page2 = client.v1.payment_intents.list(params={"limit": 2, "starting_after": page1.data[-1].id})
    assert [p.id for p in page2.data] == newest_first[2:4]
    last = client.v1.payment_intents.list(params={"limit": 2, "starting_after": page2.data[-1].id})
    assert [p.id for p in last.data] == newest_first[4:]
    assert last.has_more is False
    back = client.v1.payment_intents.list(params={"limit": 2, "ending_before": page2.data[0].id})
    assert [p.id for p in back.data] == newest_first[:2]
    assert [p.id for p in client.v1.payment_intents.list().data] == newest_first
    all_ids = [p.id for p in client.v1.payment_intents.list(params={"limit": 1}).auto_paging_iter()]
    assert all_ids == newest_first

    for limit in (0, 101):
        with pytest.raises(stripe.InvalidRequestError) as bad_limit:
            client.v1.payment_intents.list(params={"limit": limit})
        assert bad_limit.value.param == "limit"
    with pytest.raises(stripe.InvalidRequestError) as bad_cursor:
        client.v1.payment_intents.list(params={"starting_after": "pi_missing"})
    assert bad_cursor.value.param == "starting_after"


def test_list_created_filter(client: stripe.StripeClient) -> None:
    intent = client.v1.payment_intents.create(params={"amount": 100, "currency": "usd"})

    def count(created: Any) -> int:
        return len(client.v1.payment_intents.list(params={"created": created}).data)

    assert count({"gte": intent.created}) == 1
    assert count({"gt": intent.created}) == 0
    assert count({"lte": intent.created, "gte": intent.created - 10}) == 1
    assert count(intent.created) == 1


def test_charges_list_filters_by_payment_intent(client: stripe.StripeClient) -> None:
    first, second = pay(client), pay(client, "pm_card_amex")

    charges = client.v1.charges.list(params={"payment_intent": first.id}).data

    assert [c.id for c in charges] == [first.latest_charge]
    assert {c.id for c in client.v1.charges.list().data} == {
        first.latest_charge,
        second.latest_charge,
    }


def test_expand_fields_and_list_items(client: stripe.StripeClient) -> None:
    intent = pay(client, "pm_card_createDispute", expand=["latest_charge"])
    assert intent.latest_charge.object == "charge"

    retrieved = client.v1.payment_intents.retrieve(
        intent.id, params={"expand": ["latest_charge.balance_transaction", "payment_method"]}
    )
    assert retrieved.latest_charge.balance_transaction.object == "balance_transaction"
    assert retrieved.payment_method.card.brand == "visa"

    dispute = dispute_for(client, intent.id)
    expanded = client.v1.disputes.retrieve(
        dispute.id, params={"expand": ["charge", "payment_intent"]}
    )
    assert expanded.charge.id == intent.latest_charge.id
    assert expanded.payment_intent.id == intent.id
    listed = client.v1.disputes.list(params={"expand": ["data.charge", "data.payment_intent"]})
    assert listed.data[0].charge.object == "charge"
    assert listed.data[0].payment_intent.object == "payment_intent"

    with pytest.raises(stripe.InvalidRequestError, match=r"cannot be expanded \(amount\)"):
        client.v1.payment_intents.retrieve(intent.id, params={"expand": ["amount"]})
    with pytest.raises(stripe.InvalidRequestError, match=r"try expanding 'data\.charge'"):
        client.v1.disputes.list(params={"expand": ["charge"]})


def test_raw_form_encoding_with_brackets(http: httpx.Client) -> None:
    body = (
        "amount=1200&currency=usd&payment_method=pm_card_visa&confirm=true&off_session=true"
        "&metadata[order_id]=1234&metadata[channel]=chat&automatic_payment_methods[enabled]=true"
        "&expand[]=latest_charge&expand[]=payment_method"
    )
    headers = {"Content-Type": "application/x-www-form-urlencoded"}

    response = http.post("/v1/payment_intents", content=body, headers=headers)

    assert response.status_code == 200, response.text
    intent = response.json()
    assert intent["metadata"] == {"order_id": "1234", "channel": "chat"}
    assert intent["automatic_payment_methods"] == {"allow_redirects": "always", "enabled": True}
    assert intent["latest_charge"]["object"] == "charge"
    assert intent["payment_method"]["object"] == "payment_method"
    assert response.headers["Request-Id"].startswith("req_")
    indexed = http.get(f"/v1/payment_intents/{intent['id']}?expand[0]=latest_charge")
    assert indexed.json()["latest_charge"]["id"] == intent["latest_charge"]["id"]


# Test payment methods and disputes ---------------------------------------------------------


@pytest.mark.parametrize(
    ("payment_method", "brand", "reason", "status"),
    [
        ("pm_card_visa", "visa", None, None),
        ("pm_card_mastercard", "mastercard", None, None),
        ("pm_card_amex", "amex", None, None),
        ("pm_card_createDispute", "visa", "fraudulent", "needs_response"),
        (
            "pm_card_createDisputeProductNotReceived",
            "visa",
            "product_not_received",
            "needs_response",
        ),
        ("pm_card_createDisputeInquiry", "visa", "general", "warning_needs_response"),
    ],
)
def test_test_payment_methods(
    client: stripe.StripeClient,
    payment_method: str,
    brand: str,
    reason: str | None,
    status: str | None,
) -> None:
    intent = pay(client, payment_method)

    assert intent.status == "succeeded"
    charge = client.v1.charges.retrieve(intent.latest_charge)
    assert charge.payment_method_details.card.brand == brand
    disputes = client.v1.disputes.list(params={"payment_intent": intent.id}).data
    assert charge.disputed is (reason is not None)
    assert [(d.reason, d.status) for d in disputes] == ([(reason, status)] if reason else [])


def test_dispute_object_shape(client: stripe.StripeClient) -> None:
    intent = pay(client, "pm_card_createDispute", metadata={"order_id": "7"})

    dispute = dispute_for(client, intent.id)

    assert dispute.id.startswith("dp_")
    assert dispute.object == "dispute"
    assert (dispute.amount, dispute.currency) == (2000, "usd")
    assert (dispute.charge, dispute.payment_intent) == (intent.latest_charge, intent.id)
    assert dispute.livemode is False
    assert dispute.metadata.to_dict() == {}
    assert dispute.is_charge_refundable is False
    evidence = dispute.evidence.to_dict()
    assert all(evidence[name] is None for name in EVIDENCE_FIELDS)
    assert len(EVIDENCE_FIELDS) == 27
    details = dispute.evidence_details
    assert details.due_by == dispute.created + 7 * 86400
    assert (details.has_evidence, details.past_due, details.submission_count) == (False, False, 0)
    card = dispute.payment_method_details.card
    assert dispute.payment_method_details.type == "card"
    assert (card.brand, card.network_reason_code, card.case_type) == ("visa", "10.4", "chargeback")
    (withdrawal,) = dispute.balance_transactions
    assert (withdrawal.amount, withdrawal.fee, withdrawal.net) == (-2000, 1500, -3500)
    assert withdrawal.id.startswith("txn_")


def test_dispute_list_filters(client: stripe.StripeClient) -> None:
    first = pay(client, "pm_card_createDispute")
    second = pay(client, "pm_card_createDisputeInquiry")
    pay(client)

    by_intent = client.v1.disputes.list(params={"payment_intent": first.id}).data
    by_charge = client.v1.disputes.list(params={"charge": second.latest_charge}).data

    assert [d.payment_intent for d in by_intent] == [first.id]
    assert [d.charge for d in by_charge] == [second.latest_charge]
    assert len(client.v1.disputes.list().data) == 2
    assert client.v1.disputes.list(params={"payment_intent": "pi_other"}).data == []
    with pytest.raises(stripe.InvalidRequestError, match="unknown parameter: status"):
        client.v1.disputes.list(params={"status": "lost"})


def test_stage_evidence_without_submitting(client: stripe.StripeClient) -> None:
    dispute = dispute_for(client, pay(client, "pm_card_createDisputeProductNotReceived").id)

    staged = client.v1.disputes.update(
        dispute.id,
        params={
            "evidence": {
                "shipping_carrier": "UPS",
                "shipping_tracking_number": "1Z999",
                "customer_name": "Ada",
            },
            "metadata": {"case": "A-1"},
            "submit": False,
        },
    )

    assert staged.status == "needs_response"
    assert staged.evidence.shipping_carrier == "UPS"
    assert staged.evidence.shipping_tracking_number == "1Z999"
    assert staged.evidence.receipt is None
    assert staged.evidence_details.has_evidence is True
    assert staged.evidence_details.submission_count == 0
    assert staged.metadata["case"] == "A-1"
    relabelled = client.v1.disputes.update(
        dispute.id, params={"metadata": {"case": "", "owner": "bo"}}
    )
    assert relabelled.metadata.to_dict() == {"owner": "bo"}
    assert relabelled.status == "needs_response"
    updates = client.v1.events.list(params={"type": "charge.dispute.updated"}).data
    assert updates[0].data.previous_attributes.metadata.to_dict() == {"case": "A-1"}
    assert updates[-1].data.previous_attributes.evidence_details.has_evidence is False
    cleared = client.v1.disputes.update(
        dispute.id, params={"evidence": {"customer_name": ""}, "submit": False}
    )
    assert cleared.evidence.customer_name is None
    assert cleared.evidence.shipping_carrier == "UPS"
    with pytest.raises(stripe.InvalidRequestError) as unknown:
        client.v1.disputes.update(dispute.id, params={"evidence": {"bogus": "x"}})
    assert unknown.value.param == "evidence[bogus]"


@pytest.mark.parametrize(
    ("text", "outcome"), [("winning_evidence", "won"), ("losing_evidence", "lost")]
)
def test_submitted_evidence_decides_the_dispute(
    client: stripe.StripeClient, text: str, outcome: str
) -> None:
    dispute = dispute_for(client, pay(client, "pm_card_createDispute").id)

    submitted = client.v1.disputes.update(
        dispute.id, params={"evidence": {"uncategorized_text": text}, "submit": True}
    )

    assert submitted.status == "under_review"
    assert submitted.evidence_details.submission_count == 1
    assert submitted.evidence_details.submission_method == "manual"
    decided = client.v1.disputes.retrieve(dispute.id)
    assert decided.status == outcome
    assert len(decided.balance_transactions) == (2 if outcome == "won" else 1)
    closed = client.v1.events.list(params={"type": "charge.dispute.closed"}).data
    assert [e.data.object.status for e in closed] == [outcome]


def test_review_delay_keeps_dispute_under_review_until_resolved(tmp_path: Path) -> None:
    with running_sandbox(tmp_path / "slow.db", dispute_review_seconds=3600) as server:
        client = make_client(server)
        dispute = dispute_for(client, pay(client, "pm_card_createDispute").id)
        client.v1.disputes.update(
            dispute.id, params={"evidence": {"uncategorized_text": "winning_evidence"}}
        )
        assert client.v1.disputes.retrieve(dispute.id).status == "under_review"

        resolved = server.resolve_dispute(dispute.id)

        assert resolved["status"] == "won"
        assert client.v1.disputes.retrieve(dispute.id).status == "won"
        with pytest.raises(RuntimeError, match="already closed"):
            server.resolve_dispute(dispute.id)


def test_force_resolve_needs_an_outcome_without_test_evidence(
    sandbox: SandboxServer, client: stripe.StripeClient, http: httpx.Client
) -> None:
    dispute = dispute_for(client, pay(client, "pm_card_createDispute").id)
    client.v1.disputes.update(dispute.id, params={"evidence": {"product_description": "Mug"}})
    assert client.v1.disputes.retrieve(dispute.id).status == "under_review"

    missing = http.post(f"/_sandbox/disputes/{dispute.id}/resolve")
    assert missing.status_code == 400
    assert missing.json()["error"]["param"] == "outcome"

    assert sandbox.resolve_dispute(dispute.id, "lost")["status"] == "lost"


def test_evidence_cannot_change_once_submitted_or_closed(client: stripe.StripeClient) -> None:
    under_review = dispute_for(client, pay(client, "pm_card_createDispute").id)
    client.v1.disputes.update(under_review.id, params={"evidence": {"product_description": "Mug"}})
    closed = dispute_for(client, pay(client, "pm_card_createDispute").id)
    client.v1.disputes.close(closed.id)

    for dispute_id, state in ((under_review.id, "under review"), (closed.id, "already closed")):
        with pytest.raises(stripe.InvalidRequestError, match=state) as error:
            client.v1.disputes.update(
                dispute_id, params={"evidence": {"customer_name": "x"}, "submit": False}
            )
        assert error.value.http_status == 400
        assert error.value.param == "evidence"
    relabelled = client.v1.disputes.update(closed.id, params={"metadata": {"note": "accepted"}})
    assert relabelled.metadata["note"] == "accepted"
    assert relabelled.status == "lost"


def test_close_dispute_once(client: stripe.StripeClient) -> None:
    dispute = dispute_for(client, pay(client, "pm_card_createDispute").id)

    closed = client.v1.disputes.close(dispute.id)
    assert closed.status == "lost"
    with pytest.raises(stripe.InvalidRequestError, match="already closed") as again:
        client.v1.disputes.close(dispute.id)

    assert again.value.http_status == 400
    events = client.v1.events.list(params={"type": "charge.dispute.closed"}).data
    assert len(events) == 1
    assert events[0].data.previous_attributes.status == "needs_response"
    assert client.v1.disputes.retrieve(dispute.id).status == "lost"


def test_inquiry_submission_and_close(client: stripe.StripeClient) -> None:
    inquiry = dispute_for(client, pay(client, "pm_card_createDisputeInquiry").id)
    assert inquiry.is_charge_refundable is True
    assert inquiry.balance_transactions == []
    assert client.v1.disputes.close(inquiry.id).status == "warning_closed"

    other = dispute_for(client, pay(client, "pm_card_createDisputeInquiry").id)
    submitted = client.v1.disputes.update(
        other.id, params={"evidence": {"uncategorized_text": "winning_evidence"}}
    )
    assert submitted.status == "warning_under_review"
    assert client.v1.disputes.retrieve(other.id).status == "warning_closed"


# Refunds -----------------------------------------------------------------------------------


def test_partial_and_full_refunds(client: stripe.StripeClient) -> None:
    intent = pay(client)

    partial = client.v1.refunds.create(
        params={
            "payment_intent": intent.id,
            "amount": 500,
            "reason": "requested_by_customer",
            "metadata": {"ticket": "T-9"},
        }
    )
    assert partial.id.startswith("re_")
    assert (partial.amount, partial.status, partial.reason) == (
        500,
        "succeeded",
        "requested_by_customer",
    )
    assert (partial.charge, partial.payment_intent) == (intent.latest_charge, intent.id)
    charge = client.v1.charges.retrieve(intent.latest_charge)
    assert (charge.amount_refunded, charge.refunded) == (500, False)

    with pytest.raises(stripe.InvalidRequestError) as too_much:
        client.v1.refunds.create(params={"charge": intent.latest_charge, "amount": 3000})
    assert too_much.value.param == "amount"
    assert "($30.00) is greater than unrefunded amount on charge ($15.00)" in (
        too_much.value.user_message
    )

    rest = client.v1.refunds.create(params={"charge": intent.latest_charge})
    assert rest.amount == 1500
    assert client.v1.charges.retrieve(intent.latest_charge).refunded is True
    with pytest.raises(stripe.InvalidRequestError) as done:
        client.v1.refunds.create(params={"payment_intent": intent.id})
    assert done.value.code == "charge_already_refunded"

    assert client.v1.refunds.retrieve(partial.id).metadata["ticket"] == "T-9"
    listed = client.v1.refunds.list(params={"payment_intent": intent.id}).data
    assert [r.id for r in listed] == [rest.id, partial.id]
    assert client.v1.refunds.list(params={"charge": "ch_other"}).data == []
    types = [e.type for e in client.v1.events.list(params={"type": "charge.refunded"}).data]
    assert types == ["charge.refunded", "charge.refunded"]


def test_refund_errors(client: stripe.StripeClient) -> None:
    with pytest.raises(stripe.InvalidRequestError, match="payment_intent or charge"):
        client.v1.refunds.create()
    intent = pay(client)
    with pytest.raises(stripe.InvalidRequestError) as reason:
        client.v1.refunds.create(params={"payment_intent": intent.id, "reason": "bored"})
    assert reason.value.param == "reason"
    unpaid = client.v1.payment_intents.create(params={"amount": 100, "currency": "usd"})
    with pytest.raises(stripe.InvalidRequestError, match="does not have a successful charge"):
        client.v1.refunds.create(params={"payment_intent": unpaid.id})
    chargeback = pay(client, "pm_card_createDispute")
    with pytest.raises(stripe.InvalidRequestError) as disputed:
        client.v1.refunds.create(params={"payment_intent": chargeback.id})
    assert disputed.value.code == "charge_disputed"
    inquiry = pay(client, "pm_card_createDisputeInquiry")
    assert client.v1.refunds.create(params={"payment_intent": inquiry.id}).amount == 2000


# Authentication and routing ----------------------------------------------------------------


def test_authentication_errors(sandbox: SandboxServer) -> None:
    missing = httpx.get(f"{sandbox.url}/v1/disputes")
    assert missing.status_code == 401
    assert missing.json()["error"]["type"] == "invalid_request_error"
    assert "You did not provide an API key" in missing.json()["error"]["message"]

    with pytest.raises(stripe.AuthenticationError, match="test mode keys") as live:
        make_client(sandbox, "sk_live_abcdefghijkl").v1.disputes.list()
    assert live.value.http_status == 401
    with pytest.raises(stripe.AuthenticationError, match="Invalid API Key provided"):
        make_client(sandbox, "pk_test_abcdefghijkl").v1.disputes.list()

    basic = httpx.get(f"{sandbox.url}/v1/disputes", auth=(sandbox.api_key, ""))
    assert basic.status_code == 200


def test_unknown_routes_are_stripe_errors(http: httpx.Client) -> None:
    response = http.get("/v1/customers")

    assert response.status_code == 404
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert error["message"].startswith("Unrecognized request URL (GET: /v1/customers)")
    assert http.delete("/v1/disputes").status_code == 404


def test_unexpected_failures_are_stripe_api_errors(
    client: stripe.StripeClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("boom")

    monkeypatch.setattr("frontdesk.sandbox.stripe._core.Operation.list_objects", broken)

    with pytest.raises(stripe.APIError) as error:
        client.v1.events.list()
    assert error.value.http_status == 500
    assert error.value.error.type == "api_error"
    assert "unexpected error" in error.value.user_message


# Idempotency and concurrency ---------------------------------------------------------------


def test_idempotent_replay_and_mismatch(
    sandbox: SandboxServer, client: stripe.StripeClient
) -> None:
    params: dict[str, Any] = {
        "amount": 2000,
        "currency": "usd",
        "payment_method": "pm_card_visa",
        "confirm": True,
    }
    first = client.v1.payment_intents.create(params=params, options={"idempotency_key": "order-1"})
    replay = client.v1.payment_intents.create(params=params, options={"idempotency_key": "order-1"})

    assert replay.id == first.id
    assert replay.last_response.headers["Idempotent-Replayed"] == "true"
    assert replay.last_response.body == first.last_response.body
    assert "Idempotent-Replayed" not in first.last_response.headers
    assert len(client.v1.payment_intents.list().data) == 1
    assert len(client.v1.charges.list().data) == 1
    event = client.v1.events.list(params={"type": "payment_intent.succeeded"}).data[0]
    assert event.request.idempotency_key == "order-1"

    with pytest.raises(stripe.IdempotencyError, match="same parameters") as mismatch:
        client.v1.payment_intents.create(
            params={**params, "amount": 2500}, options={"idempotency_key": "order-1"}
        )
    assert mismatch.value.http_status == 400
    assert mismatch.value.error.type == "idempotency_error"
    with pytest.raises(stripe.IdempotencyError, match="same endpoint"):
        client.v1.refunds.create(
            params={"payment_intent": first.id}, options={"idempotency_key": "order-1"}
        )

    other_key = make_client(sandbox, "sk_test_another_account")
    scoped = other_key.v1.payment_intents.create(
        params=params, options={"idempotency_key": "order-1"}
    )
    assert scoped.id != first.id


def test_idempotency_keys_over_255_characters_are_refused_and_nothing_runs(
    sandbox: SandboxServer, client: stripe.StripeClient
) -> None:
    params: dict[str, Any] = {"amount": 2000, "currency": "usd"}
    for key in ("k" * 256, "k" * 10_000):
        with pytest.raises(stripe.IdempotencyError, match="at most 255 characters") as refused:
            client.v1.payment_intents.create(params=params, options={"idempotency_key": key})
        assert refused.value.http_status == 400
        assert refused.value.error.type == "idempotency_error"
    assert client.v1.payment_intents.list().data == []
    with sqlite3.connect(sandbox.db_path) as conn:
        assert conn.execute("SELECT count(*) FROM idempotency_keys").fetchone()[0] == 0

    longest = "k" * 255
    first = client.v1.payment_intents.create(params=params, options={"idempotency_key": longest})
    again = client.v1.payment_intents.create(params=params, options={"idempotency_key": longest})
    assert again.id == first.id
    assert again.last_response.headers["Idempotent-Replayed"] == "true"


def test_idempotency_replays_card_errors_but_not_validation_errors(
    client: stripe.StripeClient,
) -> None:
    declined = {
        "amount": 100,
        "currency": "usd",
        "payment_method": "pm_card_chargeDeclined",
        "confirm": True,
    }
    for _ in range(2):
        with pytest.raises(stripe.CardError) as error:
            client.v1.payment_intents.create(
                params=declined, options={"idempotency_key": "decline"}
            )
    assert error.value.headers["Idempotent-Replayed"] == "true"
    assert len(client.v1.payment_intents.list().data) == 1

    with pytest.raises(stripe.InvalidRequestError):
        client.v1.payment_intents.create(
            params={"currency": "usd"}, options={"idempotency_key": "fix"}
        )
    fixed = client.v1.payment_intents.create(
        params={"amount": 300, "currency": "usd"}, options={"idempotency_key": "fix"}
    )
    assert fixed.amount == 300


def test_concurrent_requests(client: stripe.StripeClient) -> None:
    def create(index: int) -> str:
        key = f"same-key-{index % 2}" if index < 10 else f"unique-{index}"
        params: dict[str, Any] = {
            "amount": 1000 + (index % 2 if index < 10 else index),
            "currency": "usd",
            "payment_method": "pm_card_createDispute",
            "confirm": True,
        }
        return client.v1.payment_intents.create(params=params, options={"idempotency_key": key}).id

    with ThreadPoolExecutor(max_workers=12) as pool:
        ids = list(pool.map(create, range(30)))

    assert len(set(ids)) == 2 + 20
    assert len(list(client.v1.payment_intents.list().auto_paging_iter())) == 22
    assert len(list(client.v1.disputes.list().auto_paging_iter())) == 22


# Webhook endpoints, events and delivery ----------------------------------------------------


def test_webhook_endpoint_crud(client: stripe.StripeClient) -> None:
    created = client.v1.webhook_endpoints.create(
        params={
            "url": "https://merchant.test/hooks",
            "enabled_events": ["charge.dispute.created", "charge.dispute.closed"],
            "description": "disputes",
            "metadata": {"team": "risk"},
        }
    )
    assert created.id.startswith("we_")
    assert created.secret.startswith("whsec_")
    assert (created.status, created.livemode) == ("enabled", False)
    assert created.enabled_events == ["charge.dispute.created", "charge.dispute.closed"]

    retrieved = client.v1.webhook_endpoints.retrieve(created.id)
    assert retrieved.url == "https://merchant.test/hooks"
    assert "secret" not in retrieved
    assert [e.id for e in client.v1.webhook_endpoints.list().data] == [created.id]

    deleted = client.v1.webhook_endpoints.delete(created.id)
    assert deleted.deleted is True
    with pytest.raises(stripe.InvalidRequestError) as gone:
        client.v1.webhook_endpoints.retrieve(created.id)
    assert gone.value.http_status == 404

    with pytest.raises(stripe.InvalidRequestError) as no_url:
        client.v1.webhook_endpoints.create(params={"enabled_events": ["*"]})
    assert no_url.value.param == "url"
    with pytest.raises(stripe.InvalidRequestError) as bad_event:
        client.v1.webhook_endpoints.create(
            params={"url": "https://merchant.test/h", "enabled_events": ["*", "Not An Event"]}
        )
    assert bad_event.value.param == "enabled_events[1]"


def test_events_are_stripe_shaped_and_filterable(client: stripe.StripeClient) -> None:
    intent = client.v1.payment_intents.create(
        params={
            "amount": 2000,
            "currency": "usd",
            "payment_method": "pm_card_createDispute",
            "confirm": True,
        },
        options={"idempotency_key": "evt-key"},
    )

    events = client.v1.events.list().data
    assert [e.type for e in events] == [
        "charge.dispute.funds_withdrawn",
        "charge.dispute.created",
        "payment_intent.succeeded",
        "charge.succeeded",
        "payment_intent.created",
    ]
    succeeded = events[2]
    assert succeeded.id.startswith("evt_")
    assert succeeded.object == "event"
    assert succeeded.livemode is False
    assert succeeded.api_version
    assert succeeded.pending_webhooks == 0
    assert succeeded.request.id.startswith("req_")
    assert succeeded.request.idempotency_key == "evt-key"
    assert succeeded.data.object.id == intent.id
    assert client.v1.events.retrieve(succeeded.id).type == "payment_intent.succeeded"

    wildcard = client.v1.events.list(params={"type": "charge.dispute.*"}).data
    assert [e.type for e in wildcard] == [
        "charge.dispute.funds_withdrawn",
        "charge.dispute.created",
    ]
    several = client.v1.events.list(
        params={"types": ["charge.succeeded", "payment_intent.created"]}
    )
    assert [e.type for e in several.data] == ["charge.succeeded", "payment_intent.created"]


def test_webhooks_are_delivered_signed(
    sandbox: SandboxServer, client: stripe.StripeClient, receiver: Receiver
) -> None:
    endpoint = client.v1.webhook_endpoints.create(
        params={
            "url": receiver.url,
            "enabled_events": ["payment_intent.succeeded", "charge.dispute.created"],
        }
    )

    intent = pay(client, "pm_card_createDispute")

    delivered = [receiver.next(), receiver.next()]
    assert re.fullmatch(r"t=\d+,v1=[0-9a-f]{64}", delivered[0].headers["Stripe-Signature"])
    events = [
        stripe.Webhook.construct_event(r.body, r.headers["Stripe-Signature"], endpoint.secret)
        for r in delivered
    ]
    assert sorted(e.type for e in events) == ["charge.dispute.created", "payment_intent.succeeded"]
    assert {
        e.data.object.payment_intent if e.type.startswith("charge") else e.data.object.id
        for e in events
    } == {intent.id}
    assert delivered[0].headers["Content-Type"].startswith("application/json")
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.Webhook.construct_event(
            delivered[0].body, delivered[0].headers["Stripe-Signature"], "whsec_wrong"
        )

    created = client.v1.events.list(params={"type": "payment_intent.created"}).data[0]
    assert sandbox.delivery_attempts(created.id) == []
    dispute_event = next(e for e in events if e.type == "charge.dispute.created")
    wait_until(
        lambda: client.v1.events.retrieve(dispute_event.id).pending_webhooks == 0,
        "delivery bookkeeping",
    )
    (attempt,) = sandbox.delivery_attempts(dispute_event.id)
    assert (attempt["status_code"], attempt["delivery_status"], attempt["webhook_endpoint"]) == (
        200,
        "succeeded",
        endpoint.id,
    )


def test_failed_deliveries_are_retried_with_backoff(
    sandbox: SandboxServer, client: stripe.StripeClient, receiver: Receiver
) -> None:
    receiver.statuses = [500, 503]
    client.v1.webhook_endpoints.create(params={"url": receiver.url, "enabled_events": ["*"]})

    intent = client.v1.payment_intents.create(params={"amount": 100, "currency": "usd"})

    bodies = [receiver.next().body for _ in range(3)]
    assert bodies[0] == bodies[1] == bodies[2]
    event = client.v1.events.list(params={"type": "payment_intent.created"}).data[0]
    attempts = wait_until(
        lambda: len(a := sandbox.delivery_attempts(event.id)) == 3 and a, "three attempts"
    )
    assert [a["status_code"] for a in attempts] == [500, 503, 200]
    assert [a["attempt"] for a in attempts] == [1, 2, 3]
    assert attempts[-1]["delivery_status"] == "succeeded"
    assert intent.id in bodies[0]


def test_delivery_gives_up_after_the_last_retry(
    sandbox: SandboxServer, client: stripe.StripeClient, receiver: Receiver
) -> None:
    receiver.statuses = [500] * 10
    client.v1.webhook_endpoints.create(
        params={"url": receiver.url, "enabled_events": ["payment_intent.created"]}
    )

    client.v1.payment_intents.create(params={"amount": 100, "currency": "usd"})

    event = client.v1.events.list(params={"type": "payment_intent.created"}).data[0]
    attempts = wait_until(
        lambda: (
            (a := sandbox.delivery_attempts(event.id))
            and a[-1]["delivery_status"] == "failed"
            and a
        ),
        "the delivery to fail",
    )
    assert len(attempts) == len(FAST_RETRIES) + 1
    assert client.v1.events.retrieve(event.id).pending_webhooks == 0


def test_resend_redelivers_the_same_event(
    sandbox: SandboxServer, client: stripe.StripeClient, receiver: Receiver
) -> None:
    endpoint = client.v1.webhook_endpoints.create(
        params={"url": receiver.url, "enabled_events": ["charge.dispute.created"]}
    )
    pay(client, "pm_card_createDispute")
    original = stripe.Webhook.construct_event(
        (first := receiver.next()).body, first.headers["Stripe-Signature"], endpoint.secret
    )

    sandbox.resend_event(original.id)

    second = receiver.next()
    duplicate = stripe.Webhook.construct_event(
        second.body, second.headers["Stripe-Signature"], endpoint.secret
    )
    assert duplicate.id == original.id
    assert duplicate.type == "charge.dispute.created"
    assert (
        len(
            wait_until(
                lambda: len(a := sandbox.delivery_attempts(original.id)) == 2 and a, "two attempts"
            )
        )
        == 2
    )
