"""The offline rules model on small synthetic agents, driven by the plain SDK runner."""

from __future__ import annotations

import json
from typing import Any

import pytest
from agents import Agent, ItemHelpers, RunConfig, Runner, function_tool, handoff
from agents.items import HandoffOutputItem, MessageOutputItem, ToolCallItem
from agents.model_settings import ModelSettings
from agents.models.interface import ModelTracing
from openai.types.responses import ResponseFunctionToolCall, ResponseTextDeltaEvent
from pydantic import BaseModel

from frontdesk.errors import FrontdeskError
from frontdesk.models.rules import (
    RULES_LABEL,
    Call,
    Conversation,
    FirstOf,
    FromJSON,
    FromMessage,
    FromResult,
    NoRulesForAgent,
    Parallel,
    Reply,
    Route,
    Rules,
    RulesModel,
    attach_rules,
    parse_output,
    rules_for,
    with_rules_model,
)

NO_TRACING = RunConfig(tracing_disabled=True)
calls: list[tuple[str, dict[str, Any]]] = []


@pytest.fixture(autouse=True)
def _fresh_calls() -> None:
    calls.clear()


@function_tool
def get_invoice(invoice_id: str) -> dict[str, Any]:
    """Fetch an invoice."""
    calls.append(("get_invoice", {"invoice_id": invoice_id}))
    return {"invoice_id": invoice_id, "customer_id": "C-7", "amount": 99.0, "status": "paid"}


@function_tool
def get_account(customer_id: str) -> dict[str, Any]:
    """Fetch an account."""
    calls.append(("get_account", {"customer_id": customer_id}))
    return {"customer_id": customer_id, "plan": "pro", "region": "eu-west"}


@function_tool
def check_status(region: str) -> str:
    """Service status as JSON text."""
    calls.append(("check_status", {"region": region}))
    return json.dumps({"region": region, "status": "operational"})


def text_of(result: Any) -> str:
    return str(result.final_output)


def function_calls(result: Any) -> list[tuple[str, dict[str, Any]]]:
    return [
        (item.raw_item.name, json.loads(item.raw_item.arguments))
        for item in result.new_items
        if isinstance(item, ToolCallItem) and isinstance(item.raw_item, ResponseFunctionToolCall)
    ]


def build_desk() -> tuple[Agent[Any], Agent[Any], Agent[Any]]:
    billing = Agent(name="billing", model="gpt-4o", tools=[get_invoice, get_account])
    tech = Agent(name="tech", model="gpt-4o", tools=[check_status, get_account])
    triage = Agent(
        name="triage",
        model="gpt-4o-mini",
        handoffs=[handoff(billing), handoff(tech, tool_name_override="escalate_to_engineering")],
    )
    attach_rules(
        triage,
        Rules(
            [
                Route("billing", keywords=["invoice", "refund", "charged"]),
                Route("tech", keywords=["login", "outage", "error"], patterns=[r"\b5\d\d\b"]),
            ],
            fallback="I can help with billing or technical issues.",
        ),
    )
    invoice_id = FromMessage(r"\bINV-?\d+\b", transform=str.upper)
    attach_rules(
        billing,
        Rules(
            [
                Call("get_invoice", {"invoice_id": invoice_id}),
                Call("get_account", {"customer_id": FromResult("get_invoice", "customer_id")}),
                Reply(
                    "Invoice {get_invoice.invoice_id}: {get_invoice.amount:.2f} "
                    "({get_account.plan} plan).",
                    when=lambda c: c.result("get_account") is not None,
                ),
            ],
            fallback="Which invoice is this about?",
        ),
    )
    attach_rules(
        tech,
        Rules(
            [
                Parallel(
                    Call("check_status", {"region": FromMessage(r"\b(?:eu|us)-(?:west|east)\b")}),
                    Call("get_account", {"customer_id": FromMessage(r"\bC-\d+\b")}),
                ),
                Call(
                    "check_status",
                    {"region": FromResult("get_account", "region")},
                    when=lambda c: not c.called("check_status"),
                ),
                Reply("Status in {check_status.region}: {check_status.status}."),
            ]
        ),
    )
    return triage, billing, tech


