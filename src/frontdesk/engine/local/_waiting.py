"""Waiting for runs across threads and event loops."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from ._engine import LocalEngine

T = TypeVar("T")


async def _await_in_own_loop(task: asyncio.Task[Any]) -> None:
    """Wait for a task that belongs to another thread's event loop."""

    async def settle() -> None:
        await asyncio.gather(task, return_exceptions=True)

    await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(settle(), task.get_loop()))


def wait_for(
    engine: LocalEngine,
    check: Callable[[], T | None],
    timeout: float | None,
    poll: float = 0.2,
) -> T | None:
    """Block until ``check()`` returns non-None, re-checking on each notify or ``poll`` s."""
    deadline = None if timeout is None else time.monotonic() + timeout
    condition = engine.changed
    while True:
        value = check()
        if value is not None:
            return value
        remaining = poll if deadline is None else min(poll, deadline - time.monotonic())
        if remaining <= 0:
            return None
        with condition:
            engine.waiters += 1
            try:
                condition.wait(remaining)
            finally:
                engine.waiters -= 1
