"""The Temporal engine: ``AgentRuntime(engine="temporal")``.

:class:`TemporalEngine` implements the runtime's :class:`~frontdesk.engine._base.Engine` seam
on a Temporal server. Starting a run stores it, as on the embedded engine, and starts one
:class:`~._run_workflow.RunWorkflow` whose id is the run's execution id; the workflow reports
what the run does to the same store through its activities, so history, events, approvals and
streams read the same whichever engine drove a run. An approval's decision and a retry reach
the workflow as its ``resume`` update (:meth:`TemporalEngine.resume`, which the runtime calls
after recording them); a cancel records the outcome and cancels the workflow.

Unless built with ``worker=False`` (a client of a worker fleet), the engine runs a worker in
this process for the agents the runtime knows, on the engine's own event loop and thread.
A server that does not answer is :class:`~._client.TemporalUnreachable` within the connect
timeout, and nothing is left running.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

from agents import set_trace_processors

from ..._budget import model_names
from ...errors import FrontdeskError, InvalidRunState
from ...events import encode_payload
from ...models._select import ModelSelector, exports_traces
from ...store import (
    SETTLED_STATUSES,
    TERMINAL_STATUSES,
    ApprovalRecord,
    RunAlreadyExists,
    RunRow,
    SettleRun,
    Store,
    event_insert,
    run_insert,
)
from .._agents import AgentRegistry
from .._conversation import release_ops, runner_input, stored_turn
from .._expiry import expire_due
from .._factory import TemporalSettings
from .._models import run_selector
from .._retry import retry_run
from .._runstart import spec_row
from .._types import RunSpec, TokenFeed, new_execution_id
from ._activities import WorkerAgents
from ._client import CONNECT_TIMEOUT, check_workflow_id, connect
from ._extra import missing_extra
from ._models import SelectedModelProvider
from ._plugin import model_params
from ._run_activities import (
    TEMPORAL_LEASE_EXPIRES,
    TEMPORAL_OWNER,
    RunActivities,
    RunModelProvider,
)
from ._run_data import Decision, ResumeInput, RunInput
from ._run_model import RunModelActivity
from ._run_registry import attach, detach, pin, pinned, unpin
from ._run_workflow import RunWorkflow
from ._wakeups import Wakeups

try:
    from temporalio.client import Client, WorkflowUpdateFailedError
    from temporalio.openai_agents import OpenAIAgentsPlugin
    from temporalio.service import RPCError, RPCStatusCode
    from temporalio.worker import UnsandboxedWorkflowRunner, Worker
except ImportError as _exc:  # pragma: no cover - the temporal extra is missing
    raise missing_extra(_exc) from _exc

log = logging.getLogger("frontdesk.engine.temporal")
T = TypeVar("T")
SETTLE_POLL = 0.1
"""How often, at most, a waiter re-reads a run no worker of this process reported on."""
LOCAL_SETTLE_POLL = 1.0
"""How often a waiter re-reads a run this process's worker reports on (it is woken anyway)."""


