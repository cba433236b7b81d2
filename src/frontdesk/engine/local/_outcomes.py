"""How a run's outcome is recorded: completed, paused for approval, failed or cancelled.

Each function returns the statements that record the outcome; the engine commits them in one
transaction with the run's last buffered steps, so the outcome and what led to it land
together.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

from ...errors import FrontdeskError
from ...events import Usage, encode_payload
from ...store import Op, Store, event_insert
from ...store._values import plain_value
from .._context import dump_context
from .._conversation import completion_ops, is_turn_input, release_ops
from ._run import DurableRun


def settle(execution_id: str, status: str, usage: Usage | None, **columns: Any) -> Op:
    """Set the run's status (and ``columns``), release its lease, record its usage.

    Commit it behind the driver's fence; a run that already ended keeps its outcome.
    """
    now = time.time()
    values: dict[str, Any] = {"status": status, "updated_at": now, **columns}
    if status in ("completed", "failed", "cancelled"):
        values.setdefault("finished_at", now)
    if usage is not None:
        values.update(
            requests=usage.requests,
            input_tokens=usage.input_tokens,
            output_tokens=usage.output_tokens,
            total_tokens=usage.total_tokens,
        )
    assignments = ", ".join(f"{name} = ?" for name in values)
    # A terminal status is final: whatever happens later, it is never overwritten.
    return (
        f"UPDATE runs SET {assignments}, lease_owner = NULL, lease_expires = NULL "
        "WHERE execution_id = ? AND status NOT IN ('completed', 'failed', 'cancelled')",
        (*values.values(), execution_id),
    )


def _released(conversation_id: str | None, execution_id: str) -> list[Op]:
    return release_ops(conversation_id, execution_id) if conversation_id else []


def completed_ops(
    store: Store,
    run: DurableRun,
    result: Any,
    stored_input: Any,
    conversation_id: str | None,
    compact_every: int,
) -> list[Op | None]:
    """The run's final output, context and usage; for a conversation turn, the turn too."""
    execution_id = run.execution_id
    last_agent = result.last_agent.name
    _, context_json = dump_context(run.context)
    turn: list[Op] = []
    if conversation_id is not None and is_turn_input(stored_input):
        turn = completion_ops(
            store,
            conversation_id,
            execution_id,
            stored_input["message"],
            stored_input["base_len"],
            result,
            context_json,
            compact_every,
        )
    return [
        *turn,
        settle(
            execution_id,
            "completed",
            run.usage,
            output_json=json.dumps(plain_value(result.final_output)),
            last_agent=last_agent,
            context_json=context_json,
            error=None,
            note=None,
        ),
        # The output is the run's; the event refers to it rather than copying it.
        run.event_op("done", "done", last_agent, usage=run.usage),
    ]


def paused_ops(run: DurableRun, result: Any) -> list[Op | None]:
    """One approval request per interrupted tool call, and the run waiting for them."""
    now = time.time()
    ops: list[Op | None] = []
    for item in result.interruptions:
        raw = item.raw_item
        call_id = str(getattr(raw, "call_id", None) or getattr(raw, "id", None) or "")
        call_key = run.call_key(call_id)
        arguments = getattr(raw, "arguments", None) or "{}"
        try:
            args = json.loads(arguments)
        except json.JSONDecodeError:
            args = {"_raw": arguments}
        approval_id = f"apv_{uuid.uuid4().hex[:16]}"
        agent_name = item.agent.name if item.agent is not None else None
        ops.append(
            (
                "INSERT OR IGNORE INTO approvals (approval_id, execution_id, call_key, call_id,"
                " agent, tool_name, args_json, status, requested_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, 'pending', ?)",
                (
                    approval_id,
                    run.execution_id,
                    call_key,
                    call_id,
                    agent_name,
                    item.tool_name,
                    json.dumps(args),
                    now,
                ),
            )
        )
        ops.append(
            run.event_op(
                f"approval_required:{call_key}",
                "approval_required",
                agent_name,
                tool_name=item.tool_name,
                call_id=call_id,
                args=args,
                approval_id=approval_id,
            )
        )
    ops.append(
        settle(run.execution_id, "waiting_approval", run.usage, last_agent=result.last_agent.name)
    )
    return ops


def error_message(exc: BaseException) -> str:
    """What a failed run records as its error."""
    return str(exc) if isinstance(exc, FrontdeskError) else f"{type(exc).__name__}: {exc}"


def failed_ops(
    store: Store,
    execution_id: str,
    run: DurableRun | None,
    exc: BaseException,
    attempt: int,
    conversation_id: str | None,
) -> list[Op | None]:
    """The error event and the failed status (a turn's conversation is freed for a retry).

    ``run`` is None when the run failed before it could start (e.g. no model configured).
    """
    message = error_message(exc)
    key = f"error:{attempt}"
    event: Op | None
    if run is not None:
        event = run.event_op(key, "error", None, error=message, error_type=type(exc).__name__)
    else:
        event = (
            None
            if key in store.event_keys(execution_id)
            else event_insert(
                execution_id,
                key,
                "error",
                None,
                encode_payload(error=message, error_type=type(exc).__name__),
                at=time.time(),
            )
        )
    usage = run.usage if run is not None else None
    return [
        event,
        settle(execution_id, "failed", usage, error=message),
        *_released(conversation_id, execution_id),
    ]


def cancelled_ops(run: DurableRun, conversation_id: str | None) -> list[Op | None]:
    """A cancelled run: an error event saying so, and the status."""
    return [
        run.event_op("cancelled", "error", None, error="run cancelled", status="cancelled"),
        settle(run.execution_id, "cancelled", run.usage),
        *_released(conversation_id, run.execution_id),
    ]
