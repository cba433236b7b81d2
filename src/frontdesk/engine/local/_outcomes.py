"""How a run's outcome is recorded: completed, paused for approval, failed, cancelled, or
stopped by its budget.

Each function returns an :class:`Outcome`: the statements that record it, which the engine
commits in one transaction with the run's last buffered steps (so the outcome and what led to
it land together), and what the run's row becomes once they did.
"""

from __future__ import annotations

import dataclasses
import json
import time
import uuid
from typing import Any

from agents import FunctionTool

from ..._budget import BudgetStop
from ...errors import FrontdeskError
from ...events import Usage, encode_payload
from ...store import (
    TERMINAL_STATUSES,
    ApprovalRecord,
    RunRow,
    SettleRun,
    Store,
    Write,
    event_insert,
    plain_value,
    request_op,
)
from ...tools import approval_timeout
from .._context import dump_context
from .._conversation import completion_ops, release_ops, stored_turn
from ._guardrails import tripwire_message
from ._run import DurableRun


@dataclasses.dataclass(frozen=True)
class Outcome:
    """How a run settles: the statements that record it, and the columns they set."""

    ops: list[Write | None]
    """The statements, to commit behind the driver's fence."""
    columns: dict[str, Any]
    """The run's columns as the statements leave them (its lease released)."""

    def applied_to(self, row: RunRow) -> RunRow:
        """``row`` as it is stored once :attr:`ops` are committed."""
        return dataclasses.replace(row, **self.columns)


def settled_columns(status: str, usage: Usage | None, **columns: Any) -> dict[str, Any]:
    """The columns a run settling with ``status`` gets: ``columns``, its status, its usage,
    when it changed (and finished), and no lease."""
    now = time.time()
    values: dict[str, Any] = {"status": status, "updated_at": now, **columns}
    if status in TERMINAL_STATUSES:
        values.setdefault("finished_at", now)
    if usage is not None:
        values.update(
            requests=usage.requests,
            input_tokens=usage.input_tokens,
            output_tokens=usage.output_tokens,
            total_tokens=usage.total_tokens,
        )
    values.update(lease_owner=None, lease_expires=None)
    return values


def settle_op(execution_id: str, columns: dict[str, Any]) -> SettleRun:
    """Set a run's ``columns`` (see :func:`settled_columns`) unless the run already ended.

    Commit it behind the driver's fence; a run that already ended keeps its outcome (a
    terminal status is final: whatever happens later, it is never overwritten).
    """
    return SettleRun(execution_id, columns)


def settle(execution_id: str, status: str, usage: Usage | None, **columns: Any) -> SettleRun:
    """Set the run's status (and ``columns``), release its lease, record its usage."""
    return settle_op(execution_id, settled_columns(status, usage, **columns))


def _settled(execution_id: str, ops: list[Write | None], columns: dict[str, Any]) -> Outcome:
    return Outcome([*ops, settle_op(execution_id, columns)], columns)


def _released(conversation_id: str | None, execution_id: str) -> list[Write]:
    return release_ops(conversation_id, execution_id) if conversation_id else []


def completed_ops(
    store: Store, run: DurableRun, result: Any, row: RunRow, compact_every: int
) -> Outcome:
    """The run's final output, context and usage; for a conversation turn, the turn too
    (reading the conversation: call it off the event loop for a turn)."""
    execution_id = run.execution_id
    last_agent = result.last_agent.name
    _, context_json = dump_context(run.context)
    turn: list[Write] = []
    reference = stored_turn(row)
    if reference is not None:
        turn = completion_ops(store, row, reference, result, context_json, compact_every)
    columns = settled_columns(
        "completed",
        run.usage,
        output_json=json.dumps(plain_value(result.final_output)),
        last_agent=last_agent,
        context_json=context_json,
        error=None,
        note=None,
    )
    # The output is the run's; the event refers to it rather than copying it.
    done = run.event_op("done", "done", last_agent, usage=run.usage)
    return _settled(execution_id, [*turn, done], columns)


