"""Guardrails of the durable graph: every result journaled, recorded as an event, replayed.

:func:`guarded` gives a copied agent copies of its input and output guardrails (and of its
function tools' input and output guardrails) whose function is a :class:`DurableCheck`. A
check that runs inside a durable run commits the guardrail's result, and a ``guardrail``
event saying so, before the SDK acts on it, so a tripwire's event is stored before the run
fails. A check whose result is already committed returns it again without running the
guardrail: a recovered or resumed run never calls a guardrail's model twice.

Journal keys are stable on replay:

* ``guardrail:input:<agent>:<name>``: the SDK runs input guardrails once per drive, on the
  starting agent's first turn, possibly alongside model call 1 (so not keyed by it);
* ``guardrail:output:<model call>:<agent>:<name>``: output guardrails check the final
  output, after the model call that produced it;
* ``guardrail:tool_input:<call key>:<name>`` and ``guardrail:tool_output:<call key>:<name>``,
  ``<call key>`` being the tool call's (its model call and call id).

A name used twice on the same agent or tool is told apart as ``<name>#2``, ``<name>#3``...
A replayed result carries the output info as the store's value encoder kept it (JSON).
"""

from __future__ import annotations

import dataclasses
import inspect
import time
from collections.abc import Callable, Sequence
from typing import Any, Literal

from agents import (
    Agent,
    FunctionTool,
    GuardrailFunctionOutput,
    InputGuardrailTripwireTriggered,
    OutputGuardrailTripwireTriggered,
    ToolGuardrailFunctionOutput,
    ToolInputGuardrailTripwireTriggered,
    ToolOutputGuardrailTripwireTriggered,
)

from ...store import decode_value, encode_value, plain_value
from ._run import DurableRun, current_run

GuardrailKind = Literal["input", "output", "tool_input", "tool_output"]
"""Which guardrail list of the SDK a guardrail comes from."""

_LABELS: dict[str, str] = {
    "input": "input guardrail",
    "output": "output guardrail",
    "tool_input": "tool input guardrail",
    "tool_output": "tool output guardrail",
}


class DurableCheck:
    """The function of a guardrail in the durable graph: runs the user's guardrail function
    once per run and step, journals its result and replays a committed one."""

    def __init__(
        self,
        kind: GuardrailKind,
        agent: str,
        name: str,
        slot: str,
        function: Callable[..., Any],
        tool_name: str | None = None,
    ) -> None:
        self.kind: GuardrailKind = kind
        """Input, output, tool input or tool output guardrail."""
        self.agent = agent
        """The agent whose guardrail (or whose tool's guardrail) this is."""
        self.name = name
        """The guardrail's name, as the SDK reports it."""
        self.slot = slot
        """The name, told apart from an earlier guardrail of the same name (``name#2``)."""
        self.function = function
        """The user's guardrail function."""
        self.tool_name = tool_name
        """The tool a tool guardrail belongs to."""
        self.__name__ = name

    @property
    def for_tool(self) -> bool:
        """Whether this checks a tool call (its argument is the SDK's guardrail data)."""
        return self.kind in ("tool_input", "tool_output")

    async def __call__(self, *args: Any) -> Any:
        run = current_run()
        if run is None:
            return await _result(self.function(*args))
        # Tool guardrails get one data object whose ``context`` is the tool call's context.
        ctx = args[0].context if self.for_tool else args[0]
        call_id = getattr(ctx, "tool_call_id", None) if self.for_tool else None
        key = self._key(run, call_id)
        row = run.journal.get(key)
        if row is not None and row.state == "done" and row.data_json is not None:
            from ._wrap import _sync_wrapper_context  # _wrap builds the graph with guarded()

            run.restore_snapshot(row)
            _sync_wrapper_context(ctx, run)
            return self._rebuild(decode_value(row.data_json))
        run.check_cancelled()
        started = time.time()
        output = await _result(self.function(*args))
        finished = time.time()
        if not isinstance(output, GuardrailFunctionOutput | ToolGuardrailFunctionOutput):
            return output  # not a guardrail result: the SDK reports the mistake
        record = self._record(output)
        await run.commit(
            [
                run.journal_op(
                    key,
                    kind="guardrail",
                    state="done",
                    agent=self.agent,
                    name=self.name,
                    data_json=encode_value(record),
                    context_json=run.context_snapshot(),
                    started_at=started,
                    finished_at=finished,
                ),
                run.event_op(
                    key,
                    "guardrail",
                    self.agent,
                    tool_name=self.tool_name,
                    call_id=call_id,
                    kind=self.kind,
                    guardrail=self.name,
                    duration_ms=round((finished - started) * 1000, 3),
                    **record,
                ),
            ]
        )
        return output

    def _key(self, run: DurableRun, call_id: str | None) -> str:
        if self.kind == "input":
            return f"guardrail:input:{self.agent}:{self.slot}"
        if self.kind == "output":
            return f"guardrail:output:{run.model_calls}:{self.agent}:{self.slot}"
        return f"guardrail:{self.kind}:{run.call_key(call_id or '')}:{self.slot}"

    def _record(
        self, output: GuardrailFunctionOutput | ToolGuardrailFunctionOutput
    ) -> dict[str, Any]:
        info = plain_value(output.output_info)
        if isinstance(output, ToolGuardrailFunctionOutput):
            behavior = dict(output.behavior)
            tripped = behavior.get("type") == "raise_exception"
            return {"tripwire_triggered": tripped, "output_info": info, "behavior": behavior}
        return {"tripwire_triggered": bool(output.tripwire_triggered), "output_info": info}

    def _rebuild(self, record: dict[str, Any]) -> Any:
        if self.for_tool:
            return ToolGuardrailFunctionOutput(
                output_info=record.get("output_info"), behavior=record["behavior"]
            )
        return GuardrailFunctionOutput(
            output_info=record.get("output_info"),
            tripwire_triggered=bool(record["tripwire_triggered"]),
        )


