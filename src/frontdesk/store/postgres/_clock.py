"""The database server's clock, as every process sharing a PostgreSQL store reads it.

Leases and approval deadlines are instants that one process writes and another compares with
its own "now". Across machines, their clocks differ: a host whose clock runs an hour behind
would write leases that others see expired at once, and take over runs that are still
driven. So processes on PostgreSQL tell time by the server's clock: :class:`ServerClock`
measures the offset of this host's clock from the server's (at the midpoint of a round trip),
and adds it to the local clock. The offset is measured when the store opens and again, in the
background, once it is older than :data:`REFRESH_SECONDS`; telling the time never waits for
the server.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from ..._signals import leave_signals_to_main

log = logging.getLogger("frontdesk.store")

REFRESH_SECONDS = 60.0
"""How old the measured offset may get before it is measured again."""


class ServerClock:
    """This host's clock corrected to the server's; ``server_time()`` asks the server for
    its time (seconds since the epoch)."""

    def __init__(self, server_time: Callable[[], float], refresh: float = REFRESH_SECONDS):
        self._server_time = server_time
        self._refresh = refresh
        self._lock = threading.Lock()
        self._measuring = False
        self.offset = 0.0
        """Seconds to add to this host's clock to read the server's."""
        self._measured_at = float("-inf")
        self.measure()

    def measure(self) -> float:
        """Measure the offset now (one round trip); returns it."""
        before = time.time()
        server = self._server_time()
        after = time.time()
        with self._lock:
            self.offset = server - (before + after) / 2
            self._measured_at = time.monotonic()
        return self.offset

    def now(self) -> float:
        """The server's time, by this host's clock and the last measured offset."""
        with self._lock:
            stale = time.monotonic() - self._measured_at > self._refresh and not self._measuring
            if stale:
                self._measuring = True
        if stale:
            threading.Thread(target=self._remeasure, name="frontdesk-clock", daemon=True).start()
        return time.time() + self.offset

    def _remeasure(self) -> None:
        leave_signals_to_main()
        try:
            self.measure()
        except Exception as exc:  # the server is away: keep the last offset, try again later
            log.debug("could not read the database server's clock: %s", exc)
            with self._lock:
                self._measured_at = time.monotonic()
        finally:
            with self._lock:
                self._measuring = False
