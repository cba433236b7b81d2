"""The durable writes the engine and the runtime make, as data.

Every change to the store is one of these frozen dataclasses. :meth:`Store.write` applies a
sequence of them in one transaction, all or none; each backend compiles them into its own SQL.
No SQL string crosses the store's interface.

Two kinds are guards and refuse the whole transaction they are part of:

* :class:`Fence` lets a transaction go on only while its writer still holds the run's lease
  under the fencing token it claimed with; otherwise nothing is written and :class:`LeaseLost`
  is raised (see :mod:`._fence`).
* :class:`RecordStep` is insert-once: a step the journal already holds as ``done`` is never
  replaced, and a second result for it raises :class:`StepAlreadyRecorded`.

:class:`InsertRun` refuses with :class:`RunAlreadyExists` when the id is taken. Every other
kind applies to whatever rows match it (none is fine).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any

from ._approvals import ApprovalRecord
from ._records import JournalRow, RunRow

SETTLE_COLUMNS = frozenset(
    f.name for f in fields(RunRow) if f.name not in ("execution_id", "agent_ref", "created_at")
)
"""The run columns :class:`SettleRun` may set."""


# -- runs -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Fence:
    """Go on only while ``owner`` holds the run's lease at ``epoch`` and the run is running;
    else refuse the whole transaction with :class:`LeaseLost`. Put it first."""

    execution_id: str
    """The run."""
    owner: str
    """The lease owner the writer claimed as."""
    epoch: int
    """The fencing token it claimed with."""


@dataclass(frozen=True)
class InsertRun:
    """Store a new run exactly as ``row`` describes it; :class:`RunAlreadyExists` if its id
    is taken (then nothing of the transaction is written)."""

    row: RunRow
    """The run as it is stored."""
    parent_id: str | None = None
    """For a fork: the run it was forked from."""
    fork_step: int | None = None
    """For a fork: the first step it runs live."""


@dataclass(frozen=True)
class SettleRun:
    """Set some of a run's columns, unless it already ended: a terminal status is final."""

    execution_id: str
    """The run."""
    columns: Mapping[str, Any]
    """Column name (a :class:`RunRow` field in :data:`SETTLE_COLUMNS`) to its new value."""

    def __post_init__(self) -> None:
        unknown = set(self.columns) - SETTLE_COLUMNS
        if unknown:
            raise ValueError(f"SettleRun cannot set {sorted(unknown)}")


@dataclass(frozen=True)
class RetryRun:
    """Make a failed or ``budget_exceeded`` run runnable again (the next attempt, no lease);
    a run in any other status is left alone."""

    execution_id: str
    """The run."""
    at: float
    """When (Unix time)."""
    budget_json: str | None = None
    """Its new budget, or None to keep the one it has."""


@dataclass(frozen=True)
class CancelRun:
    """Mark a run cancelled (no lease, ``cancel_requested``) and cancel its pending approvals."""

    execution_id: str
    """The run."""
    at: float
    """When (Unix time)."""


@dataclass(frozen=True)
class ResumeRun:
    """Make a run that waited for approval runnable: ``running`` with no lease."""

    execution_id: str
    """The run."""
    at: float
    """When (Unix time)."""


@dataclass(frozen=True)
class RequestCancel:
    """Ask a run's driver, in whichever process, to cancel it at its next heartbeat."""

    execution_id: str
    """The run."""


@dataclass(frozen=True)
class SetNote:
    """Say on a run why it is not progressing (None clears it)."""

    execution_id: str
    """The run."""
    note: str | None
    """The note."""


# -- leases -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class RenewLeases:
    """Extend ``owner``'s leases on the running runs among ``execution_ids``."""

    owner: str
    """The lease owner."""
    execution_ids: Sequence[str]
    """The runs it still drives."""
    expires: float
    """The leases' new expiry (Unix time)."""


@dataclass(frozen=True)
class ReleaseLease:
    """Give back ``owner``'s lease on a running run (only the one claimed at ``epoch``, if
    given), so another process resumes it."""

    execution_id: str
    """The run."""
    owner: str
    """The lease owner."""
    epoch: int | None = None
    """The fencing token the lease was claimed with; None: whichever."""


@dataclass(frozen=True)
class ReleaseLeases:
    """Give back every lease ``owner`` holds on a running run."""

    owner: str
    """The lease owner."""


# -- journal and events -----------------------------------------------------------------------


@dataclass(frozen=True)
class RecordStep:
    """Insert a journal row, or replace one whose step is not done; a done row is kept and
    the transaction refused with :class:`StepAlreadyRecorded`."""

    execution_id: str
    """The run."""
    step: JournalRow
    """The row."""


@dataclass(frozen=True)
class AppendEvent:
    """Append an event to a run, numbered after the run's last event by the transaction that
    writes it (so no two writers ever pick the same number)."""

    execution_id: str
    """The run."""
    key: str
    """The event's key in its run (its driver writes each key once)."""
    type: str
    """The event's type."""
    agent: str | None
    """The agent it is about."""
    data_json: str
    """Its payload as JSON."""
    at: float
    """When it happened (Unix time)."""
    ref: str | None = None
    """The journal row holding the output it reports, if any (completed on read)."""


# -- approvals ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class RequestApproval:
    """Store a new pending approval request; a call already asked about is kept as it is."""

    record: ApprovalRecord
    """The request (its status is stored as ``pending``)."""


