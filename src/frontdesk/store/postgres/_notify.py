"""Waking waiters and workers with PostgreSQL's ``LISTEN``/``NOTIFY``, polling kept behind it.

A write that others wait for notifies in its own transaction (:func:`notify`), so the
notification is delivered when, and only if, the transaction commits. The channels, each
carrying the execution id of the run concerned as its payload:

- :data:`RUN_CHANNEL` (``frontdesk_run``): a run changed status (it settled, paused for
  approval, was cancelled or resumed). ``RunHandle.wait`` and the console wait on it.
- :data:`APPROVAL_CHANNEL` (``frontdesk_approval``): an approval of the run was requested or
  decided. The run's driver and the approvals inbox wait on it.
- :data:`NEW_RUN_CHANNEL` (``frontdesk_new_run``): a run became runnable without a driver (it
  was stored, retried, or an approval let it go on). Workers wait on it to claim it.
- :data:`EVENT_CHANNEL` (``frontdesk_event``): events were appended to the run. Streams of a
  run another process drives follow it on it, live.

A :class:`Listener` holds one dedicated connection that listens on every channel, from a
thread of its own; :meth:`Listener.watch` gives a :class:`Watch` for one run (or for any run)
on one channel, woken from that thread. Notifications are a shortcut, never the only way a
change is seen: they are lost while the listener is disconnected, so a waiter always re-reads
the store after each :meth:`Watch.wait`, which also returns after its timeout, the polling
interval. When the listener (re)connects, it wakes every watch, since anything may have
changed while nobody listened.
"""

from __future__ import annotations

import asyncio
import logging
import os
import select
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import psycopg
from psycopg import sql

from ._connect import PostgresPool

log = logging.getLogger("frontdesk.store.postgres")

RUN_CHANNEL = "frontdesk_run"
"""A run changed status; payload: its execution id."""
APPROVAL_CHANNEL = "frontdesk_approval"
"""An approval of a run was requested or decided; payload: the run's execution id."""
NEW_RUN_CHANNEL = "frontdesk_new_run"
"""A run became runnable without a driver; payload: its execution id."""
EVENT_CHANNEL = "frontdesk_event"
"""Events were appended to a run; payload: its execution id."""
CHANNELS = (RUN_CHANNEL, APPROVAL_CHANNEL, NEW_RUN_CHANNEL, EVENT_CHANNEL)
"""Every channel frontdesk notifies on."""
HEALTH_INTERVAL = 10.0
"""Seconds of silence after which the listener checks that its connection still works."""
RECONNECT_DELAYS = (0.1, 0.25, 0.5, 1.0, 2.0, 5.0)
"""Pauses between attempts to reconnect a lost listener (the last one repeats)."""
APPLICATION_NAME = "frontdesk-listener"
"""How the listener's connection names itself to the server (``pg_stat_activity``)."""


def notify(conn: psycopg.Connection[Any], channel: str, execution_id: str) -> None:
    """Notify ``channel`` about a run, in ``conn``'s current transaction: delivered when it
    commits, not at all if it rolls back (PostgreSQL folds duplicates within a transaction)."""
    conn.execute("SELECT pg_notify(%s, %s)", (channel, execution_id))


@dataclass(frozen=True)
class Notification:
    """One notification as a listener received it."""

    channel: str
    """The channel it came on."""
    execution_id: str | None
    """The run it is about; None when the listener (re)connected and anything may have
    changed."""