async def run(agent: Agent[Any], message: Any) -> Any:
    return await Runner.run(with_rules_model(agent), message, run_config=NO_TRACING)


async def test_routes_by_keyword_and_answers_from_tool_results() -> None:
    triage, _, _ = build_desk()
    result = await run(triage, "I was charged for invoice inv-42, why?")

    handoffs = [i for i in result.new_items if isinstance(i, HandoffOutputItem)]
    assert [h.target_agent.name for h in handoffs] == ["billing"]
    assert function_calls(result) == [
        ("get_invoice", {"invoice_id": "INV-42"}),
        ("get_account", {"customer_id": "C-7"}),
    ]
    assert text_of(result) == f"Invoice INV-42: 99.00 (pro plan).\n{RULES_LABEL}"


async def test_handoff_tool_name_comes_from_the_handoffs_the_model_receives() -> None:
    triage, _, _ = build_desk()
    result = await run(triage, "login fails with a 503 in us-east")

    handoff_calls = [
        i.raw_item.name
        for i in result.new_items
        if isinstance(i.raw_item, ResponseFunctionToolCall) and not isinstance(i, ToolCallItem)
    ]
    assert handoff_calls == ["escalate_to_engineering"]
    assert result.last_agent.name == "tech"


async def test_consecutive_routes_compete_by_number_of_hits() -> None:
    triage, _, _ = build_desk()
    # one billing word against two technical hits (a keyword and a pattern)
    result = await run(triage, "refund please: login outage")
    assert result.last_agent.name == "tech"
    # a tie goes to the route declared first
    result = await run(triage, "refund, and a login problem")
    assert result.last_agent.name == "billing"


async def test_parallel_lookups_and_args_from_an_earlier_result() -> None:
    _, _, tech = build_desk()
    result = await run(tech, "C-9 here, the app is slow")

    # no region in the message: the account comes first, then the status of its region
    assert function_calls(result) == [
        ("get_account", {"customer_id": "C-9"}),
        ("check_status", {"region": "eu-west"}),
    ]
    result = await run(tech, "C-9 in us-east, the app is slow")
    # both lookups in one model response, then the reply
    assert {c[0] for c in function_calls(result)} == {"check_status", "get_account"}
    assert result.context_wrapper.usage.requests == 2
    assert text_of(result).startswith("Status in us-east: operational.")


async def test_fallback_when_nothing_matches_never_raises() -> None:
    triage, billing, _ = build_desk()
    result = await run(triage, "what's the weather?")
    assert text_of(result) == f"I can help with billing or technical issues.\n{RULES_LABEL}"
    assert result.last_agent.name == "triage"

    result = await run(billing, "hello")
    assert text_of(result) == f"Which invoice is this about?\n{RULES_LABEL}"
    assert calls == []


async def test_a_rule_that_raises_is_skipped_not_fatal(caplog: pytest.LogCaptureFixture) -> None:
    agent = Agent(name="buggy", model="gpt-4o")
    attach_rules(agent, Rules([Reply(lambda c: c.user_messages[5]), Reply("still here")]))
    result = await run(agent, "hi")
    assert text_of(result) == f"still here\n{RULES_LABEL}"
    assert "rule step 0 of agent 'buggy' raised" in caplog.text


async def test_the_same_call_is_not_repeated_within_a_user_turn() -> None:
    agent = Agent(name="looper", model="gpt-4o", tools=[check_status])
    attach_rules(agent, Rules([Call("check_status", {"region": "us-east"})], fallback="done"))

    result = await run(agent, "status?")
    assert calls == [("check_status", {"region": "us-east"})]
    assert text_of(result) == f"done\n{RULES_LABEL}"

    # a new user message is a new turn: the lookup may run again
    history = [*result.to_input_list(), {"role": "user", "content": "and now?"}]
    await run(agent, history)
    assert len(calls) == 2


