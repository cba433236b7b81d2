"""Wrapping a user's agent graph at the SDK's seams, without changing the user's objects.

:func:`durable_graph` clones every agent reachable from the starting agent (handoff cycles
included) with a :class:`DurableModel`, wrapped function tools and wrapped handoffs. The
user's agents are never mutated, so the same agents keep working with plain ``Runner.run``.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import AsyncIterator
from typing import Any

from agents import Agent, FunctionTool, Model, RunContextWrapper, RunHooks

from ...models._select import ModelSelector, RetryPolicy, call_with_retries
from ...store import TIMEOUT_DECIDER, AppendEvent, decode_value, encode_value
from ...tools import ToolCall, _tool_call_scope, _with_timeout, approval_timeout
from .._agents import iter_graph
from .._graph import GraphCopy, HandoffInvoke
from .._types import idempotency_key
from ._guardrails import guarded, guardrail_ids
from ._run import DurableRun, current_run, durable_model_call

REJECTION_PREFIX = "Tool call rejected by a human reviewer"
TIMEOUT_PREFIX = "Tool call rejected"
"""Before the reason of a call whose approval nobody gave in time."""


class DurableModel(Model):
    """Journals every call of the wrapped model; replays committed calls.

    The engine drives runs with the SDK's ``Runner.run``, so every call comes here as
    ``get_response``. In a run that streams its tokens the wrapped model is asked for
    ``stream_response`` instead, its text published live and its response assembled from the
    stream (see :mod:`._streaming`); either way the response is journaled the same.
    """

    def __init__(self, agent_name: str, inner: Model, policy: RetryPolicy) -> None:
        self.agent_name = agent_name
        self.inner = inner
        self.policy = policy

    async def get_response(self, *args: Any, **kwargs: Any) -> Any:
        run = current_run()
        tokens = run.tokens if run is not None else None

        async def call() -> Any:
            if tokens is not None and run is not None:
                return await tokens.model_call(
                    run, self.agent_name, self.inner, self.policy, args, kwargs
                )
            return await call_with_retries(
                lambda: self.inner.get_response(*args, **kwargs), self.policy
            )

        if run is None:
            return await call()
        return await durable_model_call(self.agent_name, call, run, _handoff_names(args, kwargs))

    def stream_response(self, *args: Any, **kwargs: Any) -> AsyncIterator[Any]:
        # Only for the SDK's Runner.run_streamed on this graph, which the engine never uses.
        return self.inner.stream_response(*args, **kwargs)

    def get_retry_advice(self, request: Any) -> Any:
        return self.inner.get_retry_advice(request)

    async def close(self) -> None:
        await self.inner.close()


def wrap_tool(tool: Any, agent_name: str) -> Any:
    """A copy of ``tool`` whose invocation is journaled; non-function tools pass through."""
    if not isinstance(tool, FunctionTool):
        return tool
    original_invoke = tool.on_invoke_tool
    original_needs = tool.needs_approval

    async def needs_approval(
        ctx: RunContextWrapper[Any], params: dict[str, Any], call_id: str
    ) -> bool:
        run = current_run()
        if run is not None:
            key = run.call_key(call_id)
            if key in run.decisions:
                return False
            row = run.journal.get(f"tool:{key}")
            if row is not None and row.state == "done":
                return False
        if isinstance(original_needs, bool):
            return original_needs
        return bool(await original_needs(ctx, params, call_id))

    async def invoke(ctx: Any, args_json: str) -> Any:
        run = current_run()
        if run is None:
            return await original_invoke(ctx, args_json)
        return await _durable_invoke(run, tool.name, agent_name, original_invoke, ctx, args_json)

    # The gate keeps the tool's approval timeout, for the request the run's pause records.
    gate = _with_timeout(needs_approval, approval_timeout(tool))
    return dataclasses.replace(
        tool,
        on_invoke_tool=invoke,
        needs_approval=gate if original_needs is not False else False,
    )


def _handoff_names(args: tuple[Any, ...], kwargs: dict[str, Any]) -> frozenset[str]:
    """The tool names of the handoffs offered to the model in a ``get_response`` call (its
    sixth argument, ``handoffs``)."""
    handoffs = kwargs.get("handoffs", args[5] if len(args) > 5 else ())
    return frozenset(str(getattr(h, "tool_name", "")) for h in handoffs or ())


@dataclasses.dataclass
class _ToolStep:
    """One tool call of a run: how it is journaled and reported."""

    run: DurableRun
    tool_name: str
    agent_name: str
    call_id: str
    args_json: str
    """The arguments the tool runs with (a reviewer's edit, if they edited the call)."""
    asked: dict[str, Any] | None = None
    """The arguments the model asked for, when a reviewer edited them."""

    def __post_init__(self) -> None:
        self.call_key = self.run.call_key(self.call_id)
        self.key = f"tool:{self.call_key}"
        self.args = _parse_args(self.args_json)

    def _event(self, key: str, type_: str, **data: Any) -> AppendEvent | None:
        if self.asked is not None:
            data["asked_args"] = self.asked
        return self.run.event_op(
            key,
            type_,
            self.agent_name,
            tool_name=self.tool_name,
            call_id=self.call_id,
            args=self.args,
            **data,
        )

    async def start(self, started: float, attempt: int, interrupted: bool) -> None:
        """Record that the tool starts (and, after a crash, that this is a retry)."""
        retry = (
            self._event(
                f"tool_retry:{self.call_key}:{attempt}",
                "tool_call",
                attempt=attempt,
                interrupted_attempt=attempt - 1,
                note="the previous attempt started but its result was never committed "
                "(the process stopped); running it again with the same idempotency key",
            )
            if interrupted
            else None
        )
        await self.run.commit(
            [
                self.run.journal_op(
                    self.key,
                    kind="tool",
                    state="started",
                    agent=self.agent_name,
                    name=self.tool_name,
                    args_json=self.args_json,
                    started_at=started,
                    attempts=attempt,
                ),
                self._event(f"tool_call:{self.call_key}", "tool_call"),
                retry,
            ]
        )

    async def finish(
        self, result: Any, started: float, finished: float, attempt: int, **data: Any
    ) -> None:
        """Commit the result (with the context it left); the next step with an effect waits
        for it to be durable."""
        encoded = encode_value(result)
        await self.run.commit(
            [
                self.run.journal_op(
                    self.key,
                    kind="tool",
                    state="done",
                    agent=self.agent_name,
                    name=self.tool_name,
                    args_json=self.args_json,
                    data_json=encoded,
                    context_json=self.run.context_snapshot(),
                    started_at=started,
                    finished_at=finished,
                    attempts=attempt,
                ),
                # The result itself is in the journal row; the event points at it.
                self._event(
                    f"tool_result:{self.call_key}",
                    "tool_result",
                    ref=self.key,
                    duration_ms=round((finished - started) * 1000, 3),
                    attempt=attempt,
                    **data,
                ),
            ],
            wait=False,
        )


async def _durable_invoke(
    run: DurableRun, tool_name: str, agent_name: str, original: Any, ctx: Any, args_json: str
) -> Any:
    decision = run.decisions.get(run.call_key(ctx.tool_call_id))
    edited = decision.edited_args if decision is not None else None
    asked = None
    if edited is not None:
        # The tool runs with what the reviewer approved; the model's ask stays on the events.
        asked, args_json = _parse_args(args_json), json.dumps(edited)
    step = _ToolStep(run, tool_name, agent_name, ctx.tool_call_id, args_json, asked)
    row = run.journal.get(step.key)
    if row is not None and row.state == "done" and row.data_json is not None:
        run.restore_snapshot(row)
        _sync_wrapper_context(ctx, run)
        return decode_value(row.data_json)
    run.check_cancelled()
    started = time.time()
    if decision is not None and decision.status == "rejected":
        rejection = (
            f"{TIMEOUT_PREFIX}: {decision.reason}"
            if decision.decided_by == TIMEOUT_DECIDER
            else f"{REJECTION_PREFIX}: {decision.reason or 'no reason given'}"
        )
        timed_out = {"timed_out": True} if decision.decided_by == TIMEOUT_DECIDER else {}
        await step.finish(rejection, started, started, 1, rejected=True, **timed_out)
        return rejection
    attempt = (row.attempts + 1) if row is not None else 1
    await step.start(started, attempt, interrupted=row is not None and row.state == "started")
    info = ToolCall(
        execution_id=run.execution_id,
        call_id=step.call_id,
        tool_name=tool_name,
        idempotency_key=idempotency_key(run.execution_id, step.call_key),
        attempt=attempt,
    )
    with _tool_call_scope(info):
        result = await original(ctx, args_json)
    if asked is not None:
        # Journaled as the model sees it, so a replay (or a fork) shows it the same.
        result = _noting_edit(result, asked, step.args)
    await step.finish(result, started, time.time(), attempt)
    return result


def _noting_edit(result: Any, asked: dict[str, Any], ran: dict[str, Any]) -> Any:
    """The result with a note that a reviewer changed the arguments, where it has room for
    one: a text gets a line, a plain dict a ``reviewer_edit`` key; anything else is as is."""
    changes = ", ".join(
        f"{name} {json.dumps(asked.get(name))} -> {json.dumps(ran.get(name))}"
        for name in sorted(set(asked) | set(ran))
        if asked.get(name) != ran.get(name)
    )
    note = (
        f"A human reviewer edited this call's arguments before it ran ({changes}); "
        "the result is for the edited call."
    )
    if isinstance(result, str):
        return f"{result}\n\n{note}"
    if isinstance(result, dict) and "type" not in result and "reviewer_edit" not in result:
        return {**result, "reviewer_edit": note}
    return result


def _sync_wrapper_context(ctx: Any, run: DurableRun) -> None:
    # restore_into mutates in place; only immutable contexts need the wrapper re-pointed.
    if getattr(ctx, "context", None) is not run.context:
        try:
            ctx.context = run.context
        except AttributeError:
            pass


def _parse_args(args_json: str) -> dict[str, Any]:
    try:
        value = json.loads(args_json) if args_json else {}
    except json.JSONDecodeError:
        return {"_raw": args_json}
    return value if isinstance(value, dict) else {"_value": value}


def _durable_handoff(invoke: HandoffInvoke, source: str, graph: GraphCopy) -> HandoffInvoke:
    """Journal a handoff of the durable graph; a replayed handoff returns the recorded agent."""

    async def durable_invoke(ctx: RunContextWrapper[Any], args_json: str) -> Agent[Any]:
        run = current_run()
        if run is None:
            return await invoke(ctx, args_json)
        key = f"handoff:{run.model_calls}"
        row = run.journal.get(key)
        replayed = graph.named(row.name) if row and row.state == "done" and row.name else None
        if row is not None and replayed is not None:
            run.restore_snapshot(row)
            _sync_wrapper_context(ctx, run)
            return replayed
        started = time.time()
        chosen = await invoke(ctx, args_json)
        snapshot = run.context_snapshot()
        # A handoff whose record is lost simply runs its hook again on replay.
        run.emit(
            [
                run.journal_op(
                    key,
                    kind="handoff",
                    state="done",
                    agent=source,
                    name=chosen.name,
                    context_json=snapshot,
                    started_at=started,
                    finished_at=time.time(),
                ),
                run.event_op(key, "handoff", source, target=chosen.name),
            ]
        )
        return chosen

    return durable_invoke


def durable_graph(root: Agent[Any], selector: ModelSelector, policy: RetryPolicy) -> Agent[Any]:
    """Clone ``root`` and everything it hands off to, wrapped for durable execution.

    Resolves every agent's model up front, so a missing model configuration fails the run
    at once instead of halfway through.
    """

    def durable_agent(agent: Agent[Any]) -> Agent[Any]:
        model = DurableModel(agent.name, selector.resolve(agent), policy)
        tools = [wrap_tool(t, agent.name) for t in agent.tools]
        return guarded(agent.clone(model=model, tools=tools))

    graph = GraphCopy(
        durable_agent,
        wrap_invoke=lambda invoke, source: _durable_handoff(invoke, source.name, graph),
    )
    return graph.copy(root)


def graph_signature(root: Agent[Any]) -> tuple[Any, ...]:
    """Identity of everything the durable graph is built from, to know when to rebuild it."""
    return tuple(
        (id(a), id(a.model), tuple(map(id, a.tools)), tuple(map(id, a.handoffs)), guardrail_ids(a))
        for a in iter_graph(root)
    )


class GraphCache:
    """Durable graphs keyed by starting agent; rebuilt when an agent's tools or handoffs change.

    The wrappers find the run they serve through a context variable, so one graph serves
    every run started from the same agent.
    """

    def __init__(self, selector: ModelSelector, policy: RetryPolicy) -> None:
        self._selector = selector
        self._policy = policy
        self._graphs: dict[int, tuple[Agent[Any], tuple[Any, ...], Agent[Any]]] = {}

    @property
    def offline(self) -> bool:
        """Whether these graphs run on the offline rules baseline (nothing to trace)."""
        return self._selector.is_rules

    def get(self, root: Agent[Any]) -> Agent[Any]:
        signature = graph_signature(root)
        cached = self._graphs.get(id(root))
        if cached is not None and cached[0] is root and cached[1] == signature:
            return cached[2]
        graph = durable_graph(root, self._selector, self._policy)
        self._graphs[id(root)] = (root, signature, graph)
        return graph


class EventHooks(RunHooks[Any]):
    """Records ``agent_start`` events."""

    async def on_agent_start(self, context: Any, agent: Any) -> None:
        run = current_run()
        if run is None:
            return
        run.agent_starts += 1
        run.emit([run.event_op(f"agent_start:{run.agent_starts}", "agent_start", agent.name)])
