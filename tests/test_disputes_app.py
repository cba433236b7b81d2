"""The disputes app in one process: its SQLite records, its tools against the Stripe sandbox
(a real HTTP server), its agents and rules through the runtime, intake and reporting."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import stripe
from agents import FunctionTool

from frontdesk import AgentRuntime, RunResult
from frontdesk.apps import disputes
from frontdesk.apps.disputes import (
    DisputeEvidence,
    SubmissionNotPossible,
    accept_dispute_agent,
    find_dispute,
    find_submission,
    init_db,
    investigator_agent,
    process_dispute,
    relevant_data,
    request_submission,
    submission_agent,
    submission_execution_id,
    triage_agent,
)
from frontdesk.apps.disputes._db import connect
from frontdesk.apps.disputes.agents import (
    ACCEPT_INSTRUCTIONS,
    INVESTIGATOR_INSTRUCTIONS,
    TRIAGE_INSTRUCTIONS,
)
from frontdesk.apps.disputes.tools import (
    close_dispute,
    get_emails,
    get_order,
    get_phone_logs,
    retrieve_payment_intent,
    stage_dispute_evidence,
    submit_dispute_evidence,
)
from frontdesk.sandbox.stripe import SandboxServer, running_sandbox
from frontdesk.testing import call_tool

from conftest import (
    both_backends,
    wait_until,  # noqa: F401 (the e2e tests import it from here)
)

NOT_RECEIVED = "pm_card_createDisputeProductNotReceived"
SEED_ORDERS = {
    1234: {"order_id": 1234, "fulfillment_details": "not_shipped"},
    9101: {"order_id": 9101, "fulfillment_details": "shipped", "tracking_info": {"carrier": "FedEx", "tracking_number": "123456789012"}, "delivery_status": "out for delivery"},
    1121: {"order_id": 1121, "fulfillment_details": "delivered", "customer_id": "cus_PZ1234567890", "customer_phone": "+15551234567", "order_date": "2023-01-01", "customer_email": "customer1@example.com", "tracking_info": {"carrier": "UPS", "tracking_number": "1Z999AA10123456784", "delivery_status": "delivered"}, "shipping_address": {"zip": "10001"}, "tos_acceptance": {"date": "2023-01-01", "ip": "192.168.1.1"}},
}  # fmt: skip
SEED_CALLS = [
    {"phone_number": "+15551234567", "timestamp": "2023-03-14 15:24:00", "duration_minutes": 5, "notes": "Asked about status of order #1121", "order_id": 1121},
    {"phone_number": "+15551234567", "timestamp": "2023-02-28 10:10:00", "duration_minutes": 7, "notes": "Requested refund for order #1121, I told him we were unable to refund the order because it was final sale", "order_id": 1121},
]  # fmt: skip
SNEAKERS = "Hey, I know you don't accept refunds but the sneakers don't fit and I'd like a refund"


# Helpers -----------------------------------------------------------------------------------


@pytest.fixture(name="sandbox")
def sandbox_fixture(home: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[SandboxServer]:
    """The Stripe sandbox on a free port; the app finds it through the environment."""
    monkeypatch.delenv("STRIPE_SECRET_KEY", raising=False)
    with running_sandbox(home.parent / "stripe.db") as server:
        monkeypatch.setenv("FRONTDESK_STRIPE_API_BASE", server.url)
        yield server


@pytest.fixture(name="client")
def client_fixture(sandbox: SandboxServer) -> stripe.StripeClient:
    return sandbox.client(max_network_retries=0)


@pytest.fixture(name="rules")
def rules_fixture(home: Path, backend: str) -> Iterator[AgentRuntime]:
    """A runtime on the offline rules model."""
    with AgentRuntime(home, model="rules", recover=False) as runtime:
        yield runtime


def pay(client: stripe.StripeClient, order_id: str | None, method: str = NOT_RECEIVED) -> Any:
    params: dict[str, Any] = {
        "amount": 2000,
        "currency": "usd",
        "payment_method": method,
        "confirm": True,
        "off_session": True,
    }
    if order_id is not None:
        params["metadata"] = {"order_id": order_id}
    return client.v1.payment_intents.create(params=params)


def dispute_of(client: stripe.StripeClient, intent_id: str) -> Any:
    (dispute,) = client.v1.disputes.list(params={"payment_intent": intent_id}).data
    return dispute


def closes(client: stripe.StripeClient, dispute_id: str) -> int:
    events = client.v1.events.list(params={"type": "charge.dispute.closed", "limit": 100}).data
    return sum(1 for e in events if e.data.object.id == dispute_id)


async def invoke(
    tool: FunctionTool,
    key: str | None = None,
    *,
    in_runtime: AgentRuntime | None = None,
    **arguments: Any,
) -> Any:
    """Run a tool as the runner does, in a tool call with idempotency key ``key`` if given
    (driven by ``in_runtime``, if given)."""
    return await call_tool(
        tool, arguments, idempotency_key=key, execution_id="run-1", runtime=in_runtime
    )


def count(home: Path, table: str, where: str = "1 = 1") -> int:
    """Rows of ``table`` matching ``where``, read through the app's database layer (the home's
    disputes.db, or the disputes schema of the PostgreSQL store)."""
    with connect(home) as conn:
        return int(conn.execute(f"SELECT count(*) FROM {table} WHERE {where}").one()[0])


def stripe_message(result: dict[str, Any]) -> str:
    message: str = result["error"]["message"]
    return message


def tool_results(result: RunResult, tool_name: str) -> list[Any]:
    return [e.result for e in result.events if e.type == "tool_result" and e.tool_name == tool_name]


async def triage(runtime: AgentRuntime, data: dict[str, Any]) -> RunResult:
    return await runtime.run_async(triage_agent, json.dumps(data))


# The merchant's records --------------------------------------------------------------------


@both_backends
async def test_first_use_creates_and_seeds_the_db_in_frontdesk_home(
    backend: str, home: Path
) -> None:
    assert not (home / "disputes.db").exists()

    assert await invoke(get_order, order_id=1234) == SEED_ORDERS[1234]

    assert (home / "disputes.db").exists() == (backend == "sqlite")
    counts = [count(home, table) for table in ("orders", "emails", "phone_logs")]
    fixtures = [
        len(json.loads((Path(disputes.__file__).parent / "data" / f"{name}.json").read_text()))
        for name in ("orders", "emails", "phone_logs")
    ]
    assert counts == fixtures


@both_backends
@pytest.mark.parametrize("order_id", sorted(SEED_ORDERS))
async def test_seed_orders_are_the_given_records(backend: str, home: Path, order_id: int) -> None:
    assert await invoke(get_order, order_id=order_id) == SEED_ORDERS[order_id]
    # The metadata carries the id as a string.
    assert await invoke(get_order, order_id=str(order_id)) == SEED_ORDERS[order_id]


@both_backends
async def test_seed_emails_and_phone_logs(backend: str, home: Path) -> None:
    assert await invoke(get_emails, email="customer1@example.com") == [
        {"email": "customer1@example.com", "subject": "Order #1121", "body": SNEAKERS}
    ]
    assert await invoke(get_phone_logs, phone_number="+15551234567") == SEED_CALLS
    (general,) = await invoke(get_phone_logs, phone_number="+15559876543")
    assert general["order_id"] is None and general["notes"].startswith("General inquiry")
    laptop = await invoke(get_emails, email="customer3@example.com")
    assert [e["subject"] for e in laptop] == ["Feedback on recent purchase"]


@both_backends
async def test_lookups_of_unknown_records(backend: str, home: Path) -> None:
    assert await invoke(get_order, order_id=4040) == "No order found"
    assert await invoke(get_emails, email="nobody@example.com") == []
    assert await invoke(get_phone_logs, phone_number="+15550000000") == []


@both_backends
async def test_lookups_accept_formatted_numbers_and_any_case(backend: str, home: Path) -> None:
    assert await invoke(get_phone_logs, phone_number="+1 (555) 123-4567") == SEED_CALLS
    assert len(await invoke(get_emails, email=" Customer1@Example.com ")) == 1


@both_backends
async def test_the_data_is_more_than_the_demo_cases(backend: str, home: Path) -> None:
    orders = json.loads((Path(disputes.__file__).parent / "data" / "orders.json").read_text())
    extra = [o for o in orders if o["order_id"] not in SEED_ORDERS]
    assert len(extra) >= 5
    assert {"shipped", "delivered", "not_shipped"} <= {o["fulfillment_details"] for o in extra}
    for order in extra:
        assert await invoke(get_order, order_id=order["order_id"]) == order
    # Extra customers have their own communications.
    (call,) = await invoke(get_phone_logs, phone_number="+15553456789")
    assert call["order_id"] == 1422


@both_backends
def test_init_db_reset_restores_the_fixtures(backend: str, home: Path) -> None:
    where = init_db(home)
    assert where == home / "disputes.db" if backend == "sqlite" else "schema disputes" in where
    with connect(home) as conn:
        conn.execute("DELETE FROM emails")
    init_db(home)
    assert count(home, "emails") == 0
    assert init_db(home, reset=True) == where
    assert count(home, "emails") == 7


@both_backends
def test_threads_racing_to_first_use_seed_once(backend: str, home: Path) -> None:
    from frontdesk.apps.disputes._db import find_order

    with ThreadPoolExecutor(8) as pool:
        found = list(pool.map(lambda _: find_order(1121, home), range(16)))
    assert {o.record()["customer_email"] if o else None for o in found} == {"customer1@example.com"}
    assert count(home, "orders", "order_id = 1121") == 1


@both_backends
def test_webhook_deliveries_are_counted_in_the_runtimes_app_data(
    backend: str, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The runtime is given its store's URL and the environment's is unset: the intake finds
    # the app's data through this runtime, not through $FRONTDESK_DATABASE_URL or the home.
    url = os.environ["FRONTDESK_DATABASE_URL"] if backend == "postgres" else None
    monkeypatch.delenv("FRONTDESK_DATABASE_URL", raising=False)
    event = {
        "id": "evt_1",
        "object": "event",
        "type": "payment_intent.succeeded",
        "data": {"object": {"id": "pi_1", "object": "payment_intent"}},
    }
    with AgentRuntime(home, recover=False, database_url=url) as runtime:
        first = disputes.handle_event(runtime, event)
        disputes.handle_event(runtime, event)
        [recorded] = disputes.webhook_events(runtime=runtime)
    assert first.action == "ignored"
    assert (recorded["event_id"], recorded["object_id"], recorded["deliveries"]) == (
        "evt_1",
        "pi_1",
        2,
    )
    assert recorded["first_received_at"] <= recorded["last_received_at"]
    assert (home / "disputes.db").exists() == (backend == "sqlite")


# Agents ------------------------------------------------------------------------------------


def test_agents_follow_the_seed() -> None:
    assert (triage_agent.name, triage_agent.model) == ("Triage Agent", "gpt-4o")
    assert (accept_dispute_agent.name, accept_dispute_agent.model) == (
        "Accept Dispute Agent",
        "gpt-4o",
    )
    assert (investigator_agent.name, investigator_agent.model) == (
        "Dispute Intake Agent",
        "o3-mini",
    )
    assert triage_agent.instructions == TRIAGE_INSTRUCTIONS
    assert accept_dispute_agent.instructions == ACCEPT_INSTRUCTIONS
    assert isinstance(investigator_agent.instructions, str)
    assert investigator_agent.instructions.startswith(INVESTIGATOR_INSTRUCTIONS)
    assert INVESTIGATOR_INSTRUCTIONS.startswith("As a dispute investigator, please compile")
    assert "Reasoning for closing the dispute\n" in ACCEPT_INSTRUCTIONS
    assert [t.name for t in triage_agent.tools] == ["retrieve_payment_intent", "get_order"]
    assert triage_agent.handoffs == [accept_dispute_agent, investigator_agent]
    assert [t.name for t in accept_dispute_agent.tools] == ["close_dispute"]
    assert [t.name for t in investigator_agent.tools] == [
        "get_emails", "get_phone_logs", "stage_dispute_evidence", "request_evidence_submission",
    ]  # fmt: skip
    assert [t.name for t in submission_agent.tools] == ["submit_dispute_evidence"]
    assert retrieve_payment_intent.description.startswith("Retrieve a Stripe payment intent by ID.")
    assert close_dispute.description.startswith("Close a Stripe dispute by ID.")


def test_only_the_final_submission_needs_approval_and_not_in_the_disputes_run() -> None:
    tools = [
        (agent.name, t.name)
        for agent in (triage_agent, accept_dispute_agent, investigator_agent, submission_agent)
        for t in agent.tools
        if isinstance(t, FunctionTool) and t.needs_approval
    ]
    assert tools == [("Evidence Submission Agent", "submit_dispute_evidence")]


# Stripe tools against the sandbox ----------------------------------------------------------


async def test_retrieve_payment_intent_returns_a_plain_dict(client: stripe.StripeClient) -> None:
    intent = pay(client, "1121")
    result = await invoke(retrieve_payment_intent, payment_intent_id=intent.id)
    assert type(result) is dict and type(result["metadata"]) is dict
    assert (result["id"], result["status"], result["metadata"]) == (
        intent.id, "succeeded", {"order_id": "1121"},
    )  # fmt: skip


async def test_a_stripe_error_is_a_result_with_stripes_message(client: stripe.StripeClient) -> None:
    result = await invoke(retrieve_payment_intent, payment_intent_id="pi_missing")
    assert result == {
        "error": {
            "message": "No such payment_intent: 'pi_missing'",
            "type": "invalid_request_error",
            "code": "resource_missing",
            "param": "intent",
        },
        "http_status": 404,
    }
    assert "No such dispute: 'dp_missing'" in stripe_message(
        await invoke(close_dispute, dispute_id="dp_missing")
    )


async def test_stripe_out_of_reach_is_a_result_too(
    home: Path, monkeypatch: pytest.MonkeyPatch, refused_url: str
) -> None:
    monkeypatch.setenv("FRONTDESK_STRIPE_API_BASE", refused_url)
    result = await invoke(retrieve_payment_intent, payment_intent_id="pi_1")
    assert result["error"]["type"] == "api_connection_error"
    assert "connect" in stripe_message(result).lower()


async def test_close_dispute_closes_once_per_idempotency_key(client: stripe.StripeClient) -> None:
    dispute = dispute_of(client, pay(client, "1234").id)

    first = await invoke(close_dispute, "fd_key_1", dispute_id=dispute.id)
    replay = await invoke(close_dispute, "fd_key_1", dispute_id=dispute.id)

    assert first["status"] == "lost" and type(first["evidence"]) is dict
    assert replay == first
    assert closes(client, dispute.id) == 1


async def test_closing_a_closed_dispute_reports_it_and_writes_nothing(
    client: stripe.StripeClient,
) -> None:
    dispute = dispute_of(client, pay(client, "1234").id)
    client.v1.disputes.close(dispute.id)

    result = await invoke(close_dispute, "fd_another_key", dispute_id=dispute.id)

    assert result["already_closed"] is True and result["status"] == "lost"
    assert stripe_message(result) == (
        "This dispute is already closed (status lost), so it cannot be closed."
    )
    assert closes(client, dispute.id) == 1


async def test_evidence_is_staged_unsubmitted_then_submitted(client: stripe.StripeClient) -> None:
    dispute = dispute_of(client, pay(client, "1121").id)
    evidence = {"shipping_carrier": "UPS", "uncategorized_text": "Delivered to the door."}

    staged = await invoke(
        stage_dispute_evidence, "fd_stage", dispute_id=dispute.id, evidence=evidence
    )

    assert staged["status"] == "needs_response"
    assert staged["evidence_details"]["submission_count"] == 0
    assert {k: v for k, v in staged["evidence"].items() if v} == evidence
    submitted = await invoke(submit_dispute_evidence, "fd_submit", dispute_id=dispute.id)
    assert submitted["status"] == "under_review"
    assert submitted["evidence_details"]["submission_count"] == 1
    again = await invoke(
        stage_dispute_evidence, "fd_stage_2", dispute_id=dispute.id, evidence=evidence
    )
    assert "under review" in stripe_message(again)


async def test_nothing_to_stage_or_submit_is_refused_before_stripe(
    client: stripe.StripeClient,
) -> None:
    dispute = dispute_of(client, pay(client, "1121").id)
    empty = await invoke(
        stage_dispute_evidence, dispute_id=dispute.id, evidence={"customer_name": " "}
    )
    assert stripe_message(empty) == "No evidence was given; nothing was staged."
    unstaged = await invoke(submit_dispute_evidence, dispute_id=dispute.id)
    assert "No evidence is staged" in stripe_message(unstaged)
    assert client.v1.disputes.retrieve(dispute.id).status == "needs_response"


def test_evidence_fields_are_stripes_text_fields() -> None:
    from frontdesk.sandbox.stripe import EVIDENCE_FIELDS

    assert set(DisputeEvidence.model_fields) <= set(EVIDENCE_FIELDS)
    assert DisputeEvidence(customer_name="Ada", shipping_date=None).fields() == {
        "customer_name": "Ada"
    }


# Rules through the runtime -----------------------------------------------------------------


def data_for(client: stripe.StripeClient, intent_id: str) -> dict[str, Any]:
    return relevant_data(dispute_of(client, intent_id).to_dict())


async def test_relevant_data_has_the_seven_fields(client: stripe.StripeClient) -> None:
    intent = pay(client, "1234", "pm_card_createDispute")
    dispute = dispute_of(client, intent.id)
    assert relevant_data(dispute.to_dict()) == {
        "dispute_id": dispute.id,
        "amount": 2000,
        "due_by": dispute.evidence_details.due_by,
        "payment_intent": intent.id,
        "reason": "fraudulent",
        "status": "needs_response",
        "card_brand": "visa",
    }


@both_backends
async def test_shipped_order_without_contacts_is_investigated_on_tracking(
    backend: str, client: stripe.StripeClient, rules: AgentRuntime
) -> None:
    data = data_for(client, pay(client, "9101").id)

    result = await triage(rules, data)

    assert (result.status, result.last_agent) == ("completed", "Dispute Intake Agent")
    assert not tool_results(result, "get_emails") and not tool_results(result, "get_phone_logs")
    evidence = client.v1.disputes.retrieve(data["dispute_id"]).evidence
    assert (evidence.shipping_carrier, evidence.shipping_tracking_number) == (
        "FedEx",
        "123456789012",
    )
    assert "No email address on the order" in evidence.uncategorized_text
    assert result.output.startswith(evidence.uncategorized_text)
    request = find_submission(rules, data["dispute_id"])
    assert request is not None and request.waiting


@both_backends
async def test_a_rejected_submission_leaves_the_evidence_staged(
    backend: str, client: stripe.StripeClient, rules: AgentRuntime
) -> None:
    data = data_for(client, pay(client, "1305").id)
    report = await triage(rules, data)
    assert report.status == "completed" and not report.pending_approvals
    (approval,) = rules.approvals()
    assert (approval.execution_id, approval.tool_name, approval.args) == (
        submission_execution_id(data["dispute_id"]),
        "submit_dispute_evidence",
        {"dispute_id": data["dispute_id"]},
    )

    rules.reject(approval.approval_id, "Attach the delivery photo first", by="ops")
    result = rules.handle(approval.execution_id).result(timeout=30)

    assert result.status == "completed"
    assert "Not submitted" in result.output and "Attach the delivery photo first" in result.output
    dispute = client.v1.disputes.retrieve(data["dispute_id"])
    assert (dispute.status, dispute.evidence_details.submission_count) == ("needs_response", 0)
    assert dispute.evidence.customer_name == "Dana Whitfield"
    assert dispute.evidence.shipping_date == "2023-02-13"
    request = find_submission(rules, data["dispute_id"])
    assert request is not None and (request.status, request.decision) == ("completed", "rejected")
    # Asking again finds the decided request: nothing is submitted behind the reviewer's back.
    again = request_submission(data["dispute_id"], runtime=rules)
    assert (again.execution_id, again.created, again.decision) == (
        request.execution_id,
        False,
        "rejected",
    )
    assert client.v1.disputes.retrieve(data["dispute_id"]).evidence_details.submission_count == 0


async def test_a_submission_is_requested_only_for_staged_open_evidence(
    client: stripe.StripeClient, rules: AgentRuntime
) -> None:
    unstaged = dispute_of(client, pay(client, "1121").id).id
    closed = dispute_of(client, pay(client, "1234").id).id
    client.v1.disputes.close(closed)

    for dispute_id, says in ((unstaged, "No evidence is staged"), (closed, "is lost")):
        with pytest.raises(SubmissionNotPossible, match=says):
            request_submission(dispute_id, runtime=rules)
        result = await invoke(
            disputes.submission.request_evidence_submission, in_runtime=rules, dispute_id=dispute_id
        )
        assert says in stripe_message(result)
    assert rules.runs() == [] and rules.approvals() == []


async def test_the_request_tool_starts_one_submission_run_linked_to_the_disputes_run(
    client: stripe.StripeClient, rules: AgentRuntime
) -> None:
    dispute = dispute_of(client, pay(client, "1121").id)
    client.v1.disputes.update(
        dispute.id, params={"evidence": {"shipping_carrier": "UPS"}, "submit": False}
    )
    tool = disputes.submission.request_evidence_submission

    first = await invoke(tool, "fd_request", in_runtime=rules, dispute_id=dispute.id)
    again = await invoke(tool, "fd_request_again", in_runtime=rules, dispute_id=f" {dispute.id} ")

    assert first["execution_id"] == submission_execution_id(dispute.id)
    assert (first["created"], again["created"]) == (True, False)
    assert first["dispute_run"] == "run-1" and first["status"] == "waiting_approval"
    assert {k: v for k, v in again.items() if k != "created"} == {
        k: v for k, v in first.items() if k != "created"
    }
    (run,) = rules.runs()
    assert json.loads(run.input) == {"dispute_id": dispute.id, "dispute_run": "run-1"}
    assert [a.approval_id for a in rules.approvals()] == [first["approval_id"]]


@both_backends
@pytest.mark.parametrize(
    ("order_id", "says"),
    [
        (None, "has no order_id in its metadata"),
        ("4040", "Order 4040 (from payment intent"),
    ],
)
async def test_triage_without_an_order_asks_for_a_person(
    backend: str, client: stripe.StripeClient, rules: AgentRuntime, order_id: str | None, says: str
) -> None:
    data = data_for(client, pay(client, order_id).id)

    result = await triage(rules, data)

    assert (result.status, result.last_agent) == ("completed", "Triage Agent")
    assert says in result.output and "needs a person to review it" in result.output
    assert client.v1.disputes.retrieve(data["dispute_id"]).status == "needs_response"


async def test_the_model_sees_stripes_message_for_an_unknown_payment_intent(
    sandbox: SandboxServer, rules: AgentRuntime
) -> None:
    data = {"dispute_id": "dp_gone", "payment_intent": "pi_gone", "amount": 100}

    result = await triage(rules, data)

    (output,) = tool_results(result, "retrieve_payment_intent")
    assert output["error"]["message"] == "No such payment_intent: 'pi_gone'"
    assert "No such payment_intent: 'pi_gone'" in result.output


# process_dispute ---------------------------------------------------------------------------


async def test_process_dispute_warns_and_returns_none_without_a_dispute(
    client: stripe.StripeClient, rules: AgentRuntime, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    undisputed = pay(client, "1234", "pm_card_visa")

    assert await process_dispute(undisputed.id, triage_agent, runtime=rules) is None
    assert await process_dispute("pi_nope", triage_agent, runtime=rules) is None

    assert f"No dispute data found for PaymentIntent: {undisputed.id}" in caplog.text
    assert (
        "Payment intent 'pi_nope' could not be found: No such payment_intent: 'pi_nope'"
        in caplog.text
    )
    assert rules.runs() == []


async def test_process_dispute_without_stripe_warns(
    home: Path,
    rules: AgentRuntime,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    refused_url: str,
) -> None:
    url = refused_url
    monkeypatch.setenv("FRONTDESK_STRIPE_API_BASE", url)
    with pytest.raises(disputes.DisputeLookupError, match=f"Stripe at {url} could not be asked"):
        find_dispute("pi_1")
    assert await process_dispute("pi_1", triage_agent, runtime=rules) is None
    assert "could not be asked about payment intent 'pi_1'" in caplog.text
