"""The types that cross the seam between the runtime and an engine.

:class:`RunSpec` is what a run is started from; :class:`TokenFeed` carries the text of a
streamed run's model calls to live readers in the process that drives it; a tool call's
:func:`idempotency_key` is the same whichever engine runs the tool. Every engine takes and
gives these, whichever way it drives runs.
"""

from __future__ import annotations

import hashlib
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any

from agents import Agent

from ..events import Event


class TokenFeed:
    """The ``text_delta`` events of one run's streamed model calls, for live consumers.

    Thread-safe and append-only while a process drives the run. Each delta is kept with the
    ``seq`` of the last persisted event before it, so a reader can put it in its place among
    the persisted events (see :meth:`EventStream.__next__ <frontdesk.EventStream>`).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: list[tuple[int, Event]] = []

    def publish(self, after_seq: int, event: Event) -> None:
        """Append ``event``, which comes after the persisted event number ``after_seq``."""
        with self._lock:
            self._entries.append((after_seq, event))

    def read(self, start: int) -> list[tuple[int, Event]]:
        """The entries from position ``start`` on: ``(after_seq, event)`` pairs, in order."""
        with self._lock:
            return self._entries[start:]


@dataclass(frozen=True)
class TurnInput:
    """What a conversation turn's run stores as its input: where in the conversation it
    starts, and the user's message (the run's ``conversation_id`` and ``turn`` say which
    conversation and turn it is)."""

    base_len: int
    """How many of the conversation's input items come before the message."""
    message: str
    """The user's message."""
    start: int = 0
    """Under a memory policy, the item the turn's window starts at."""
    summary: str | None = None
    """Under a memory policy, the summary sent before the window, if any."""

    def to_json(self) -> dict[str, Any]:
        """The stored form."""
        data: dict[str, Any] = {"base_len": self.base_len}
        if self.start:
            data["start"] = self.start
        if self.summary is not None:
            data["summary"] = self.summary
        data["message"] = self.message
        return data


@dataclass(frozen=True)
class RunSpec:
    """Everything needed to start a run; only data is stored."""

    agent: Agent[Any]
    """The starting agent (the process's own object; its reference is stored)."""
    agent_ref: str
    """How any process finds the starting agent again."""
    input: str | list[Any] | dict[str, Any]
    """A message, input items, or a conversation turn's :meth:`TurnInput.to_json`."""
    context: Any = None
    """The run's context."""
    conversation_id: str | None = None
    """The conversation the run is a turn of, if any."""
    turn: int | None = None
    """Which turn of its conversation it is."""
    execution_id: str | None = None
    """A caller-chosen id (the start is then idempotent); None for a fresh one."""
    budget_json: str | None = None
    """The run's budget (``_budget.BudgetPlan`` as JSON), stored with it; None: no limits."""
    feed: TokenFeed | None = None
    """Where the run's model calls publish their text as it streams (None: not streamed)."""
    model: str | None = None
    """A model for this run instead of the engine's (``"rules"``, a model name), recorded
    with the run so whichever process resumes it uses the same; None: the engine's."""


def idempotency_key(execution_id: str, call_key: str) -> str:
    """The key a tool passes to external APIs; the same on every retry and recovery."""
    digest = hashlib.sha256(f"{execution_id}/{call_key}".encode()).hexdigest()[:40]
    return f"fd_{digest}"


def new_execution_id() -> str:
    """A fresh, sortable execution id."""
    return f"run_{int(time.time() * 1000):x}{uuid.uuid4().hex[:12]}"
