"""Group commit: the writes of concurrent runs folded into shared transactions, written by a
thread of the store's own, not on the event loops that drive runs.

A driver awaits :meth:`GroupCommitter.commit`; its writes go on a queue, and the writer thread
takes everything queued while it was busy with the previous transaction and writes it as one.
So a lone run pays for one transaction per commit, and a thousand concurrent runs do not pay for
a thousand: the slower the store (a slow disk, a network round trip), the larger the batches,
and no event loop that runs anything else waits on the database.

Two cases write in place, on the awaiting loop, when that loop drives no other run and has
nothing with the writer thread (commits keep their order):

- a loop frontdesk owns for one run (``runtime.run`` drives its run on a private loop of the
  calling thread, which waits for the run anyway), on any store: nothing else runs on it for
  the write to stall, so the write may wait there for another process's lock or for a
  server's answer;
- any other loop, only when the store's writes are local (:attr:`Store.local_writes`, SQLite),
  through :meth:`Store.try_write`, which writes when no other connection holds the lock and
  otherwise hands the commit to the writer thread. Such a loop never waits on a lock or a
  round trip, only for a local file's append.

The run awaits its commit either way; the hop to the writer thread and back would add two
thread wake-ups to each of its steps, which for a sequential run costs more than the write.

On a store whose writes wait on a server, a driver may also hand a commit over without
awaiting it (:meth:`GroupCommitter.submit`), for a step that has no effect outside the store:
its round trip then overlaps the run's next step, and the driver's next awaited commit, written
after it, waits for both.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING

from .._signals import leave_signals_to_main
from ..errors import StoreError, StoreLocked

if TYPE_CHECKING:
    from ._base import Store
    from ._writes import Write

log = logging.getLogger("frontdesk.store")

RETRY_DELAYS = (0.05, 0.25, 1.0)
"""Pauses before each new attempt of a commit that found the store locked past its timeout."""

_Pending = tuple[list["Write"], asyncio.AbstractEventLoop, "asyncio.Future[None]"]


class GroupCommitter:
    """Applies the writes awaited from any event loop, batched, on a writer thread.

    ``await commit(writes)`` returns once ``writes`` are durable (or raises what refused them:
    :class:`~._fence.LeaseLost`, a :class:`~frontdesk.errors.StoreError`, ...). A commit that
    finds the store locked (another connection held its write lock past the busy timeout) is
    tried again after each of ``retry_delays`` before its
    :class:`~frontdesk.errors.StoreLocked` is raised.
    """

    def __init__(self, store: Store, retry_delays: tuple[float, ...] = RETRY_DELAYS) -> None:
        self._store = store
        self._retry_delays = retry_delays
        self._queue: queue.SimpleQueue[_Pending | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._closed = False
        self._private: weakref.WeakSet[asyncio.AbstractEventLoop] = weakref.WeakSet()
        self._drivers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, int] = (
            weakref.WeakKeyDictionary()
        )
        self._queued: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, int] = (
            weakref.WeakKeyDictionary()
        )
        """Commits awaited on each loop that are with the writer thread."""

    def own(self, loop: asyncio.AbstractEventLoop) -> None:
        """Say that ``loop`` runs nothing but the runs frontdesk drives on it."""
        self._private.add(loop)

    def enter(self) -> None:
        """A run starts being driven on the running loop."""
        loop = asyncio.get_running_loop()
        self._drivers[loop] = self._drivers.get(loop, 0) + 1

    def leave(self) -> None:
        """A run stops being driven on the running loop."""
        loop = asyncio.get_running_loop()
        self._drivers[loop] = self._drivers.get(loop, 1) - 1

    def _alone(self, loop: asyncio.AbstractEventLoop) -> bool:
        """Whether a commit awaited on ``loop`` may be written right there (see the module)."""
        # Never ahead of what the loop already handed to the writer: commits keep their order.
        return self._drivers.get(loop, 0) <= 1 and not self._queued.get(loop, 0)

    async def commit(self, writes: list[Write]) -> None:
        """Durably apply ``writes`` (in one transaction with other concurrent commits)."""
        for delay in self._retry_delays:
            try:
                await self._commit_once(writes)
                return
            except StoreLocked as exc:
                log.warning("%s; retrying in %gs", exc, delay)
                await asyncio.sleep(delay)
        await self._commit_once(writes)

    @property
    def pipelines(self) -> bool:
        """Whether a driver gains by not waiting for some commits (:meth:`submit`): the
        store's writes wait on a server, so a commit's round trip can overlap the run's own
        work instead of stalling it."""
        return not self._store.local_writes

    def submit(self, writes: list[Write]) -> asyncio.Future[None]:
        """Hand ``writes`` to the writer thread now, without waiting: the returned future
        settles once they are durable (or with what refused them). Commits awaited later on
        this loop are written after these, in order."""
        if self._thread is None:
            self._start()
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        self._queued[loop] = self._queued.get(loop, 0) + 1

        def done(_: asyncio.Future[None]) -> None:
            self._queued[loop] -= 1

        future.add_done_callback(done)
        self._queue.put((writes, loop, future))
        return future

    async def _commit_once(self, writes: list[Write]) -> None:
        loop = asyncio.get_running_loop()
        if self._alone(loop):
            if loop in self._private:
                self._store.write(writes)
                return
            if self._store.local_writes and self._store.try_write(writes):
                return
        if self._thread is None:
            self._start()
        future: asyncio.Future[None] = loop.create_future()
        self._queued[loop] = self._queued.get(loop, 0) + 1
        try:
            self._queue.put((writes, loop, future))
            await future
        finally:
            self._queued[loop] -= 1

    def _start(self) -> None:
        with self._lock:
            if self._closed:
                raise StoreError("the store's writer was closed; nothing was written")
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._serve, name="frontdesk-writer", daemon=True
                )
                self._thread.start()

    def close(self, timeout: float = 10.0) -> None:
        """Write what is queued, then stop the writer thread."""
        with self._lock:
            self._closed = True
            thread = self._thread
        if thread is not None:
            self._queue.put(None)
            thread.join(timeout)

    # -- the writer thread --------------------------------------------------------------------

    def _serve(self) -> None:
        leave_signals_to_main()
        while True:
            first = self._queue.get()
            batch: list[_Pending] = []
            stop = first is None
            if first is not None:
                batch.append(first)
            while True:  # everything queued meanwhile rides along
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    stop = True
                else:
                    batch.append(more)
            if batch:
                self._write(batch)
            if stop:
                return

    def _write(self, batch: list[_Pending]) -> None:
        try:
            self._store.write([w for writes, _, _ in batch for w in writes])
        except StoreError as exc:
            # The store itself failed (locked, full, unreadable): so would each commit alone.
            _settle_all(batch, exc)
            return
        except Exception as exc:
            if len(batch) == 1:
                _settle_all(batch, exc)
                return
            # One bad commit must not fail unrelated runs: retry each run's writes alone.
            for pending in batch:
                _settle_all([pending], self._write_alone(pending))
            return
        _settle_all(batch, None)

    def _write_alone(self, pending: _Pending) -> BaseException | None:
        try:
            self._store.write(pending[0])
        except Exception as exc:
            return exc
        return None


def _settle_all(batch: list[_Pending], error: BaseException | None) -> None:
    """Resolve every future of ``batch`` on its own loop, one call per loop."""
    by_loop: dict[asyncio.AbstractEventLoop, list[asyncio.Future[None]]] = {}
    for _, loop, future in batch:
        by_loop.setdefault(loop, []).append(future)
    for loop, futures in by_loop.items():
        try:
            loop.call_soon_threadsafe(_resolver(futures, error))
        except RuntimeError:
            pass  # the loop is closed: nobody awaits these any more


def _resolver(
    futures: list[asyncio.Future[None]], error: BaseException | None
) -> Callable[[], None]:
    def resolve() -> None:
        for future in futures:
            if future.done():
                continue
            if error is None:
                future.set_result(None)
            else:
                future.set_exception(error)

    return resolve
