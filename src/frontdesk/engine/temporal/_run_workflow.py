"""The Temporal engine's run workflow: one workflow per run, its id the run's execution id.

:class:`RunWorkflow` runs the user's unmodified agent with the SDK's ``Runner.run`` inside the
workflow; the ``OpenAIAgentsPlugin`` makes every model call an activity. The agent crosses the
boundary by reference and name only: the workflow finds it in the registry of the runtime
serving its task queue (:mod:`._run_registry`) and runs a copy of its graph in which

* each agent's model is a name (``agent_model_name``) the worker's model provider resolves to
  the agent's own model, as the embedded engine selects it; each model call is the
  ``frontdesk_run_model`` local activity (:mod:`._run_model`, :func:`~._plugin.run_model_params`),
  on this worker, inside the workflow task, which first writes what the run reported since
  its last write (workflows started before that change keep the plugin's regular activities);
* each function tool's ``on_invoke_tool`` schedules the ``frontdesk_run_tool`` activity, which
  runs the real tool on a worker and returns its output and the context after it (applied
  here in place); a tool that needs approval first records the request and waits for the
  ``resume`` update that carries the decision, for as long as it takes.

What the run does is reported to the store by the next model call's local activity, else by
the ``frontdesk_run_record`` local activity: events and steps under keys that are the same on
every replay, so nothing is written twice.
A failed run waits for a retry (the same ``resume`` update with the next attempt) and runs
again from the journal, as on the embedded engine: model calls an earlier attempt recorded are
answered from their steps (``model:<k>``) and completed tool calls return their journaled
results. Cancelling the workflow stops it.

Only workflow code is here: no I/O, no clock, no randomness.
"""

import asyncio
import dataclasses
import hashlib
import inspect
import json
from typing import Any

from agents import Agent, FunctionTool, ItemHelpers, RunConfig, RunContextWrapper, RunHooks, Runner

from ..._budget import BudgetMeter, BudgetPlan, BudgetStop, find_cause
from ...store import output_text, plain_value
from .._context import dump_context, load_context, restore_into
from .._conversation import history_lines
from .._graph import GraphCopy
from ._extra import missing_extra
from ._plugin import run_model_params
from ._run_activities import (
    RECORD_TIMEOUT,
    TOOL_HEARTBEAT,
    TOOL_TIMEOUT,
    RunActivities,
)
from ._run_data import (
    Decision,
    RecordInput,
    RecordOp,
    ResumeInput,
    RunInput,
    RunToolInput,
    agent_model_name,
)
from ._run_model import MODEL_RESPONSES, RecordingModel
from ._run_registry import resolve_agent

try:
    from temporalio import workflow
    from temporalio.common import RetryPolicy
    from temporalio.exceptions import ApplicationError
except ImportError as _exc:  # pragma: no cover - the temporal extra is missing
    raise missing_extra(_exc) from _exc

WORKFLOW_NAME = "FrontdeskRun"
"""The run workflow's type name."""
REJECTION_PREFIX = "Tool call rejected by a human reviewer"
TIMEOUT_PREFIX = "Tool call rejected"
TIMEOUT_DECIDER = "system:timeout"
LOCAL_MODEL_CALLS = "frontdesk-local-model-calls"
"""The patch under which a run workflow's model calls are local activities."""


def _usage_dict(usage: Any) -> dict[str, int]:
    return {
        "requests": int(usage.requests),
        "input_tokens": int(usage.input_tokens),
        "output_tokens": int(usage.output_tokens),
        "total_tokens": int(usage.total_tokens),
    }


def _add(total: dict[str, int], usage: Any) -> None:
    for name, value in _usage_dict(usage).items():
        total[name] = total.get(name, 0) + value


def _parse_args(args_json: str) -> dict[str, Any]:
    try:
        value = json.loads(args_json) if args_json else {}
    except json.JSONDecodeError:
        return {"_raw": args_json}
    return value if isinstance(value, dict) else {"_value": value}


