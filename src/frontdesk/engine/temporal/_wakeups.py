"""Waking the coroutines that wait for a Temporal run to settle, as soon as it may have.

A caller of ``run``/``run_async`` waits on its own event loop for the run's row to settle. The
worker's ``frontdesk_run_record`` activity writes that row on the engine's loop and then names
the run it wrote; :class:`Wakeups` wakes the coroutines waiting for that run (on whichever
loop each waits), so a run settled by this process's worker is seen at once instead of at the
next poll. Runs driven by workers in other processes are still found by polling the store.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager


class Wakeups:
    """Per run, the events of the coroutines waiting for news about it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._waiting: dict[str, list[tuple[asyncio.AbstractEventLoop, asyncio.Event]]] = {}

    @contextmanager
    def waiting(self, execution_id: str) -> Iterator[asyncio.Event]:
        """An event, on the running loop, that is set whenever ``execution_id`` may have
        changed (the waiter clears it before each look); forgotten on exit."""
        entry = (asyncio.get_running_loop(), asyncio.Event())
        with self._lock:
            self._waiting.setdefault(execution_id, []).append(entry)
        try:
            yield entry[1]
        finally:
            with self._lock:
                entries = self._waiting.get(execution_id, [])
                if entry in entries:
                    entries.remove(entry)
                if not entries:
                    self._waiting.pop(execution_id, None)

    def wake(self, execution_id: str | None = None) -> None:
        """Wake the waiters of ``execution_id`` (None: of every run). Any thread may call."""
        with self._lock:
            if execution_id is None:
                entries = [e for waiting in self._waiting.values() for e in waiting]
            else:
                entries = list(self._waiting.get(execution_id, ()))
        for loop, event in entries:
            try:
                loop.call_soon_threadsafe(event.set)
            except RuntimeError:  # its loop is closed: nobody waits there any more
                pass


__all__ = ["Wakeups"]
