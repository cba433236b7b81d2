"""The embedded engine: drives runs on a background event loop, over any store.

Each process that drives runs holds a lease on each of them and renews it; a run whose lease
expired, or whose owner on this machine has died, is taken over by the next engine that can
find its agent. Approvals, cancellation and retries from other processes arrive through the
store; where the store hears of them (PostgreSQL's ``NOTIFY``), the recovery scan runs at once
rather than at its next poll. An engine that recovers runs also acts on approval requests past their deadline,
however long every process was down: it rejects or escalates them as their tools say.

The store is only ever called off the event loops that drive runs: commits go through the
store's writer thread (:class:`~frontdesk.store.GroupCommitter`), reads and small writes through
``asyncio.to_thread``; a slow disk or a network round trip stalls no other run.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import logging
import threading
import time
import weakref
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

from agents import Agent, RunConfig, Runner

from ..._budget import BudgetMeter, BudgetPlan, BudgetStop, find_cause, model_names
from ..._home import active_home
from ..._scope import driving_for
from ..._signals import leave_signals_to_main, quiet_executor
from ...errors import (
    AgentNotFound,
    FrontdeskError,
    InvalidRunState,
    ModelNotConfigured,
    StoreError,
)
from ...models._select import ModelSelector, RetryPolicy, exports_traces
from ...otel._setup import RunTracing
from ...store import (
    TERMINAL_STATUSES,
    ApprovalRecord,
    GroupCommitter,
    InsertRun,
    LeaseLost,
    RequestCancel,
    RunAlreadyExists,
    RunRow,
    SetNote,
    Store,
    fence,
    run_insert,
)
from .._agents import AgentRegistry
from .._context import load_context
from .._conversation import runner_input, stored_turn
from .._expiry import expire_due
from .._models import run_selector, unavailable_note
from .._retry import retry_run
from .._runstart import spec_row
from .._types import RunSpec, TokenFeed, new_execution_id
from ._leases import Leases
from ._outcomes import (
    Outcome,
    budget_exceeded_ops,
    cancelled_ops,
    completed_ops,
    failed_ops,
    paused_ops,
)
from ._run import DurableRun, RunCancelled, RunHistory, _current
from ._streaming import TokenPublisher
from ._waiting import _await_in_own_loop
from ._wrap import EventHooks, GraphCache

log = logging.getLogger("frontdesk.engine")
T = TypeVar("T")


class LocalEngine:
    """Drives runs in this process; any number of processes may share one store."""

    def __init__(
        self,
        *,
        home: Path,
        store: Store,
        registry: AgentRegistry,
        selector: ModelSelector,
        policy: RetryPolicy,
        lease_ttl: float = 30.0,
        poll_interval: float = 1.0,
        recover: bool = True,
        max_turns: int = 10,
        compact_every: int = 50,
        stream_tokens: bool = False,
        tracing: RunTracing | None = None,
        scope: Any = None,
    ) -> None:
        self.home = home
        self.scope = scope
        """What tools reach through :func:`frontdesk.current_runtime` (the runtime)."""
        self.store = store
        self.registry = registry
        self.selector = selector
        self.policy = policy
        self.lease_ttl = lease_ttl
        self.poll_interval = poll_interval
        self.recover = recover
        self.max_turns = max_turns
        self.compact_every = compact_every
        self.stream_tokens = stream_tokens
        self.tracing = (tracing if tracing is not None else RunTracing()).attach(store)
        """Where the OpenTelemetry spans of the runs driven here go (see :mod:`frontdesk.otel`)."""
        """Whether every run driven here streams its model calls (else only those given a feed)."""
        self.feeds: dict[str, TokenFeed] = {}
        """The token feeds of the runs driven here that stream their model calls."""
        self.leases = Leases(store, lease_ttl)
        self.owner = self.leases.owner
        self._tasks: dict[str, asyncio.Task[RunRow]] = {}
        self._starting: set[str] = set()
        self._runs: dict[str, DurableRun] = {}
        self._noted: dict[str, str] = {}
        self._abandoned: dict[str, int] = {}
        """Leases (run id -> token) whose drivers stopped but could not hand them back yet."""
        self._loop = asyncio.new_event_loop()
        self._committer = GroupCommitter(store)
        self._graphs: dict[str | None, GraphCache] = {}
        """Graphs by the model override runs recorded (see :func:`run_selector`)."""
        self._callers = threading.local()
        """Each calling thread's own event loop, for the runs :meth:`run_here` drives."""
        self._caller_loops: list[weakref.finalize] = []
        self._caller_lock = threading.Lock()
        self._thread = threading.Thread(target=self._serve, name="frontdesk-engine", daemon=True)
        self._started = threading.Event()
        self._closing = False
        self._thread.start()
        self._started.wait()

    # -- loop plumbing ---------------------------------------------------------------------

    def committer(self) -> GroupCommitter:
        """The group committer every run driven here commits through, on whichever loop."""
        return self._committer

    def _serve(self) -> None:
        leave_signals_to_main()
        asyncio.set_event_loop(self._loop)
        self._loop.call_soon(self._started.set)
        self._background = [
            self._loop.create_task(self._heartbeat()),
        ]
        if self.recover:
            self._background.append(self._loop.create_task(self._recovery()))
        self._loop.run_forever()

    def submit(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        """Run ``coro`` on the engine loop."""
        return asyncio.run_coroutine_threadsafe(coro, self._loop)

    def call(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        """Run ``coro`` on the engine loop and wait for its result."""
        return self.submit(coro).result(timeout)

    def run_here(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` to completion on the calling thread, on an event loop of its own.

        The runs it starts are driven right here, as :meth:`start` drives them on whichever
        loop calls it, without a hop to the engine's thread and back; the engine's heartbeat
        renews their leases and a cancel reaches them as it reaches any run of this process.
        If the caller is interrupted (``KeyboardInterrupt``), the runs driven here are handed
        back and resumed from their journal. From a thread whose event loop is running (async
        code calling a blocking API), ``coro`` runs on the engine's loop instead.
        """
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            pass
        else:
            return self.call(coro)
        loop = self._caller_loop()
        task = loop.create_task(coro)
        try:
            return loop.run_until_complete(task)
        except BaseException:
            # Nothing may stay parked on a loop that no longer runs: a driver left there would
            # keep its run's lease renewed for as long as this process lives.
            stranded = [task, *(t for t in self._tasks.values() if t.get_loop() is loop)]
            for pending in stranded:
                pending.cancel()
            loop.run_until_complete(asyncio.gather(*stranded, return_exceptions=True))
            raise

    def _caller_loop(self) -> asyncio.AbstractEventLoop:
        """The calling thread's loop for :meth:`run_here`; closed when the thread ends."""
        loop: asyncio.AbstractEventLoop | None = getattr(self._callers, "loop", None)
        if loop is None or loop.is_closed():
            loop = asyncio.new_event_loop()
            # Its executor's threads would be started from this (maybe the main) thread.
            loop.set_default_executor(quiet_executor())
            self._committer.own(loop)  # it drives only what run_here starts on it
            self._callers.loop = loop
            # The thread's locals go when the thread ends, and the loop is closed with them.
            self._callers.token = token = _LoopToken()
            with self._caller_lock:
                self._caller_loops = [f for f in self._caller_loops if f.alive]
                self._caller_loops.append(weakref.finalize(token, _close_idle, loop))
        return loop

    def notify(self) -> None:
        """Wake every thread waiting for news about runs."""
        self.store.changes.notify()

    def wait_until(
        self, check: Callable[[], T | None], timeout: float | None, poll: float = 0.2
    ) -> T | None:
        """Block until ``check()`` returns non-None, re-checking on each store change or every
        ``poll`` seconds; None after ``timeout``."""
        return self.store.changes.wait_for(check, timeout, poll)

    def driving(self, execution_id: str) -> bool:
        """Whether a driver of this engine is driving the run right now."""
        task = self._tasks.get(execution_id)
        return (task is not None and not task.done()) or execution_id in self._starting

    def token_feed(self, execution_id: str) -> TokenFeed | None:
        """The live feed of a run driven here with streamed model calls, if any."""
        return self.feeds.get(execution_id)

    def close(self, timeout: float = 30.0) -> None:
        """Stop the engine. Runs still in flight keep their journal and are resumed later."""
        if self._closing:
            return
        self._closing = True

        async def shutdown() -> None:
            own = [t for t in self._tasks.values() if t.get_loop() is self._loop]
            pending = [t for t in own if not t.done()]
            if pending:
                await asyncio.wait(pending, timeout=timeout)
            for task in [*own, *self._background]:
                task.cancel()
            await asyncio.gather(*own, *self._background, return_exceptions=True)
            # Whatever was interrupted goes back to the pool for another process.
            try:
                await asyncio.to_thread(self.leases.release_all)
            except StoreError as exc:
                log.warning("could not hand back this process's leases; they expire: %s", exc)
            # A cancelled task does not stop the thread it waited on (a lease renewal, a
            # read): the store is closed next, so every such thread must be done first.
            await asyncio.get_running_loop().shutdown_default_executor()

        try:
            self.call(shutdown(), timeout + 10)
        finally:
            self._committer.close()
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
            self._loop.close()
            with self._caller_lock:
                loops, self._caller_loops = self._caller_loops, []
            for close_loop in loops:
                close_loop()
            self.notify()

    # -- starting and driving runs ------------------------------------------------------------

    async def start(self, spec: RunSpec, *, acknowledge: bool = True) -> tuple[str, bool]:
        """Store a new run and start driving it. Returns its execution id and whether this
        call created it (False: a run with the spec's ``execution_id`` already existed).

        With ``acknowledge`` the run is durable before this returns (a handle may be given
        out). Without it, as for a caller that waits for the result anyway, the run's row is
        written with its first step, saving a transaction.
        """
        execution_id = spec.execution_id or new_execution_id()
        row = spec_row(
            spec,
            execution_id,
            self.selector,
            lease_owner=self.owner,
            lease_expires=self.leases.expiry(),
        )
        insert = run_insert(row)
        if acknowledge or spec.execution_id is not None:
            # A caller-chosen id must be claimed before anything runs: if the run already
            # exists, this start is a duplicate and the existing run is the answer.
            # Until its task exists, resume() must not mistake the run for an orphan.
            self._starting.add(execution_id)
            try:
                try:
                    await self.committer().commit([insert])
                except RunAlreadyExists:
                    return execution_id, False
                self.notify()
                if spec.feed is not None:
                    self.feeds[execution_id] = spec.feed
                self._spawn(execution_id, spec.agent, spec.context, row=row)
            finally:
                # Only now: the task is registered, so there is no gap for resume() to fall in.
                self._starting.discard(execution_id)
        else:
            if spec.feed is not None:
                self.feeds[execution_id] = spec.feed
            self._spawn(execution_id, spec.agent, spec.context, row=row, insert=insert)
        return execution_id, True

    async def wait_settled(self, execution_id: str) -> RunRow:
        """Wait until this process stops driving the run (done, failed, paused...)."""
        task = self._tasks.get(execution_id)
        if task is not None:
            if task.get_loop() is asyncio.get_running_loop():
                try:
                    # The driver returns the row it left: no need to read it back.
                    return await asyncio.shield(task)
                except asyncio.CancelledError:
                    current = asyncio.current_task()
                    if current is not None and current.cancelling():
                        raise  # the waiter is cancelled, not (only) the driver
            else:
                await _await_in_own_loop(task)
        return await asyncio.to_thread(self.store.require_run, execution_id)

    def _spawn(
        self,
        execution_id: str,
        agent: Agent[Any] | None,
        context: Any,
        *,
        row: RunRow | None = None,
        insert: InsertRun | None = None,
        epoch: int = 1,
    ) -> None:
        loop = asyncio.get_running_loop()
        task = loop.create_task(self._drive(execution_id, agent, context, row, insert, epoch))
        self._tasks[execution_id] = task
        task.add_done_callback(lambda done: self._forget(execution_id, done))
        # The caller of run() gets a driver's error; a run resumed in the background has none.
        task.add_done_callback(_retrieve)

    def _forget(self, execution_id: str, task: asyncio.Task[RunRow]) -> None:
        """Drop a finished driver (unless a newer one drives the run already)."""
        if self._tasks.get(execution_id) is task:
            del self._tasks[execution_id]

    async def resume(self, execution_id: str) -> bool:
        """Claim and drive a runnable run if this process can. Returns whether it does.

        A driver here that is still finishing the run's previous drive (the run just paused
        for approval or failed, and is now approved or retried) is let finish first.
        """
        if execution_id in self._starting:
            return True
        task = self._tasks.get(execution_id)
        if task is not None and not task.done():
            if task.get_loop() is asyncio.get_running_loop():
                await asyncio.wait([task])
            else:
                await _await_in_own_loop(task)
        current = self._tasks.get(execution_id)
        if current is not None and current is not task:
            return True  # another resume spawned a driver meanwhile
        row = await asyncio.to_thread(self.store.get_run, execution_id)
        if row is None or row.status != "running":
            return False
        try:
            agent = self.registry.resolve(row.agent_ref)
        except AgentNotFound as exc:
            note = f"pending: waiting for a process that has its agent ({exc})"
            await asyncio.to_thread(self._note_pending, row, note)
            return False
        try:
            self._graph_cache(row.model_override).get(agent)
        except ModelNotConfigured as exc:
            await asyncio.to_thread(
                self._note_pending, row, unavailable_note(row.model_override, exc)
            )
            return False
        except Exception:
            pass  # not about the model: driving the run fails it with this error
        if self.driving(execution_id):
            return True  # another resume got here while this one read the store
        self._starting.add(execution_id)
        try:
            epoch = await asyncio.to_thread(self.leases.claim, row)
            if epoch is None:
                return False
            self._abandoned.pop(execution_id, None)
            if row.note is not None and row.note.startswith("pending:"):
                self._noted.pop(execution_id, None)
                await asyncio.to_thread(self.store.write, [SetNote(execution_id, None)])
            self._spawn(execution_id, agent, None, epoch=epoch)
        finally:
            self._starting.discard(execution_id)
        return True

    async def _drive(
        self,
        execution_id: str,
        agent: Agent[Any] | None,
        context: Any,
        row: RunRow | None,
        insert: InsertRun | None,
        epoch: int,
    ) -> RunRow:
        """Drive the run until it settles and return its row as the driver left it; a driver
        that lost its lease or its store stops."""
        try:
            settled = await self._drive_run(execution_id, agent, context, row, insert, epoch)
            return self.tracing.settled(settled)
        except LeaseLost as exc:
            # Another driver holds the run now, or it ended: nothing of ours was written.
            log.info("run %s: %s", execution_id, exc)
            return await asyncio.to_thread(self.store.require_run, execution_id)
        except StoreError as exc:
            # Retried already: leave the run to whichever driver finds the store working.
            log.warning("run %s: its driver stops, the store failed: %s", execution_id, exc)
            self._give_up(execution_id, epoch)
            raise
        finally:
            self.feeds.pop(execution_id, None)  # its live streams keep what they hold
            self.tracing.discard(execution_id)

    async def _drive_run(
        self,
        execution_id: str,
        agent: Agent[Any] | None,
        context: Any,
        new_row: RunRow | None,
        insert: InsertRun | None,
        epoch: int,
    ) -> RunRow:
        # A new run comes with its row (``insert`` stores it); a resumed one is read.
        fresh = new_row is not None
        history: RunHistory | None = None
        if new_row is not None:
            row = new_row
        else:
            row = await asyncio.to_thread(self.store.require_run, execution_id)
            history = await asyncio.to_thread(RunHistory.load, self.store, execution_id)
        if context is None:
            try:
                context = load_context(row.context_type, row.context_json)
            except Exception as exc:
                return await self._fail(row, None, exc, epoch)
        committer = self.committer()
        run = DurableRun(
            execution_id=execution_id,
            history=history,
            committer=committer,
            context=context,
            context_type=row.context_type,
            context_json=row.context_json,
            notify=self.notify,
            owner=self.owner,
            epoch=epoch,
            insert=insert,
        )
        run.cancelled = bool(row.cancel_requested)
        try:
            root = agent if agent is not None else self.registry.resolve(row.agent_ref)
            graphs = self._graph_cache(row.model_override)
            graph = graphs.get(root)
            run.models = model_names(root, run_selector(row.model_override, self.selector))
            if row.budget_json is not None:
                run.meter = BudgetMeter(BudgetPlan.from_json(row.budget_json))
        except Exception as exc:
            return await self._fail(row, run, exc, epoch)
        self._runs[execution_id] = run
        run.observer = self.tracing.observe(row, run, graph, fresh)
        feed = self.feeds.get(execution_id)
        if feed is None and self.stream_tokens:
            feed = self.feeds[execution_id] = TokenFeed()
        if feed is not None:
            run.tokens = TokenPublisher(feed, self.store, execution_id, self.notify)
        outcome: Outcome | None = None
        turn = stored_turn(row)
        try:
            given = (
                await asyncio.to_thread(runner_input, self.store, row)
                if turn is not None
                else json.loads(row.input)
            )
        except Exception as exc:
            self._runs.pop(execution_id, None)
            return await self._fail(row, run, exc, epoch)
        committer.enter()
        token = _current.set(run)
        try:
            with active_home(self.home), driving_for(self.scope):
                result = await Runner.run(
                    graph,
                    given,
                    context=run.context,
                    hooks=EventHooks(),
                    max_turns=self.max_turns,
                    run_config=RunConfig(
                        # Traces go to OpenAI: only when there is an LLM to trace and it is
                        # OpenAI's (or the user asked for them).
                        tracing_disabled=graphs.offline or not exports_traces(),
                        workflow_name=f"frontdesk:{row.agent_name}",
                        group_id=row.conversation_id,
                    ),
                )
        except (RunCancelled, asyncio.CancelledError) as exc:
            if run.cancelled:
                outcome = cancelled_ops(run, row.conversation_id)
                await self._settle(run, outcome)
            elif isinstance(exc, asyncio.CancelledError):
                # Not a cancellation of the run: the engine or the caller's loop is going
                # away. Hand the run back so another driver resumes it from the journal.
                self._give_up(execution_id, epoch)
                raise
        except (KeyboardInterrupt, SystemExit):
            # The caller driving the run here is being interrupted: hand the run back.
            self._give_up(execution_id, epoch)
            raise
        except Exception as exc:
            if run.halted is not None:
                # Our own write was refused or failed (the SDK may have wrapped the error).
                raise run.halted from exc
            stop = find_cause(exc, BudgetStop)
            if run.cancelled and _caused_by(exc, RunCancelled):
                outcome = cancelled_ops(run, row.conversation_id)
                await self._settle(run, outcome)
            elif stop is not None:
                # Stopped before a model call its budget forbids: the journal stays as it is.
                outcome = budget_exceeded_ops(run, stop, row.attempt, row.conversation_id)
                await self._settle(run, outcome)
            else:
                return await self._fail(row, run, exc, epoch)
        else:
            if result.interruptions:
                outcome = paused_ops(run, result, self.store.clock())
            elif turn is not None:
                # A turn reads its conversation to record itself: off the loop.
                outcome = await asyncio.to_thread(
                    completed_ops, self.store, run, result, row, self.compact_every
                )
            else:
                outcome = completed_ops(self.store, run, result, row, self.compact_every)
            await self._settle(run, outcome)
        finally:
            _current.reset(token)
            self._runs.pop(execution_id, None)
            committer.leave()
        if outcome is None:
            return await asyncio.to_thread(self.store.require_run, execution_id)
        # Committed behind the fence: the stored row is this one (save a cancel request that
        # arrived meanwhile, which no longer matters).
        return outcome.applied_to(row)

    # -- outcomes ---------------------------------------------------------------------------

    async def _settle(self, run: DurableRun, outcome: Outcome) -> None:
        """Commit the run's outcome. Its live feed is unregistered first: a stream that looks
        for it once the outcome is visible reads the persisted events alone."""
        self.feeds.pop(run.execution_id, None)
        await run.commit(outcome.ops)

    async def _fail(
        self, row: RunRow, run: DurableRun | None, exc: BaseException, epoch: int
    ) -> RunRow:
        """Record that the run failed; returns its row as now stored."""
        execution_id = row.execution_id
        keys = (
            run.event_keys
            if run is not None
            else await asyncio.to_thread(self.store.event_keys, execution_id)
        )
        outcome = failed_ops(keys, execution_id, run, exc, row.attempt, row.conversation_id)
        if run is not None:
            await self._settle(run, outcome)
        else:
            fenced = [fence(execution_id, self.owner, epoch)]
            await self.committer().commit([*fenced, *(op for op in outcome.ops if op is not None)])
            self.notify()
        return outcome.applied_to(row)

    def _give_up(self, execution_id: str, epoch: int) -> None:
        """Hand back the lease of a run this driver stops driving, so another resumes it.

        If the store refuses even that, the lease is no longer renewed (it expires) and the
        heartbeat keeps trying to hand it back.
        """
        try:
            self.leases.release(execution_id, epoch)
        except StoreError as exc:
            log.warning("run %s: could not hand back its lease yet: %s", execution_id, exc)
            self._abandoned[execution_id] = epoch

    # -- cancellation and retry ---------------------------------------------------------------

    async def cancel(self, execution_id: str) -> RunRow:
        """Cancel a run: at once if idle or driven here, else at its owner's next heartbeat."""
        row = await asyncio.to_thread(self.store.require_run, execution_id)
        if row.status in TERMINAL_STATUSES:
            raise InvalidRunState(f"run {execution_id} is already {row.status}; nothing changed")
        run = self._runs.get(execution_id)
        task = self._tasks.get(execution_id)
        if run is not None and task is not None:
            run.cancelled = True
            if task.get_loop() is asyncio.get_running_loop():
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
            else:
                task.get_loop().call_soon_threadsafe(task.cancel)
                await _await_in_own_loop(task)
            return await asyncio.to_thread(self.store.require_run, execution_id)
        if self.leases.held_elsewhere(row):
            await asyncio.to_thread(self.store.write, [RequestCancel(execution_id)])
            return await asyncio.to_thread(self.store.require_run, execution_id)
        await asyncio.to_thread(self.store.cancel_run, execution_id, time.time())
        self.notify()
        settled = await asyncio.to_thread(self.store.require_run, execution_id)
        return self.tracing.settled(settled)

    def retry(self, execution_id: str, budget_json: str | None = None) -> RunRow:
        """Make a failed (or ``budget_exceeded``) run runnable again; completed steps are kept
        and replayed. ``budget_json`` replaces the run's budget, in the same write."""
        return retry_run(self.store, execution_id, budget_json)

    # -- leases and recovery --------------------------------------------------------------------

    def _graph_cache(self, recorded: str | None) -> GraphCache:
        """Graphs for a run on the model override it recorded, whatever this process's own."""
        cache = self._graphs.get(recorded)
        if cache is None:
            selector = run_selector(recorded, self.selector)
            cache = self._graphs[recorded] = GraphCache(selector, self.policy)
        return cache

    def _note_pending(self, row: RunRow, note: str) -> None:
        """Say on the run why this process leaves it for another."""
        if self._noted.get(row.execution_id) == note or row.note == note:
            return
        self._noted[row.execution_id] = note
        self.store.write([SetNote(row.execution_id, note)])
        log.warning("run %s cannot resume here: %s", row.execution_id, note)

    async def _heartbeat(self) -> None:
        while True:
            await asyncio.sleep(max(0.05, self.lease_ttl / 3))
            try:
                # Only the leases of live drivers: a run whose driver died becomes resumable.
                driving = list(self._tasks)
                for execution_id in await asyncio.to_thread(self.leases.renew, driving):
                    if execution_id in self._tasks:
                        self._loop.create_task(self.cancel(execution_id))
            except FrontdeskError as exc:
                log.warning("lease heartbeat failed: %s", exc)
            for execution_id, epoch in list(self._abandoned.items()):
                if execution_id in self._tasks:
                    continue
                try:
                    await asyncio.to_thread(self.leases.release, execution_id, epoch)
                except FrontdeskError:
                    break  # the store still fails: try again at the next beat
                self._abandoned.pop(execution_id, None)

    async def _recovery(self) -> None:
        """Scan for runs to take over every ``poll_interval`` seconds, and at once whenever
        another process announces a run left without a driver (see
        :class:`~frontdesk.store.Runnable`)."""
        wake = asyncio.Event()
        loop = asyncio.get_running_loop()

        def announced() -> None:
            try:
                loop.call_soon_threadsafe(wake.set)
            except RuntimeError:  # the loop is closed: the engine has stopped
                pass

        unsubscribe = self.store.runnable.subscribe(announced)
        try:
            while True:
                wake.clear()  # an announcement during the scan makes the next one come at once
                try:
                    await self.recover_now()
                except FrontdeskError as exc:
                    log.warning("recovery scan failed: %s", exc)
                try:
                    await asyncio.wait_for(wake.wait(), self.poll_interval)
                except TimeoutError:
                    pass
        finally:
            unsubscribe()

    def expire_approvals(self) -> list[ApprovalRecord]:
        """Reject or escalate every approval request past its deadline; returns those this
        call decided. Whichever process gets to a request first decides it, once."""
        # Deadlines pass when the shared clock says so.
        decided = expire_due(self.store, self.store.clock())
        if decided:
            self.notify()
        return decided

    async def recover_now(self) -> list[str]:
        """Act on approvals past their deadline (a rejected call makes its run runnable),
        then take over every runnable run this process can drive. Returns their ids."""
        await asyncio.to_thread(self.expire_approvals)
        taken = []
        for row in await asyncio.to_thread(self.leases.orphaned):
            if row.execution_id in self._tasks or self._closing:
                continue
            if await self.resume(row.execution_id):
                taken.append(row.execution_id)
        return taken


def _caused_by(exc: BaseException, kind: type[BaseException]) -> bool:
    """Whether ``exc`` is or wraps (as the SDK wraps a tool's error) an error of ``kind``."""
    seen: BaseException | None = exc
    for _ in range(20):  # a chain is short; never follow a cycle forever
        if seen is None:
            return False
        if isinstance(seen, kind):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


class _LoopToken:
    """Lives in a calling thread's locals: when the thread ends, its loop is closed."""


def _close_idle(loop: asyncio.AbstractEventLoop) -> None:
    if not loop.is_running() and not loop.is_closed():
        loop.close()


def _retrieve(task: asyncio.Task[Any]) -> None:
    if not task.cancelled():
        task.exception()
