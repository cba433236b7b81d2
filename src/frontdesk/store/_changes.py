"""Waking the threads that wait for news about runs.

Every store has one :class:`Changes`. It is notified after each write the store commits, and a
backend that learns of other processes' writes (PostgreSQL's ``LISTEN``) notifies it too.
Waiters re-check what they wait for on every notification and, as a fallback for writes
nobody announced (another process on SQLite), every ``poll`` seconds.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

DEFAULT_POLL = 0.2
"""How often a waiter re-checks when nothing was announced, in seconds."""


class Changes:
    """A condition that store writes notify, for threads waiting on runs."""

    def __init__(self) -> None:
        self._condition = threading.Condition()
        self._waiters = 0

    @property
    def waiters(self) -> int:
        """How many threads are waiting right now."""
        return self._waiters

    def notify(self) -> None:
        """Wake every waiting thread (cheap when nobody waits)."""
        if self._waiters:
            with self._condition:
                self._condition.notify_all()

    def wait_for(
        self, check: Callable[[], T | None], timeout: float | None, poll: float = DEFAULT_POLL
    ) -> T | None:
        """Block until ``check()`` returns something other than None and return it; None once
        ``timeout`` seconds passed (None: no limit). ``check`` runs on each notification and
        at least every ``poll`` seconds."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            value = check()
            if value is not None:
                return value
            remaining = poll if deadline is None else min(poll, deadline - time.monotonic())
            if remaining <= 0:
                return None
            with self._condition:
                self._waiters += 1
                try:
                    self._condition.wait(remaining)
                finally:
                    self._waiters -= 1


class Runnable:
    """Announcements that a run became runnable with nobody driving it (approved, retried,
    handed back, forked), heard from other processes where the backend can tell (PostgreSQL's
    ``NOTIFY``). An engine's recovery scan wakes on them instead of waiting out its poll
    interval, which stays the fallback for what nobody announced."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._listeners: list[Callable[[], None]] = []

    def subscribe(self, callback: Callable[[], None]) -> Callable[[], None]:
        """Call ``callback`` (from the announcing thread) on every announcement; returns a
        function that unsubscribes it."""
        with self._lock:
            self._listeners.append(callback)

        def unsubscribe() -> None:
            with self._lock:
                if callback in self._listeners:
                    self._listeners.remove(callback)

        return unsubscribe

    def announce(self) -> None:
        """Tell every subscriber that some run may be waiting for a driver."""
        with self._lock:
            listeners = list(self._listeners)
        for callback in listeners:
            callback()
