"""Group commit: the writes of concurrent runs folded into shared transactions, written by a
thread of the store's own, not on the event loops that drive runs.

A driver awaits :meth:`GroupCommitter.commit`; its writes go on a queue, and the writer thread
takes everything queued while it was busy with the previous transaction and writes it as one.
So a lone run pays for one transaction per commit, and a thousand concurrent runs do not pay for
a thousand: the slower the store (a slow disk, a network round trip), the larger the batches,
and no event loop that runs anything else waits on the database.

A loop that drives only one run (and has nothing with the writer thread: commits keep their
order) commits without the thread:

- a loop frontdesk owns for one run (``runtime.run`` drives its run on a private loop of the
  calling thread, which waits for the run anyway), on any store, writes in place: nothing else
  runs on it for the write to stall, so the write may wait there for another process's lock or
  for a server's answer;
- on a store whose writes are local (:attr:`Store.local_writes`, SQLite), any other such loop
  writes in place through :meth:`Store.try_write`, which writes when no other connection holds
  the lock and otherwise hands the commit to the writer thread: the loop never waits on a lock,
  only for a local file's append;
- on a store whose writes go to a server (PostgreSQL), commits go through the loop's lane:
  each is sent whole (:meth:`Store.send`) from the loop itself and its answer read when the
  loop's reader sees it arrive, one after the other, so the loop never blocks and no thread
  wakes. A commit the store cannot send at once goes to the writer thread, the lane waiting
  for it before sending the next.

The hop to the writer thread and back would add two thread wake-ups to each of a run's steps,
which for a sequential run costs more than the write.

A driver may also hand a commit over without awaiting it (:meth:`GroupCommitter.submit`), on a
store whose writes go to a server, for a step that has no effect outside the store: its round
trip then overlaps the run's next step, and the driver's next awaited commit, written after it,
waits for both.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import weakref
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING

from .._signals import leave_signals_to_main
from ..errors import StoreError, StoreLocked

if TYPE_CHECKING:
    from ._base import SentWrite, Store
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
        self._lanes: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Lane] = (
            weakref.WeakKeyDictionary()
        )
        """Each loop's commits sent to the store from the loop itself, in order."""

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
        # Never ahead of what the loop already handed over: commits keep their order.
        return (
            self._drivers.get(loop, 0) <= 1
            and not self._queued.get(loop, 0)
            and not self._lane_busy(loop)
        )

    def _lane_busy(self, loop: asyncio.AbstractEventLoop) -> bool:
        lane = self._lanes.get(loop)
        return lane is not None and bool(lane.pending)

    def _laned(self, loop: asyncio.AbstractEventLoop) -> bool:
        """Whether a commit on ``loop`` goes through its lane: the store's writes go to a
        server and the loop drives only one run. (A run's driver sends a commit only once its
        earlier ones are durable, so a run's commits keep their order whichever way each
        goes; a loop driving many runs is better served by the writer thread's batches.)"""
        if self._store.local_writes:
            return False
        lane = self._lanes.get(loop)
        if lane is not None and not lane.readers:
            return False
        return self._drivers.get(loop, 0) <= 1

    @property
    def pipelines(self) -> bool:
        """Whether a driver gains by not waiting for some commits (:meth:`submit`): the
        store's writes wait on a server, so a commit's round trip can overlap the run's own
        work instead of stalling it."""
        return not self._store.local_writes

    def submit(self, writes: list[Write]) -> asyncio.Future[None]:
        """Hand ``writes`` over now, without waiting: the returned future settles once they
        are durable (or with what refused them). Commits awaited later on this loop are
        written after these, in order."""
        loop = asyncio.get_running_loop()
        if self._laned(loop):
            return self._lane(loop).put(writes)
        return self._to_thread(loop, writes)

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

    async def _commit_once(self, writes: list[Write]) -> None:
        loop = asyncio.get_running_loop()
        if self._alone(loop):
            if loop in self._private:
                self._store.write(writes)
                return
            if self._store.local_writes and self._store.try_write(writes):
                return
        if self._laned(loop):
            await self._lane(loop).put(writes)
            return
        await self._to_thread(loop, writes)

    def _to_thread(
        self, loop: asyncio.AbstractEventLoop, writes: list[Write]
    ) -> asyncio.Future[None]:
        """Queue ``writes`` for the writer thread; the future settles on ``loop``."""
        if self._thread is None:
            self._start()
        future: asyncio.Future[None] = loop.create_future()
        self._queued[loop] = self._queued.get(loop, 0) + 1

        def done(_: asyncio.Future[None]) -> None:
            self._queued[loop] -= 1

        future.add_done_callback(done)
        self._queue.put((writes, loop, future))
        return future

    def _lane(self, loop: asyncio.AbstractEventLoop) -> _Lane:
        lane = self._lanes.get(loop)
        if lane is None:
            lane = self._lanes[loop] = _Lane(self._store, self._to_thread, loop)
        return lane

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
        """Write what is queued, then stop the writer thread (a commit still in flight on a
        loop's lane is abandoned: nobody is left to read its answer)."""
        for lane in list(self._lanes.values()):
            lane.abandon()
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