async def test_routes_do_not_bounce_back_to_an_agent_already_visited() -> None:
    first = Agent(name="first", model="gpt-4o")
    second = Agent(name="second", model="gpt-4o", handoffs=[first])
    first.handoffs = [second]
    attach_rules(first, Rules([Route("second", keywords=["ping"])], fallback="first answers"))
    attach_rules(second, Rules([Route("first", keywords=["ping"])], fallback="second answers"))

    result = await run(first, "ping")
    assert [h.target_agent.name for h in result.new_items if isinstance(h, HandoffOutputItem)] == [
        "second",
        "first",
    ]
    assert text_of(result) == f"first answers\n{RULES_LABEL}"


async def test_a_reply_never_repeats_the_previous_assistant_message() -> None:
    agent = Agent(name="asker", model="gpt-4o")
    attach_rules(agent, Rules([Reply("What is your confirmation number?")], fallback="Sorry."))

    first = await run(agent, "change my seat")
    assert text_of(first).startswith("What is your confirmation number?")
    history = [*first.to_input_list(), {"role": "user", "content": "hmm"}]
    second = await run(agent, history)
    assert text_of(second) == f"Sorry.\n{RULES_LABEL}"


async def test_every_text_is_labelled_and_the_model_exposes_the_label() -> None:
    triage, _, _ = build_desk()
    result = await run(triage, "anything")
    messages = [i for i in result.new_items if isinstance(i, MessageOutputItem)]
    assert messages
    for message in messages:
        assert ItemHelpers.text_message_output(message).splitlines()[-1] == RULES_LABEL
    assert RulesModel.label == RULES_LABEL
    assert RulesModel.for_agent(triage).label == RULES_LABEL


async def test_call_ids_are_deterministic_across_runs() -> None:
    triage, _, _ = build_desk()

    def ids(result: Any) -> list[str]:
        return [
            i.raw_item.call_id
            for i in result.new_items
            if isinstance(i.raw_item, ResponseFunctionToolCall)
        ]

    first = ids(await run(triage, "invoice INV-1 please"))
    second = ids(await run(triage, "invoice INV-1 please"))
    other = ids(await run(triage, "invoice INV-2 please"))
    assert first == second
    assert len(set(first)) == len(first) == 3
    assert all(i.startswith("call_rules_") for i in first)
    assert first[1:] != other[1:]


async def test_usage_is_one_request_with_tokens_estimated_from_characters() -> None:
    agent = Agent(name="plain", model="gpt-4o")
    attach_rules(agent, Rules([Reply("x" * 40)]))
    model = RulesModel.for_agent(agent)
    response = await model.get_response(
        "sys",
        "abcdefgh",
        ModelSettings(),
        [],
        None,
        [],
        ModelTracing.DISABLED,
        previous_response_id=None,
        conversation_id=None,
        prompt=None,
    )
    assert response.usage.requests == 1
    assert response.usage.input_tokens == 3  # "sys" + "abcdefgh" = 11 characters
    assert response.usage.output_tokens >= 40 // 4
    assert response.usage.total_tokens == response.usage.input_tokens + response.usage.output_tokens

    result = await run(agent, "hi")
    assert result.context_wrapper.usage.requests == 1


async def test_streaming_emits_text_deltas_and_the_same_outcome() -> None:
    triage, _, _ = build_desk()
    streamed = Runner.run_streamed(
        with_rules_model(triage), "invoice INV-5 looks wrong", run_config=NO_TRACING
    )
    deltas = [
        event.data.delta
        async for event in streamed.stream_events()
        if event.type == "raw_response_event" and isinstance(event.data, ResponseTextDeltaEvent)
    ]
    plain = await run(triage, "invoice INV-5 looks wrong")

    assert len(deltas) > 1
    assert "".join(deltas) == streamed.final_output == plain.final_output
    assert streamed.last_agent.name == "billing"
    assert streamed.context_wrapper.usage.requests == plain.context_wrapper.usage.requests == 4