async def _result(value: Any) -> Any:
    return await value if inspect.isawaitable(value) else value


def _checked(
    guardrails: Sequence[Any], kind: GuardrailKind, agent: str, tool_name: str | None = None
) -> list[Any]:
    """Copies of ``guardrails`` whose functions are durable checks; their names are kept."""
    seen: dict[str, int] = {}
    copies = []
    for guardrail in guardrails:
        name = guardrail.get_name()
        seen[name] = seen.get(name, 0) + 1
        slot = name if seen[name] == 1 else f"{name}#{seen[name]}"
        check = DurableCheck(kind, agent, name, slot, guardrail.guardrail_function, tool_name)
        copies.append(dataclasses.replace(guardrail, guardrail_function=check, name=name))
    return copies


def _guarded_tool(tool: Any, agent: str) -> Any:
    if not isinstance(tool, FunctionTool) or not (
        tool.tool_input_guardrails or tool.tool_output_guardrails
    ):
        return tool
    return dataclasses.replace(
        tool,
        tool_input_guardrails=_checked(
            tool.tool_input_guardrails or [], "tool_input", agent, tool.name
        )
        or None,
        tool_output_guardrails=_checked(
            tool.tool_output_guardrails or [], "tool_output", agent, tool.name
        )
        or None,
    )


def guarded(copy: Agent[Any]) -> Agent[Any]:
    """``copy`` (an agent of the durable graph, not the user's) with durable guardrails: its
    input and output guardrails and its function tools' guardrails."""
    copy.input_guardrails = _checked(copy.input_guardrails, "input", copy.name)
    copy.output_guardrails = _checked(copy.output_guardrails, "output", copy.name)
    copy.tools = [_guarded_tool(t, copy.name) for t in copy.tools]
    return copy


def guardrail_ids(agent: Agent[Any]) -> tuple[int, ...]:
    """Identity of an agent's guardrails and its function tools' guardrails (the durable
    graph holds copies of them, so changing them means rebuilding it)."""
    ids = [id(g) for g in (*agent.input_guardrails, *agent.output_guardrails)]
    for tool in agent.tools:
        if isinstance(tool, FunctionTool):
            guardrails = (*(tool.tool_input_guardrails or ()), *(tool.tool_output_guardrails or ()))
            ids.extend(id(g) for g in guardrails)
    return tuple(ids)


def tripwire_message(exc: BaseException) -> str | None:
    """For the SDK's tripwire exceptions, which guardrail tripped (kind, name and agent);
    None for any other error."""
    if isinstance(exc, InputGuardrailTripwireTriggered | OutputGuardrailTripwireTriggered):
        guardrail: Any = exc.guardrail_result.guardrail
        kind = "input" if isinstance(exc, InputGuardrailTripwireTriggered) else "output"
    elif isinstance(
        exc, ToolInputGuardrailTripwireTriggered | ToolOutputGuardrailTripwireTriggered
    ):
        guardrail = exc.guardrail
        kind = (
            "tool_input" if isinstance(exc, ToolInputGuardrailTripwireTriggered) else "tool_output"
        )
    else:
        return None
    check = guardrail.guardrail_function
    where = ""
    if isinstance(check, DurableCheck):
        tool = f"tool {check.tool_name!r} of " if check.tool_name else ""
        where = f" of {tool}agent {check.agent!r}"
    return f"{_LABELS[kind]} {guardrail.get_name()!r}{where} triggered its tripwire"


__all__ = ["DurableCheck", "GuardrailKind", "guarded", "guardrail_ids", "tripwire_message"]