class _Lane:
    """One loop's commits sent to the store from the loop itself, one at a time, in order.

    Each is sent whole (:meth:`Store.send`) and its answer read when the loop's reader sees it
    arrive, so the loop never blocks and no thread is involved; a commit the store cannot send
    right now goes to the writer thread, the lane waiting for it before the next one.
    """

    def __init__(
        self,
        store: Store,
        to_thread: Callable[[asyncio.AbstractEventLoop, list[Write]], asyncio.Future[None]],
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        self._store = store
        self._to_thread = to_thread
        self._loop = loop
        self.pending: deque[tuple[list[Write], asyncio.Future[None]]] = deque()
        """Commits not answered yet, the first one in flight."""
        self._sent: SentWrite | None = None
        self._timer: asyncio.TimerHandle | None = None
        self.readers = True
        """False once the loop turned out unable to watch a socket: its commits then go to
        the writer thread."""

    def put(self, writes: list[Write]) -> asyncio.Future[None]:
        """Queue ``writes`` behind the lane's other commits; settles once they are durable."""
        future: asyncio.Future[None] = self._loop.create_future()
        self.pending.append((writes, future))
        if len(self.pending) == 1:
            self._next()
        return future

    def _next(self) -> None:
        """Send the first pending commit."""
        writes, future = self.pending[0]
        try:
            sent = self._store.send(writes)
        except Exception as exc:
            self._settle(future, exc)
            return
        if sent is None:
            self._to_thread(self._loop, writes).add_done_callback(
                lambda done: self._settle(future, _error_of(done))
            )
            return
        try:
            self._loop.add_reader(sent.fileno(), self._readable)
        except NotImplementedError:  # a loop without readers (Windows' proactor)
            self.readers = False
            self._settle(future, _finished(sent))
            return
        self._sent = sent
        self._timer = self._loop.call_later(sent.timeout, self._timed_out)

    def _readable(self) -> None:
        sent = self._sent
        if sent is None or not sent.ready():
            return
        self._stop_waiting(sent)
        self._settle(self.pending[0][1], _finished(sent))

    def abandon(self) -> None:
        """Give up on the commit in flight (its loop is going away): its connection closes."""
        sent = self._sent
        if sent is not None:
            self._sent = None
            sent.abandon()

    def _timed_out(self) -> None:
        sent = self._sent
        if sent is None:
            return
        self._stop_waiting(sent)
        self._settle(self.pending[0][1], sent.abandon())

    def _stop_waiting(self, sent: SentWrite) -> None:
        self._loop.remove_reader(sent.fileno())
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._sent = None

    def _settle(self, future: asyncio.Future[None], error: BaseException | None) -> None:
        """Settle the first pending commit, then send the next."""
        self.pending.popleft()
        if not future.done():
            if error is None:
                future.set_result(None)
            else:
                future.set_exception(error)
        if self.pending and self._sent is None:
            self._next()


def _finished(sent: SentWrite) -> BaseException | None:
    """Read a sent write's answer; what refused it, if anything."""
    try:
        sent.finish()
    except Exception as exc:
        return exc
    return None


def _error_of(future: asyncio.Future[None]) -> BaseException | None:
    return None if future.cancelled() else future.exception()
