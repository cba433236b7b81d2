"""``AgentRuntime``: run unmodified OpenAI Agents SDK agents durably.

    from frontdesk import AgentRuntime

    with AgentRuntime() as runtime:
        result = runtime.run(triage_agent, "I was charged twice")
        print(result.output, result.execution_id)

Runs survive crashes (any process with the same agents resumes them), tools marked
``approval_required`` wait for a human for as long as it takes, and every step is persisted as
history and as a stream of events.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import os
import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from agents import Agent, Model, ModelProvider

from ._budget import Budget, require_budget, retry_plan_json, run_plan_json
from ._dotenv import load_env_files
from ._home import resolve_home
from ._prices import Price, Prices
from ._results import EventStream, RunHandle, RunResult, build_result
from ._stats import UsageStats, build_stats, run_costs
from ._text import items_text_length, require_text, require_texts
from .conversations import Conversation
from .engine._agents import AgentRegistry
from .engine._base import Engine
from .engine._factory import TemporalSettings, engine_name, make_engine
from .engine._memory import Memory, require_memory
from .engine._models import run_selector
from .engine._types import RunSpec, TokenFeed
from .errors import EmptyMessage, FrontdeskError, InvalidInput, MessageTooLong, RunNotFound
from .events import Event
from .models._select import ModelSelector, RetryPolicy
from .otel._setup import RunTracing
from .store import (
    ApprovalRecord,
    ConversationRow,
    Page,
    RunFilter,
    Store,
    check_decider,
    database_url,
    open_store,
    read_pages,
    require_backend,
)

if TYPE_CHECKING:
    from opentelemetry.trace import TracerProvider

    from .debugging import Lineage, RunDiff

DEFAULT_MAX_MESSAGE_CHARS = 4000
DEFAULT_MAX_INPUT_ITEMS = 200
_MAX_SQL_INT = 2**63 - 1
_EXECUTION_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:@-]{0,199}")
T = TypeVar("T")


def validate_execution_id(execution_id: str) -> None:
    """Raise :class:`InvalidInput` unless the id is 1-200 letters, digits and ``_.:@-``."""
    if not isinstance(execution_id, str) or not _EXECUTION_ID.fullmatch(execution_id):
        raise InvalidInput(
            f"invalid execution id {execution_id!r}: use 1-200 letters, digits and _.:@- "
            "(starting with a letter or digit)"
        )


class AgentRuntime:
    """Durable execution for OpenAI Agents SDK agents, backed by a store: SQLite under
        ``home`` by default, or the database ``database_url`` (else ``$FRONTDESK_DATABASE_URL``)
        names, e.g. ``postgresql://user:password@host/dbname`` (see :func:`frontdesk.store.open_store`).

        ``home`` defaults to ``$FRONTDESK_HOME`` or ``./.frontdesk/``. ``engine`` names the engine
        that drives runs: ``"local"``, the embedded one, or ``"temporal"``, workflows on the
    Temporal server at ``temporal_address`` (``HOST:PORT``) in ``namespace``, served on
    ``task_queue`` (else ``$FRONTDESK_ENGINE``, ``$FRONTDESK_TEMPORAL_ADDRESS``,
    ``$FRONTDESK_TEMPORAL_NAMESPACE``, ``$FRONTDESK_TEMPORAL_TASK_QUEUE``; by default the local
    engine, ``localhost:7233``, ``default`` and ``frontdesk``). On Temporal the runtime runs a
    worker for the agents it knows unless ``worker=False`` (a client of a worker fleet). ``model`` (or
        ``$FRONTDESK_MODEL``) overrides every agent's model; ``"rules"`` is the offline rules
        baseline; a run keeps the model it started on, whichever process resumes it. A message
        holds at most ``max_message_chars`` characters; input items, at most ``max_input_items``
        items and ``max_message_chars`` characters of text. With ``recover=True`` the runtime
        takes over, in the background, runs left behind by processes that died, whenever it can
        find their agents. ``busy_timeout`` is how long a write waits for another process's lock
        on the store before failing. With ``stream_tokens=True`` every model call this runtime
        makes is requested as a stream and its text reaches the live event streams of its runs as
        ``text_delta`` events (:meth:`stream` does so for its own run in any case).

        ``budget`` is every run's :class:`Budget` unless the run (or its conversation) is given
        its own; ``prices`` extends and overrides the per-model price table (:class:`Prices`) that
        cost budgets and cost reports use.

        Each run is one OpenTelemetry trace, through ``tracer_provider``, else the global tracer
        provider, else the OTLP exporter ``OTEL_EXPORTER_OTLP_ENDPOINT`` names (see
        :mod:`frontdesk.otel`). Customer text stays out of its spans unless ``trace_content`` (or
        ``$FRONTDESK_OTEL_CAPTURE_CONTENT=1``).
    """

    def __init__(
        self,
        home: str | os.PathLike[str] | None = None,
        agents: Iterable[Agent[Any]] | dict[str, Agent[Any]] = (),
        *,
        model: str | Model | None = None,
        model_provider: ModelProvider | None = None,
        max_message_chars: int = DEFAULT_MAX_MESSAGE_CHARS,
        max_input_items: int = DEFAULT_MAX_INPUT_ITEMS,
        model_timeout: float = 30.0,
        model_retries: int = 3,
        max_turns: int = 10,
        lease_ttl: float = 30.0,
        poll_interval: float = 1.0,
        recover: bool = True,
        busy_timeout: float = 10.0,
        compact_every: int = 50,
        stream_tokens: bool = False,
        budget: Budget | None = None,
        prices: Mapping[str, Price | tuple[float, float]] | None = None,
        tracer_provider: TracerProvider | None = None,
        trace_content: bool | None = None,
        database_url: str | None = None,
        engine: str | None = None,
        temporal_address: str | None = None,
        namespace: str | None = None,
        task_queue: str | None = None,
        worker: bool = True,
    ) -> None:
        engine = engine_name(engine)
        temporal = (
            TemporalSettings.resolve(temporal_address, namespace, task_queue, worker)
            if engine == "temporal"
            else None
        )
        self.budget = require_budget(budget)
        """The budget of runs and conversations not given their own."""
        self.prices = Prices.of(prices)
        """The per-model price table for cost budgets and cost reports."""
        load_env_files(home)
        url = _database_url(database_url)
        require_backend(url)  # a bad URL is refused before the home is created
        self._tracing = RunTracing(tracer_provider, trace_content)
        self.home: Path = resolve_home(home)
        self.store: Store = open_store(
            url, home=self.home, busy_timeout=busy_timeout, background_checkpoints=True
        )
        """Where runs, their history and approvals are recorded."""
        self.registry = AgentRegistry()
        self.selector = ModelSelector(model, model_provider)
        self.max_message_chars = max_message_chars
        self.max_input_items = max_input_items
        self.policy = RetryPolicy(timeout=model_timeout, max_attempts=model_retries + 1)
        items = agents.items() if isinstance(agents, dict) else ((None, a) for a in agents)
        for name, agent in items:
            self.registry.register(agent, name)
        try:
            self._engine: Engine = make_engine(
                engine,
                home=self.home,
                store=self.store,
                registry=self.registry,
                scope=self,
                temporal=temporal,
                selector=self.selector,
                policy=self.policy,
                lease_ttl=lease_ttl,
                poll_interval=poll_interval,
                recover=recover,
                max_turns=max_turns,
                compact_every=compact_every,
                stream_tokens=stream_tokens,
                tracing=self._tracing,
            )
        except BaseException:
            # An engine that cannot start (an unreachable Temporal server) leaves nothing open.
            self._tracing.close()
            self.store.close()
            raise
        self._closed = False

    # -- lifecycle -----------------------------------------------------------------------------

    def __enter__(self) -> AgentRuntime:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop driving runs; unfinished runs are resumed by the next runtime or worker."""
        if self._closed:
            return
        self._closed = True
        self._engine.close()
        self._tracing.close()
        self.store.close()

    @property
    def model_label(self) -> str | None:
        """What the model override is, e.g. the rules baseline label."""
        return self.selector.label

    # -- agents ----------------------------------------------------------------------------------

    def register(self, agent: Agent[Any], name: str | None = None) -> str:
        """Make ``agent`` findable by name, so runs started from it can resume here."""
        return self.registry.register(agent, name)

    # -- running ----------------------------------------------------------------------------------

    def validate_message(self, message: str | Sequence[Any], limit: int | None = None) -> None:
        """Raise a ``ValueError`` subclass for an empty, over-long or invalid message.

        Input items count their text (keys and values) against the same limit, and at most
        ``max_input_items`` items are accepted. Text with a lone surrogate is refused.
        """
        limit = self.max_message_chars if limit is None else limit
        if isinstance(message, str):
            if not message.strip():
                raise EmptyMessage("the message is empty")
            if len(message) > limit:
                raise MessageTooLong(len(message), limit)
            require_text(message, "the message")
        elif not message:
            raise EmptyMessage("the input item list is empty")
        elif not isinstance(message, list | tuple):
            raise TypeError(f"message must be a str or a list of input items, got {type(message)}")
        else:
            if len(message) > self.max_input_items:
                raise InvalidInput(
                    f"the input has {len(message)} items; the limit is {self.max_input_items}"
                )
            length = items_text_length(message)
            if length > limit:
                raise MessageTooLong(length, limit, what="the text of the input items")

    def _spec(
        self,
        agent: Agent[Any],
        message: str | Sequence[Any],
        context: Any,
        execution_id: str | None = None,
        budget: Budget | None = None,
        **kw: Any,
    ) -> RunSpec:
        if not isinstance(agent, Agent):
            raise TypeError(f"expected an agents.Agent, got {type(agent).__name__}")
        self.validate_message(message)
        if execution_id is not None:
            validate_execution_id(execution_id)
            kw["execution_id"] = execution_id
        own = require_budget(budget)
        kw["budget_json"] = run_plan_json(
            own if own is not None else self.budget, agent, self.selector, self.prices
        )
        ref = self.registry.reference(agent)
        payload = message if isinstance(message, str) else list(message)
        return RunSpec(agent=agent, agent_ref=ref, input=payload, context=context, **kw)

    def start(
        self,
        agent: Agent[Any],
        message: str | Sequence[Any],
        *,
        context: Any = None,
        execution_id: str | None = None,
        budget: Budget | None = None,
    ) -> RunHandle:
        """Start a run and return at once with its handle.

        With ``execution_id`` the start is idempotent: if a run with that id exists (from any
        process), nothing new starts and its handle is returned. Use it to start exactly one
        run per external event, e.g. per Stripe dispute. ``budget`` replaces the runtime's
        default budget for this run (``Budget()`` lifts it).
        """
        spec = self._spec(agent, message, context, execution_id, budget)
        execution_id, created = self._engine.call(self._engine.start(spec))
        return RunHandle(self, execution_id, created)

    def run(
        self,
        agent: Agent[Any],
        message: str | Sequence[Any],
        *,
        context: Any = None,
        execution_id: str | None = None,
        budget: Budget | None = None,
    ) -> RunResult:
        """Run until the run completes, fails, pauses for approval (``waiting_approval``) or
        is stopped by its budget (``budget_exceeded``).

        The run is driven on the calling thread, on an event loop of its own; if the caller
        is interrupted (Ctrl-C), the run is handed back and resumed from its journal. With
        ``execution_id``, an existing run with that id is waited for instead of started.
        ``budget`` replaces the runtime's default budget for this run (``Budget()`` lifts it).
        """
        spec = self._spec(agent, message, context, execution_id, budget)
        return self.run_spec(spec)

    async def run_async(
        self,
        agent: Agent[Any],
        message: str | Sequence[Any],
        *,
        context: Any = None,
        execution_id: str | None = None,
        budget: Budget | None = None,
    ) -> RunResult:
        """Async twin of :meth:`run`. The run executes on the caller's event loop, so async
        tools can use clients bound to it; if the caller goes away, the run is handed back
        and resumed from its journal."""
        spec = self._spec(agent, message, context, execution_id, budget)
        return await self.run_spec_async(spec)

    # -- runs from a prepared spec (conversations, summaries, apps) -------------------------------

    async def run_spec_async(self, spec: RunSpec) -> RunResult:
        """Start the run ``spec`` describes on the running event loop and wait until it
        settles. No validation: ``spec`` is taken as given (see :meth:`run_async`)."""
        execution_id, _ = await self._engine.start(spec, acknowledge=False)
        row = await self._engine.wait_settled(execution_id)
        if row.status == "running":  # an existing run driven elsewhere: wait for it to settle
            return await asyncio.to_thread(RunHandle(self, execution_id).wait)
        return build_result(self.store, row)  # reads nothing: history loads on access

    def start_spec(self, spec: RunSpec) -> RunHandle:
        """Start the run ``spec`` describes and return at once with its handle (as
        :meth:`start`, with ``spec`` taken as given)."""
        execution_id, created = self._engine.call(self._engine.start(spec))
        return RunHandle(self, execution_id, created)

    def run_spec(self, spec: RunSpec) -> RunResult:
        """:meth:`run_spec_async`, driven on the calling thread (as :meth:`run` drives)."""
        return self._engine.run_here(self.run_spec_async(spec))

    def submit_spec(self, spec: RunSpec) -> concurrent.futures.Future[RunResult]:
        """:meth:`run_spec_async`, driven on the engine's own loop; the future settles with
        the run (the run goes on if the caller stops waiting)."""
        return self._engine.submit(self.run_spec_async(spec))

    def resume(self, execution_id: str) -> bool:
        """Drive a runnable run now if this process can (its agent is registered here);
        returns whether it does. Runs left behind are otherwise taken over by recovery."""
        require_texts(execution_id=execution_id)
        return self._engine.call(self._engine.resume(execution_id))

    def driving(self, execution_id: str) -> bool:
        """Whether this runtime is driving the run right now."""
        return self._engine.driving(execution_id)

    def token_feed(self, execution_id: str) -> TokenFeed | None:
        """The live text of a run this runtime drives with streamed model calls, if any."""
        return self._engine.token_feed(execution_id)

    def wait_until(
        self, check: Callable[[], T | None], timeout: float | None = None, poll: float = 0.2
    ) -> T | None:
        """Block until ``check()`` returns something other than None and return it,
        re-checking whenever runs change (and every ``poll`` seconds); None after
        ``timeout`` seconds (None: no limit)."""
        return self._engine.wait_until(check, timeout, poll)

    def stream(
        self,
        agent: Agent[Any],
        message: str | Sequence[Any],
        *,
        context: Any = None,
        stream_tokens: bool = True,
        budget: Budget | None = None,
    ) -> EventStream:
        """Start a run and iterate its events as they happen.

        With ``stream_tokens`` (the default) the run's model calls are requested as streams and
        their text arrives as ``text_delta`` events before each ``message`` (see
        :class:`EventStream`); the run is journaled exactly as an unstreamed one. ``budget``
        replaces the runtime's default budget for this run.
        """
        feed = TokenFeed() if stream_tokens else None
        spec = self._spec(agent, message, context, budget=budget, feed=feed)
        execution_id, created = self._engine.call(self._engine.start(spec))
        return EventStream(RunHandle(self, execution_id, created), feed=feed)

    def handle(self, execution_id: str) -> RunHandle:
        """A handle on an existing run; :class:`RunNotFound` if there is none."""
        require_texts(execution_id=execution_id)
        self.store.require_run(execution_id)
        return RunHandle(self, execution_id)

    # -- approvals ----------------------------------------------------------------------------------

    def approvals(
        self,
        status: str | None = "pending",
        execution_id: str | None = None,
        limit: int = 1000,
        *,
        cursor: str | None = None,
        newest_first: bool = False,
    ) -> list[ApprovalRecord]:
        """Approval requests, oldest first (pending ones by default): up to ``limit`` of them
        from ``cursor`` on, read page by page through :meth:`approvals_page` (use that for
        the cursor of the next page)."""
        return read_pages(
            lambda size, after: self.approvals_page(
                status,
                execution_id=execution_id,
                newest_first=newest_first,
                limit=size,
                cursor=after,
            ),
            _count(limit, "limit"),
            cursor,
        )

    def approve(
        self,
        approval_or_execution_id: str,
        by: str | None = None,
        note: str | None = None,
        *,
        args: dict[str, Any] | None = None,
        resume: bool = True,
    ) -> ApprovalRecord:
        """Approve a pending tool call; the run resumes and exactly that call runs.

        With ``args`` the call runs with edited arguments: each one given replaces the model's
        (e.g. ``args={"amount": 49.5}`` for a partial refund), the others are kept. They must
        match the tool's JSON schema (:class:`InvalidInput` if not, and nothing changes). The
        approval keeps both the asked and the edited arguments, the tool's events too, and the
        model gets the result of the call that ran, with a note that a reviewer edited it.
        With ``resume=False`` this runtime does not drive the run on itself: a worker (any
        process with its agent that recovers runs) picks it up.
        """
        return self._decide(
            approval_or_execution_id,
            True,
            by=by,
            note=note,
            reason=None,
            args=args,
            resume=resume,
        )

    def reject(
        self,
        approval_or_execution_id: str,
        reason: str,
        by: str | None = None,
        *,
        resume: bool = True,
    ) -> ApprovalRecord:
        """Reject a pending tool call; it never runs and the model receives ``reason``.
        ``resume`` as for :meth:`approve`."""
        if not reason or not reason.strip():
            raise EmptyMessage("a rejection needs a reason (the model receives it)")
        return self._decide(
            approval_or_execution_id, False, by=by, note=None, reason=reason, resume=resume
        )

    def _decide(
        self,
        ident: str,
        approved: bool,
        *,
        by: str | None,
        note: str | None,
        reason: str | None,
        args: dict[str, Any] | None = None,
        resume: bool = True,
    ) -> ApprovalRecord:
        require_texts(approval_or_execution_id=ident, by=by, note=note, reason=reason)
        check_decider(by)
        if args is not None and not approved:
            raise InvalidInput("edited arguments only go with an approval; nothing changed")
        record, runnable = self.store.decide(
            ident,
            approved=approved,
            by=by,
            note=note,
            reason=reason,
            now=time.time(),
            args=args,
        )
        self._engine.notify()
        if runnable and resume:
            self._engine.call(self._engine.resume(record.execution_id))
        return record

    def expire_approvals(self) -> list[ApprovalRecord]:
        """Act now on approval requests past their deadline: reject them (as
        ``system:timeout``, the model is told) or escalate them, as their tools say. Returns
        those this call decided. A runtime with ``recover=True`` does this by itself every
        ``poll_interval``, as soon as it starts, however long every process was down."""
        decided = self._engine.expire_approvals()
        for record in decided:
            if record.status == "rejected":
                self._engine.call(self._engine.resume(record.execution_id))
        return decided

    # -- history ---------------------------------------------------------------------------------

    def runs(
        self,
        status: str | None = None,
        agent: str | None = None,
        limit: int = 50,
        *,
        cursor: str | None = None,
        app: str | None = None,
        q: str | None = None,
        since: float | None = None,
        until: float | None = None,
        conversation_id: str | None = None,
    ) -> list[RunResult]:
        """Run history, newest first (summaries: no events): up to ``limit`` runs from
        ``cursor`` on, with the filters of :meth:`runs_page`.

        It reads page by page through the indexed cursor of :meth:`runs_page` (use that for
        the cursor of the next page); ``limit`` is a count (``InvalidInput`` if negative),
        and a limit larger than the history means every run.
        """
        return read_pages(
            lambda size, after: self.runs_page(
                status=status,
                app=app,
                agent=agent,
                q=q,
                since=since,
                until=until,
                conversation_id=conversation_id,
                limit=size,
                cursor=after,
            ),
            _count(limit, "limit"),
            cursor,
        )

    def runs_page(
        self,
        *,
        status: str | None = None,
        app: str | None = None,
        agent: str | None = None,
        q: str | None = None,
        since: float | None = None,
        until: float | None = None,
        conversation_id: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> Page[RunResult]:
        """Run history newest first, one page at a time (summaries: no events).

        ``app`` is the run's app (``support``, ``airline``, ``disputes``, or an agent's
        top-level package), ``agent`` its starting or last agent, ``q`` words in its input or
        output, ``since``/``until`` Unix times. Pass ``next_cursor`` back for the next page.
        """
        require_texts(status=status, app=app, agent=agent, q=q, conversation_id=conversation_id)
        where = RunFilter(status, app, agent, q, since, until, conversation_id)
        page = self.store.runs_page(where, limit=limit, cursor=cursor)
        return Page([build_result(self.store, row) for row in page.items], page.next_cursor)

    def approvals_page(
        self,
        status: str | None = "pending",
        *,
        execution_id: str | None = None,
        newest_first: bool = False,
        limit: int = 50,
        cursor: str | None = None,
    ) -> Page[ApprovalRecord]:
        """Approval requests one page at a time, oldest first unless ``newest_first``."""
        require_texts(status=status, execution_id=execution_id)
        return self.store.approvals_page(
            status=status,
            execution_id=execution_id,
            newest_first=newest_first,
            limit=limit,
            cursor=cursor,
        )

    def conversations(self, *, limit: int = 50, cursor: str | None = None) -> Page[ConversationRow]:
        """Stored conversations, most recently active first, with their token totals."""
        return self.store.conversations_page(limit=limit, cursor=cursor)

    def events(self, execution_id: str, after: int = 0) -> list[Event]:
        """The run's events with ``seq > after``, without waiting; :class:`RunNotFound` if
        there is no such run."""
        require_texts(execution_id=execution_id)
        self.store.require_run(execution_id)
        return self.store.events(execution_id, after=_count(after, "after"))

    def get(self, execution_id: str) -> RunResult:
        """One run with its events, steps and approvals; :class:`RunNotFound` if unknown."""
        require_texts(execution_id=execution_id)
        return build_result(self.store, self.store.require_run(execution_id))

    def cancel(self, execution_id: str) -> RunResult:
        """Cancel a run that has not finished."""
        require_texts(execution_id=execution_id)
        row = self._engine.call(self._engine.cancel(execution_id))
        return build_result(self.store, row)

    def retry(self, execution_id: str, *, budget: Budget | None = None) -> RunHandle:
        """Resume a failed run: completed steps replay, the failed step runs again.

        A ``budget_exceeded`` run goes on from the model call its budget stopped it before,
        under ``budget`` (which replaces the run's own): :class:`InvalidRunState` if the
        budget would stop it again at once, and nothing changes.
        """
        require_texts(execution_id=execution_id)
        row = self.store.require_run(execution_id)
        budget_json = retry_plan_json(
            self.store, row, require_budget(budget), self.prices, lambda: self._models_of(row)
        )
        self._engine.retry(execution_id, budget_json)
        self._engine.notify()
        self._engine.call(self._engine.resume(execution_id))
        return RunHandle(self, execution_id)

    # -- debugging from history -----------------------------------------------------------------

    def fork(
        self,
        execution_id: str,
        at_step: int,
        *,
        model: str | None = None,
        agents: Iterable[Agent[Any]] | None = None,
        context: Any = None,
    ) -> RunHandle:
        """Run ``execution_id`` again from step ``at_step`` (numbered as ``frontdesk runs show``
        prints them), as a new run that records it as its parent.

        The steps before ``at_step`` replay from the original's journal without calling the
        model or any tool (their approval decisions hold; a refund among them is not issued
        again); from ``at_step`` on the fork runs live, on ``model`` or the original's model,
        with ``agents`` in place of the agents of the same names, and tools that need approval
        ask again. ``context`` replaces the context the live steps start from. An unknown run,
        a step out of range or inside a pending approval, or a replacement named like no agent
        of the run raises a ``ValueError`` subclass and creates nothing.
        """
        from .debugging._fork import plan_fork

        seed = plan_fork(self, execution_id, at_step, model=model, agents=agents, context=context)
        self.store.insert_fork(seed)
        fork_id = seed.row.execution_id
        self._engine.notify()
        self._engine.call(self._engine.resume(fork_id))
        return RunHandle(self, fork_id, created=True)

    def diff(self, a: str, b: str) -> RunDiff:
        """Compare runs ``a`` and ``b`` step by step: agent path, handoffs, tool calls with
        arguments and results, outputs, tokens and latency, and where they first diverge."""
        from .debugging._diff import compare

        require_texts(a=a, b=b)
        return compare(self, a, b)

    def lineage(self, execution_id: str) -> Lineage:
        """The run's fork parent (with the step it was forked at) and the runs forked from it;
        :class:`RunNotFound` if there is no such run."""
        require_texts(execution_id=execution_id)
        self.store.require_run(execution_id)
        return self.store.lineage(execution_id)

    def conversation(
        self,
        conversation_id: str,
        agent: Agent[Any] | None = None,
        context: Any = None,
        *,
        max_input_chars: int = 1000,
        turn_timeout: float | None = None,
        budget: Budget | None = None,
        memory: Memory | None = None,
    ) -> Conversation:
        """Create or reopen a durable multi-turn conversation (see :mod:`frontdesk.conversations`).

        ``budget`` is counted over all the conversation's turns and stored with it (it replaces
        the one stored before); without one, the stored budget applies, else the runtime's.
        ``memory`` bounds what the agents are sent of the earlier turns (:class:`Memory`); it
        is stored with the conversation too, and replaces the one stored before.
        """
        from .conversations import open_conversation

        require_budget(budget)
        require_memory(memory)
        if agent is not None:
            self.registry.register(agent)
        return open_conversation(
            self,
            conversation_id,
            agent,
            context,
            max_input_chars=max_input_chars,
            turn_timeout=turn_timeout,
            budget=budget,
            memory=memory,
        )

    def recover(self) -> list[str]:
        """Take over, now, every orphaned run this process can drive. Returns their ids."""
        return self._engine.call(self._engine.recover_now())

    # -- usage and cost ---------------------------------------------------------------------------

    def costs(
        self, execution_ids: Iterable[str], *, prices: Prices | None = None
    ) -> dict[str, float | None]:
        """Each run's estimated cost in US dollars, from its model calls' tokens and
        ``prices`` (:attr:`prices` by default): 0.0 without a model call, None if a call ran
        on a model without a price (unknown runs count as having made no call)."""
        ids = list(execution_ids)
        require_texts(**{f"execution_ids[{i}]": value for i, value in enumerate(ids)})
        table = self.prices if prices is None else prices
        return run_costs(self.store.run_usage(ids), ids, table)

    def cost(self, execution_id: str) -> float | None:
        """One run's estimated cost in US dollars (see :meth:`costs`)."""
        self.handle(execution_id)
        return self.costs([execution_id])[execution_id]

    def stats(
        self,
        *,
        since: float | datetime | None = None,
        until: float | datetime | None = None,
    ) -> UsageStats:
        """What the runs created in ``[since, until)`` spent: runs by status, and model calls,
        tokens and estimated cost in total and by agent, model and UTC day. ``since`` and
        ``until`` are Unix times or aware datetimes; None leaves that end open."""
        start, end = _instant(since, "since"), _instant(until, "until")
        if start is not None and end is not None and end <= start:
            raise InvalidInput(f"until ({until}) must be after since ({since})")
        rows = self.store.window_usage(start, end)
        statuses = self.store.window_statuses(start, end)
        return build_stats(rows, statuses, self.prices, start, end)

    def _models_of(self, row: Any) -> dict[str, str | None]:
        """The model each agent of a stored run runs on; empty if this process cannot tell."""
        from ._budget import model_names

        try:
            root = self.registry.resolve(row.agent_ref)
            return model_names(root, run_selector(row.model_override, self.selector))
        except FrontdeskError:
            return {}


def _database_url(given: str | None) -> str | None:
    """The database URL a runtime uses: ``given``, else ``$FRONTDESK_DATABASE_URL``."""
    return database_url(given)


def _instant(value: float | datetime | None, name: str) -> float | None:
    """A Unix time from a number or an aware datetime; :class:`InvalidInput` otherwise."""
    if value is None:
        return None
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise InvalidInput(f"{name} must be an aware datetime (with a time zone)")
        return value.timestamp()
    if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
        raise InvalidInput(f"{name} must be a Unix time or a datetime, got {value!r}")
    return float(value)


def _count(value: int, name: str) -> int:
    """A non-negative count for SQL, clamped to SQLite's largest integer."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInput(f"{name} must be a whole number, got {value!r}")
    if value < 0:
        raise InvalidInput(f"{name} must be 0 or more, got {value}")
    return min(value, _MAX_SQL_INT)


# -- module-level helpers on a default runtime ------------------------------------------------------

_default: AgentRuntime | None = None
_default_lock = threading.Lock()


def default_runtime() -> AgentRuntime:
    """The process-wide runtime used by :func:`run`, :func:`start` and friends."""
    global _default
    with _default_lock:
        if _default is None or _default._closed:
            _default = AgentRuntime()
            atexit.register(_default.close)
        return _default


def run(
    agent: Agent[Any],
    message: str | Sequence[Any],
    *,
    context: Any = None,
    budget: Budget | None = None,
) -> RunResult:
    """:meth:`AgentRuntime.run` on the default runtime."""
    return default_runtime().run(agent, message, context=context, budget=budget)


async def run_async(
    agent: Agent[Any],
    message: str | Sequence[Any],
    *,
    context: Any = None,
    budget: Budget | None = None,
) -> RunResult:
    """:meth:`AgentRuntime.run_async` on the default runtime."""
    return await default_runtime().run_async(agent, message, context=context, budget=budget)


def start(
    agent: Agent[Any],
    message: str | Sequence[Any],
    *,
    context: Any = None,
    budget: Budget | None = None,
) -> RunHandle:
    """:meth:`AgentRuntime.start` on the default runtime."""
    return default_runtime().start(agent, message, context=context, budget=budget)


def stream(
    agent: Agent[Any],
    message: str | Sequence[Any],
    *,
    context: Any = None,
    stream_tokens: bool = True,
    budget: Budget | None = None,
) -> EventStream:
    """:meth:`AgentRuntime.stream` on the default runtime."""
    return default_runtime().stream(
        agent, message, context=context, stream_tokens=stream_tokens, budget=budget
    )


__all__ = [
    "AgentRuntime",
    "EventStream",
    "RunHandle",
    "RunNotFound",
    "RunResult",
    "default_runtime",
    "run",
    "run_async",
    "start",
    "stream",
]
