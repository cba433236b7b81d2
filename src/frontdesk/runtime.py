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
import json
import os
import re
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from agents import Agent, Model, ModelProvider

from ._home import resolve_home
from .conversations import Conversation
from .engine._agents import AgentRegistry
from .engine._context import load_context
from .engine._conversation import is_turn_input
from .engine.local._engine import LocalEngine
from .engine.local._spec import RunSpec
from .engine.local._waiting import wait_for
from .errors import EmptyMessage, InvalidInput, MessageTooLong, RunNotFound
from .events import Event, Usage
from .models._select import ModelSelector, RetryPolicy
from .store import (
    SETTLED_STATUSES,
    TERMINAL_STATUSES,
    ApprovalRecord,
    Checkpointer,
    JournalRow,
    RunRow,
    Store,
)

DEFAULT_MAX_MESSAGE_CHARS = 4000
_EXECUTION_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:@-]{0,199}")


def validate_execution_id(execution_id: str) -> None:
    """Raise :class:`InvalidInput` unless the id is 1-200 letters, digits and ``_.:@-``."""
    if not isinstance(execution_id, str) or not _EXECUTION_ID.fullmatch(execution_id):
        raise InvalidInput(
            f"invalid execution id {execution_id!r}: use 1-200 letters, digits and _.:@- "
            "(starting with a letter or digit)"
        )


@dataclass(frozen=True)
class RunResult:
    """A run as it stands: its output once completed, and its whole history.

    ``events``, ``approvals`` and ``steps`` are read from the store on first access.
    """

    execution_id: str
    status: str
    """``running``, ``waiting_approval``, ``completed``, ``failed`` or ``cancelled``."""
    output: Any
    last_agent: str | None
    usage: Usage
    started_at: datetime | None
    finished_at: datetime | None
    agent: str
    input: Any
    error: str | None = None
    note: str | None = None
    model_label: str | None = None
    context: Any = None
    conversation_id: str | None = None
    _store: Store | None = field(default=None, repr=False, compare=False)
    _cache: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    def _load(self, name: str, loader: Callable[[Store], Any]) -> Any:
        if name not in self._cache:
            self._cache[name] = loader(self._store) if self._store is not None else []
        return self._cache[name]

    @property
    def events(self) -> list[Event]:
        """Every event of the run, in order."""
        return self._load("events", lambda s: s.events(self.execution_id))  # type: ignore[no-any-return]

    @property
    def approvals(self) -> list[ApprovalRecord]:
        """Every approval request of the run, with its decision."""
        return self._load("approvals", lambda s: s.approvals(execution_id=self.execution_id))  # type: ignore[no-any-return]

    @property
    def steps(self) -> list[JournalRow]:
        """The durable steps (model calls, tool calls, handoffs) with their timings."""
        return self._load("steps", lambda s: s.journal(self.execution_id))  # type: ignore[no-any-return]

    @property
    def duration(self) -> float | None:
        """Seconds from start to finish, or None while unfinished."""
        if self.started_at is None or self.finished_at is None:
            return None
        return (self.finished_at - self.started_at).total_seconds()

    @property
    def pending_approvals(self) -> list[ApprovalRecord]:
        """Approvals still waiting for a decision."""
        return [a for a in self.approvals if a.status == "pending"]

    @property
    def final_output(self) -> Any:
        """Alias of ``output``, as in the SDK's ``RunResult``."""
        return self.output


def _dt(ts: float | None) -> datetime | None:
    return datetime.fromtimestamp(ts, tz=UTC) if ts is not None else None


def _user_input(stored: Any) -> Any:
    # A conversation turn stores where it starts in the conversation; its input is the message.
    return stored["message"] if is_turn_input(stored) else stored


def build_result(store: Store, row: RunRow) -> RunResult:
    """Assemble a :class:`RunResult` from the store."""
    context = None
    if row.context_json is not None:
        try:
            context = load_context(row.context_type, row.context_json)
        except Exception:  # the context's class may not be importable in this process
            context = json.loads(row.context_json)
    return RunResult(
        execution_id=row.execution_id,
        status=row.status,
        output=json.loads(row.output_json) if row.output_json is not None else None,
        last_agent=row.last_agent,
        usage=row.usage,
        started_at=_dt(row.started_at),
        finished_at=_dt(row.finished_at),
        agent=row.agent_name,
        input=_user_input(json.loads(row.input)),
        error=row.error,
        note=row.note,
        model_label=row.model_label,
        context=context,
        conversation_id=row.conversation_id,
        _store=store,
    )


