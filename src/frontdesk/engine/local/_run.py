"""One durable run: its journal, its events, and replay.

The SDK drives the agent loop unchanged. frontdesk only sits at its seams:

* every model call goes through :class:`DurableModel`; call *k* of a run is answered from the
  journal if it was already committed, and committed before the loop goes on if it was not;
* every function tool's ``on_invoke_tool`` is wrapped: a completed call (keyed by the model
  call that asked for it and its call id, never by arrival order) returns its recorded result;
* handoffs are wrapped so a replayed handoff restores the context its hook wrote instead of
  running the hook again;
* ``needs_approval`` is wrapped so that a call someone already decided is not asked again.

After a crash the run is re-driven from its input: everything committed replays from the
journal at memory speed, and the loop continues live from the first step that was not.
"""

from __future__ import annotations

import asyncio
import contextvars
import json
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Protocol

from pydantic import TypeAdapter

from ...errors import StoreError
from ...events import Usage, encode_payload
from ...store import (
    AppendEvent,
    ApprovalRecord,
    GroupCommitter,
    InsertRun,
    JournalRow,
    LeaseLost,
    RecordStep,
    Store,
    Write,
    event_insert,
    fence,
    output_text,
)
from .._context import dump_context, restore_into

if TYPE_CHECKING:
    from ..._budget import BudgetMeter
    from ._streaming import TokenPublisher


class StepObserver(Protocol):
    """Told of the steps a run records live (never of those it replays), and of which of
    them are durable: how :mod:`frontdesk.otel` traces runs."""

    def recorded(self, row: JournalRow, previous: JournalRow | None, op: Write) -> None:
        """``op`` will write the journal row ``row`` (replacing ``previous``, if any)."""

    def event(self, key: str, type_: str, agent: str | None, at: float, op: Write) -> None:
        """``op`` will write a new event."""

    def committed(self, ops: list[Write]) -> None:
        """``ops`` are committed."""


_current: contextvars.ContextVar[DurableRun | None] = contextvars.ContextVar(
    "frontdesk_durable_run", default=None
)

_response_adapter: TypeAdapter[Any] | None = None


def current_run() -> DurableRun | None:
    """The durable run driving the current task, if any."""
    return _current.get()


def response_adapter() -> TypeAdapter[Any]:
    """Pydantic adapter that round-trips the SDK's ``ModelResponse``."""
    global _response_adapter
    if _response_adapter is None:
        from agents.items import ModelResponse

        _response_adapter = TypeAdapter(ModelResponse)
    return _response_adapter


def encode_response(response: Any) -> str:
    """Serialize a ``ModelResponse`` for the journal."""
    return response_adapter().dump_json(response, by_alias=True).decode()


def decode_response(text: str) -> Any:
    """Rebuild a ``ModelResponse`` from :func:`encode_response` output."""
    return response_adapter().validate_python(json.loads(text))


def response_text(response: Any) -> str | None:
    """The assistant text in a model response, if any."""
    return output_text(response.output)


class RunHistory:
    """What a resumed run's driver loads before it goes on: its journal, the decisions on
    its tool calls and the keys of its events (read off the event loop)."""

    def __init__(
        self,
        journal: list[JournalRow],
        approvals: list[ApprovalRecord],
        event_keys: set[str],
    ) -> None:
        self.journal = journal
        self.approvals = approvals
        self.event_keys = event_keys

    @classmethod
    def load(cls, store: Store, execution_id: str) -> RunHistory:
        """The run's history as stored (blocking: call it off the event loop)."""
        return cls(
            store.journal(execution_id),
            store.approvals(execution_id=execution_id, limit=2**31),
            store.event_keys(execution_id),
        )


class RunCancelled(Exception):
    """Raised at a step boundary when the run was cancelled."""


