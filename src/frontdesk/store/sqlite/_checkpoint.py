"""Folding SQLite's write-ahead log back into the database, off the commit path."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

from ..._signals import leave_signals_to_main
from ._schema import connect


class Checkpointer:
    """Folds the WAL into the database from a thread of its own, off the commit path.

    With SQLite's automatic checkpoint, every so many pages one unlucky commit stops to copy the
    WAL back and fsync it. Here a daemon thread runs a ``PASSIVE`` checkpoint every
    ``interval`` seconds instead (it never blocks writers or readers), and a ``TRUNCATE`` one
    when the WAL has grown past ``max_wal_bytes``.
    """

    def __init__(
        self,
        path: Path,
        busy_timeout_ms: int,
        interval: float = 0.5,
        max_wal_bytes: int = 64 << 20,
    ) -> None:
        self._path = path
        self._busy_timeout_ms = busy_timeout_ms
        self._interval = interval
        self._max_wal_bytes = max_wal_bytes
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="frontdesk-checkpoint", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        leave_signals_to_main()
        wal = self._path.with_name(self._path.name + "-wal")
        try:
            conn = connect(self._path, busy_timeout_ms=self._busy_timeout_ms)
        except Exception:  # the store's own connections report store errors
            return
        try:
            while not self._stop.wait(self._interval):
                mode = "PASSIVE"
                try:
                    if wal.exists() and wal.stat().st_size > self._max_wal_bytes:
                        mode = "TRUNCATE"
                    conn.execute(f"PRAGMA wal_checkpoint({mode})")
                except (OSError, sqlite3.Error):
                    continue
        finally:
            conn.close()

    def close(self) -> None:
        """Stop, after one last checkpoint."""
        self._stop.set()
        self._thread.join(5)