def paused_ops(run: DurableRun, result: Any, now: float) -> Outcome:
    """One approval request per interrupted tool call, and the run waiting for them; ``now``
    (by the store's clock) starts their deadlines."""
    ops: list[Write | None] = []
    for item in result.interruptions:
        raw = item.raw_item
        call_id = str(getattr(raw, "call_id", None) or getattr(raw, "id", None) or "")
        call_key = run.call_key(call_id)
        arguments = getattr(raw, "arguments", None) or "{}"
        try:
            args = json.loads(arguments)
        except json.JSONDecodeError:
            args = {"_raw": arguments}
        agent_name = item.agent.name if item.agent is not None else None
        tool = _asked_tool(item)
        timeout = approval_timeout(tool)
        request = ApprovalRecord(
            approval_id=f"apv_{uuid.uuid4().hex[:16]}",
            execution_id=run.execution_id,
            call_key=call_key,
            call_id=call_id,
            agent=agent_name,
            tool_name=item.tool_name,
            args=args,
            status="pending",
            requested_at=now,
            decided_at=None,
            decided_by=None,
            note=None,
            reason=None,
            deadline=now + timeout.after.total_seconds() if timeout is not None else None,
            on_timeout=timeout.on_timeout if timeout is not None else None,
            args_schema=tool.params_json_schema if tool is not None else None,
        )
        ops.append(request_op(request))
        data: dict[str, Any] = {"approval_id": request.approval_id}
        if timeout is not None:
            data.update(deadline=request.deadline, on_timeout=request.on_timeout)
        ops.append(
            run.event_op(
                f"approval_required:{call_key}",
                "approval_required",
                agent_name,
                tool_name=item.tool_name,
                call_id=call_id,
                args=args,
                **data,
            )
        )
    columns = settled_columns("waiting_approval", run.usage, last_agent=result.last_agent.name)
    return _settled(run.execution_id, ops, columns)


def _asked_tool(item: Any) -> FunctionTool | None:
    """The function tool an interrupted call asks for, on the agent that called it."""
    for candidate in getattr(item.agent, "tools", None) or ():
        if isinstance(candidate, FunctionTool) and candidate.name == item.tool_name:
            return candidate
    return None


def error_message(exc: BaseException) -> str:
    """What a failed run records as its error (a tripwire names its guardrail)."""
    if isinstance(exc, FrontdeskError):
        return str(exc)
    return f"{type(exc).__name__}: {tripwire_message(exc) or exc}"


def failed_ops(
    event_keys: set[str],
    execution_id: str,
    run: DurableRun | None,
    exc: BaseException,
    attempt: int,
    conversation_id: str | None,
) -> Outcome:
    """The error event and the failed status (a turn's conversation is freed for a retry).

    ``run`` is None when the run failed before it could start (e.g. no model configured);
    ``event_keys`` are then the run's stored event keys (else the driver's are used).
    """
    message = error_message(exc)
    key = f"error:{attempt}"
    event: Write | None
    if run is not None:
        event = run.event_op(key, "error", None, error=message, error_type=type(exc).__name__)
    else:
        event = (
            None
            if key in event_keys
            else event_insert(
                execution_id,
                key,
                "error",
                None,
                encode_payload(error=message, error_type=type(exc).__name__),
                at=time.time(),
            )
        )
    columns = settled_columns("failed", run.usage if run is not None else None, error=message)
    return _settled(execution_id, [event, *_released(conversation_id, execution_id)], columns)


def budget_exceeded_ops(
    run: DurableRun, stop: BudgetStop, attempt: int, conversation_id: str | None
) -> Outcome:
    """A run its budget stopped before a model call: an event naming the limit, its value and
    the amount used, and the status (a turn's conversation is freed, as for a failure)."""
    event = run.event_op(
        f"budget_exceeded:{attempt}",
        "budget_exceeded",
        None,
        usage=run.usage,
        limit=stop.limit,
        limit_value=stop.value,
        used=stop.used,
        model_call=stop.call,
    )
    columns = settled_columns("budget_exceeded", run.usage, error=str(stop))
    return _settled(
        run.execution_id, [event, *_released(conversation_id, run.execution_id)], columns
    )


def cancelled_ops(run: DurableRun, conversation_id: str | None) -> Outcome:
    """A cancelled run: an error event saying so, and the status."""
    event = run.event_op("cancelled", "error", None, error="run cancelled", status="cancelled")
    columns = settled_columns("cancelled", run.usage)
    return _settled(
        run.execution_id, [event, *_released(conversation_id, run.execution_id)], columns
    )
