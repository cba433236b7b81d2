"""The interface between :class:`~frontdesk.AgentRuntime` and an execution engine.

The runtime owns the public API, the store's history/events/approvals model and validation;
an engine owns *driving* runs: starting them, resuming them (after a crash, an approval or a
retry), cancelling them. The embedded SQLite engine (``engine.local``) implements it; another
engine (one on Temporal, say) would plug in behind the same methods and write the same store
records, so that the API and the CLI do not change.
"""

from __future__ import annotations

import concurrent.futures
import threading
from collections.abc import Coroutine
from typing import Any, Protocol, TypeVar, runtime_checkable

from ..store import RunRow

T = TypeVar("T")


@runtime_checkable
class Engine(Protocol):
    """What the runtime needs from an engine."""

    changed: threading.Condition
    """Notified whenever a run's state or events change, for waiters and streams."""

    async def start(self, spec: Any, *, acknowledge: bool = True) -> tuple[str, bool]:
        """Persist a new run and start driving it; returns its execution id and whether it
        was created (a caller-chosen id may name a run that already exists)."""
        ...

    async def wait_settled(self, execution_id: str) -> RunRow:
        """Wait until the run completes, fails, is cancelled or waits for approval."""
        ...

    async def resume(self, execution_id: str) -> bool:
        """Drive a runnable run (approved, retried, orphaned) if this engine can."""
        ...

    async def cancel(self, execution_id: str) -> RunRow:
        """Cancel a run that has not finished."""
        ...

    def retry(self, execution_id: str, budget_json: str | None = None) -> RunRow:
        """Make a failed or ``budget_exceeded`` run runnable again, keeping its completed
        steps; ``budget_json`` (if given) replaces its stored budget."""
        ...

    async def recover_now(self) -> list[str]:
        """Take over every orphaned run this engine can drive."""
        ...

    def submit(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        """Run a coroutine on the engine's loop."""
        ...

    def call(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        """Run a coroutine on the engine's loop and wait for it."""
        ...

    def run_here(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run a coroutine to completion on the calling thread (runs it starts are driven
        there), for callers in synchronous code."""
        ...

    def notify(self) -> None:
        """Wake waiters on :attr:`changed`."""
        ...

    def close(self, timeout: float = 30.0) -> None:
        """Stop; unfinished runs stay resumable by another engine."""
        ...
