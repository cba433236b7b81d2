"""The store's interface: what the engine, the runtime, the CLI and the console ask of a
database, in the domain's words.

:class:`Store` is an abstract base class with one subclass per backend (``SQLiteStore`` in
:mod:`frontdesk.store.sqlite`, the default; ``PostgresStore`` in :mod:`frontdesk.store.postgres`).
No SQL string crosses it and no driver's exception escapes it: every backend translates its
errors into frontdesk's (:class:`~frontdesk.errors.StoreError` and its subclasses,
:class:`LeaseLost`, :class:`StepAlreadyRecorded`, :class:`RunAlreadyExists`,
:class:`~frontdesk.errors.SchemaTooNew`, ...).

* **Writes** are data (:mod:`._writes`): :meth:`Store.write` applies a sequence of them in one
  transaction, all or none, guards included.
* **Reads** are named methods returning records (:mod:`._records`), pages (:class:`Page`, by
  cursor) or plain values.
* **Read-check-write** sections (deciding an approval, cancelling a run, claiming a
  conversation's turn) are written once, backend-neutrally (:mod:`._decisions`,
  :mod:`._sections`) against :class:`StoreTransaction`: a transaction whose typed reads see
  and lock what it then writes, so however many processes race, each section runs as if alone.

Every method may be called from any thread. Methods block; the engine calls them off the event
loop that drives runs.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any, ClassVar

from ..errors import RunNotFound, StoreError
from ..events import Event
from ._approvals import ApprovalRecord
from ._changes import Changes, Runnable
from ._listing import ConversationRow, Page, RunFilter
from ._records import ConversationState, JournalRow, RunRow, StoreInfo
from ._tool_calls import ItemSegment, ToolCallRecord
from ._usage import UsageRow
from ._writes import Write

if TYPE_CHECKING:
    from ._forks import ForkSeed, Lineage, StoredEvent
    from ._sections import TurnClaim, TurnPlanner


class StoreTransaction(ABC):
    """One open transaction of a read-check-write section.

    Its reads lock what they read until the transaction ends (SQLite takes the database's
    write lock when the transaction begins; PostgreSQL locks the rows read), so the checks a
    section makes still hold when it writes. Leaving the ``with`` block commits; an exception
    rolls everything back.
    """

    @abstractmethod
    def run_status(self, execution_id: str) -> str | None:
        """The run's status, or None if there is no such run."""

    @abstractmethod
    def approval(self, approval_id: str) -> ApprovalRecord | None:
        """The approval with this id, or None."""

    @abstractmethod
    def run_approvals(self, execution_id: str) -> list[ApprovalRecord]:
        """Every approval of the run, oldest request first."""

    @abstractmethod
    def pending_approvals(self, execution_id: str) -> int:
        """How many of the run's approvals are still pending."""

    @abstractmethod
    def conversation(self, conversation_id: str) -> ConversationState | None:
        """The conversation's state, or None if there is no such conversation."""

    @abstractmethod
    def conversation_lines(self, conversation_id: str) -> list[str]:
        """Every history line of the conversation, oldest first."""

    @abstractmethod
    def conversation_item_count(self, conversation_id: str) -> int:
        """How many input items the conversation holds (its snapshot's and its log's)."""

    @abstractmethod
    def turn_start(self, conversation_id: str, turn: int) -> int:
        """The item index ``turn`` starts at; a turn without a record starts where the nearest
        earlier recorded turn does, or at 0 (never later)."""

    @abstractmethod
    def write(self, writes: Iterable[Write]) -> None:
        """Apply ``writes`` as part of this transaction (guards refuse all of it)."""


class SentWrite(ABC):
    """A write handed to the database whole, its answer not read yet (see
    :meth:`Store.send`). Exactly one of :meth:`finish` and :meth:`abandon` ends it."""

    timeout: float = 30.0
    r"""Seconds to wait for the answer before :meth:`abandon`\ ing it."""

    @abstractmethod
    def fileno(self) -> int:
        """The socket the answer arrives on (to wait for it with an event loop's reader)."""

    @abstractmethod
    def ready(self) -> bool:
        """Whether the whole answer is there (or the connection is gone), reading what has
        arrived; never blocks."""

    @abstractmethod
    def finish(self) -> None:
        """Read the answer (waiting for it if it is not all there) and give the connection
        back; raises what refused the write, as :meth:`Store.write` would."""

    @abstractmethod
    def abandon(self) -> StoreError:
        """Give up on the answer (it took too long): the connection is closed, and whether the
        write committed is unknown; returns the error that says so."""


