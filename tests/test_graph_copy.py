"""GraphCopy: one way to copy an agent graph, through the SDK's public API only."""

from __future__ import annotations

from typing import Any

import pytest
from agents import Agent, Handoff, RunConfig, RunContextWrapper, Runner, function_tool, handoff
from agents.testing import ScriptedModel, assistant_message, function_call
from pydantic import BaseModel

from frontdesk.engine._agents import iter_graph
from frontdesk.engine._graph import GraphCopy, HandoffInvoke
from frontdesk.errors import InvalidInput

NO_TRACING = RunConfig(tracing_disabled=True)


class Reason(BaseModel):
    why: str


@function_tool(needs_approval=True)
def change_seat(seat: str) -> str:
    """Change the seat."""
    return f"seat is now {seat}"


def airline() -> tuple[Agent[Any], list[Any]]:
    """Triage hands off to FAQ (an Agent) and seats (a handoff() with a typed callback);
    both hand back to triage."""
    seen: list[Any] = []

    async def on_seats(ctx: RunContextWrapper[Any], reason: Reason) -> None:
        seen.append(reason.why)

    faq = Agent(name="FAQ Agent", model="gpt-4o")
    seats = Agent(name="Seat Agent", model="gpt-4o", tools=[change_seat])
    triage = Agent(
        name="Triage Agent",
        model="gpt-4o",
        handoffs=[
            faq,
            handoff(
                seats,
                on_handoff=on_seats,
                input_type=Reason,
                tool_name_override="to_seats",
                tool_description_override="Seat changes.",
            ),
        ],
    )
    faq.handoffs.append(triage)
    seats.handoffs.append(triage)
    return triage, seen


def on(model: ScriptedModel) -> GraphCopy:
    return GraphCopy(lambda agent: agent.clone(model=model))


def test_every_agent_is_copied_once_and_the_originals_are_untouched() -> None:
    triage, _ = airline()
    originals = iter_graph(triage)
    before = [(a.model, list(a.handoffs)) for a in originals]
    model = ScriptedModel([])

    copy = on(model).copy(triage)

    copies = iter_graph(copy)
    assert sorted(a.name for a in copies) == ["FAQ Agent", "Seat Agent", "Triage Agent"]
    assert not {id(a) for a in copies} & {id(a) for a in originals}
    assert all(a.model is model for a in copies)
    assert [(a.model, list(a.handoffs)) for a in originals] == before
    to_faq, to_seats = copy.handoffs
    original_to_seats = triage.handoffs[1]
    assert isinstance(to_faq, Handoff) and isinstance(to_seats, Handoff)
    assert isinstance(original_to_seats, Handoff)
    assert (to_seats.tool_name, to_seats.tool_description) == ("to_seats", "Seat changes.")
    assert to_seats.input_json_schema == original_to_seats.input_json_schema
    assert to_faq.tool_name == "transfer_to_faq_agent"


async def test_a_run_through_the_copy_stays_in_the_copy_and_runs_the_callback() -> None:
    triage, seen = airline()
    model = ScriptedModel(
        [
            [function_call("to_seats", {"why": "wants 12C"}, call_id="h1")],
            [function_call("transfer_to_triage_agent", {}, call_id="h2")],
            [function_call("transfer_to_faq_agent", {}, call_id="h3")],
            [assistant_message("Bags: one carry-on.")],
        ]
    )
    graph = on(model)
    copy = graph.copy(triage)

    result = await Runner.run(copy, "seat 12C, then a bag question", run_config=NO_TRACING)

    assert result.final_output == "Bags: one carry-on."
    assert result.last_agent is graph.named("FAQ Agent")
    assert result.last_agent is not triage.handoffs[0]
    assert seen == ["wants 12C"]


async def test_an_approval_inside_the_copy_survives_the_sdks_run_state() -> None:
    triage, _ = airline()
    model = ScriptedModel(
        [
            [function_call("to_seats", {"why": "seat"}, call_id="h1")],
            [function_call("change_seat", {"seat": "12C"}, call_id="c1")],
            [assistant_message("Done: 12C.")],
        ]
    )
    copy = on(model).copy(triage)
    paused = await Runner.run(copy, "seat 12C please", run_config=NO_TRACING)
    [approval] = paused.interruptions

    state = paused.to_state()
    state.approve(approval)
    resumed = await Runner.run(copy, state, run_config=NO_TRACING)

    assert resumed.final_output == "Done: 12C."
    assert resumed.last_agent.name == "Seat Agent" and resumed.last_agent.model is model


async def test_a_hand_built_handoff_leads_into_the_copy_when_it_runs() -> None:
    target = Agent(name="target", model="gpt-4o")

    async def choose(ctx: RunContextWrapper[Any], args_json: str) -> Agent[Any]:
        return target

    custom = Handoff(
        tool_name="escalate",
        tool_description="Escalate.",
        input_json_schema={},
        on_invoke_handoff=choose,
        agent_name="target",
    )
    root = Agent(name="root", model="gpt-4o", handoffs=[custom])
    model = ScriptedModel(
        [[function_call("escalate", {}, call_id="h1")], [assistant_message("escalated")]]
    )
    graph = on(model)

    result = await Runner.run(graph.copy(root), "help", run_config=NO_TRACING)

    assert result.last_agent is graph.named("target")
    assert result.last_agent is not target and result.last_agent.model is model


async def test_wrap_invoke_sees_every_handoff_with_its_source() -> None:
    triage, _ = airline()
    calls: list[tuple[str, str]] = []

    def wrap(invoke: HandoffInvoke, source: Agent[Any]) -> HandoffInvoke:
        async def wrapped(ctx: RunContextWrapper[Any], args_json: str) -> Agent[Any]:
            chosen = await invoke(ctx, args_json)
            calls.append((source.name, chosen.name))
            return chosen

        return wrapped

    model = ScriptedModel(
        [[function_call("transfer_to_faq_agent", {}, call_id="h1")], [assistant_message("hi")]]
    )
    graph = GraphCopy(lambda agent: agent.clone(model=model), wrap_invoke=wrap)

    await Runner.run(graph.copy(triage), "a question", run_config=NO_TRACING)

    assert calls == [("Triage Agent", "FAQ Agent")]


def test_copy_agent_must_make_a_new_agent() -> None:
    with pytest.raises(InvalidInput, match="must return a new"):
        GraphCopy(lambda agent: agent).copy(Agent(name="a"))
