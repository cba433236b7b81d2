"""Throw-away PostgreSQL clusters for tests, from the machine's PostgreSQL binaries.

:func:`throwaway_cluster` creates a cluster in a fresh directory under the system's temporary
directory (the ``postgres`` system user must reach it when the tests run as root, which a
pytest ``tmp_path`` under a root-private directory does not allow), starts it on a free
loopback port, and always stops it and removes it afterwards, pass or fail.
"""

from __future__ import annotations

import shutil
import socket
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from frontdesk.store.postgres._cluster import LocalPostgres, PostgresUnavailable, find_binaries

PORT_ATTEMPTS = 5
"""How many free ports to try: another process may take a port between probe and bind."""


def free_port() -> int:
    """A loopback port that was free a moment ago."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def require_binaries() -> None:
    """Skip the test when the PostgreSQL server binaries are not installed."""
    try:
        find_binaries()
    except PostgresUnavailable as exc:
        pytest.skip(str(exc))


def new_root(prefix: str = "frontdesk-pg-") -> Path:
    """A fresh directory the ``postgres`` system user can reach."""
    root = Path(tempfile.mkdtemp(prefix=prefix))
    root.chmod(0o755)
    return root


@contextmanager
def throwaway_cluster() -> Iterator[LocalPostgres]:
    """A started cluster on a free port; stopped and deleted at the end."""
    require_binaries()
    root = new_root()
    cluster = LocalPostgres(root / "cluster", port=free_port())
    try:
        for attempt in range(PORT_ATTEMPTS):
            try:
                cluster.start()
                break
            except PostgresUnavailable:
                if attempt == PORT_ATTEMPTS - 1 or cluster.running:
                    raise
                cluster.port = free_port()
        yield cluster
    finally:
        try:
            cluster.stop(mode="immediate")
        finally:
            shutil.rmtree(root, ignore_errors=True)
