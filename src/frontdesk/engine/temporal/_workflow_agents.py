"""The user's agents as a workflow runs them: every model call, tool and handoff hook is an
activity, and the user's agents stay as written.

:class:`WorkflowAgents` copies an agent graph with :class:`~frontdesk.engine._graph.GraphCopy`.
In each copy:

* the model is an :class:`ActivityModel`, a stub of the plugin's kind (so the plugin's runner
  takes the agent as it is) whose calls go to frontdesk's ``frontdesk_model`` activity with
  the conversation's items by reference (:class:`ItemChain`);
* every ``FunctionTool`` is the same tool with its ``on_invoke_tool`` replaced by a call to the
  ``frontdesk_tool`` activity, which runs the original on the worker and sends back the
  output and the context after the call, applied here in place;
* every handoff built with ``handoff(...)`` (which may carry an ``on_handoff`` hook) runs its
  invocation in the ``frontdesk_handoff`` activity the same way. A bare agent in ``handoffs``
  has no hook, so it is handed to in the workflow.

Only workflow code is here: no I/O, no clock, no randomness.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable, Iterable, Sequence
from datetime import timedelta
from typing import Any

from agents import (
    Agent,
    FunctionTool,
    Handoff,
    ModelResponse,
    RunContextWrapper,
)
from agents.tool_context import ToolContext

from .._agents import handoff_target
from .._context import dump_context, restore_into
from .._graph import GraphCopy
from ._activities import (
    ITEMS_MISSING,
    NOT_REGISTERED,
    FrontdeskActivities,
    HandoffCallInput,
    ModelCallInput,
    ToolCallInput,
)
from ._extra import missing_extra
from ._store import segment_ref
from ._stub import ActivityStub

try:
    from temporalio import workflow
    from temporalio.common import RetryPolicy
    from temporalio.exceptions import ActivityError, ApplicationError
    from temporalio.openai_agents import ModelActivityParameters
    from temporalio.openai_agents._invoke_model_activity import ActivityModelInput
except ImportError as _exc:  # pragma: no cover - the temporal extra is missing
    raise missing_extra(_exc) from _exc


@dataclasses.dataclass(frozen=True)
class ActivityOptions:
    """How a tool or handoff activity is timed out and retried."""

    start_to_close_timeout: timedelta = timedelta(minutes=5)
    """How long one attempt may take."""
    retry_policy: RetryPolicy = dataclasses.field(
        default_factory=lambda: RetryPolicy(maximum_attempts=3)
    )
    """How failed attempts are retried (a tool's idempotency key stays the same)."""


class ItemChain:
    """Which of a conversation's items the worker store already holds, and under what
    reference, so that a model call sends only the items added since.

    ``items`` were stored under ``ref`` (by an earlier model call, or an earlier run of the
    workflow before it continued as new).
    """

    def __init__(self, items: Sequence[Any] = (), ref: str | None = None) -> None:
        self._items: list[Any] = list(items) if ref is not None else []
        self._bounds: list[tuple[int, str]] = [(len(items), ref)] if ref is not None else []

    @property
    def head(self) -> tuple[int, str | None]:
        """``(length, ref)`` of the longest stored prefix (``(0, None)``: nothing stored)."""
        return self._bounds[-1] if self._bounds else (0, None)

    def _same(self, items: Sequence[Any]) -> int:
        same = 0
        for known, item in zip(self._items, items, strict=False):
            if known != item:
                break
            same += 1
        return same

    def stored_prefix(self, items: Sequence[Any]) -> tuple[int, str | None]:
        """``(length, ref)`` of the longest stored prefix of ``items`` (``(0, None)``: none)."""
        same = self._same(items)
        return next(
            ((length, ref) for length, ref in reversed(self._bounds) if length <= same),
            (0, None),
        )

    def split(self, items: Sequence[Any]) -> tuple[str | None, list[Any], str]:
        """``(parent, new_items, ref)``: the stored prefix ``items`` start with, the items
        after it, and the reference they will be stored under."""
        same = self._same(items)
        while self._bounds and self._bounds[-1][0] > same:
            self._bounds.pop()
        length, parent = self.head
        new_items = list(items[length:])
        return parent, new_items, segment_ref(parent, new_items)

    def stored(self, items: Sequence[Any], ref: str) -> None:
        """Record that ``items`` are now stored under ``ref`` (after :meth:`split`)."""
        length, _ = self.head
        self._items = [*self._items[:length], *copy.deepcopy(list(items[length:]))]
        self._bounds.append((len(items), ref))

    def forget(self) -> None:
        """Assume nothing is stored (the worker lacked the items: send them all)."""
        self._items.clear()
        self._bounds.clear()


class ActivityModel(ActivityStub):
    """An agent's model in the workflow: each call is a ``frontdesk_model`` activity that
    carries the items before it by reference."""

    def __init__(
        self, agent: Agent[Any], chain: ItemChain, model_params: ModelActivityParameters
    ) -> None:
        model_name = agent.model if isinstance(agent.model, str) else None
        super().__init__(model_name, model_params=model_params, agent=agent)
        self.agent_name = agent.name
        """The agent whose model this is; the worker resolves the model by this name."""
        self.chain = chain
        """The conversation's stored items, shared by every agent of the workflow."""

    async def answer(self, call: ActivityModelInput, summary: str | None) -> ModelResponse:
        """Call the model in an activity, sending only the items the worker has not got."""
        input = call["input"]
        if isinstance(input, str):
            return await self._call(ModelCallInput(self.agent_name, call), summary)
        parent, new_items, ref = self.chain.split(input)
        try:
            response = await self._call(
                ModelCallInput(self.agent_name, {**call, "input": []}, new_items, parent),
                summary,
            )
        except ActivityError as exc:
            if not _is_application_error(exc, ITEMS_MISSING):
                raise
            self.chain.forget()
            parent, new_items, ref = self.chain.split(input)
            response = await self._call(
                ModelCallInput(self.agent_name, {**call, "input": []}, new_items), summary
            )
        self.chain.stored(input, ref)
        return response

    async def _call(self, call: ModelCallInput, summary: str | None) -> ModelResponse:
        params = self.model_params
        return await workflow.execute_activity_method(
            FrontdeskActivities.model,
            call,
            summary=summary,
            task_queue=params.task_queue,
            schedule_to_close_timeout=params.schedule_to_close_timeout,
            schedule_to_start_timeout=params.schedule_to_start_timeout,
            start_to_close_timeout=params.start_to_close_timeout,
            heartbeat_timeout=params.heartbeat_timeout,
            retry_policy=params.retry_policy,
            cancellation_type=params.cancellation_type,
            versioning_intent=params.versioning_intent,
            priority=params.priority,
        )


def _is_application_error(exc: BaseException, error_type: str) -> bool:
    cause = exc.__cause__
    return isinstance(cause, ApplicationError) and cause.type == error_type


def _activity_tool(agent_name: str, tool: FunctionTool, options: ActivityOptions) -> FunctionTool:
    async def invoke(ctx: ToolContext[Any], args_json: str) -> Any:
        context_type, context_json = dump_context(ctx.context)
        done = await workflow.execute_activity_method(
            FrontdeskActivities.tool,
            ToolCallInput(
                workflow_id=workflow.info().workflow_id,
                agent_name=agent_name,
                tool_name=tool.name,
                call_id=ctx.tool_call_id,
                args_json=args_json,
                context_type=context_type,
                context_json=context_json,
            ),
            summary=f"{agent_name}: {tool.name}",
            start_to_close_timeout=options.start_to_close_timeout,
            retry_policy=options.retry_policy,
        )
        restore_into(ctx.context, done.context_type, done.context_json)
        return done.output

    return dataclasses.replace(tool, on_invoke_tool=invoke)


class WorkflowAgents:
    """Copies of an agent graph whose models, tools and handoff hooks run as activities.

    Build it in the workflow (in ``@workflow.init``); :meth:`agent` finds a copy by name.
    """

    def __init__(
        self,
        agents: Iterable[Agent[Any]],
        *,
        model_params: ModelActivityParameters,
        chain: ItemChain | None = None,
        tool_options: ActivityOptions | None = None,
    ) -> None:
        self.chain = chain if chain is not None else ItemChain()
        """The conversation's items already stored on the worker side."""
        self._model_params = model_params
        self._tool_options = tool_options if tool_options is not None else ActivityOptions()
        self._graph = GraphCopy(self._copy_agent)
        originals = list(agents)
        for original in originals:
            self._graph.copy(original)
        self._route_handoffs(originals)

    def agent(self, name: str) -> Agent[Any]:
        """The copy of the agent called ``name``."""
        found = self._graph.named(name)
        if found is None:
            raise ApplicationError(f"no agent named {name!r} in this workflow", type=NOT_REGISTERED)
        return found

    def _copy_agent(self, agent: Agent[Any]) -> Agent[Any]:
        tools = [
            _activity_tool(agent.name, tool, self._tool_options)
            if isinstance(tool, FunctionTool)
            else tool
            for tool in agent.tools
        ]
        model = ActivityModel(agent, self.chain, self._model_params)
        return agent.clone(model=model, tools=tools)

    def _route_handoffs(self, originals: list[Agent[Any]]) -> None:
        """Run each ``handoff(...)`` invocation (its hook) in the handoff activity."""
        seen: set[int] = set()
        pending = list(originals)
        while pending:
            original = pending.pop()
            if id(original) in seen:
                continue
            seen.add(id(original))
            copied = self._graph.copy(original)
            for item, copied_handoff in zip(original.handoffs, copied.handoffs, strict=True):
                if isinstance(item, Agent) or not isinstance(copied_handoff, Handoff):
                    if isinstance(item, Agent):
                        pending.append(item)
                    continue
                copied_handoff.on_invoke_handoff = self._activity_handoff(
                    original.name, copied_handoff.tool_name
                )
                target = handoff_target(item)
                if target is not None:
                    pending.append(target)

    def _activity_handoff(
        self, agent_name: str, tool_name: str
    ) -> Callable[[RunContextWrapper[Any], str], Any]:
        async def invoke(ctx: RunContextWrapper[Any], args_json: str) -> Agent[Any]:
            context_type, context_json = dump_context(ctx.context)
            done = await workflow.execute_activity_method(
                FrontdeskActivities.handoff,
                HandoffCallInput(
                    workflow_id=workflow.info().workflow_id,
                    agent_name=agent_name,
                    tool_name=tool_name,
                    args_json=args_json,
                    context_type=context_type,
                    context_json=context_json,
                ),
                summary=f"{agent_name}: {tool_name}",
                start_to_close_timeout=self._tool_options.start_to_close_timeout,
                retry_policy=self._tool_options.retry_policy,
            )
            restore_into(ctx.context, done.context_type, done.context_json)
            return self.agent(done.agent_name)

        return invoke


__all__ = ["ActivityModel", "ActivityOptions", "ItemChain", "WorkflowAgents"]