class EventStream(Iterator[Event]):
    """Events of one run, from a sequence number on, then live as they happen.

    Iteration ends when the run has finished or is waiting for an approval and every event
    has been delivered. ``get_result()`` waits for the run to end and returns its result.
    """

    def __init__(self, handle: RunHandle, after: int = 0, poll: float = 0.2) -> None:
        self._handle = handle
        self._last = after
        self._poll = poll
        self._buffer: list[Event] = []
        self._ended = False

    @property
    def last_seq(self) -> int:
        """Sequence number of the last event delivered."""
        return self._last

    def __iter__(self) -> EventStream:
        return self

    def __next__(self) -> Event:
        runtime = self._handle._runtime
        store = runtime.store
        while not self._buffer:
            if self._ended:
                raise StopIteration

            def check() -> bool | None:
                events = store.events(self._handle.execution_id, after=self._last)
                if events:
                    self._buffer.extend(events)
                    return True
                row = store.require_run(self._handle.execution_id)
                if row.status in SETTLED_STATUSES:
                    # Re-read once: the final events commit with the status change.
                    self._buffer.extend(store.events(self._handle.execution_id, after=self._last))
                    self._ended = True
                    return True
                return None

            wait_for(runtime._engine, check, None, self._poll)
        event = self._buffer.pop(0)
        self._last = event.seq
        return event

    def get_result(self, timeout: float | None = None) -> RunResult:
        """Wait until the run completes, fails or is cancelled, and return its result."""
        return self._handle.result(timeout)


class RunHandle:
    """A handle on any run, in this process or another one."""

    def __init__(self, runtime: AgentRuntime, execution_id: str, created: bool = False) -> None:
        self._runtime = runtime
        self.execution_id = execution_id
        self.created = created
        """True when the ``start`` that returned this handle created the run."""

    def __repr__(self) -> str:
        return f"RunHandle({self.execution_id!r}, status={self.status!r})"

    @property
    def status(self) -> str:
        """The run's current status, read fresh from the store."""
        return self._runtime.store.require_run(self.execution_id).status

    def stream(self, after: int = 0) -> EventStream:
        """Events with ``seq > after``, then live events until the run settles."""
        return EventStream(self, after)

    def result(self, timeout: float | None = None) -> RunResult:
        """Block until the run completes, fails or is cancelled; ``TimeoutError`` after ``timeout``."""
        return self._wait_for(TERMINAL_STATUSES, timeout, "finish")

    def wait(self, timeout: float | None = None) -> RunResult:
        """Block until the run settles: completed, failed, cancelled or waiting for approval."""
        return self._wait_for(SETTLED_STATUSES, timeout, "settle")

    def _wait_for(self, statuses: frozenset[str], timeout: float | None, verb: str) -> RunResult:
        store = self._runtime.store

        def check() -> RunRow | None:
            row = store.require_run(self.execution_id)
            return row if row.status in statuses else None

        row = wait_for(self._runtime._engine, check, timeout)
        if row is None:
            raise TimeoutError(f"run {self.execution_id} did not {verb} within {timeout}s")
        return build_result(store, row)

    def get(self) -> RunResult:
        """The run as it stands now, without waiting."""
        return self._runtime.get(self.execution_id)

    def approve(self, by: str | None = None, note: str | None = None) -> ApprovalRecord:
        """Approve this run's pending tool call."""
        return self._runtime.approve(self.execution_id, by=by, note=note)

    def reject(self, reason: str, by: str | None = None) -> ApprovalRecord:
        """Reject this run's pending tool call; the model receives ``reason``."""
        return self._runtime.reject(self.execution_id, reason, by=by)

    def cancel(self) -> RunResult:
        """Cancel the run."""
        return self._runtime.cancel(self.execution_id)


