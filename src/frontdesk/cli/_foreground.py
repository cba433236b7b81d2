"""Running a local server in the foreground until Ctrl-C or SIGTERM, then stopping it."""

from __future__ import annotations

import signal
from collections.abc import Callable


def serve_until_stopped(start: Callable[[], None], stop: Callable[[], None]) -> None:
    """Call ``start``, wait for SIGINT or SIGTERM, then call ``stop`` (also if ``start`` fails).

    The signals are blocked from before ``start`` on, so one that arrives during start-up is
    not lost, and a second one sent while stopping counts as part of the same request.
    """
    stops = {signal.SIGINT, signal.SIGTERM}
    signal.pthread_sigmask(signal.SIG_BLOCK, stops)
    try:
        start()
        signal.sigwait(stops)
    finally:
        stop()
        for pending in signal.sigpending() & stops:
            signal.sigwait({pending})
        signal.pthread_sigmask(signal.SIG_UNBLOCK, stops)
