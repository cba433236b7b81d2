"""Server-sent events: a run's events as they are committed, and change notices for lists.

A run's stream sends each event with ``id: <seq>``, so a browser's ``EventSource`` that
reconnects sends ``Last-Event-ID`` and gets exactly the events it missed. Lists (runs,
approvals) get a ``changed`` notice when what their first page shows changes; the console
then reloads that part of the page. Streams poll the runtime's public API; each one ends by
itself after :data:`MAX_STREAM_SECONDS` (the browser reconnects) so none is held forever.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any

from fastapi import Request
from starlette.concurrency import run_in_threadpool

from ..store import TERMINAL_STATUSES
from ._present import event_dict

if TYPE_CHECKING:
    from ._state import ConsoleState

MAX_STREAM_SECONDS = 600.0
"""How long one stream stays open before the client is asked to reconnect."""
KEEPALIVE_SECONDS = 15.0
"""How often an idle stream sends a comment, so proxies keep it open."""
LIST_POLL_SECONDS = 1.0
"""How often list streams look for changes."""


def sse(data: Any, *, event: str | None = None, id: int | None = None) -> str:
    """One server-sent event (JSON data, one line)."""
    lines = []
    if id is not None:
        lines.append(f"id: {id}")
    if event is not None:
        lines.append(f"event: {event}")
    lines.append("data: " + json.dumps(data, separators=(",", ":"), default=str))
    return "\n".join(lines) + "\n\n"


async def run_events(
    request: Request, state: ConsoleState, execution_id: str, after: int
) -> AsyncIterator[str]:
    """Events of one run with ``seq > after``, then live ones, until the run ends."""
    runtime = state.runtime
    last = after
    status: str | None = None
    opened = quiet_since = time.monotonic()
    yield "retry: 1000\n\n"
    while True:
        # Status first: a run's last events commit with its final status, so once a terminal
        # status is seen, the events read next are complete.
        current = await run_in_threadpool(lambda: runtime.handle(execution_id).status)
        events = await run_in_threadpool(runtime.events, execution_id, last)
        for event in events:
            yield sse(event_dict(event), event=event.type, id=event.seq)
            last = event.seq
        if current != status:
            status = current
            yield sse({"status": status, "seq": last}, event="status")
        if status in TERMINAL_STATUSES:
            yield sse({"status": status, "seq": last}, event="end")
            return
        now = time.monotonic()
        if events:
            quiet_since = now
        elif now - quiet_since > KEEPALIVE_SECONDS:
            quiet_since = now
            yield ": keepalive\n\n"
        if now - opened > MAX_STREAM_SECONDS or await request.is_disconnected():
            return
        await asyncio.sleep(state.poll_interval)


async def changes(
    request: Request, state: ConsoleState, fingerprint: Callable[[], Any]
) -> AsyncIterator[str]:
    """A ``changed`` event whenever ``fingerprint()`` (run in a thread) changes."""
    opened = quiet_since = time.monotonic()
    previous = _digest(await run_in_threadpool(fingerprint))
    yield "retry: 1000\n\n"
    yield sse({"version": previous}, event="ready")
    while True:
        await asyncio.sleep(max(state.poll_interval, LIST_POLL_SECONDS))
        current = _digest(await run_in_threadpool(fingerprint))
        now = time.monotonic()
        if current != previous:
            previous, quiet_since = current, now
            yield sse({"version": current}, event="changed")
        elif now - quiet_since > KEEPALIVE_SECONDS:
            quiet_since = now
            yield ": keepalive\n\n"
        if now - opened > MAX_STREAM_SECONDS or await request.is_disconnected():
            return


def _digest(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, default=str).encode()).hexdigest()[:16]
