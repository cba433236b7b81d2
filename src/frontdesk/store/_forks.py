"""Forks in the store: a run seeded with another run's first steps, and the lineage of runs.

A fork is stored in one transaction: its run row (with ``parent_id`` and ``fork_step``), the
copies of its parent's journal rows before the fork step, the approval decisions of the tool
calls among them and the events that reported them. The engine then drives the fork as any
run: the copied steps replay from its journal, everything from the fork step on runs live.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from ._approvals import ApprovalRecord
from ._records import JournalRow, RunRow
from ._writes import CopyApproval, InsertRun, RecordStep, Write, event_insert


@dataclass(frozen=True)
class StoredEvent:
    """An event row as stored: its payload not completed from the journal."""

    seq: int
    """Its number in its run."""
    key: str
    """Its key in its run (``tool_result:<call key>``, ``handoff:<k>``...)."""
    type: str
    """The event's type."""
    agent: str | None
    """The agent it is about."""
    data_json: str
    """Its payload as stored."""
    ref: str | None
    """The journal row holding the output it reports, if any."""


@dataclass(frozen=True)
class ForkSeed:
    """Everything a fork is stored with."""

    row: RunRow
    """The fork's run row, ``running`` and without a lease, so an engine claims it."""
    parent_id: str
    """The run it was forked from."""
    fork_step: int
    """The first step it runs live; the steps before it are copies of its parent's."""
    steps: Sequence[JournalRow]
    """The copied journal rows, numbered 1, 2, ... in their order."""
    approvals: Sequence[ApprovalRecord]
    """The decided approvals of the copied tool calls."""
    events: Sequence[StoredEvent]
    """The parent's events that report the copied steps, in order."""


@dataclass(frozen=True)
class ForkLink:
    """One end of a fork: the run, and the step its fork runs live from."""

    execution_id: str
    """The parent (seen from a fork) or the fork (seen from its parent)."""
    fork_step: int
    """The step the fork runs live from."""
    status: str
    """That run's status."""
    created_at: float
    """When that run was stored (Unix time)."""


@dataclass(frozen=True)
class Lineage:
    """Where a run comes from and which runs were forked from it."""

    execution_id: str
    """The run."""
    parent: ForkLink | None
    """The run it was forked from, or None for a run that is not a fork."""
    forks: list[ForkLink]
    """The runs forked from it, oldest first."""


def fork_writes(seed: ForkSeed) -> list[Write]:
    """The writes that store ``seed``; apply them in one transaction."""
    fork_id = seed.row.execution_id
    writes: list[Write] = [InsertRun(seed.row, parent_id=seed.parent_id, fork_step=seed.fork_step)]
    writes.extend(RecordStep(fork_id, step) for step in seed.steps)
    # Every column of the parent's approval is copied, whatever later versions add to them.
    writes.extend(
        CopyApproval(a.approval_id, f"apv_{uuid.uuid4().hex[:16]}", fork_id) for a in seed.approvals
    )
    at = seed.row.created_at
    writes.extend(
        event_insert(fork_id, e.key, e.type, e.agent, e.data_json, at=at, ref=e.ref)
        for e in seed.events
    )
    return writes


__all__ = ["ForkLink", "ForkSeed", "Lineage", "StoredEvent", "fork_writes"]
