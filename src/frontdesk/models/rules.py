"""The offline rules model: a deterministic stand-in for an LLM, driven by declared rules.

Use it with ``FRONTDESK_MODEL=rules`` (or ``--model rules``) to run any app without a network
or an API key. Agents keep their own ``model=`` setting; the runtime asks
``RulesModel.for_agent(agent)`` for each agent, which reads the rules that the app attached
with :func:`attach_rules`. Every text the model writes ends with :data:`RULES_LABEL` on its
own line, so nobody mistakes it for an LLM answer.

Writing rules
-------------
An agent's :class:`Rules` is a list of steps, tried in order on every model call; the first
step that fires is the model's one decision for that call:

* :class:`Route` hands off to another agent when the latest user message hits its keywords or
  patterns (consecutive routes compete: most hits wins) and its ``when`` condition holds.
* :class:`Call` calls a tool once every argument resolves. Arguments are literals,
  :class:`FromMessage` (regex over user text), :class:`FromResult` (a dotted path into an
  earlier tool result), :class:`FromJSON` (a path into a JSON user message),
  :class:`FirstOf` (first that resolves) or any function of the :class:`Conversation`.
  :class:`Parallel` issues several calls at once.
* :class:`Reply` answers with a template (``{tool.path}`` placeholders) or a function.

A call with the same tool and arguments is never made twice for one user message, a route
never returns to an agent already visited for it, and a reply never repeats the previous
assistant message, so a conversation always ends. When no step fires the model answers with
``Rules.fallback``; a step that raises is logged and skipped. Conditions and functions receive a :class:`Conversation`: the user
messages, earlier tool calls with their parsed results, the previous assistant message and the
tools and handoffs available now.

Example::

    from frontdesk.models.rules import Call, FromMessage, FromResult, Reply, Route, Rules
    from frontdesk.models.rules import attach_rules

    attach_rules(triage, Rules([Route("billing", keywords=["invoice", "refund"])]))
    attach_rules(billing, Rules([
        Call("get_invoice", {"invoice_id": FromMessage(r"INV-\\d+", transform=str.upper)}),
        Call("get_account", {"customer_id": FromResult("get_invoice", "customer_id")}),
        Reply("Invoice {get_invoice.invoice_id} is {get_invoice.status}.",
              when=lambda c: c.result("get_account") is not None),
    ], fallback="Which invoice is this about?"))

Agents with a structured ``output_type`` get the reply value as JSON and no label line (the
output must parse); the run record still carries :attr:`RulesModel.label`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator
from typing import Any

from agents import Agent, Handoff
from agents.agent_output import AgentOutputSchemaBase
from agents.items import ModelResponse, TResponseInputItem, TResponseOutputItem
from agents.model_settings import ModelSettings
from agents.models.interface import Model, ModelTracing
from agents.tool import Tool
from agents.tracing import generation_span
from openai.types.responses.response_prompt_param import ResponsePromptParam

from ..engine._graph import GraphCopy
from ..errors import FrontdeskError
from ._rules_conversation import (
    RULES_LABEL,
    Conversation,
    Scope,
    TextScope,
    ToolCallRecord,
    canonical_args,
    parse_output,
    read_conversation,
)
from ._rules_engine import (
    DEFAULT_FALLBACK,
    ArgSource,
    Call,
    Condition,
    Decision,
    FirstOf,
    FromJSON,
    FromMessage,
    FromResult,
    Parallel,
    Reply,
    Route,
    Rules,
    Step,
    decide,
)
from ._rules_stream import (
    MODEL_NAME,
    estimate_usage,
    function_call_item,
    message_item,
    stream_events,
)

_RULES_ATTR = "_frontdesk_rules"


class NoRulesForAgent(FrontdeskError, LookupError):
    """The agent has no rules attached, so the rules model cannot drive it."""

    def __init__(self, agent_name: str) -> None:
        super().__init__(
            f"agent {agent_name!r} has no rules for the offline rules model; "
            "declare them beside the app and call attach_rules(agent, rules)"
        )
        self.agent_name = agent_name


def attach_rules(agent: Agent[Any], rules: Rules) -> Agent[Any]:
    """Attach ``rules`` to this agent object (not to its name) and return the agent."""
    setattr(agent, _RULES_ATTR, rules)
    return agent


def rules_for(agent: Agent[Any]) -> Rules | None:
    """The rules attached to this agent object, or None."""
    rules = getattr(agent, _RULES_ATTR, None)
    return rules if isinstance(rules, Rules) else None


def _digest(*parts: Any) -> str:
    return hashlib.sha256("\x1f".join(map(str, parts)).encode()).hexdigest()[:24]


def _call_ids(input: str | list[TResponseInputItem]) -> frozenset[str]:
    if isinstance(input, str):
        return frozenset()
    found = (
        item.get("call_id") if isinstance(item, dict) else getattr(item, "call_id", None)
        for item in input
    )
    return frozenset(c for c in found if isinstance(c, str))


def _fresh_call_id(taken: frozenset[str], *parts: Any) -> str:
    """A call id derived from ``parts`` that no item of the input already uses. The input
    length keeps ids apart while a conversation grows; under a memory window it repeats, and
    the SDK would merge two calls that share an id."""
    call_id = "call_rules_" + _digest(*parts)
    while call_id in taken:
        call_id = "call_rules_" + _digest(call_id, "again")
    return call_id


def _input_chars(system_instructions: str | None, input: str | list[TResponseInputItem]) -> int:
    body = input if isinstance(input, str) else json.dumps(input, default=str)
    return len(system_instructions or "") + len(body)


class RulesModel(Model):
    """A deterministic SDK ``Model`` that decides by an agent's declared :class:`Rules`."""

    label = RULES_LABEL
    """Marks output as the offline rules baseline, not an LLM."""

    def __init__(self, rules: Rules, *, agent_name: str = "") -> None:
        self.rules = rules
        self.agent_name = agent_name

    @classmethod
    def for_agent(cls, agent: Agent[Any]) -> RulesModel:
        """The rules model for ``agent``; raises :class:`NoRulesForAgent` if it has no rules."""
        rules = rules_for(agent)
        if rules is None:
            raise NoRulesForAgent(agent.name)
        return cls(rules, agent_name=agent.name)

    def conversation(
        self,
        input: str | list[TResponseInputItem],
        tools: list[Tool],
        handoffs: list[Handoff],
    ) -> Conversation:
        """The rules' view of one model call."""
        return read_conversation(
            input,
            tools=[name for name in (getattr(t, "name", None) for t in tools) if name],
            handoff_tools={h.agent_name: h.tool_name for h in handoffs},
            agent_name=self.agent_name,
        )

    def respond(
        self,
        system_instructions: str | None,
        input: str | list[TResponseInputItem],
        tools: list[Tool],
        output_schema: AgentOutputSchemaBase | None,
        handoffs: list[Handoff],
    ) -> ModelResponse:
        """Decide and build the model response for one call."""
        conversation = self.conversation(input, tools, handoffs)
        decision = decide(self.rules, conversation)
        position = (conversation.input_length, conversation.turn, conversation.last_user)
        output = self._output_items(decision, position, output_schema, _call_ids(input))
        output_chars = sum(len(item.model_dump_json()) for item in output)
        usage = estimate_usage(_input_chars(system_instructions, input), output_chars)
        response_id = "resp_rules_" + _digest(*position, self.agent_name)
        return ModelResponse(output=output, usage=usage, response_id=response_id)

    def _output_items(
        self,
        decision: Decision,
        position: tuple[Any, ...],
        output_schema: AgentOutputSchemaBase | None,
        taken: frozenset[str] = frozenset(),
    ) -> list[TResponseOutputItem]:
        if decision.handoff is not None:
            call_id = _fresh_call_id(taken, *position, decision.handoff, "{}")
            return [function_call_item(call_id, decision.handoff, "{}")]
        if decision.calls:
            items: list[TResponseOutputItem] = []
            for index, (name, args) in enumerate(decision.calls):
                arguments = canonical_args(args)
                call_id = _fresh_call_id(taken, *position, name, arguments, index)
                items.append(function_call_item(call_id, name, arguments))
            return items
        text = _reply_text(decision.reply, output_schema)
        return [message_item("msg_rules_" + _digest(*position, text), text)]

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
        """Return the rules' decision for this model call."""
        with generation_span(model=MODEL_NAME, disabled=tracing.is_disabled()) as span:
            response = self.respond(system_instructions, input, tools, output_schema, handoffs)
            if tracing.include_data():
                span.span_data.output = [item.model_dump() for item in response.output]
            return response

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
        """Stream the rules' decision as normalized Responses events."""
        with generation_span(model=MODEL_NAME, disabled=tracing.is_disabled()):
            response = self.respond(system_instructions, input, tools, output_schema, handoffs)
            for event in stream_events(
                response.response_id or "resp_rules", response.output, response.usage
            ):
                yield event


