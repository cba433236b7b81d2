"""What a run is started from."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any

from agents import Agent


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
