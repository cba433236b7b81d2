"""The row a new run is stored with, whichever engine starts it or whichever run it forks.

Every new run starts the same way (:func:`fresh`): running, with nothing produced or used
yet, on its first attempt. What differs is where the rest comes from: a :class:`RunSpec`
(:func:`spec_row`, both engines) or the parent run of a fork.
"""

from __future__ import annotations

import json
import time
from typing import TypedDict

from ..models._select import ModelSelector
from ..store import RunRow
from ._context import dump_context
from ._types import RunSpec


class Fresh(TypedDict):
    """The columns of a new run that do not depend on what it was made from."""

    status: str
    output_json: None
    last_agent: None
    error: None
    note: None
    requests: int
    input_tokens: int
    output_tokens: int
    total_tokens: int
    created_at: float
    started_at: float
    finished_at: None
    updated_at: float
    cancel_requested: int
    attempt: int


def fresh(now: float) -> Fresh:
    """A new run's state as of ``now``: running, nothing produced or used, attempt 1."""
    return Fresh(
        status="running",
        output_json=None,
        last_agent=None,
        error=None,
        note=None,
        requests=0,
        input_tokens=0,
        output_tokens=0,
        total_tokens=0,
        created_at=now,
        started_at=now,
        finished_at=None,
        updated_at=now,
        cancel_requested=0,
        attempt=1,
    )


def spec_row(
    spec: RunSpec,
    execution_id: str,
    selector: ModelSelector,
    *,
    lease_owner: str | None,
    lease_expires: float | None,
) -> RunRow:
    """The row of a run started from ``spec`` under ``execution_id``, leased to
    ``lease_owner``; ``selector`` is the engine's own, used unless the spec names a model."""
    context_type, context_json = dump_context(spec.context)
    chosen = selector if spec.model is None else ModelSelector(spec.model)
    return RunRow(
        execution_id=execution_id,
        agent_ref=spec.agent_ref,
        agent_name=spec.agent.name,
        input=json.dumps(spec.input),
        context_type=context_type,
        context_json=context_json,
        model_label=chosen.label,
        lease_owner=lease_owner,
        lease_expires=lease_expires,
        conversation_id=spec.conversation_id,
        turn=spec.turn,
        model_override=chosen.persistable,
        lease_epoch=1,
        budget_json=spec.budget_json,
        **fresh(time.time()),
    )


__all__ = ["Fresh", "fresh", "spec_row"]
