"""What callers get back about a run: ``RunResult``, ``RunHandle`` and ``EventStream``."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from ._budget import Budget, BudgetPlan
from .engine._context import load_context
from .engine._conversation import user_input
from .engine._types import TokenFeed
from .events import Event, Usage
from .store import (
    SETTLED_STATUSES,
    TERMINAL_STATUSES,
    ApprovalRecord,
    JournalRow,
    RunRow,
    Store,
)

if TYPE_CHECKING:
    from .runtime import AgentRuntime


@dataclass(frozen=True)
class RunResult:
    """A run as it stands: its output once completed, and its whole history.

    ``events``, ``approvals`` and ``steps`` are read from the store on first access.
    """

    execution_id: str
    status: str
    """``running``, ``waiting_approval``, ``completed``, ``failed``, ``cancelled`` or
    ``budget_exceeded``."""
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
    agent_ref: str | None = None
    """Where any process finds the starting agent again (``module:attribute`` or a name)."""
    budget: Budget | None = None
    """The budget the run is held to (its conversation's, over all its turns, for a turn)."""
    _store: Store | None = field(default=None, repr=False, compare=False)
    _cache: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def store(self) -> Store | None:
        """The store the run was read from, to read more of it (None for a result not read
        from a store)."""
        return self._store

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
        # A conversation turn stores where it starts in the conversation; its input is the message.
        input=user_input(row),
        error=row.error,
        note=row.note,
        model_label=row.model_label,
        context=context,
        conversation_id=row.conversation_id,
        agent_ref=row.agent_ref,
        budget=BudgetPlan.from_json(row.budget_json).budget if row.budget_json else None,
        _store=store,
    )


class EventStream(Iterator[Event]):
    """Events of one run, from a sequence number on, then live as they happen.

    Iteration ends when the run has finished or is waiting for an approval and every event
    has been delivered. ``get_result()`` waits for the run to end and returns its result.

    While this process drives a run that streams its model calls (``runtime.stream(...)`` or
    ``AgentRuntime(stream_tokens=True)``), ``text_delta`` events come too, each in its place:
    after the events that preceded its model call, before that call's ``message``. They are
    live only (see :class:`~frontdesk.events.Event`); reading the run again from a sequence
    number gives the persisted events alone.
    """

    def __init__(
        self, handle: RunHandle, after: int = 0, poll: float = 0.2, feed: TokenFeed | None = None
    ) -> None:
        self._handle = handle
        self._last = after
        self._poll = poll
        self._buffer: list[Event] = []
        self._ended = False
        self._feed = feed
        self._read = 0
        """How many entries of the feed were taken (delivered or skipped)."""

    @property
    def last_seq(self) -> int:
        """Sequence number of the last persisted event delivered."""
        return self._last

    def __iter__(self) -> EventStream:
        return self

    def __next__(self) -> Event:
        runtime = self._handle._runtime
        while not self._buffer:
            if self._ended:
                raise StopIteration
            runtime.wait_until(self._check, None, self._poll)
        event = self._buffer.pop(0)
        if event.seq:
            self._last = event.seq
        return event

    def _live(self) -> TokenFeed | None:
        if self._feed is None:
            self._feed = self._handle._runtime.token_feed(self._handle.execution_id)
        return self._feed

    def _check(self) -> bool | None:
        store = self._handle._runtime.store
        execution_id = self._handle.execution_id
        # A delta published after the last event delivered comes before any event stored
        # later (its model call's events are stored after its text): no need to read them.
        if self._take_live(self._last):
            return True
        events = store.events(execution_id, after=self._last)
        if not events:
            row = store.require_run(execution_id)
            if row.status not in SETTLED_STATUSES:
                return None
            # Re-read once: the final events commit with the status change.
            events = store.events(execution_id, after=self._last)
            self._ended = True
        # The feed is read after the store: any delta it holds that precedes one of these
        # events was published before that event was stored, so it is there to merge.
        last = self._last
        for event in events:
            self._take_live(event.seq - 1, skip_before=last)
            self._buffer.append(event)
            last = event.seq
        self._take_live(last, skip_before=self._last)
        return True if self._buffer or self._ended else None

    def _take_live(self, upto: int, skip_before: int | None = None) -> bool:
        """Buffer the feed's deltas that come after event ``upto`` at the latest, skipping
        those placed before event ``skip_before`` (already delivered). Returns whether any."""
        feed = self._live()
        if feed is None:
            return False
        floor = self._last if skip_before is None else skip_before
        taken = 0
        found = False
        for after_seq, event in feed.read(self._read):
            if after_seq > upto:
                break
            taken += 1
            if after_seq >= floor:
                self._buffer.append(event)
                found = True
        self._read += taken
        return found

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

        row = self._runtime.wait_until(check, timeout)
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
