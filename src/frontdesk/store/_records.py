"""The records the store keeps, as every backend returns them: runs, journal rows,
conversations, and what a store says about itself.

They are plain frozen dataclasses; no backend's types leak through them.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..events import Usage

TERMINAL_STATUSES = frozenset({"completed", "failed", "cancelled", "budget_exceeded"})
"""Statuses a run ends with: nothing drives it any more (a retry makes a failed or
``budget_exceeded`` run ``running`` again)."""
SETTLED_STATUSES = TERMINAL_STATUSES | {"waiting_approval"}


@dataclass(frozen=True)
class RunRow:
    """A run as stored."""

    execution_id: str
    """The run's id, unique in the store."""
    agent_ref: str
    """How any process finds the starting agent again (``module:attr`` or a registered name)."""
    agent_name: str
    """The starting agent's name."""
    status: str
    """``running``, ``waiting_approval``, ``completed``, ``failed``, ``cancelled`` or
    ``budget_exceeded``."""
    input: str
    """The run's input as JSON: a message, input items, or a conversation turn reference."""
    context_type: str | None
    """The import path of the context's type, to rebuild it on resume."""
    context_json: str | None
    """The context as JSON: the initial one, the final one once the run completed."""
    output_json: str | None
    """The final output as JSON, once completed."""
    last_agent: str | None
    """The agent that produced the final output, or that is waiting for approval."""
    error: str | None
    """Why the run failed."""
    note: str | None
    """Why a runnable run is not progressing (e.g. no process can find its agent)."""
    model_label: str | None
    """The model override the run was started with, as shown to people."""
    requests: int
    """Model requests made so far."""
    input_tokens: int
    """Input tokens used so far."""
    output_tokens: int
    """Output tokens used so far."""
    total_tokens: int
    """Tokens used so far."""
    created_at: float
    """When the run was stored (Unix time)."""
    started_at: float | None
    """When a driver first started it."""
    finished_at: float | None
    """When it completed, failed or was cancelled."""
    updated_at: float
    """When its row last changed."""
    lease_owner: str | None
    """The process driving the run, or None when nobody does."""
    lease_expires: float | None
    """When the owner's lease runs out unless renewed."""
    cancel_requested: int
    """1 once someone asked to cancel the run; its driver cancels it at its next heartbeat."""
    attempt: int
    """1, plus one per retry of a failed run."""
    conversation_id: str | None
    """The conversation this run is a turn of."""
    turn: int | None
    """Which turn of its conversation it is."""
    model_override: str | None
    """The model the run was started with, so whichever process resumes it uses the same."""
    lease_epoch: int
    """The fencing token: increased by every claim; a driver's writes land only under its own."""
    budget_json: str | None = None
    """The run's budget (``_budget.BudgetPlan`` as JSON), or None for no limits."""

    @property
    def usage(self) -> Usage:
        """Token usage summed over the run's model calls."""
        return Usage(self.requests, self.input_tokens, self.output_tokens, self.total_tokens)


@dataclass(frozen=True)
class JournalRow:
    """One durable step: a model call, a tool call or a handoff."""

    key: str
    """The step's key in its run: ``model:<k>``, ``tool:<k>:<call id>`` or ``handoff:<k>``."""
    kind: str
    """``model``, ``tool`` or ``handoff``."""
    state: str
    """``started`` (a tool whose result is not committed) or ``done``; done rows never change."""
    agent: str | None
    """The agent that took the step."""
    name: str | None
    """The tool's name, the agent handed off to, or the model a model call ran on."""
    args_json: str | None
    """A tool call's arguments as JSON."""
    data_json: str | None
    """The step's result: the model response or the tool's encoded output."""
    context_json: str | None
    """The context right after the step, when the step changed it."""
    attempts: int
    """How many times the step was started (a tool interrupted by a crash runs again)."""
    started_at: float
    """When the step (its last attempt) started."""
    finished_at: float | None
    """When it completed."""
    ordinal: int
    """The step's position in its run, in the order steps started."""


@dataclass(frozen=True)
class ConversationState:
    """A stored conversation's state, as a turn reads it."""

    conversation_id: str
    """The conversation's id."""
    agent_ref: str
    """Where its starting agent is found (``module:attribute`` or a registered name)."""
    current_agent: str
    """The agent that answers the next message."""
    context_type: str | None
    """The import path of the context's type."""
    context_json: str | None
    """The context as of the last completed turn, as JSON."""
    turns: int
    """Completed turns."""
    history_len: int
    """Lines in its history."""
    pending_run: str | None
    """The run of a turn in progress, if any."""
    generation: int
    """How many times its input items were compacted into a new snapshot."""
    budget_json: str | None
    """The budget counted over all its turns (limits only), or None for the runtime's."""
    memory_json: str | None = None
    """Its memory policy (``engine._memory.Policy`` as JSON), or None: every item is sent."""
    summary_json: str | None = None
    """The summary of its turns before the memory window (``engine._memory.Summary``)."""


@dataclass(frozen=True)
class StoreInfo:
    """What a store says about itself (``frontdesk db info``)."""

    backend: str
    """``sqlite`` or ``postgresql``."""
    url: str
    """Where the store is, as a URL, its password hidden."""
    schema_version: int
    """The schema version the database holds (0: nothing created yet)."""
    code_version: int
    """The schema version this frontdesk writes."""

    @property
    def needs_migration(self) -> bool:
        """Whether ``frontdesk db migrate`` would upgrade the schema."""
        return self.schema_version < self.code_version