class AgentRuntime:
    """Durable execution for OpenAI Agents SDK agents, backed by SQLite under ``home``.

    ``home`` defaults to ``$FRONTDESK_HOME`` or ``./.frontdesk/``. ``model`` (or
    ``$FRONTDESK_MODEL``) overrides every agent's model; ``"rules"`` is the offline rules
    baseline. With ``recover=True`` the runtime takes over, in the background, runs left
    behind by processes that died, whenever it can find their agents. ``busy_timeout`` is how
    long a write waits for another process's lock on the store before failing.
    """

    def __init__(
        self,
        home: str | os.PathLike[str] | None = None,
        agents: Iterable[Agent[Any]] | dict[str, Agent[Any]] = (),
        *,
        model: str | Model | None = None,
        model_provider: ModelProvider | None = None,
        max_message_chars: int = DEFAULT_MAX_MESSAGE_CHARS,
        model_timeout: float = 30.0,
        model_retries: int = 3,
        max_turns: int = 10,
        lease_ttl: float = 30.0,
        poll_interval: float = 1.0,
        recover: bool = True,
        busy_timeout: float = 10.0,
        compact_every: int = 50,
    ) -> None:
        self.home: Path = resolve_home(home)
        self.store = Store(self.home, busy_timeout=busy_timeout, background_checkpoints=True)
        self._checkpointer = Checkpointer(self.store)
        self.registry = AgentRegistry()
        self.selector = ModelSelector(model, model_provider)
        self.max_message_chars = max_message_chars
        self.policy = RetryPolicy(timeout=model_timeout, max_attempts=model_retries + 1)
        items = agents.items() if isinstance(agents, dict) else ((None, a) for a in agents)
        for name, agent in items:
            self.registry.register(agent, name)
        self._engine: LocalEngine = LocalEngine(
            home=self.home,
            store=self.store,
            registry=self.registry,
            selector=self.selector,
            policy=self.policy,
            lease_ttl=lease_ttl,
            poll_interval=poll_interval,
            recover=recover,
            max_turns=max_turns,
            compact_every=compact_every,
        )
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
        self._checkpointer.close()
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
        """Raise a ``ValueError`` subclass for an empty or over-long message."""
        limit = self.max_message_chars if limit is None else limit
        if isinstance(message, str):
            if not message.strip():
                raise EmptyMessage("the message is empty")
            if len(message) > limit:
                raise MessageTooLong(len(message), limit)
        elif not message:
            raise EmptyMessage("the input item list is empty")
        elif not isinstance(message, list | tuple):
            raise TypeError(f"message must be a str or a list of input items, got {type(message)}")

    def _spec(
        self,
        agent: Agent[Any],
        message: str | Sequence[Any],
        context: Any,
        execution_id: str | None = None,
        **kw: Any,
    ) -> RunSpec:
        if not isinstance(agent, Agent):
            raise TypeError(f"expected an agents.Agent, got {type(agent).__name__}")
        self.validate_message(message)
        if execution_id is not None:
            validate_execution_id(execution_id)
            kw["execution_id"] = execution_id
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
    ) -> RunHandle:
        """Start a run and return at once with its handle.

        With ``execution_id`` the start is idempotent: if a run with that id exists (from any
        process), nothing new starts and its handle is returned. Use it to start exactly one
        run per external event, e.g. per Stripe dispute.
        """
        spec = self._spec(agent, message, context, execution_id)
        execution_id, created = self._engine.call(self._engine.start(spec))
        return RunHandle(self, execution_id, created)

    def run(
        self,
        agent: Agent[Any],
        message: str | Sequence[Any],
        *,
        context: Any = None,
        execution_id: str | None = None,
    ) -> RunResult:
        """Run until the run completes, fails, or pauses for approval (``waiting_approval``).

        With ``execution_id``, an existing run with that id is waited for instead of started.
        """
        spec = self._spec(agent, message, context, execution_id)
        return self._engine.call(self._run_and_wait(spec))

    async def run_async(
        self,
        agent: Agent[Any],
        message: str | Sequence[Any],
        *,
        context: Any = None,
        execution_id: str | None = None,
    ) -> RunResult:
        """Async twin of :meth:`run`. The run executes on the caller's event loop, so async
        tools can use clients bound to it; if the caller goes away, the run is handed back
        and resumed from its journal."""
        spec = self._spec(agent, message, context, execution_id)
        return await self._run_and_wait(spec)

    async def _run_and_wait(self, spec: RunSpec) -> RunResult:
        execution_id, _ = await self._engine.start(spec, acknowledge=False)
        row = await self._engine.wait_settled(execution_id)
        if row.status == "running":  # an existing run driven elsewhere: wait for it to settle
            return await asyncio.to_thread(RunHandle(self, execution_id).wait)
        return build_result(self.store, row)

    def stream(
        self, agent: Agent[Any], message: str | Sequence[Any], *, context: Any = None
    ) -> EventStream:
        """Start a run and iterate its events as they happen."""
        return self.start(agent, message, context=context).stream()

    def handle(self, execution_id: str) -> RunHandle:
        """A handle on an existing run; :class:`RunNotFound` if there is none."""
        self.store.require_run(execution_id)
        return RunHandle(self, execution_id)

    # -- approvals ----------------------------------------------------------------------------------

    def approvals(
        self, status: str | None = "pending", execution_id: str | None = None
    ) -> list[ApprovalRecord]:
        """Approval requests, oldest first (pending ones by default)."""
        return self.store.approvals(status=status, execution_id=execution_id)

    def approve(
        self, approval_or_execution_id: str, by: str | None = None, note: str | None = None
    ) -> ApprovalRecord:
        """Approve a pending tool call; the run resumes and exactly that call runs."""
        return self._decide(approval_or_execution_id, True, by=by, note=note, reason=None)

    def reject(
        self, approval_or_execution_id: str, reason: str, by: str | None = None
    ) -> ApprovalRecord:
        """Reject a pending tool call; it never runs and the model receives ``reason``."""
        if not reason or not reason.strip():
            raise EmptyMessage("a rejection needs a reason (the model receives it)")
        return self._decide(approval_or_execution_id, False, by=by, note=None, reason=reason)

    def _decide(
        self, ident: str, approved: bool, *, by: str | None, note: str | None, reason: str | None
    ) -> ApprovalRecord:
        import time

        record, runnable = self.store.decide(
            ident, approved=approved, by=by, note=note, reason=reason, now=time.time()
        )
        self._engine.notify()
        if runnable:
            self._engine.call(self._engine.resume(record.execution_id))
        return record

    # -- history ---------------------------------------------------------------------------------

    def runs(
        self,
        status: str | None = None,
        agent: str | None = None,
        limit: int = 50,
        offset: int = 0,
        conversation_id: str | None = None,
    ) -> list[RunResult]:
        """Run history, newest first (summaries: no events)."""
        rows = self.store.list_runs(
            status=status, agent=agent, limit=limit, offset=offset, conversation_id=conversation_id
        )
        return [build_result(self.store, row) for row in rows]

    def get(self, execution_id: str) -> RunResult:
        """One run with its events, steps and approvals; :class:`RunNotFound` if unknown."""
        return build_result(self.store, self.store.require_run(execution_id))

    def cancel(self, execution_id: str) -> RunResult:
        """Cancel a run that has not finished."""
        row = self._engine.call(self._engine.cancel(execution_id))
        return build_result(self.store, row)

    def retry(self, execution_id: str) -> RunHandle:
        """Resume a failed run: completed steps replay, the failed step runs again."""
        self._engine.retry(execution_id)
        self._engine.notify()
        self._engine.call(self._engine.resume(execution_id))
        return RunHandle(self, execution_id)

    def conversation(
        self,
        conversation_id: str,
        agent: Agent[Any] | None = None,
        context: Any = None,
        *,
        max_input_chars: int = 1000,
        turn_timeout: float | None = None,
    ) -> Conversation:
        """Create or reopen a durable multi-turn conversation (see :mod:`frontdesk.conversations`)."""
        from .conversations import open_conversation

        if agent is not None:
            self.registry.register(agent)
        return open_conversation(
            self,
            conversation_id,
            agent,
            context,
            max_input_chars=max_input_chars,
            turn_timeout=turn_timeout,
        )

    def recover(self) -> list[str]:
        """Take over, now, every orphaned run this process can drive. Returns their ids."""
        return self._engine.call(self._engine.recover_now())


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


def run(agent: Agent[Any], message: str | Sequence[Any], *, context: Any = None) -> RunResult:
    """:meth:`AgentRuntime.run` on the default runtime."""
    return default_runtime().run(agent, message, context=context)


async def run_async(
    agent: Agent[Any], message: str | Sequence[Any], *, context: Any = None
) -> RunResult:
    """:meth:`AgentRuntime.run_async` on the default runtime."""
    return await default_runtime().run_async(agent, message, context=context)


def start(agent: Agent[Any], message: str | Sequence[Any], *, context: Any = None) -> RunHandle:
    """:meth:`AgentRuntime.start` on the default runtime."""
    return default_runtime().start(agent, message, context=context)


def stream(agent: Agent[Any], message: str | Sequence[Any], *, context: Any = None) -> EventStream:
    """:meth:`AgentRuntime.stream` on the default runtime."""
    return default_runtime().stream(agent, message, context=context)


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