async def test_dispute_style_flow_reads_json_input_and_nested_results() -> None:
    @function_tool
    def retrieve_payment_intent(payment_intent_id: str) -> dict[str, Any]:
        """Retrieve a payment intent."""
        return {"id": payment_intent_id, "metadata": {"order_id": "ord_1"}}

    @function_tool
    def get_order(order_id: str) -> dict[str, Any]:
        """Get an order."""
        return {"order_id": order_id, "fulfillment_details": {"fulfillment_status": "delivered"}}

    @function_tool
    def close_dispute(dispute_id: str) -> dict[str, Any]:
        """Accept a dispute."""
        calls.append(("close_dispute", {"dispute_id": dispute_id}))
        return {"id": dispute_id, "status": "lost"}

    investigator = Agent(name="investigator", model="gpt-4o")
    acceptor = Agent(name="acceptor", model="gpt-4o", tools=[close_dispute])
    triage = Agent(
        name="triage",
        model="gpt-4o",
        tools=[retrieve_payment_intent, get_order],
        handoffs=[investigator, acceptor],
    )
    status = FromResult("get_order", "fulfillment_details.fulfillment_status")
    attach_rules(
        triage,
        Rules(
            [
                Call(
                    "retrieve_payment_intent", {"payment_intent_id": FromJSON("payment_intent_id")}
                ),
                Call(
                    "get_order",
                    {"order_id": FromResult("retrieve_payment_intent", "metadata.order_id")},
                ),
                Route("investigator", when=lambda c: status.resolve(c) in ("shipped", "delivered")),
                Route("acceptor", when=lambda c: status.resolve(c) is not None),
            ]
        ),
    )
    attach_rules(investigator, Rules([Reply("Investigating order {get_order.order_id}.")]))
    attach_rules(
        acceptor,
        Rules(
            [
                Call("close_dispute", {"dispute_id": FromJSON("dispute_id")}),
                Reply("Dispute {close_dispute.id} accepted."),
            ]
        ),
    )

    message = json.dumps({"dispute_id": "dp_1", "payment_intent_id": "pi_1"})
    result = await run(triage, message)
    assert result.last_agent.name == "investigator"
    assert text_of(result).startswith("Investigating order ord_1.")
    assert calls == []


async def test_multi_turn_seat_booking_style_conversation() -> None:
    @function_tool
    def update_seat(confirmation_number: str, new_seat: str) -> str:
        """Update a seat."""
        calls.append(
            ("update_seat", {"confirmation_number": confirmation_number, "new_seat": new_seat})
        )
        return f"Updated seat to {new_seat} for {confirmation_number}"

    faq = Agent(name="FAQ Agent", model="gpt-4o")
    seat = Agent(name="Seat Booking Agent", model="gpt-4o", tools=[update_seat])
    triage = Agent(name="Triage Agent", model="gpt-4o", handoffs=[faq, seat])
    faq.handoffs.append(triage)
    seat.handoffs.append(triage)
    attach_rules(
        triage,
        Rules(
            [
                Route("Seat Booking Agent", keywords=["seat"]),
                Route("FAQ Agent", keywords=["bag", "wifi"]),
            ]
        ),
    )
    attach_rules(faq, Rules([Reply("Bags: one carry-on allowed.")]))
    confirmation = FromMessage(r"\b(?=[A-Z]*\d)[A-Z0-9]{6}\b", scope="any", flags=0)
    seat_no = FromMessage(r"\b\d{1,2}[A-F]\b")
    attach_rules(
        seat,
        Rules(
            [
                Route("Triage Agent", when=lambda c: c.mentions("bag", "wifi")),
                Call("update_seat", {"confirmation_number": confirmation, "new_seat": seat_no}),
                Reply(
                    "Your seat is updated: {update_seat}", when=lambda c: c.called("update_seat")
                ),
                Reply(
                    "What is your confirmation number?",
                    when=lambda c: confirmation.resolve(c) is None,
                ),
                Reply("Which seat would you like?"),
            ]
        ),
    )

    graph = with_rules_model(triage)
    history: list[Any] = []
    agent: Agent[Any] = graph
    answers = []
    for message in ["I want to change my seat", "ABC123", "12C please", "what about my bag?"]:
        history.append({"role": "user", "content": message})
        result = await Runner.run(agent, history, run_config=NO_TRACING)
        history = result.to_input_list()
        agent = result.last_agent
        answers.append((agent.name, text_of(result).splitlines()[0]))

    assert answers == [
        ("Seat Booking Agent", "What is your confirmation number?"),
        ("Seat Booking Agent", "Which seat would you like?"),
        ("Seat Booking Agent", "Your seat is updated: Updated seat to 12C for ABC123"),
        ("FAQ Agent", "Bags: one carry-on allowed."),
    ]
    assert calls == [("update_seat", {"confirmation_number": "ABC123", "new_seat": "12C"})]


