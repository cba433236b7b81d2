"""Getting writes to disk: group commit for concurrent runs, and background WAL checkpoints."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import threading

from ..errors import StoreError, StoreLocked
from ._db import connect
from ._store import Op, Store

log = logging.getLogger("frontdesk.store")


class Checkpointer:
    """Folds the WAL into the database from a thread of its own, off the commit path.

    With SQLite's automatic checkpoint, every so many pages one unlucky commit stops to copy the
    WAL back and fsync it. Here a daemon thread runs a ``PASSIVE`` checkpoint every
    ``interval`` seconds instead (it never blocks writers or readers), and a ``TRUNCATE`` one
    when the WAL has grown past ``max_wal_bytes``.
    """

    def __init__(self, store: Store, interval: float = 0.5, max_wal_bytes: int = 64 << 20) -> None:
        self._store = store
        self._interval = interval
        self._max_wal_bytes = max_wal_bytes
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="frontdesk-checkpoint", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        wal = self._store.path.with_name(self._store.path.name + "-wal")
        try:
            conn = connect(self._store.path, busy_timeout_ms=self._store.busy_timeout_ms)
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


RETRY_DELAYS = (0.05, 0.25, 1.0)
"""Pauses before each new attempt of a commit that found the store locked past its timeout."""


class GroupCommitter:
    """Batches writes issued from one event loop into shared transactions.

    ``await commit(ops)`` returns once ``ops`` are durable. Every commit requested during
    the same loop iteration goes into one SQLite transaction; a run that drives alone on its
    loop (see :attr:`drivers`) has nobody to share a transaction with, so its commit is written
    at once instead of one loop iteration later. A commit that finds the store locked (another
    connection held its write lock past the busy timeout) is tried again after each of
    ``retry_delays`` before its :class:`StoreLocked` is raised.
    """

    def __init__(self, store: Store, retry_delays: tuple[float, ...] = RETRY_DELAYS) -> None:
        self._store = store
        self._retry_delays = retry_delays
        self._pending: list[tuple[list[Op], asyncio.Future[None]]] = []
        self._scheduled = False
        self.drivers = 0
        """Runs being driven on this committer's loop (their drivers count themselves)."""

    async def commit(self, ops: list[Op]) -> None:
        """Durably apply ``ops`` (in one transaction with other concurrent commits)."""
        for delay in self._retry_delays:
            try:
                await self._commit_once(ops)
                return
            except StoreLocked as exc:
                log.warning("%s; retrying in %gs", exc, delay)
                await asyncio.sleep(delay)
        await self._commit_once(ops)

    async def _commit_once(self, ops: list[Op]) -> None:
        if self.drivers <= 1 and not self._pending:
            self._store.write(ops)
            return
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        self._pending.append((ops, future))
        if not self._scheduled:
            self._scheduled = True
            loop.call_soon(self._flush)
        await future

    def _flush(self) -> None:
        batch, self._pending = self._pending, []
        self._scheduled = False
        if not batch:
            return
        try:
            self._store.write(op for ops, _ in batch for op in ops)
        except StoreError as exc:
            # The store itself failed (locked, full, unreadable): so would each commit alone.
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        except Exception:
            # One bad batch must not fail unrelated runs: retry each run's ops alone.
            for ops, future in batch:
                try:
                    self._store.write(ops)
                except Exception as exc:
                    if not future.done():
                        future.set_exception(exc)
                else:
                    if not future.done():
                        future.set_result(None)
            return
        for _, future in batch:
            if not future.done():
                future.set_result(None)
