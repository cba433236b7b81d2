"""The airline's agents: triage, which hands off to the FAQ and seat booking agents."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from agents import Agent, handoff
from agents.extensions.handoff_prompt import RECOMMENDED_PROMPT_PREFIX

from .rules import attach_airline_rules
from .tools import AirlineAgentContext, faq_lookup_tool, on_seat_booking_handoff, update_seat


def init_agents() -> tuple[Agent[AirlineAgentContext], dict[str, Agent[AirlineAgentContext]]]:
    """Build a new agent graph; return its triage agent and every agent by name.

    Each graph carries the offline rules, so it also runs on ``FRONTDESK_MODEL=rules``.
    """
    faq_agent = Agent[AirlineAgentContext](
        name="FAQ Agent",
        handoff_description="A helpful agent that can answer questions about the airline.",
        instructions=f"""{RECOMMENDED_PROMPT_PREFIX}
        You are an FAQ agent. If you are speaking to a customer, you probably were transferred to from the triage agent.
        Use the following routine to support the customer.
        # Routine
        1. Identify the last question asked by the customer.
        2. Use the faq lookup tool to answer the question. Do not rely on your own knowledge.
        3. If you cannot answer the question, transfer back to the triage agent.""",
        tools=[faq_lookup_tool],
    )
    seat_booking_agent = Agent[AirlineAgentContext](
        name="Seat Booking Agent",
        handoff_description="A helpful agent that can update a seat on a flight.",
        instructions=f"""{RECOMMENDED_PROMPT_PREFIX}
        You are a seat booking agent. If you are speaking to a customer, you probably were transferred to from the triage agent.
        Use the following routine to support the customer.
        # Routine
        1. Ask for their confirmation number.
        2. Ask the customer what their desired seat number is.
        3. Use the update seat tool to update the seat on the flight.
        If the customer asks a question that is not related to the routine, transfer back to the triage agent.""",
        tools=[update_seat],
    )
    triage_agent = Agent[AirlineAgentContext](
        name="Triage Agent",
        handoff_description="A triage agent that can delegate a customer's request to the appropriate agent.",
        instructions=(
            f"{RECOMMENDED_PROMPT_PREFIX} "
            "You are a helpful triaging agent. You can use your tools to delegate questions to other appropriate agents."
        ),
        handoffs=[faq_agent, handoff(agent=seat_booking_agent, on_handoff=on_seat_booking_handoff)],
    )
    faq_agent.handoffs.append(triage_agent)
    seat_booking_agent.handoffs.append(triage_agent)
    agents = {agent.name: agent for agent in [faq_agent, seat_booking_agent, triage_agent]}
    attach_airline_rules(agents)
    return triage_agent, agents


triage_agent, _agents = init_agents()
AGENTS: Mapping[str, Agent[AirlineAgentContext]] = MappingProxyType(_agents)
"""The module's agents by name; the runtime finds them again here after a restart."""
faq_agent = AGENTS["FAQ Agent"]
seat_booking_agent = AGENTS["Seat Booking Agent"]