class DurableRun:
    """The state of one run while a process drives it."""

    def __init__(
        self,
        *,
        execution_id: str,
        history: RunHistory | None,
        committer: GroupCommitter,
        context: Any,
        context_type: str | None,
        context_json: str | None,
        notify: Callable[[], None],
        owner: str,
        epoch: int,
        insert: InsertRun | None = None,
    ) -> None:
        self.execution_id = execution_id
        self.context = context
        self._committer = committer
        self._notify = notify
        # Every transaction starts with the fence, except the one that inserts the run.
        self._fence = fence(execution_id, owner, epoch)
        self._insert = insert
        self._behind: list[asyncio.Future[None]] = []
        """Commits handed to the store and not waited for yet (see :meth:`commit`)."""
        self._failure: BaseException | None = None
        # ``history`` is None for a run that was just created: nothing to load.
        self.journal: dict[str, JournalRow] = (
            {row.key: row for row in history.journal} if history else {}
        )
        self.decisions: dict[str, ApprovalRecord] = {
            a.call_key: a
            for a in (history.approvals if history else [])
            if a.status in ("approved", "rejected")
        }
        self.event_keys = history.event_keys if history else set()
        self.ordinal = max((r.ordinal for r in self.journal.values()), default=0)
        self.context_type = context_type
        self.last_context_json = context_json
        self.applied_snapshot = 0
        self.model_calls = 0
        self.agent_starts = 0
        self.call_steps: dict[str, int] = {}
        self.usage = Usage()
        self.models: dict[str, str | None] = {}
        """The model name each agent runs on, recorded with its model calls."""
        self.meter: BudgetMeter | None = None
        """Counts the run's calls against its budget, if it has one."""
        self.cancelled = False
        self.tokens: TokenPublisher | None = None
        """Set when this run's model calls stream their text (see :mod:`._streaming`)."""
        self.observer: StepObserver | None = None
        """Traces the run, when it is traced (see :mod:`frontdesk.otel`)."""
        self._buffer: list[Write] = []
        self._flush_handle: asyncio.TimerHandle | None = None
        self._writing = False
        self._commit_lock = asyncio.Lock()
        self.holds_response = False
        """Whether the buffer holds a model's response (see :func:`durable_model_call`)."""

    # -- bookkeeping ----------------------------------------------------------------------

    def next_ordinal(self) -> int:
        self.ordinal += 1
        return self.ordinal

    def event_op(
        self,
        key: str,
        type_: str,
        agent: str | None,
        at: float | None = None,
        ref: str | None = None,
        **payload: Any,
    ) -> AppendEvent | None:
        """An insert for a new event, or None if this run already recorded ``key``."""
        if key in self.event_keys:
            return None
        self.event_keys.add(key)
        at = time.time() if at is None else at
        op = event_insert(
            self.execution_id, key, type_, agent, encode_payload(**payload), at=at, ref=ref
        )
        if self.observer is not None:
            self.observer.event(key, type_, agent, at, op)
        return op

    async def commit(self, ops: list[Write | None], *, wait: bool = True) -> None:
        """Make ``ops`` durable before the run goes on (with any buffered events).

        With ``wait=False``, for a step that replays safely and has no effect outside the
        store (a model's response, a tool's result), on a store whose writes wait on a server:
        hand ``ops`` over and return, so that the round trip overlaps what the run does next.
        A commit is sent only once those handed over before it are durable (a later step
        must never land when an earlier one did not), so nothing with an effect outside the
        store (a tool starting, an approval asked, the run's end) happens before they are,
        and neither does the next model call (see :meth:`landed`); a crash loses no more than
        a commit in flight.

        Raises :class:`LeaseLost`, with nothing written, once this driver no longer holds the
        run's lease; and, with nothing written, the error of an earlier commit not waited for
        that failed.
        """
        # One commit of the run at a time: parallel tool calls each commit their start, and
        # the first carries the response that asked for both; the second must not land (nor
        # its tool run) before it.
        async with self._commit_lock:
            await self.landed()
            real = self._take_buffered()
            real.extend(op for op in ops if op is not None)
            if not real:
                return
            head: Write = self._insert or self._fence
            self._insert = None
            if not wait and self._committer.pipelines:
                self._hand_over(head, real)
                return
            self._writing = True
            try:
                await self._committer.commit([head, *real])
            except (LeaseLost, StoreError) as exc:
                self._failure = self._failure or exc
                raise
            finally:
                self._writing = False
        if self.observer is not None:
            self.observer.committed(real)
        self._notify()

    async def landed(self) -> None:
        """Wait until the commits handed over without waiting are durable; raise what refused
        one. Buffered steps stay buffered."""
        while self._behind:
            behind, self._behind = self._behind, []
            await asyncio.wait(behind)
        if self._failure is not None:
            raise self._failure

    @property
    def halted(self) -> BaseException | None:
        """What stopped this driver's writes: :class:`LeaseLost` or the store's error."""
        return self._failure

    def emit(self, ops: list[Write | None]) -> None:
        """Write ``ops`` with the next commit, or within 50 ms: for steps that replay safely.

        Buffering lets an ``agent_start`` or ``handoff`` ride along with the model call that
        follows it instead of paying for a transaction of its own.
        """
        self._buffer.extend(op for op in ops if op is not None)
        if self._buffer and self._flush_handle is None:
            loop = asyncio.get_running_loop()
            self._flush_handle = loop.call_later(0.05, self._flush_buffered)

    def _take_buffered(self) -> list[Write]:
        if self._flush_handle is not None:
            self._flush_handle.cancel()
            self._flush_handle = None
        taken, self._buffer = self._buffer, []
        self.holds_response = False
        return taken

    def _flush_buffered(self) -> None:
        self._flush_handle = None
        if self._writing or any(not future.done() for future in self._behind):
            # A commit is on its way: the buffer goes after it (with the next one, or later).
            self._flush_handle = asyncio.get_running_loop().call_later(0.05, self._flush_buffered)
            return
        ops = self._take_buffered()
        if ops:
            head: Write = self._insert or self._fence
            self._insert = None
            self._hand_over(head, ops)

    def _hand_over(self, head: Write, ops: list[Write]) -> None:
        """Hand ``ops`` to the store without waiting; the next commit waits for them."""
        future = self._committer.submit([head, *ops])
        future.add_done_callback(lambda done: self._landed(done, ops))
        self._behind.append(future)

    def _landed(self, future: asyncio.Future[None], ops: list[Write]) -> None:
        error = None if future.cancelled() else future.exception()
        if error is not None:
            # Whatever refused it, the steps are not stored: the run must not go on.
            self._failure = self._failure or error
        elif self.observer is not None:
            self.observer.committed(ops)
        self._notify()

    def check_cancelled(self) -> None:
        if self.cancelled:
            raise RunCancelled(f"run {self.execution_id} was cancelled")

    def context_snapshot(self) -> str | None:
        """The context's JSON if it changed since the last snapshot, else None."""
        _, data = dump_context(self.context)
        if data == self.last_context_json:
            return None
        self.last_context_json = data
        return data

    def restore_snapshot(self, row: JournalRow) -> None:
        """On replay, bring the context to what it was right after ``row``'s step."""
        if row.context_json is None or row.ordinal <= self.applied_snapshot:
            return
        self.applied_snapshot = row.ordinal
        self.context = restore_into(self.context, self.context_type, row.context_json)
        self.last_context_json = row.context_json

    def journal_op(
        self,
        key: str,
        *,
        kind: str,
        state: str,
        agent: str | None,
        name: str | None = None,
        args_json: str | None = None,
        data_json: str | None = None,
        context_json: str | None = None,
        started_at: float,
        finished_at: float | None = None,
        attempts: int = 1,
    ) -> RecordStep:
        existing = self.journal.get(key)
        ordinal = existing.ordinal if existing else self.next_ordinal()
        row = JournalRow(
            key,
            kind,
            state,
            agent,
            name,
            args_json,
            data_json,
            context_json,
            attempts,
            started_at,
            finished_at,
            ordinal,
        )
        self.journal[key] = row
        # Insert-once: a step that is done in the store is never replaced (see RecordStep).
        op = RecordStep(self.execution_id, row)
        if self.observer is not None:
            self.observer.recorded(row, existing, op)
        return op

    # -- model calls ----------------------------------------------------------------------

    def note_response(self, k: int, response: Any, model: str | None = None) -> None:
        """Remember which model call asked for which tool call, and count its usage (on
        ``model``, against the run's budget)."""
        for item in response.output:
            call_id = getattr(item, "call_id", None)
            if call_id:
                self.call_steps[call_id] = k
        usage = response.usage
        self.usage = self.usage + Usage(
            usage.requests, usage.input_tokens, usage.output_tokens, usage.total_tokens
        )
        if self.meter is not None:
            self.meter.add(model, usage.input_tokens, usage.output_tokens)

    def call_key(self, call_id: str) -> str:
        """``"<model call>:<call id>"``: unique even if a model reuses call ids across turns."""
        return f"{self.call_steps.get(call_id, self.model_calls)}:{call_id}"


