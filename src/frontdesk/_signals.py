"""Signals belong to the main thread.

A process-directed signal (Ctrl-C's SIGINT, SIGTERM) goes to any thread that does not block it.
Python runs its handlers on the main thread regardless, but only when that thread gets to run
Python code: a main thread blocked reading input is interrupted only if the kernel chose it. So
every thread frontdesk starts blocks both signals before anything else, and so do the worker
threads of the executors it creates.
"""

from __future__ import annotations

import concurrent.futures
import signal

BLOCKED = frozenset({signal.SIGINT, signal.SIGTERM})
"""The signals frontdesk's own threads never take."""


def leave_signals_to_main() -> None:
    """Block :data:`BLOCKED` in the calling thread (call first thing in a background thread)."""
    if hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(signal.SIG_BLOCK, BLOCKED)


def quiet_executor() -> concurrent.futures.ThreadPoolExecutor:
    """A thread pool, like asyncio's default executor, whose threads never take signals."""
    return concurrent.futures.ThreadPoolExecutor(
        thread_name_prefix="frontdesk-worker", initializer=leave_signals_to_main
    )
