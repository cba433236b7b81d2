"""What runs spent on models, read from their journals: calls and tokens by run, agent and model.

Every model call of a run is a journal row (``model:<k>``) holding the model's response, with
its usage, and the name of the model it ran on (rows written before frontdesk recorded it fall
back to the run's model override). Costs are not stored: they are priced on read, from the
tokens, by whichever price table the reader holds.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass


@dataclass(frozen=True)
class UsageRow:
    """Model calls of one run by one agent on one model, summed."""

    execution_id: str
    """The run."""
    day: str
    """The UTC day the run was created on, ``YYYY-MM-DD``."""
    agent: str | None
    """The agent that made the calls."""
    model: str | None
    """The model they ran on, when known."""
    calls: int
    """How many calls."""
    input_tokens: int
    """Their input tokens."""
    output_tokens: int
    """Their output tokens."""
    total_tokens: int
    """Their tokens."""


def summary_run_prefix(conversation_id: str) -> str:
    """What the execution ids of a conversation's summariser runs start with (see
    :func:`frontdesk._summarizer.summary_run_id`)."""
    return f"summary-{hashlib.sha256(conversation_id.encode()).hexdigest()[:20]}-"


__all__ = ["UsageRow", "summary_run_prefix"]
