"""The interface between :class:`~frontdesk.AgentRuntime` and an execution engine.

The runtime owns the public API, validation and the store's model of history, events and
approvals; an engine owns *driving* runs: starting them, resuming them (after a crash, an
approval or a retry), cancelling them, and telling waiters when they settle. The embedded
engine (``engine.local``) implements it over any :class:`~frontdesk.store.Store`; another
engine (one on Temporal, say) plugs in behind the same methods and writes the same store
records, so that the API and the CLI do not change. The types that cross this seam
(:class:`~._types.RunSpec`, :class:`~._types.TokenFeed`) live beside it in :mod:`._types`.
"""

from __future__ import annotations

import concurrent.futures
from collections.abc import Callable, Coroutine
from typing import Any, Protocol, TypeVar, runtime_checkable

from ..store import ApprovalRecord, RunRow, Store
from ._types import RunSpec, TokenFeed

T = TypeVar("T")


@runtime_checkable
class Engine(Protocol):
    """What the runtime needs from an engine."""

    store: Store
    """The store the engine's runs are recorded in."""

    async def start(self, spec: RunSpec, *, acknowledge: bool = True) -> tuple[str, bool]:
        """Persist a new run and start driving it; returns its execution id and whether it
        was created (a caller-chosen id may name a run that already exists). Without
        ``acknowledge`` the run may be written with its first step, for a caller that waits
        for it anyway."""
        ...

    async def wait_settled(self, execution_id: str) -> RunRow:
        """Wait until this engine stops driving the run here (it completed, failed, was
        cancelled or waits for approval); returns its row as then stored. A run driven
        elsewhere may still be ``running``."""
        ...

    def wait_until(
        self, check: Callable[[], T | None], timeout: float | None, poll: float = 0.2
    ) -> T | None:
        """Block the calling thread until ``check()`` returns something other than None,
        re-checking whenever runs change (and every ``poll`` seconds); None after
        ``timeout`` seconds."""
        ...

    def driving(self, execution_id: str) -> bool:
        """Whether this engine is driving the run right now."""
        ...

    def token_feed(self, execution_id: str) -> TokenFeed | None:
        """The live feed of a run this engine drives with streamed model calls, if any."""
        ...

    async def resume(self, execution_id: str) -> bool:
        """Drive a runnable run (approved, retried, orphaned) if this engine can; returns
        whether it does."""
        ...

    async def cancel(self, execution_id: str) -> RunRow:
        """Cancel a run that has not finished; returns its row as then stored."""
        ...

    def retry(self, execution_id: str, budget_json: str | None = None) -> RunRow:
        """Make a failed or ``budget_exceeded`` run runnable again, keeping its completed
        steps; ``budget_json`` (if given) replaces its stored budget."""
        ...

    async def recover_now(self) -> list[str]:
        """Take over every orphaned run this engine can drive; returns their ids."""
        ...

    def expire_approvals(self) -> list[ApprovalRecord]:
        """Reject or escalate every approval request past its deadline; returns those this
        call decided."""
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
        """Wake the threads waiting in :meth:`wait_until`."""
        ...

    def close(self, timeout: float = 30.0) -> None:
        """Stop; unfinished runs stay resumable by another engine."""
        ...