class TemporalEngine:
    """Drives runs as Temporal workflows; records them in the runtime's store."""

    def __init__(
        self,
        *,
        home: Path,
        store: Store,
        registry: AgentRegistry,
        settings: TemporalSettings,
        selector: ModelSelector,
        max_turns: int = 10,
        poll_interval: float = 1.0,
        recover: bool = True,
        scope: Any = None,
        connect_timeout: float = CONNECT_TIMEOUT,
    ) -> None:
        self.home = home
        self.store = store
        """The store the runs are recorded in."""
        self.registry = registry
        self.settings = settings
        """Where the runs go: server, namespace, task queue, and whether a worker runs here."""
        self.selector = selector
        self.max_turns = max_turns
        self.poll_interval = poll_interval
        self.scope = scope
        self._closing = False
        self._driven: set[str] = set()
        self._wakeups = Wakeups()
        self._worker: Worker | None = None
        self._worker_task: asyncio.Task[None] | None = None
        self._expiry: concurrent.futures.Future[None] | None = None
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="frontdesk-temporal", daemon=True
        )
        self._thread.start()
        try:
            self.client: Client = self.call(self._connect(connect_timeout), connect_timeout + 30)
            if settings.worker:
                self.call(self._start_worker(), 60)
            if recover:
                self._expiry = self.submit(self._expire_forever())
        except BaseException:
            self._stop_loop()
            raise

    # -- the client and the worker ----------------------------------------------------------------

    def _model_provider(self) -> RunModelProvider:
        """The model of each model call: the plugin's activity's and ``frontdesk_run_model``'s."""
        fallback = SelectedModelProvider(self.selector, WorkerAgents([]))
        return RunModelProvider(self.registry, self.selector, fallback)

    def _plugin(self) -> OpenAIAgentsPlugin:
        return OpenAIAgentsPlugin(
            model_params=model_params(), model_provider=self._model_provider()
        )

    async def _connect(self, seconds: float) -> Client:
        return await connect(
            self.settings.address,
            self.settings.namespace,
            plugins=[self._plugin()],
            connect_timeout=seconds,
        )

    async def _start_worker(self) -> None:
        if not exports_traces():
            set_trace_processors([])
        activities = RunActivities(
            store=self.store,
            registry=self.registry,
            home=self.home,
            notify=self.notify,
            scope=self.scope,
        )
        # No sandbox: the user's agents, tools and callbacks live in the user's modules, which
        # a sandbox would have to pass through (and then does not restrict), so it would only
        # guard the run workflow's own code, which replays through the Replayer in the tests,
        # at the cost of about a quarter of a short run's time.
        models = RunModelActivity(activities, self._model_provider())
        self._worker = Worker(
            self.client,
            task_queue=self.settings.task_queue,
            workflows=[RunWorkflow],
            activities=[*activities.all(), models.call],
            workflow_runner=UnsandboxedWorkflowRunner(),
        )
        attach(self.settings.task_queue, self.registry)
        self._worker_task = asyncio.ensure_future(self._worker.run())

    def _stop_loop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        if not self._loop.is_running():
            self._loop.close()

    # -- loops -------------------------------------------------------------------------------------

    def submit(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        """Run ``coro`` on the engine's loop."""
        return asyncio.run_coroutine_threadsafe(coro, self._loop)

    def call(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        """Run ``coro`` on the engine's loop and wait for it."""
        return self.submit(coro).result(timeout)

    def run_here(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` to completion on the calling thread (the run itself is driven by a
        worker; this only waits for it); on the engine's loop from async code."""
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return asyncio.run(coro)
        return self.call(coro)

    async def _on_loop(self, coro: Coroutine[Any, Any, T]) -> T:
        """Await ``coro`` on the engine's loop, where the client lives, from any loop."""
        try:
            here = asyncio.get_running_loop()
        except RuntimeError:  # pragma: no cover - always called from a coroutine
            here = None
        if here is self._loop:
            return await coro
        return await asyncio.wrap_future(self.submit(coro))

    def notify(self, execution_id: str | None = None) -> None:
        """Wake the threads waiting for news about runs, and the coroutines waiting for
        ``execution_id`` to settle (None: for any run to)."""
        self.store.changes.notify()
        self._wakeups.wake(execution_id)

    def wait_until(
        self, check: Callable[[], T | None], timeout: float | None, poll: float = 0.2
    ) -> T | None:
        """Block until ``check()`` returns non-None, re-checking on each store change or every
        ``poll`` seconds; None after ``timeout``."""
        return self.store.changes.wait_for(check, timeout, poll)

    def driving(self, execution_id: str) -> bool:
        """Whether a run this engine started or resumed is still being driven: its workflow
        took it and it has not settled (whichever worker of the task queue runs it)."""
        if execution_id not in self._driven:
            return False
        row = self.store.get_run(execution_id)
        if row is not None and row.status == "running":
            return True
        self._driven.discard(execution_id)
        return False

    def token_feed(self, execution_id: str) -> TokenFeed | None:
        """None: model calls run in activities, whose text is not streamed."""
        return None

    # -- runs --------------------------------------------------------------------------------------

    async def start(self, spec: RunSpec, *, acknowledge: bool = True) -> tuple[str, bool]:
        """Store a new run and start its workflow; returns its id and whether it was created."""
        return await self._on_loop(self._start(spec))

    async def _start(self, spec: RunSpec) -> tuple[str, bool]:
        execution_id = spec.execution_id or new_execution_id()
        check_workflow_id(execution_id, "the execution id")
        row = spec_row(
            spec,
            execution_id,
            self.selector,
            lease_owner=TEMPORAL_OWNER,
            lease_expires=TEMPORAL_LEASE_EXPIRES,
        )
        try:
            await asyncio.to_thread(self.store.write, [run_insert(row)])
        except RunAlreadyExists:
            return execution_id, False
        pin(execution_id, spec.agent)
        self.notify(execution_id)
        try:
            run = await asyncio.to_thread(self._run_input, row)
            # With a worker here, the server hands it the first workflow task at once.
            await self.client.start_workflow(
                RunWorkflow.run,
                run,
                id=execution_id,
                task_queue=self.settings.task_queue,
                request_eager_start=self.settings.worker,
            )
        except Exception as exc:
            await asyncio.to_thread(self._fail_unstarted, row, exc)
            raise
        self._driven.add(execution_id)
        return execution_id, True

    def _models(self, row: RunRow) -> dict[str, str | None]:
        """The model name each agent of the run runs on; empty if its agent is not here."""
        try:
            root = pinned(row.execution_id) or self.registry.resolve(row.agent_ref)
            return model_names(root, run_selector(row.model_override, self.selector))
        except FrontdeskError:
            return {}

    def _run_input(self, row: RunRow) -> RunInput:
        turn = stored_turn(row)
        return RunInput(
            execution_id=row.execution_id,
            agent_ref=row.agent_ref,
            input=runner_input(self.store, row),
            context_type=row.context_type,
            context_json=row.context_json,
            model_override=row.model_override,
            max_turns=self.max_turns,
            attempt=row.attempt,
            trace=exports_traces(),
            conversation_id=row.conversation_id,
            turn_base=turn.base_len if turn is not None else 0,
            turn_message=turn.message if turn is not None else None,
            budget_json=row.budget_json,
            models=self._models(row),
        )

    def _fail_unstarted(self, row: RunRow, exc: BaseException) -> None:
        """Record that a run's workflow could not be started: its error, and ``failed``."""
        now = time.time()
        message = f"the run's workflow could not be started: {type(exc).__name__}: {exc}"
        writes: list[Any] = [
            event_insert(
                row.execution_id,
                "error:1",
                "error",
                None,
                encode_payload(error=message, error_type=type(exc).__name__),
                at=now,
            ),
            SettleRun(
                row.execution_id,
                {
                    "status": "failed",
                    "error": message,
                    "updated_at": now,
                    "finished_at": now,
                    "lease_owner": None,
                    "lease_expires": None,
                },
            ),
        ]
        if row.conversation_id is not None:
            writes.extend(release_ops(row.conversation_id, row.execution_id))
        self.store.write(writes)
        self.notify(row.execution_id)

    async def wait_settled(self, execution_id: str) -> RunRow:
        """Wait until the run completes, fails, is cancelled or waits for approval: woken by
        this process's worker as soon as it records the run, else re-read every 10 ms,
        backing off to :data:`SETTLE_POLL` (to :data:`LOCAL_SETTLE_POLL` once this process's
        worker has reported on the run: the workflow stays on the worker that has it)."""
        delay, most = 0.01, SETTLE_POLL
        with self._wakeups.waiting(execution_id) as woken:
            while True:
                woken.clear()
                row = await asyncio.to_thread(self.store.require_run, execution_id)
                if row.status in SETTLED_STATUSES or self._closing:
                    self._driven.discard(execution_id)
                    if row.status in TERMINAL_STATUSES and row.status != "failed":
                        unpin(execution_id)
                    return row
                try:
                    await asyncio.wait_for(woken.wait(), delay)
                    most = LOCAL_SETTLE_POLL
                except TimeoutError:
                    delay = min(delay * 2, most)

    async def resume(self, execution_id: str) -> bool:
        """Send a runnable run's workflow its decisions and attempt (the ``resume`` update);
        returns whether the workflow took them."""
        return await self._on_loop(self._resume(execution_id))

    async def _resume(self, execution_id: str) -> bool:
        row = await asyncio.to_thread(self.store.get_run, execution_id)
        if row is None or row.status != "running":
            return False
        approvals = await asyncio.to_thread(
            lambda: self.store.approvals(execution_id=execution_id, limit=2**31)
        )
        decisions = [
            Decision(a.call_key, a.status, a.reason, a.decided_by, a.edited_args)
            for a in approvals
            if a.status in ("approved", "rejected")
        ]
        # A run made runnable has no lease: mark it Temporal's, so no embedded engine takes it.
        await asyncio.to_thread(
            self.store.write,
            [
                SettleRun(
                    execution_id,
                    {"lease_owner": TEMPORAL_OWNER, "lease_expires": TEMPORAL_LEASE_EXPIRES},
                )
            ],
        )
        handle = self.client.get_workflow_handle(execution_id)
        try:
            await handle.execute_update(
                RunWorkflow.resume, ResumeInput(decisions, row.attempt, row.budget_json)
            )
        except RPCError as exc:
            if exc.status != RPCStatusCode.NOT_FOUND or not await self._start_unstarted(row):
                return False
        except WorkflowUpdateFailedError:
            return False
        self._driven.add(execution_id)
        return True

    async def _start_unstarted(self, row: RunRow) -> bool:
        """Start the workflow of a runnable run that has none and took no step yet (its
        first start failed, say); a run with steps (a fork) is not started afresh."""
        if await asyncio.to_thread(self.store.journal, row.execution_id):
            return False
        run = await asyncio.to_thread(self._run_input, row)
        await self.client.start_workflow(
            RunWorkflow.run, run, id=row.execution_id, task_queue=self.settings.task_queue
        )
        return True

    async def cancel(self, execution_id: str) -> RunRow:
        """Record the run as cancelled and cancel its workflow."""
        return await self._on_loop(self._cancel(execution_id))

    async def _cancel(self, execution_id: str) -> RunRow:
        row = await asyncio.to_thread(self.store.require_run, execution_id)
        if row.status in TERMINAL_STATUSES:
            raise InvalidRunState(f"run {execution_id} is already {row.status}; nothing changed")
        await asyncio.to_thread(self.store.cancel_run, execution_id, time.time())
        self.notify(execution_id)
        try:
            await self.client.get_workflow_handle(execution_id).cancel()
        except RPCError:
            pass  # the workflow is gone already: the store says cancelled
        return await asyncio.to_thread(self.store.require_run, execution_id)

    def retry(self, execution_id: str, budget_json: str | None = None) -> RunRow:
        """Make a failed run runnable again (the next attempt); :meth:`resume` sends it."""
        return retry_run(self.store, execution_id, budget_json)

    async def recover_now(self) -> list[str]:
        """Nothing: Temporal moves a dead worker's runs to another worker by itself."""
        return []

    def expire_approvals(self) -> list[ApprovalRecord]:
        """Reject or escalate every approval request past its deadline; returns those this
        call decided (the runtime then resumes their runs)."""
        decided = expire_due(self.store, time.time())
        if decided:
            self.notify()
        return decided

    async def _expire_forever(self) -> None:
        """Every ``poll_interval``: act on approvals past their deadline; a rejected call's
        run gets its decision."""
        while True:
            try:
                decided = await asyncio.to_thread(self.expire_approvals)
                for record in decided:
                    if record.status == "rejected":
                        await self._resume(record.execution_id)
            except Exception as exc:  # a store's or the server's hiccup: try again next time
                if self._closing:
                    return
                log.warning("approval expiry failed: %s", exc)
            await asyncio.sleep(self.poll_interval)

    def close(self, timeout: float = 30.0) -> None:
        """Stop the worker (runs go on on other workers, or when one starts again)."""
        if self._closing:
            return
        self._closing = True

        async def shutdown() -> None:
            if self._expiry is not None:
                self._expiry.cancel()
            if self._worker is not None:
                detach(self.settings.task_queue, self.registry)
                await self._worker.shutdown()
            if self._worker_task is not None:
                await asyncio.gather(self._worker_task, return_exceptions=True)

        try:
            self.call(shutdown(), timeout + 10)
        finally:
            self._stop_loop()
            self.notify()


__all__ = ["TemporalEngine"]
