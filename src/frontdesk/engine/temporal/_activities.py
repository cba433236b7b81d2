"""frontdesk's Temporal activities: model calls by reference, tools and handoff hooks.

A workflow never runs a user's tool or handoff hook itself, and never sends a model the whole
conversation through Temporal's history. It schedules one of three activities, each carrying
only data:

* ``frontdesk_model``: the agent's name, the plugin's model input with only the items added
  since the last call, and the reference of the items before them in the :class:`WorkerStore`
  (the store every worker shares).
  The worker joins them, stores the new segment, resolves the agent's model the way frontdesk
  selects models, and calls it through the plugin's own model activity code.
* ``frontdesk_tool``: agent name, tool name, arguments JSON, the context as data, the call id
  and the workflow id. The worker finds the tool in its :class:`WorkerAgents`, runs it in a
  tool-call scope whose idempotency key is derived from the workflow id and the call id, and
  returns the output and the context after the call. The tool calls journal makes a retried
  activity return what a finished call returned.
* ``frontdesk_handoff``: the same for a handoff's ``on_invoke_handoff`` (its ``on_handoff``
  hook), returning the name of the agent handed to and the context after the hook.

The inputs and outputs are dataclasses with real (not postponed) annotations, which the
Pydantic data converter resolves inside the workflow sandbox.
"""

import asyncio
import os
import time
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from typing import Any

from agents import Agent, FunctionTool, Handoff, Model, ModelProvider, RunContextWrapper, handoff
from agents.items import ModelResponse
from agents.tool_context import ToolContext
from pydantic_core import to_jsonable_python

from ..._home import active_home, resolve_home
from ..._scope import driving_for
from ...errors import FrontdeskError
from ...models._select import ModelSelector
from ...store import Store
from ...tools import ToolCall, _tool_call_scope
from .._agents import handoff_target
from .._context import dump_context, load_context
from .._types import idempotency_key
from ._extra import missing_extra
from ._store import ItemsMissing, WorkerStore

try:
    from temporalio import activity
    from temporalio.exceptions import ApplicationError
    from temporalio.openai_agents._invoke_model_activity import (
        ActivityModelInput,
        ModelActivity,
    )
except ImportError as _exc:  # pragma: no cover - the temporal extra is missing
    raise missing_extra(_exc) from _exc

MODEL_ACTIVITY = "frontdesk_model"
TOOL_ACTIVITY = "frontdesk_tool"
HANDOFF_ACTIVITY = "frontdesk_handoff"

ITEMS_MISSING = "FrontdeskItemsMissing"
"""The ``ApplicationError`` type of a model call whose earlier items the worker lacks."""
NOT_REGISTERED = "FrontdeskNotRegistered"
"""The ``ApplicationError`` type of a call to an agent, tool or handoff the worker lacks."""
MODEL_UNAVAILABLE = "FrontdeskModelUnavailable"
"""The ``ApplicationError`` type of a model that is not configured on the worker."""

ITEMS_CACHE_SIZE = 256
"""Item lists kept in memory by reference, so a conversation's next call reads nothing."""


@dataclass
class ModelCallInput:
    """A model call: the plugin's model input, its items given by reference plus new ones."""

    agent_name: str
    """The agent the call is for; the worker resolves its model."""
    model_input: ActivityModelInput
    """The plugin's model input. Its ``input`` is a text input as is, or empty when the
    input is a list of items: they are ``parent``'s items followed by ``items``."""
    items: list[Any] = field(default_factory=list)
    """The items after ``parent``'s, as plain JSON data."""
    parent: str | None = None
    """The reference of the stored items before ``items``; None when there are none."""


@dataclass
class ToolCallInput:
    """One tool call, as data."""

    workflow_id: str
    """The workflow (conversation) making the call."""
    agent_name: str
    """The agent whose tool it is."""
    tool_name: str
    """The tool's name."""
    call_id: str
    """The model's id for this call."""
    args_json: str
    """The arguments as the model sent them."""
    context_type: str | None
    """The context's type reference (see ``dump_context``)."""
    context_json: str | None
    """The context before the call."""


@dataclass
class ToolCallOutput:
    """What a tool call returned, and the context after it."""

    output: Any
    """The tool's output, as JSON data."""
    context_type: str | None
    """The context's type reference."""
    context_json: str | None
    """The context after the call."""


@dataclass
class HandoffCallInput:
    """One handoff, as data: its hook runs on the worker."""

    workflow_id: str
    """The workflow (conversation) handing off."""
    agent_name: str
    """The agent handing off."""
    tool_name: str
    """The handoff's tool name."""
    args_json: str
    """The arguments as the model sent them."""
    context_type: str | None
    """The context's type reference."""
    context_json: str | None
    """The context before the hook."""


