"""Waiting for a run's driver that belongs to another thread's event loop."""

from __future__ import annotations

import asyncio
from typing import Any

_RECHECK = 0.1
"""How often a waiter re-checks the driver itself, should its loop stop before telling."""


async def _await_in_own_loop(task: asyncio.Task[Any]) -> None:
    """Wait for a task that belongs to another thread's event loop.

    The task's loop is asked to tell this one when the task is done; if that loop stops first
    (a caller's loop ends as soon as its own run does), the task's state is re-checked.
    """
    if task.done():
        return
    here = asyncio.get_running_loop()
    told: asyncio.Future[None] = here.create_future()

    def settle() -> None:
        if not told.done():
            told.set_result(None)

    def tell(_: asyncio.Task[Any]) -> None:
        here.call_soon_threadsafe(settle)

    try:
        task.get_loop().call_soon_threadsafe(task.add_done_callback, tell)
    except RuntimeError:
        return  # its loop is closed: the task will never run again
    while not task.done():
        try:
            await asyncio.wait_for(asyncio.shield(told), _RECHECK)
        except TimeoutError:
            continue