class Watch:
    """Wakes one waiter when a notification for its run (or for any run) comes on its channel.

    Notifications that arrive between two waits are not lost: the next wait returns at once.
    """

    def __init__(self, listener: Listener, channel: str, execution_id: str | None) -> None:
        self.channel = channel
        self.execution_id = execution_id
        self._listener = listener
        self._flag = threading.Event()
        self._async: list[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = []
        self._lock = threading.Lock()

    def fire(self) -> None:
        """Wake the waiter (called from the listener's thread)."""
        self._flag.set()
        with self._lock:
            waiters = list(self._async)
        for loop, event in waiters:
            try:
                loop.call_soon_threadsafe(event.set)
            except RuntimeError:  # its loop is closed: nobody waits there any more
                pass

    def wait(self, seconds: float) -> bool:
        """Block until woken or ``seconds`` passed; True if woken. Then re-read the store."""
        woken = self._flag.wait(seconds)
        self._flag.clear()
        return woken

    async def wait_async(self, seconds: float) -> bool:
        """Like :meth:`wait`, without blocking the event loop."""
        event = asyncio.Event()
        entry = (asyncio.get_running_loop(), event)
        with self._lock:
            self._async.append(entry)
        try:
            if self._flag.is_set():
                woken = True
            else:
                try:
                    await asyncio.wait_for(event.wait(), seconds)
                    woken = True
                except TimeoutError:
                    woken = False
        finally:
            with self._lock:
                self._async.remove(entry)
        self._flag.clear()
        return woken

    def close(self) -> None:
        """Stop watching."""
        self._listener._drop(self)

    def __enter__(self) -> Watch:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class Listener:
    """``LISTEN`` on frontdesk's channels over one dedicated connection, from a thread.

    Start it with :meth:`start` (or ``with``); it reconnects by itself after a lost
    connection (a restarted server), and :meth:`close` stops it at once.
    """

    def __init__(
        self,
        pool: PostgresPool,
        channels: Iterable[str] = CHANNELS,
        *,
        health_interval: float = HEALTH_INTERVAL,
        reconnect_delays: tuple[float, ...] = RECONNECT_DELAYS,
    ) -> None:
        self.channels = tuple(channels)
        self.health_interval = health_interval
        self.reconnect_delays = reconnect_delays
        self._url = pool.url
        self._pool = pool
        self._conninfo = psycopg.conninfo.make_conninfo(
            pool.conninfo, application_name=APPLICATION_NAME
        )
        self._watches: dict[tuple[str, str | None], list[Watch]] = {}
        self._subscribers: list[Callable[[Notification], None]] = []
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self._connected = threading.Event()
        self._wake_r, self._wake_w = os.pipe()
        self._thread = threading.Thread(target=self._run, name="frontdesk-listener", daemon=True)
        self._started = False
        self.connections = 0
        """How many times the listener connected (1 until a connection was lost)."""

    # -- lifecycle ----------------------------------------------------------------------------

    def start(self) -> Listener:
        """Start listening from the thread; returns at once (see :meth:`wait_listening`)."""
        if not self._started:
            self._started = True
            self._thread.start()
        return self

    def wait_listening(self, timeout: float) -> bool:
        """Wait until the listener is connected and listening; False after ``timeout``."""
        return self._connected.wait(timeout)

    @property
    def running(self) -> bool:
        """Whether the listener's thread is running (started and not closed)."""
        return self._thread.is_alive()

    @property
    def listening(self) -> bool:
        """Whether notifications are being received now (False while reconnecting)."""
        return self._connected.is_set()

    def close(self) -> None:
        """Stop listening and close the connection; waits for the thread to end."""
        if self._closing.is_set():
            return
        self._closing.set()
        try:
            os.write(self._wake_w, b"x")
        except OSError:
            pass
        if self._started:
            self._thread.join()
        for fd in (self._wake_r, self._wake_w):
            try:
                os.close(fd)
            except OSError:
                pass

    def __enter__(self) -> Listener:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- waiting ------------------------------------------------------------------------------

    def watch(self, channel: str, execution_id: str | None = None) -> Watch:
        """A :class:`Watch` woken by notifications on ``channel`` about ``execution_id``
        (about any run when None). Create it before reading the store, then wait on it."""
        if channel not in self.channels:
            raise ValueError(f"this listener does not listen on {channel!r}")
        watch = Watch(self, channel, execution_id)
        with self._lock:
            self._watches.setdefault((channel, execution_id), []).append(watch)
        return watch

    def subscribe(self, callback: Callable[[Notification], None]) -> Callable[[], None]:
        """Call ``callback`` (on the listener's thread) with every notification; returns a
        function that unsubscribes it."""
        with self._lock:
            self._subscribers.append(callback)

        def unsubscribe() -> None:
            with self._lock:
                if callback in self._subscribers:
                    self._subscribers.remove(callback)

        return unsubscribe

    def _drop(self, watch: Watch) -> None:
        with self._lock:
            group = self._watches.get((watch.channel, watch.execution_id), [])
            if watch in group:
                group.remove(watch)
            if not group:
                self._watches.pop((watch.channel, watch.execution_id), None)

    def _dispatch(self, note: Notification) -> None:
        with self._lock:
            if note.execution_id is None:
                watches = [w for group in self._watches.values() for w in group]
            else:
                watches = [
                    *self._watches.get((note.channel, note.execution_id), []),
                    *self._watches.get((note.channel, None), []),
                ]
            subscribers = list(self._subscribers)
        for watch in watches:
            watch.fire()
        for callback in subscribers:
            try:
                callback(note)
            except Exception:
                log.exception("a notification subscriber failed on %s", note)

    # -- the thread ---------------------------------------------------------------------------

    def _run(self) -> None:
        failures = 0
        while not self._closing.is_set():
            try:
                conn = self._pool.connect_raw(self._conninfo, autocommit=True)
            except psycopg.Error as exc:
                delay = self.reconnect_delays[min(failures, len(self.reconnect_delays) - 1)]
                failures += 1
                log.warning(
                    "cannot listen for notifications on %s (%s); waiters poll meanwhile, "
                    "next attempt in %gs",
                    self._url.shown,
                    str(exc).strip().splitlines()[-1] if str(exc).strip() else exc,
                    delay,
                )
                self._closing.wait(delay)
                continue
            try:
                conn.add_notify_handler(self._received)
                for channel in self.channels:
                    conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(channel)))
                failures = 0
                self.connections += 1
                self._connected.set()
                # Anything may have changed while nobody listened.
                for channel in self.channels:
                    self._dispatch(Notification(channel, None))
                self._serve(conn)
            except psycopg.Error as exc:
                if not self._closing.is_set():
                    log.warning(
                        "lost the notification connection to %s (%s); reconnecting",
                        self._url.shown,
                        str(exc).strip().splitlines()[0] if str(exc).strip() else exc,
                    )
            finally:
                self._connected.clear()
                conn.close()

    def _serve(self, conn: psycopg.Connection[Any]) -> None:
        pgconn = conn.pgconn
        while not self._closing.is_set():
            ready, _, _ = select.select([pgconn.socket, self._wake_r], [], [], self.health_interval)
            if self._wake_r in ready:
                return
            if not ready:
                conn.execute("SELECT 1")  # a silent connection may be a dead one
                continue
            pgconn.consume_input()
            if pgconn.status != psycopg.pq.ConnStatus.OK:
                raise psycopg.OperationalError("the connection was closed by the server")
            while (pgn := pgconn.notifies()) is not None:
                self._dispatch(
                    Notification(
                        pgn.relname.decode(errors="replace"), pgn.extra.decode(errors="replace")
                    )
                )

    def _received(self, note: psycopg.Notify) -> None:
        """Notifications psycopg read while the thread ran a statement (the health check)."""
        self._dispatch(Notification(note.channel, note.payload))


__all__ = [
    "APPLICATION_NAME",
    "APPROVAL_CHANNEL",
    "CHANNELS",
    "EVENT_CHANNEL",
    "NEW_RUN_CHANNEL",
    "RUN_CHANNEL",
    "Listener",
    "Notification",
    "Watch",
    "notify",
]