@dataclass
class HandoffCallOutput:
    """The agent a handoff leads to, and the context after its hook."""

    agent_name: str
    """The agent handed to."""
    context_type: str | None
    """The context's type reference."""
    context_json: str | None
    """The context after the hook."""


class WorkerAgents:
    """The agents a worker can run, by name, with every agent they hand off to."""

    def __init__(self, agents: Iterable[Agent[Any]] | Mapping[str, Agent[Any]]) -> None:
        self._by_name: dict[str, Agent[Any]] = {}
        pending = list(agents.values() if isinstance(agents, Mapping) else agents)
        while pending:
            agent = pending.pop(0)
            if agent.name in self._by_name:
                continue
            self._by_name[agent.name] = agent
            for item in agent.handoffs:
                target = handoff_target(item)
                if target is not None:
                    pending.append(target)

    @property
    def names(self) -> list[str]:
        """Every agent's name."""
        return list(self._by_name)

    def agent(self, name: str) -> Agent[Any]:
        """The agent called ``name``."""
        found = self._by_name.get(name)
        if found is None:
            raise _not_registered(f"this worker has no agent named {name!r}")
        return found

    def tool(self, agent_name: str, tool_name: str) -> FunctionTool:
        """The function tool ``tool_name`` of the agent ``agent_name``."""
        for tool in self.agent(agent_name).tools:
            if isinstance(tool, FunctionTool) and tool.name == tool_name:
                return tool
        raise _not_registered(f"agent {agent_name!r} has no function tool {tool_name!r}")

    def handoff(self, agent_name: str, tool_name: str) -> Handoff[Any, Any]:
        """The handoff of the agent ``agent_name`` whose tool is ``tool_name``."""
        for item in self.agent(agent_name).handoffs:
            found = handoff(item) if isinstance(item, Agent) else item
            if found.tool_name == tool_name:
                return found
        raise _not_registered(f"agent {agent_name!r} has no handoff {tool_name!r}")


def _not_registered(message: str) -> ApplicationError:
    return ApplicationError(message, type=NOT_REGISTERED, non_retryable=True)


def driving(scope: Any) -> AbstractContextManager[None]:
    """:func:`frontdesk._scope.driving_for` ``scope`` when there is one; else nothing."""
    return driving_for(scope) if scope is not None else nullcontext()


class _OneModel(ModelProvider):
    """Hands the plugin's model activity code the model frontdesk chose."""

    def __init__(self, model: Model) -> None:
        self._model = model

    def get_model(self, model_name: str | None) -> Model:
        return self._model


async def invoke_tool_once(
    store: WorkerStore,
    home: Any,
    tool: FunctionTool,
    *,
    workflow_id: str,
    call_id: str,
    key: str,
    agent_name: str,
    args_json: str,
    context_type: str | None,
    context_json: str | None,
    scope: Any = None,
) -> ToolCallOutput:
    """Run ``tool`` for one call under the idempotency ``key``, in a tool-call scope, with the
    context given as data; a call the journal holds as done returns what it returned.

    ``scope`` (a runtime) is what :func:`frontdesk.current_runtime` gives the tool while it
    runs, as on the embedded engine; None leaves it unset."""
    record = await asyncio.to_thread(
        lambda: store.start_tool_call(
            idempotency_key=key,
            workflow_id=workflow_id,
            call_id=call_id,
            agent_name=agent_name,
            tool_name=tool.name,
            args_json=args_json,
            now=time.time(),
        )
    )
    if record.done:
        return ToolCallOutput(record.output, record.context_type, record.context_json)
    context = load_context(context_type, context_json)
    tool_context = ToolContext(
        context, tool_name=tool.name, tool_call_id=call_id, tool_arguments=args_json
    )
    call = ToolCall(
        execution_id=workflow_id,
        call_id=call_id,
        tool_name=tool.name,
        idempotency_key=key,
        attempt=record.attempts,
    )
    with active_home(home), driving(scope), _tool_call_scope(call):
        output = await tool.on_invoke_tool(tool_context, args_json)
    data = to_jsonable_python(output, fallback=str)
    new_type, new_json = dump_context(tool_context.context)
    await asyncio.to_thread(store.finish_tool_call, key, data, new_type, new_json, time.time())
    return ToolCallOutput(data, new_type, new_json)


