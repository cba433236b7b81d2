"""What a run is started from, and what driving it needs from its stored row."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any

from agents import Agent

from ...store import RunRow


@dataclass(frozen=True)
class _Plan:
    """What driving a run needs from its stored row."""

    agent_ref: str
    agent_name: str
    input_json: str
    context_type: str | None
    context_json: str | None
    conversation_id: str | None
    attempt: int
    cancel_requested: bool
    model_override: str | None = None

    @classmethod
    def of(cls, row: RunRow) -> _Plan:
        return cls(
            row.agent_ref,
            row.agent_name,
            row.input,
            row.context_type,
            row.context_json,
            row.conversation_id,
            row.attempt,
            bool(row.cancel_requested),
            row.model_override,
        )


@dataclass(frozen=True)
class RunSpec:
    """Everything needed to start a run; only data is stored."""

    agent: Agent[Any]
    agent_ref: str
    input: str | list[Any] | dict[str, Any]
    """A message, input items, or a conversation turn reference."""
    context: Any = None
    conversation_id: str | None = None
    turn: int | None = None
    execution_id: str | None = None


def new_execution_id() -> str:
    """A fresh, sortable execution id."""
    return f"run_{int(time.time() * 1000):x}{uuid.uuid4().hex[:12]}"