def _reply_text(reply: Any, output_schema: AgentOutputSchemaBase | None) -> str:
    structured = output_schema is not None and not output_schema.is_plain_text()
    if structured:
        return reply if isinstance(reply, str) else json.dumps(reply, default=str)
    return f"{str(reply).rstrip()}\n{RULES_LABEL}"


def _on_rules(agent: Agent[Any]) -> Agent[Any]:
    return attach_rules(
        agent.clone(model=RulesModel.for_agent(agent)), rules_for(agent) or Rules([])
    )


def with_rules_model(agent: Agent[Any]) -> Agent[Any]:
    """A copy of the agent graph reachable from ``agent`` in which every agent runs on its
    :class:`RulesModel`. The original agents are not changed.

    Handoffs keep their names, filters and callbacks; they lead to the copies.
    """
    return GraphCopy(_on_rules).copy(agent)


__all__ = [
    "DEFAULT_FALLBACK",
    "RULES_LABEL",
    "ArgSource",
    "Call",
    "Condition",
    "Conversation",
    "Decision",
    "FirstOf",
    "FromJSON",
    "FromMessage",
    "FromResult",
    "NoRulesForAgent",
    "Parallel",
    "Reply",
    "Route",
    "Rules",
    "RulesModel",
    "Scope",
    "Step",
    "TextScope",
    "ToolCallRecord",
    "attach_rules",
    "parse_output",
    "rules_for",
    "with_rules_model",
]