class FrontdeskActivities:
    """The activities of a frontdesk Temporal worker (register :meth:`all` on the worker)."""

    def __init__(
        self,
        agents: WorkerAgents,
        *,
        home: str | os.PathLike[str] | None = None,
        selector: ModelSelector | None = None,
        store: WorkerStore | Store | None = None,
        scope: Any = None,
    ) -> None:
        self.agents = agents
        """Where tools, handoffs and agents are looked up."""
        self.home = resolve_home(home)
        """The home the tools run in (``current_home()``)."""
        self.selector = selector if selector is not None else ModelSelector()
        """How each agent's model is chosen."""
        self.store = store if isinstance(store, WorkerStore) else WorkerStore(store or self.home)
        """Conversation items and the tool calls journal, in the store ``store`` (else the
        one the environment names for ``home``)."""
        self.scope = scope
        """What :func:`frontdesk.current_runtime` gives tools and hooks (a runtime), if any."""
        self._items: OrderedDict[str, list[Any]] = OrderedDict()

    def all(self) -> list[Any]:
        """The activity functions, for ``Worker(activities=...)``."""
        return [self.model, self.tool, self.handoff]

    # -- model ---------------------------------------------------------------------------

    async def _stored_items(self, ref: str) -> list[Any]:
        cached = self._items.get(ref)
        if cached is not None:
            self._items.move_to_end(ref)
            return cached
        try:
            return await asyncio.to_thread(self.store.load_items, ref)
        except ItemsMissing as exc:
            raise ApplicationError(str(exc), type=ITEMS_MISSING, non_retryable=True) from exc

    def _remember(self, ref: str, items: list[Any]) -> None:
        self._items[ref] = items
        self._items.move_to_end(ref)
        while len(self._items) > ITEMS_CACHE_SIZE:
            self._items.popitem(last=False)

    def _model_for(self, agent_name: str) -> Model:
        try:
            return self.selector.resolve(self.agents.agent(agent_name))
        except FrontdeskError as exc:
            raise ApplicationError(str(exc), type=MODEL_UNAVAILABLE, non_retryable=True) from exc

    @activity.defn(name=MODEL_ACTIVITY)
    async def model(self, call: ModelCallInput) -> ModelResponse:
        """Call the agent's model on the stored items plus the new ones."""
        model_input = call.model_input
        if not isinstance(model_input["input"], str):
            before = await self._stored_items(call.parent) if call.parent is not None else []
            items = [*before, *call.items]
            try:
                ref = await asyncio.to_thread(self.store.save_items, call.parent, call.items)
            except ItemsMissing as exc:
                raise ApplicationError(str(exc), type=ITEMS_MISSING, non_retryable=True) from exc
            self._remember(ref, items)
            model_input = {**model_input, "input": items}
        model = self._model_for(call.agent_name)
        with active_home(self.home):
            return await ModelActivity(_OneModel(model)).invoke_model_activity(model_input)

    # -- tools and handoffs --------------------------------------------------------------

    @activity.defn(name=TOOL_ACTIVITY)
    async def tool(self, call: ToolCallInput) -> ToolCallOutput:
        """Run a function tool once for this call (a finished call returns its result)."""
        return await invoke_tool_once(
            self.store,
            self.home,
            self.agents.tool(call.agent_name, call.tool_name),
            workflow_id=call.workflow_id,
            call_id=call.call_id,
            key=idempotency_key(call.workflow_id, call.call_id),
            agent_name=call.agent_name,
            args_json=call.args_json,
            context_type=call.context_type,
            context_json=call.context_json,
            scope=self.scope,
        )

    @activity.defn(name=HANDOFF_ACTIVITY)
    async def handoff(self, call: HandoffCallInput) -> HandoffCallOutput:
        """Run a handoff's invocation (its ``on_handoff`` hook); the agent it leads to."""
        found = self.agents.handoff(call.agent_name, call.tool_name)
        wrapper = RunContextWrapper(load_context(call.context_type, call.context_json))
        with active_home(self.home), driving(self.scope):
            target = await found.on_invoke_handoff(wrapper, call.args_json)
        context_type, context_json = dump_context(wrapper.context)
        return HandoffCallOutput(target.name, context_type, context_json)


__all__ = [
    "HANDOFF_ACTIVITY",
    "ITEMS_MISSING",
    "MODEL_ACTIVITY",
    "MODEL_UNAVAILABLE",
    "NOT_REGISTERED",
    "TOOL_ACTIVITY",
    "FrontdeskActivities",
    "HandoffCallInput",
    "HandoffCallOutput",
    "ModelCallInput",
    "ToolCallInput",
    "ToolCallOutput",
    "WorkerAgents",
    "driving",
    "invoke_tool_once",
]