class Store(ABC):
    """A frontdesk database: runs, their journal and events, approvals and conversations.

    Subclasses implement the abstract methods for one database (and call
    ``super().__init__()``); everything else (requiring a run, forks, decisions, cancellation,
    claiming turns) is written once on top of them.
    """

    backend: ClassVar[str]
    """The backend's name in URLs and ``frontdesk db info``: ``sqlite`` or ``postgresql``."""
    local_writes: ClassVar[bool] = False
    """Whether a write finishes about as fast as a memory copy (a local file, no round trip):
    then a loop that drives only one run may write in place (see :mod:`._commit`)."""

    def try_write(self, writes: Iterable[Write]) -> bool:
        """Apply ``writes`` as :meth:`write` does, but only if that needs no waiting: no lock
        held by another connection, no round trip. Returns False, with nothing written, when it
        would have to wait; a backend whose writes always wait (a server) never writes here."""
        return False

    def __init__(self) -> None:
        self.changes = Changes()
        """Notified after every write this store commits (and, where the backend can tell,
        after other processes' writes): what waiting threads block on."""
        self.runnable = Runnable()
        """Announced when another process made a run runnable without a driver, where the
        backend can tell: what an engine's recovery scan wakes on."""

    # -- the database itself -------------------------------------------------------------------

    def clock(self) -> float:
        """Now, in seconds since the epoch, by the clock every process sharing this store
        tells lease expiry and approval deadlines by: this host's for a local file; a
        server's clock where the store has one."""
        return time.time()

    @property
    @abstractmethod
    def url(self) -> str:
        """Where the store is, as a URL with its password hidden."""

    @abstractmethod
    def info(self) -> StoreInfo:
        """The backend, the URL and the schema versions (the database's and the code's)."""

    @abstractmethod
    def migrate(self) -> tuple[int, int]:
        """Upgrade the schema to the code's version; returns the versions before and after.
        Raises :class:`~frontdesk.errors.SchemaTooNew` for a database written by a newer
        frontdesk, leaving it untouched."""

    @abstractmethod
    def close(self) -> None:
        """Release every connection (and background thread) this store holds."""

    def app_connection(self, schema: str) -> AbstractContextManager[Any] | None:
        """A DB-API connection to this store's database, in autocommit mode, whose tables are
        those of the schema ``schema`` (a lowercase SQL identifier, e.g. an app's name): where
        an app keeps its own data beside the store's. None when the backend has no room for
        an app's tables (SQLite: each app keeps a file of its own in the runtime's home)."""
        return None

    # -- writing -----------------------------------------------------------------------------------

    @abstractmethod
    def write(self, writes: Iterable[Write]) -> None:
        """Apply ``writes`` in one transaction: all of them or none.

        A :class:`~._writes.Fence` that does not hold refuses everything with
        :class:`LeaseLost`; a :class:`~._writes.RecordStep` for a step already done, with
        :class:`StepAlreadyRecorded`; an :class:`~._writes.InsertRun` whose id is taken, with
        :class:`RunAlreadyExists`. Notifies :attr:`changes` once committed.
        """

    def send(self, writes: Iterable[Write]) -> SentWrite | None:
        """Hand ``writes`` to the database as :meth:`write` would apply them, without waiting
        for its answer, where the backend can (a server); None, with nothing done, where it
        cannot right now (then :meth:`write` them). The caller reads the answer through the
        returned :class:`SentWrite`, which raises what :meth:`write` would have raised."""
        return None

    @abstractmethod
    def transaction(self) -> AbstractContextManager[StoreTransaction]:
        """A transaction for a read-check-write section (see :class:`StoreTransaction`)."""

    @abstractmethod
    def claim(
        self, execution_id: str, owner: str, expires: float, now: float, *, steal_from: str | None
    ) -> int | None:
        """Take a running run's lease for ``owner`` until ``expires`` if it is free, expired,
        ``owner``'s own, or held by ``steal_from`` (a provably dead process).

        Returns the lease's new fencing token (every claim increases it), or None if the lease
        could not be taken.
        """

    # -- runs ----------------------------------------------------------------------------------------

    def cancel_run(self, execution_id: str, now: float) -> None:
        """Cancel a run nobody drives (or whose driver is gone): its error event, the
        ``cancelled`` status, its pending approvals cancelled and its conversation freed, in
        one transaction. :class:`~frontdesk.errors.InvalidRunState` if it already ended and
        :class:`~frontdesk.errors.RunNotFound` if there is no such run (nothing changes)."""
        from ._sections import cancel_run

        cancel_run(self, execution_id, now)

    @abstractmethod
    def get_run(self, execution_id: str) -> RunRow | None:
        """The run with this id, or None."""

    def require_run(self, execution_id: str) -> RunRow:
        """The run with this id; :class:`~frontdesk.errors.RunNotFound` if there is none."""
        row = self.get_run(execution_id)
        if row is None:
            raise RunNotFound(execution_id)
        return row

    @abstractmethod
    def runs_page(
        self, where: RunFilter = RunFilter(), *, limit: int = 50, cursor: str | None = None
    ) -> Page[RunRow]:
        """Runs newest first, filtered by ``where``, one page of at most ``limit`` (checked
        with :func:`~._listing.page_size`) from ``cursor`` on; the page's ``next_cursor``
        reads the next one. A cursor this backend did not make raises
        :class:`~frontdesk.errors.InvalidInput`."""

    @abstractmethod
    def run_ids(self, prefix: str) -> list[str]:
        """The ids of every run whose id starts with ``prefix`` (taken literally)."""

    @abstractmethod
    def claimable_runs(self, now: float, limit: int = 100) -> list[RunRow]:
        """Running runs whose lease is free or expired at ``now``, oldest first."""

    @abstractmethod
    def running_leases(self) -> list[tuple[str, str | None, float | None]]:
        """``(execution_id, lease_owner, lease_expires)`` of every running run."""

    @abstractmethod
    def cancel_requests(self, owner: str) -> list[str]:
        """The runs leased by ``owner`` that someone asked to cancel."""

    # -- journal and events ----------------------------------------------------------------------------

    @abstractmethod
    def journal(self, execution_id: str) -> list[JournalRow]:
        """The run's durable steps in the order they started."""

    @abstractmethod
    def events(self, execution_id: str, after: int = 0, limit: int | None = None) -> list[Event]:
        """The run's events numbered after ``after``, in order, their payloads completed from
        the journal rows (or the run's output) they refer to; at most ``limit``."""

    @abstractmethod
    def event_keys(self, execution_id: str) -> set[str]:
        """The keys of the run's events."""

    @abstractmethod
    def last_event_seq(self, execution_id: str) -> int:
        """The number of the run's last event (0 if it has none)."""

    @abstractmethod
    def stored_events(self, execution_id: str) -> list[StoredEvent]:
        """The run's events as stored, their payloads not completed (for forks)."""

    # -- forks ------------------------------------------------------------------------------------------

    @abstractmethod
    def lineage(self, execution_id: str) -> Lineage:
        """The run's parent (if it is a fork) and the runs forked from it."""

    @abstractmethod
    def start_context(self, execution_id: str) -> tuple[bool, str | None] | None:
        """``(known, context_json)``: the context the run started with, when completing the
        run replaced it (``known`` is False for runs completed before it was kept); None when
        the run's stored context is still the one it started with."""

    def insert_fork(self, seed: ForkSeed) -> None:
        """Store a fork: its run, its copied steps, their approvals and events, in one
        transaction; :class:`RunAlreadyExists` if its id is taken (nothing is written)."""
        from ._forks import fork_writes

        self.write(fork_writes(seed))

    # -- approvals ------------------------------------------------------------------------------------

    @abstractmethod
    def approvals(
        self, *, execution_id: str | None = None, status: str | None = None, limit: int = 200
    ) -> list[ApprovalRecord]:
        """Approvals, oldest request first, optionally of one run and in one status."""

    @abstractmethod
    def approvals_page(
        self,
        *,
        status: str | None = "pending",
        execution_id: str | None = None,
        newest_first: bool = False,
        limit: int = 50,
        cursor: str | None = None,
    ) -> Page[ApprovalRecord]:
        """Approvals by request time (oldest first unless ``newest_first``), filtered by
        status and run, one page at a time (as :meth:`runs_page`)."""

    @abstractmethod
    def due_approvals(self, now: float, limit: int = 100) -> list[ApprovalRecord]:
        """Pending requests past their deadline at ``now`` not escalated yet, earliest first."""

    def decide(
        self,
        approval_or_execution_id: str,
        *,
        approved: bool,
        by: str | None,
        note: str | None,
        reason: str | None,
        now: float,
        args: dict[str, Any] | None = None,
    ) -> tuple[ApprovalRecord, bool]:
        """Record a person's decision; returns the decided approval and whether its run can
        now resume (see :func:`._decisions.decide`). Nothing changes if it is refused."""
        from ._decisions import decide

        return decide(
            self,
            approval_or_execution_id,
            approved=approved,
            by=by,
            note=note,
            reason=reason,
            now=now,
            args=args,
        )

    def expire(self, approval_id: str, now: float) -> tuple[ApprovalRecord, bool] | None:
        """Reject or escalate one request past its deadline (see :func:`._decisions.expire`);
        None if another process got to it first or it is not due."""
        from ._decisions import expire

        return expire(self, approval_id, now)

    # -- conversations --------------------------------------------------------------------------------

    @abstractmethod
    def conversation(self, conversation_id: str) -> ConversationState | None:
        """The conversation's state, or None if there is no such conversation."""

    @abstractmethod
    def conversation_lines(self, conversation_id: str, start: int = 0) -> list[str]:
        """The conversation's history lines from line ``start`` on, oldest first."""

    def claim_turn(
        self,
        conversation_id: str,
        chat_length: int | None,
        execution_id: str,
        now: float,
        plan: TurnPlanner | None = None,
    ) -> TurnClaim:
        """Reserve the conversation's next turn for ``execution_id``; raises
        :class:`~frontdesk.errors.StaleConversation` (with the current history, nothing
        changed) if another turn holds it or ``chat_length`` is not the history's length.
        ``plan`` computes, inside the same transaction, what the turn sends of the items
        before it (see :class:`TurnClaim`)."""
        from ._sections import claim_turn

        return claim_turn(self, conversation_id, chat_length, execution_id, now, plan)

    @abstractmethod
    def conversation_items(self, conversation_id: str) -> list[Any]:
        """The conversation's input items: its snapshot followed by its log."""

    @abstractmethod
    def conversation_item_range(self, conversation_id: str, start: int, end: int) -> list[Any]:
        """Input items ``start`` to ``end`` (excluded), reading only those."""

    @abstractmethod
    def turn_start(self, conversation_id: str, turn: int) -> int:
        """The item index ``turn`` starts at (see :meth:`StoreTransaction.turn_start`)."""

    @abstractmethod
    def conversations_page(
        self, *, limit: int = 50, cursor: str | None = None
    ) -> Page[ConversationRow]:
        """Conversations, most recently active first, with their token totals over every
        turn, one page at a time (as :meth:`runs_page`)."""

    # -- usage --------------------------------------------------------------------------------------

    @abstractmethod
    def run_usage(self, execution_ids: Sequence[str]) -> list[UsageRow]:
        """The model usage of these runs, by run, agent and model."""

    @abstractmethod
    def conversation_usage(self, conversation_id: str) -> list[UsageRow]:
        """The model usage of every turn of a conversation so far."""

    @abstractmethod
    def window_usage(self, since: float | None, until: float | None) -> list[UsageRow]:
        """The model usage of the runs created in ``[since, until)`` (None: open)."""

    @abstractmethod
    def window_statuses(self, since: float | None, until: float | None) -> dict[str, int]:
        """How many runs created in ``[since, until)`` have each status."""

    # -- the tool calls journal and item segments (see :mod:`._tool_calls`) ------------------------

    @abstractmethod
    def start_tool_call(
        self,
        *,
        idempotency_key: str,
        workflow_id: str,
        call_id: str,
        agent_name: str,
        tool_name: str,
        args_json: str,
        now: float,
    ) -> ToolCallRecord:
        """Record that a tool starts running for the call ``idempotency_key``, in one
        transaction; returns the call's record as it now is. A new call starts with one
        attempt; a call started before (its worker died) counts one more; a call already done
        is returned as it is, unchanged: its tool must not run again."""

    @abstractmethod
    def finish_tool_call(
        self,
        idempotency_key: str,
        *,
        output_json: str,
        context_type: str | None,
        context_json: str | None,
        now: float,
    ) -> None:
        """Record the call done: its tool's output and the context after it."""

    @abstractmethod
    def tool_call(self, idempotency_key: str) -> ToolCallRecord | None:
        """The journal's record of one tool call, or None."""

    @abstractmethod
    def tool_calls(self, workflow_id: str) -> list[ToolCallRecord]:
        """Every journaled tool call of a workflow, in the order they were first started."""

    @abstractmethod
    def save_item_segment(self, ref: str, parent: str | None, items_json: str, count: int) -> bool:
        """Store the ``count`` items of ``items_json`` (a JSON array) as the segment ``ref``
        after the segment ``parent`` (None: the first); storing a segment again changes
        nothing. False, with nothing written, when ``parent`` is not stored."""

    @abstractmethod
    def item_chain(self, ref: str) -> list[ItemSegment]:
        """The segment ``ref`` and every segment before it, oldest first (empty when ``ref``
        is not stored); see :func:`._tool_calls.chain_items`."""
