"""What a run is started from."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from agents import Agent

if TYPE_CHECKING:
    from ._streaming import TokenFeed


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
    budget_json: str | None = None
    """The run's budget (``_budget.BudgetPlan`` as JSON), stored with it; None: no limits."""
    feed: TokenFeed | None = None
    """Where the run's model calls publish their text as it streams (None: not streamed)."""


def new_execution_id() -> str:
    """A fresh, sortable execution id."""
    return f"run_{int(time.time() * 1000):x}{uuid.uuid4().hex[:12]}"