def error_text(exc: BaseException) -> str:
    """What a failed run records: the innermost application error's message, else the
    exception's type and message."""
    found: ApplicationError | None = None
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ApplicationError):
            found = seen
        seen = seen.__cause__
    if found is not None:
        return str(found.message)
    return f"{type(exc).__name__}: {exc}"


class _Attempt:
    """The counters of one attempt of the run: the same keys on every replay."""

    def __init__(self) -> None:
        self.model_calls = 0
        self.agent_starts = 0
        self.call_steps: dict[str, int] = {}
        self.usage: dict[str, int] = {}

    def call_key(self, call_id: str) -> str:
        return f"{self.call_steps.get(call_id, self.model_calls)}:{call_id}"


@workflow.defn(name=WORKFLOW_NAME)
class RunWorkflow:
    """One run of a registered agent, driven by Temporal."""

    @workflow.init
    def __init__(self, run: RunInput) -> None:
        self.run_input = run
        self.attempt = run.attempt
        self.wanted_attempt = run.attempt
        self.decisions: dict[str, Decision] = {}
        self.buffer: list[RecordOp] = []
        self.counters = _Attempt()
        self.budget_json = run.budget_json
        self.meter: BudgetMeter | None = None
        self.current_agent = ""
        self.last_message = ""
        self.local_models = False

    # -- updates -------------------------------------------------------------------------------

    @workflow.update
    def resume(self, data: ResumeInput) -> None:
        """Take the decisions recorded in the store, and a retry's attempt."""
        for decision in data.decisions:
            self.decisions.setdefault(decision.call_key, decision)
        if data.attempt > self.wanted_attempt:
            self.wanted_attempt = data.attempt
            self.budget_json = data.budget_json

    # -- recording -----------------------------------------------------------------------------

    def emit(self, *ops: RecordOp) -> None:
        """Report ``ops`` with the next :meth:`flush`."""
        self.buffer.extend(ops)

    def unwritten(self) -> RecordInput | None:
        """What was reported and not written yet (for a model call to write), or None."""
        if not self.buffer:
            return None
        return RecordInput(self.run_input.execution_id, list(self.buffer))

    def written(self, records: RecordInput) -> None:
        """``records`` (from :meth:`unwritten`) were written: forget them."""
        del self.buffer[: len(records.ops)]

    def journal_key(self) -> str | None:
        """On a retry, the next model call's step key: an earlier attempt's response recorded
        under it answers the call. None on the first attempt, whose calls are all new."""
        if self.attempt <= 1:
            return None
        return f"model:{self.counters.model_calls + 1}"

    async def flush(self) -> None:
        """Write what was reported to the store, before the run goes on."""
        if not self.buffer:
            return
        ops, self.buffer = self.buffer, []
        await workflow.execute_local_activity_method(
            RunActivities.record,
            RecordInput(self.run_input.execution_id, ops),
            start_to_close_timeout=RECORD_TIMEOUT,
            retry_policy=RetryPolicy(maximum_attempts=0),
        )

    def event(self, key: str, type_: str, agent: str | None, ref: str | None = None, **data: Any):
        """An event to report."""
        return RecordOp("event", key=key, type=type_, agent=agent, data=data, ref=ref)

    def details(self) -> None:
        """What the Temporal UI shows for the workflow: the agent, the last message."""
        text = self.last_message if len(self.last_message) <= 200 else self.last_message[:200]
        workflow.set_current_details(
            f"agent: {self.current_agent or '-'}\nlast message: {text or '-'}"
        )

    # -- the run ---------------------------------------------------------------------------------

    @workflow.run
    async def run(self, run: RunInput) -> str:
        """Run the agent until it completes; a failure waits for a retry."""
        root = resolve_agent(workflow.info().task_queue, run.agent_ref, run.execution_id)
        self.local_models = workflow.patched(LOCAL_MODEL_CALLS)
        while True:
            self.counters = _Attempt()
            self.meter = (
                BudgetMeter(BudgetPlan.from_json(self.budget_json)) if self.budget_json else None
            )
            context = load_context(run.context_type, run.context_json)
            start = GraphCopy(self._copy_agent).copy(root)
            try:
                result = await Runner.run(
                    start,
                    run.input,
                    context=context,
                    hooks=_Hooks(self),
                    max_turns=run.max_turns,
                    run_config=RunConfig(
                        workflow_name=f"frontdesk {root.name}",
                        group_id=run.conversation_id or run.execution_id,
                        tracing_disabled=not run.trace,
                    ),
                )
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the run failed: record it and wait for a retry
                stop = find_cause(exc, BudgetStop)
                if stop is not None:
                    await self._budget_exceeded(stop)
                else:
                    await self._failed(exc)
                await workflow.wait_condition(lambda: self.wanted_attempt > self.attempt)
                self.attempt = self.wanted_attempt
                continue
            await self._completed(result, result.context_wrapper.context)
            return "completed"

    async def _completed(self, result: Any, context: Any) -> None:
        run = self.run_input
        last_agent = result.last_agent.name
        _, context_json = dump_context(context)
        if run.conversation_id is not None and run.turn_message is not None:
            sent = len(ItemHelpers.input_to_new_input_list(result.input))
            self.emit(
                RecordOp(
                    "turn",
                    data={
                        "base_len": run.turn_base,
                        "lines": [f"User: {run.turn_message}", *history_lines(result)],
                        "items": result.to_input_list()[sent - 1 :],
                        "current_agent": last_agent,
                        "context_json": context_json,
                    },
                )
            )
        usage = dict(self.counters.usage)
        self.emit(
            self.event("done", "done", last_agent, usage=usage or None),
            RecordOp(
                "settle",
                type="completed",
                data={
                    "output_json": json.dumps(plain_value(result.final_output)),
                    "last_agent": last_agent,
                    "context_json": context_json,
                    "error": None,
                    "note": None,
                    "usage": usage,
                },
            ),
        )
        await self.flush()

    async def _failed(self, exc: BaseException) -> None:
        message = error_text(exc)
        self.emit(
            self.event(
                f"error:{self.attempt}",
                "error",
                None,
                error=message,
                error_type=type(exc).__name__,
            ),
            RecordOp(
                "settle", type="failed", data={"error": message, "usage": self.counters.usage}
            ),
            RecordOp("release"),
        )
        await self.flush()

    async def _budget_exceeded(self, stop: BudgetStop) -> None:
        usage = dict(self.counters.usage)
        self.emit(
            self.event(
                f"budget_exceeded:{self.attempt}",
                "budget_exceeded",
                None,
                usage=usage or None,
                limit=stop.limit,
                limit_value=stop.value,
                used=stop.used,
                model_call=stop.call,
            ),
            RecordOp("settle", type="budget_exceeded", data={"error": str(stop), "usage": usage}),
            RecordOp("release"),
        )
        await self.flush()

    # -- the agents' copies ---------------------------------------------------------------------

    def _copy_agent(self, agent: Agent[Any]) -> Agent[Any]:
        run = self.run_input
        tools = [
            self._tool(agent.name, tool) if isinstance(tool, FunctionTool) else tool
            for tool in agent.tools
        ]
        name = agent_model_name(run.model_override, run.agent_ref, agent.name, run.execution_id)
        if not self.local_models:
            return agent.clone(model=name, tools=tools)  # the plugin's regular activity
        model = RecordingModel(name, agent=agent, params=run_model_params(), reports=self)
        return agent.clone(model=model, tools=tools)

    def _tool(self, agent_name: str, tool: FunctionTool) -> FunctionTool:
        needs = tool.needs_approval

        async def invoke(ctx: Any, args_json: str) -> Any:
            return await self._invoke(agent_name, tool, needs, ctx, args_json)

        return dataclasses.replace(tool, on_invoke_tool=invoke, needs_approval=False)

    async def _invoke(
        self, agent_name: str, tool: FunctionTool, needs: Any, ctx: Any, args_json: str
    ) -> Any:
        run = self.run_input
        call_id = str(ctx.tool_call_id)
        call_key = self.counters.call_key(call_id)
        asked: dict[str, Any] | None = None
        if await _needs_approval(needs, ctx, args_json, call_id):
            decision = await self._decision(
                agent_name, tool.name, call_id, call_key, args_json, ctx.context
            )
            if decision.status == "rejected":
                return await self._rejected(agent_name, tool.name, call_id, call_key, decision)
            if decision.edited_args is not None:
                asked, args_json = _parse_args(args_json), json.dumps(decision.edited_args)
        args = _parse_args(args_json)
        extra: dict[str, Any] = {"asked_args": asked} if asked is not None else {}
        self.emit(
            self.event(
                f"tool_call:{call_key}",
                "tool_call",
                agent_name,
                tool_name=tool.name,
                call_id=call_id,
                args=args,
                **extra,
            )
        )
        await self.flush()
        started = workflow.time()
        context_type, context_json = dump_context(ctx.context)
        done = await workflow.execute_activity_method(
            RunActivities.tool,
            RunToolInput(
                execution_id=run.execution_id,
                agent_ref=run.agent_ref,
                agent_name=agent_name,
                tool_name=tool.name,
                call_id=call_id,
                call_key=call_key,
                args_json=args_json,
                context_type=context_type,
                context_json=context_json,
            ),
            summary=f"{agent_name}: {tool.name}",
            start_to_close_timeout=TOOL_TIMEOUT,
            heartbeat_timeout=TOOL_HEARTBEAT,
            retry_policy=RetryPolicy(maximum_attempts=0),
        )
        duration = workflow.time() - started
        if done.context_json != context_json:
            restored = restore_into(ctx.context, done.context_type, done.context_json)
            if restored is not ctx.context:
                ctx.context = restored
        output = done.output
        if asked is not None:
            output = _noting_edit(output, asked, args)
        key = f"tool:{call_key}"
        self.emit(
            RecordOp(
                "step",
                key=key,
                type="tool",
                agent=agent_name,
                data={
                    "name": tool.name,
                    "args_json": args_json,
                    "data_json": _encode_value(output),
                    "context_json": done.context_json
                    if done.context_json != context_json
                    else None,
                    "duration": duration,
                },
            ),
            self.event(
                f"tool_result:{call_key}",
                "tool_result",
                agent_name,
                ref=key,
                tool_name=tool.name,
                call_id=call_id,
                args=args,
                duration_ms=round(duration * 1000, 3),
                attempt=1,
                **extra,
            ),
        )
        if not self.local_models:  # else the next model call (or the run's end) writes it
            await self.flush()
        return output

    async def _decision(
        self,
        agent_name: str,
        tool_name: str,
        call_id: str,
        call_key: str,
        args_json: str,
        context: Any,
    ) -> Decision:
        decision = self.decisions.get(call_key)
        if decision is not None:
            return decision
        run = self.run_input
        digest = hashlib.sha256(f"{run.execution_id}/{call_key}".encode()).hexdigest()[:16]
        approval_id = f"apv_{digest}"
        args = _parse_args(args_json)
        self.emit(
            RecordOp(
                "approval",
                key=call_key,
                agent=agent_name,
                data={
                    "approval_id": approval_id,
                    "tool_name": tool_name,
                    "call_id": call_id,
                    "args": args,
                },
            ),
            self.event(
                f"approval_required:{call_key}",
                "approval_required",
                agent_name,
                tool_name=tool_name,
                call_id=call_id,
                args=args,
                approval_id=approval_id,
            ),
            RecordOp(
                "settle",
                type="waiting_approval",
                data={
                    "last_agent": agent_name,
                    "context_json": dump_context(context)[1],
                    "usage": self.counters.usage,
                },
            ),
        )
        await self.flush()
        await workflow.wait_condition(lambda: call_key in self.decisions)
        return self.decisions[call_key]

    async def _rejected(
        self, agent_name: str, tool_name: str, call_id: str, call_key: str, decision: Decision
    ) -> str:
        timed_out = decision.decided_by == TIMEOUT_DECIDER
        text = (
            f"{TIMEOUT_PREFIX}: {decision.reason}"
            if timed_out
            else f"{REJECTION_PREFIX}: {decision.reason or 'no reason given'}"
        )
        key = f"tool:{call_key}"
        self.emit(
            RecordOp(
                "step",
                key=key,
                type="tool",
                agent=agent_name,
                data={"name": tool_name, "data_json": _encode_value(text)},
            ),
            self.event(
                f"tool_result:{call_key}",
                "tool_result",
                agent_name,
                ref=key,
                tool_name=tool_name,
                call_id=call_id,
                rejected=True,
                **({"timed_out": True} if timed_out else {}),
            ),
        )
        await self.flush()
        return text