async def durable_model_call(
    agent_name: str,
    call: Callable[[], Awaitable[Any]],
    run: DurableRun,
    handoffs: frozenset[str] = frozenset(),
) -> Any:
    """Answer model call *k* from the journal, or make it and commit it.

    Nothing leaves the process after a response before it is durable, but it need not be
    written by itself: a response that asks for a tool, or answers, rides with the commit of
    what comes next (the tool's start, an approval asked, the run's end); one that only hands
    off (``handoffs`` names the agent's handoff tools) is handed over at once, since the next
    model call, which waits for it, comes next. Either way the next live model call waits
    until the response is durable.
    """
    run.model_calls += 1
    k = run.model_calls
    key = f"model:{k}"
    row = run.journal.get(key)
    model = run.models.get(agent_name)
    if row is not None and row.state == "done" and row.data_json is not None:
        response = decode_response(row.data_json)
        run.note_response(k, response, row.name or model)
        return response
    run.check_cancelled()
    if run.meter is not None:
        # Only before a live call: what the journal answers was spent already.
        run.meter.check(k - 1, run.usage.total_tokens)
    # A live call starts only once the steps before it are durable, so that a crash never
    # makes a call whose predecessors have to be made again.
    if run.holds_response:
        await run.commit([])
    else:
        await run.landed()
    started = time.time()
    response = await call()
    finished = time.time()
    run.note_response(k, response, model)
    usage = Usage(
        response.usage.requests,
        response.usage.input_tokens,
        response.usage.output_tokens,
        response.usage.total_tokens,
    )
    ops: list[Write | None] = [
        run.journal_op(
            key,
            kind="model",
            state="done",
            agent=agent_name,
            name=model,
            data_json=encode_response(response),
            started_at=started,
            finished_at=finished,
        )
    ]
    text = response_text(response)
    if text is not None:
        ops.append(
            run.event_op(f"message:{k}", "message", agent_name, ref=key, usage=usage, model_call=k)
        )
    calls = [getattr(item, "name", None) for item in response.output if _is_call(item)]
    if calls and all(name in handoffs for name in calls):
        await run.commit(ops, wait=False)
    else:
        run.emit(ops)
        run.holds_response = True
    return response


def _is_call(item: Any) -> bool:
    return getattr(item, "type", None) == "function_call"