@dataclass(frozen=True)
class DecideApproval:
    """Record a decision on an approval request."""

    approval_id: str
    """The request."""
    status: str
    """``approved`` or ``rejected``."""
    at: float
    """When (Unix time)."""
    by: str | None
    """Who decided."""
    note: str | None = None
    """The approver's note."""
    reason: str | None = None
    """Why it was rejected."""
    edited_args: Mapping[str, Any] | None = None
    """The arguments the call runs with, when the approver edited them."""


@dataclass(frozen=True)
class EscalateApproval:
    """Mark a pending request as escalated for passing its deadline undecided."""

    approval_id: str
    """The request."""
    at: float
    """When (Unix time)."""


@dataclass(frozen=True)
class CopyApproval:
    """Copy an approval (every column, whatever later versions add) to another run: a fork's
    copy of its parent's decision."""

    source_id: str
    """The approval copied."""
    approval_id: str
    """The copy's id."""
    execution_id: str
    """The run the copy belongs to."""


# -- conversations ------------------------------------------------------------------------------


@dataclass(frozen=True)
class CreateConversation:
    """Store a new conversation with no turns; an existing one is kept as it is."""

    conversation_id: str
    """Its id."""
    agent_ref: str
    """Where its starting agent is found."""
    current_agent: str
    """The agent that answers the first message."""
    context_type: str | None
    """The import path of the context's type."""
    context_json: str | None
    """The initial context as JSON."""
    at: float
    """When (Unix time)."""


@dataclass(frozen=True)
class SetConversationBudget:
    """Replace the budget a conversation counts over all its turns."""

    conversation_id: str
    """The conversation."""
    budget_json: str | None
    """The budget's limits as JSON; None: the runtime's."""


@dataclass(frozen=True)
class SetConversationMemory:
    """Replace a conversation's memory policy."""

    conversation_id: str
    """The conversation."""
    memory_json: str | None
    """The policy as JSON; None: the agents see every item."""


@dataclass(frozen=True)
class StoreSummary:
    """Store the summary of a conversation's first ``turns`` turns, unless the one stored
    already covers as many."""

    conversation_id: str
    """The conversation."""
    turns: int
    """The summary covers turns 1 to ``turns``."""
    summary_json: str
    """The summary as JSON."""


@dataclass(frozen=True)
class ClaimTurn:
    """Reserve a conversation's next turn for a run (its ``pending_run``)."""

    conversation_id: str
    """The conversation."""
    execution_id: str
    """The turn's run."""
    at: float
    """When (Unix time)."""


@dataclass(frozen=True)
class ReleaseTurn:
    """Free a conversation whose turn failed or was cancelled (nothing of it is recorded);
    only if that turn still holds it."""

    conversation_id: str
    """The conversation."""
    execution_id: str
    """The turn's run."""
    at: float
    """When (Unix time)."""


@dataclass(frozen=True)
class RecordTurn:
    """Record a finished turn: its history lines, its new input items and the conversation's
    new state; only if that turn still holds the conversation."""

    conversation_id: str
    """The conversation."""
    execution_id: str
    """The turn's run."""
    turn: int
    """The turn's number."""
    start: int
    """The index of the conversation's first input item sent before the turn's message (its
    ``base_len``): where a memory window may later start."""
    first_line: int
    """The index of the turn's first history line."""
    lines: Sequence[str]
    """The turn's history lines."""
    first_item: int
    """The index of the turn's first new input item."""
    items_json: Sequence[str]
    """The new input items, each as JSON (logged after the snapshot)."""
    current_agent: str
    """The agent that answers the next message."""
    context_json: str | None
    """The context the turn left, or None to keep the stored one."""
    at: float
    """When (Unix time)."""
    snapshot_json: str | None = None
    """When compacting: every input item as one JSON list, replacing the snapshot and the log
    (``items_json`` is then not logged)."""


Write = (
    Fence
    | InsertRun
    | SettleRun
    | RetryRun
    | CancelRun
    | ResumeRun
    | RequestCancel
    | SetNote
    | RenewLeases
    | ReleaseLease
    | ReleaseLeases
    | RecordStep
    | AppendEvent
    | RequestApproval
    | DecideApproval
    | EscalateApproval
    | CopyApproval
    | CreateConversation
    | SetConversationBudget
    | SetConversationMemory
    | StoreSummary
    | ClaimTurn
    | ReleaseTurn
    | RecordTurn
)
"""Any one durable write."""


def run_insert(row: RunRow) -> InsertRun:
    """The write that stores a new run exactly as ``row`` describes it."""
    return InsertRun(row)


def event_insert(
    execution_id: str,
    key: str,
    type_: str,
    agent: str | None,
    payload_json: str,
    *,
    at: float,
    ref: str | None = None,
) -> AppendEvent:
    """The write that appends one event (numbered by the transaction that writes it)."""
    return AppendEvent(execution_id, key, type_, agent, payload_json, at, ref)


__all__ = [
    "SETTLE_COLUMNS",
    "AppendEvent",
    "CancelRun",
    "ClaimTurn",
    "CopyApproval",
    "CreateConversation",
    "DecideApproval",
    "EscalateApproval",
    "Fence",
    "InsertRun",
    "RecordStep",
    "RecordTurn",
    "ReleaseLease",
    "ReleaseLeases",
    "ReleaseTurn",
    "RenewLeases",
    "RequestApproval",
    "RequestCancel",
    "ResumeRun",
    "RetryRun",
    "SetConversationBudget",
    "SetConversationMemory",
    "SetNote",
    "SettleRun",
    "StoreSummary",
    "Write",
    "event_insert",
    "run_insert",
]