class _Hooks(RunHooks[Any]):
    """Reports agent starts, handoffs and model calls as the SDK makes them."""

    def __init__(self, flow: RunWorkflow) -> None:
        self.flow = flow
        self.llm_started = 0.0

    async def on_agent_start(self, context: Any, agent: Any) -> None:
        counters = self.flow.counters
        counters.agent_starts += 1
        self.flow.current_agent = agent.name
        self.flow.details()
        self.flow.emit(
            self.flow.event(f"agent_start:{counters.agent_starts}", "agent_start", agent.name)
        )

    async def on_handoff(self, context: Any, from_agent: Any, to_agent: Any) -> None:
        key = f"handoff:{self.flow.counters.model_calls}"
        _, context_json = dump_context(context.context)
        self.flow.emit(
            RecordOp(
                "step",
                key=key,
                type="handoff",
                agent=from_agent.name,
                data={"name": to_agent.name, "context_json": context_json},
            ),
            self.flow.event(key, "handoff", from_agent.name, target=to_agent.name),
        )

    async def on_llm_start(self, context: Any, agent: Any, *args: Any) -> None:
        if not self.flow.local_models:
            await self.flow.flush()  # else the model call's local activity writes it first
        counters = self.flow.counters
        if self.flow.meter is not None:
            self.flow.meter.check(counters.model_calls, counters.usage.get("total_tokens", 0))
        self.llm_started = workflow.time()

    async def on_llm_end(self, context: RunContextWrapper[Any], agent: Any, response: Any) -> None:
        counters = self.flow.counters
        counters.model_calls += 1
        k = counters.model_calls
        for item in response.output:
            call_id = getattr(item, "call_id", None)
            if call_id:
                counters.call_steps[str(call_id)] = k
        _add(counters.usage, response.usage)
        model = self.flow.run_input.models.get(agent.name)
        if self.flow.meter is not None:
            usage = response.usage
            self.flow.meter.add(model, usage.input_tokens, usage.output_tokens)
        key = f"model:{k}"
        self.flow.emit(
            RecordOp(
                "step",
                key=key,
                type="model",
                agent=agent.name,
                data={
                    "name": model,
                    "data_json": MODEL_RESPONSES.dump_json(response, by_alias=True).decode(),
                    "duration": max(0.0, workflow.time() - self.llm_started),
                },
            )
        )
        text = output_text(response.output)
        if text is not None:
            self.flow.last_message = text
            self.flow.details()
            self.flow.emit(
                self.flow.event(
                    f"message:{k}",
                    "message",
                    agent.name,
                    ref=key,
                    usage=_usage_dict(response.usage),
                    model_call=k,
                )
            )


async def _needs_approval(needs: Any, ctx: Any, args_json: str, call_id: str) -> bool:
    if isinstance(needs, bool):
        return needs
    value = needs(ctx, _parse_args(args_json), call_id)
    if inspect.isawaitable(value):
        value = await value
    return bool(value)


def _encode_value(value: Any) -> str:
    from ...store import encode_value

    return encode_value(value)


def _noting_edit(result: Any, asked: dict[str, Any], ran: dict[str, Any]) -> Any:
    """The result with a note that a reviewer changed the arguments, where it has room."""
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


__all__ = ["REJECTION_PREFIX", "WORKFLOW_NAME", "RunWorkflow", "error_text"]
