"""Waiting for a run's driver that belongs to another thread's event loop."""

from __future__ import annotations

import asyncio
from typing import Any


async def _await_in_own_loop(task: asyncio.Task[Any]) -> None:
    """Wait for a task that belongs to another thread's event loop."""

    async def settle() -> None:
        await asyncio.gather(task, return_exceptions=True)

    await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(settle(), task.get_loop()))
