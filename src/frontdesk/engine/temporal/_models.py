"""frontdesk's model selection behind the plugin's ``model_provider`` seam.

frontdesk's own ``frontdesk_model`` activity knows which agent a call is for and resolves its
model with :class:`~frontdesk.models._select.ModelSelector`, exactly as the embedded engine
does (the offline rules when ``FRONTDESK_MODEL=rules``, an override, the agent's own model).
The plugin's model activity only gets a model name. :class:`SelectedModelProvider` gives it the
same selection; for the rules baseline, whose rules belong to agents, :class:`RulesByShape`
finds the agent a call is for among the worker's agents by what the call carries: the system
instructions, else the tool and handoff names.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from agents import (
    Agent,
    AgentOutputSchemaBase,
    Handoff,
    Model,
    ModelProvider,
    ModelResponse,
    ModelSettings,
    ModelTracing,
    Tool,
    TResponseInputItem,
)
from openai.types.responses.response_prompt_param import ResponsePromptParam

from ...models._select import ModelSelector
from ...models.rules import NoRulesForAgent, RulesModel, rules_for
from ._activities import WorkerAgents


class RulesByShape(Model):
    """The rules model of whichever worker agent a call is for, found by its shape."""

    def __init__(self, agents: WorkerAgents) -> None:
        self.agents = agents
        """The agents whose rules may answer."""

    def for_call(
        self, system_instructions: str | None, tools: list[Tool], handoffs: list[Handoff]
    ) -> RulesModel:
        """The rules model of the one agent with these instructions (or tools and handoffs)."""
        candidates = [
            agent
            for agent in (self.agents.agent(name) for name in self.agents.names)
            if rules_for(agent) is not None
        ]
        by_instructions = [a for a in candidates if a.instructions == system_instructions]
        if len(by_instructions) == 1:
            return RulesModel.for_agent(by_instructions[0])
        shape = _shape([t.name for t in tools], [h.agent_name for h in handoffs])
        by_shape = [a for a in by_instructions or candidates if _agent_shape(a) == shape]
        if len(by_shape) == 1:
            return RulesModel.for_agent(by_shape[0])
        raise NoRulesForAgent("(an agent the call does not identify)")

    async def get_response(
        self,
        system_instructions: str | None,
        input: str | list[TResponseInputItem],
        model_settings: ModelSettings,
        tools: list[Tool],
        output_schema: AgentOutputSchemaBase | None,
        handoffs: list[Handoff],
        tracing: ModelTracing,
        *,
        previous_response_id: str | None,
        conversation_id: str | None,
        prompt: ResponsePromptParam | None,
    ) -> ModelResponse:
        """The answer of the agent's rules."""
        return await self.for_call(system_instructions, tools, handoffs).get_response(
            system_instructions,
            input,
            model_settings,
            tools,
            output_schema,
            handoffs,
            tracing,
            previous_response_id=previous_response_id,
            conversation_id=conversation_id,
            prompt=prompt,
        )

    async def stream_response(
        self,
        system_instructions: str | None,
        input: str | list[TResponseInputItem],
        model_settings: ModelSettings,
        tools: list[Tool],
        output_schema: AgentOutputSchemaBase | None,
        handoffs: list[Handoff],
        tracing: ModelTracing,
        *,
        previous_response_id: str | None,
        conversation_id: str | None,
        prompt: ResponsePromptParam | None,
    ) -> AsyncIterator[Any]:
        """The answer of the agent's rules, as stream events."""
        model = self.for_call(system_instructions, tools, handoffs)
        async for event in model.stream_response(
            system_instructions,
            input,
            model_settings,
            tools,
            output_schema,
            handoffs,
            tracing,
            previous_response_id=previous_response_id,
            conversation_id=conversation_id,
            prompt=prompt,
        ):
            yield event


def _shape(tools: list[str], handoffs: list[str]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    return tuple(sorted(tools)), tuple(sorted(handoffs))


def _agent_shape(agent: Agent[Any]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    tools = [tool.name for tool in agent.tools]
    handoffs = [
        item.name if isinstance(item, Agent) else item.agent_name for item in agent.handoffs
    ]
    return _shape(tools, handoffs)


class SelectedModelProvider(ModelProvider):
    """The plugin's ``model_provider``: models chosen as frontdesk chooses them."""

    def __init__(self, selector: ModelSelector, agents: WorkerAgents) -> None:
        self.selector = selector
        """frontdesk's model selection (override, provider, ``$FRONTDESK_MODEL``)."""
        self.agents = agents
        """The worker's agents, whose rules the rules baseline answers with."""

    def get_model(self, model_name: str | None) -> Model:
        """The model for a call to ``model_name`` (an agent's ``model``, or None)."""
        if self.selector.is_rules:
            return RulesByShape(self.agents)
        return self.selector.resolve(Agent(name="model", model=model_name))


__all__ = ["RulesByShape", "SelectedModelProvider"]