async def test_structured_output_gets_json_without_the_label() -> None:
    class Verdict(BaseModel):
        decision: str
        amount: float

    agent = Agent(name="judge", model="gpt-4o", output_type=Verdict)
    attach_rules(agent, Rules([Reply(lambda c: {"decision": "accept", "amount": 12.5})]))
    result = await run(agent, "decide")
    assert result.final_output == Verdict(decision="accept", amount=12.5)


def test_rules_belong_to_the_agent_object_not_its_name() -> None:
    one, two = Agent(name="Triage Agent"), Agent(name="Triage Agent")
    rules_one, rules_two = Rules([Reply("one")]), Rules([Reply("two")])
    attach_rules(one, rules_one)
    attach_rules(two, rules_two)
    assert rules_for(one) is rules_one
    assert rules_for(two) is rules_two
    assert RulesModel.for_agent(one).rules is rules_one


def test_an_agent_without_rules_raises_a_clear_error() -> None:
    with pytest.raises(NoRulesForAgent, match="'Lonely Agent'") as caught:
        RulesModel.for_agent(Agent(name="Lonely Agent"))
    assert isinstance(caught.value, FrontdeskError)


def test_with_rules_model_copies_the_graph_and_leaves_the_original_alone() -> None:
    triage, billing, _ = build_desk()
    graph = with_rules_model(triage)
    assert triage.model == "gpt-4o-mini" and billing.model == "gpt-4o"
    assert isinstance(graph.model, RulesModel)
    assert graph is not triage and rules_for(graph) is rules_for(triage)
    assert [h.tool_name for h in graph.handoffs] == [h.tool_name for h in triage.handoffs]


def test_argument_sources_and_output_parsing() -> None:
    conversation = Conversation(user_messages=("order A-1", "now order B-2"))
    assert FromMessage(r"[A-Z]-\d").resolve(conversation) == "B-2"
    assert FromMessage(r"order ([A-Z])-1", scope="any").resolve(conversation) == "A"
    assert FirstOf(FromMessage(r"Z-\d"), "default").resolve(conversation) == "default"
    assert FromJSON("a.b").resolve(Conversation(user_messages=('{"a": {"b": 3}}',))) == 3

    assert parse_output("{'ok': True, 'n': None}") == {"ok": True, "n": None}
    assert parse_output('{"ok": true}') == {"ok": True}
    assert parse_output("Tool execution was not approved.") == "Tool execution was not approved."


async def test_reply_templates_read_results_of_the_current_message_only() -> None:
    agent = Agent(name="desk", tools=[get_invoice])
    attach_rules(
        agent,
        Rules(
            [
                Call("get_invoice", {"invoice_id": FromMessage(r"INV-\d+", transform=str.upper)}),
                Reply("Invoice {get_invoice.invoice_id} is {get_invoice.status}."),
            ],
            fallback="Which invoice?",
        ),
    )
    agent = with_rules_model(agent)
    first = await Runner.run(agent, "status of INV-7?", run_config=NO_TRACING)
    assert text_of(first).startswith("Invoice INV-7 is paid.")
    second = await Runner.run(
        agent,
        [*first.to_input_list(), {"role": "user", "content": "thanks!"}],
        run_config=NO_TRACING,
    )
    # The earlier lookup belongs to the earlier message: no stale re-announcement.
    assert text_of(second).startswith("Which invoice?")
