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

from ._fence import JOURNAL_WRITE
from ._store import ApprovalRecord, JournalRow, Op, RunRow, event_insert, run_insert


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


def fork_ops(seed: ForkSeed, approval_columns: Sequence[str]) -> list[Op]:
    """The statements that store ``seed``, given the columns of the approvals table; apply
    them in one transaction."""
    fork_id = seed.row.execution_id
    ops: list[Op] = [
        run_insert(seed.row),
        (
            "UPDATE runs SET parent_id = ?, fork_step = ? WHERE execution_id = ?",
            (seed.parent_id, seed.fork_step, fork_id),
        ),
    ]
    ops.extend(
        (
            JOURNAL_WRITE,
            (
                fork_id,
                s.key,
                s.kind,
                s.state,
                s.agent,
                s.name,
                s.args_json,
                s.data_json,
                s.context_json,
                s.attempts,
                s.started_at,
                s.finished_at,
                s.ordinal,
            ),
        )
        for s in seed.steps
    )
    # Every column of the parent's approval is copied, whatever later versions add to them.
    copied = ", ".join(c for c in approval_columns if c not in ("approval_id", "execution_id"))
    ops.extend(
        (
            f"INSERT INTO approvals (approval_id, execution_id, {copied}) "
            f"SELECT ?, ?, {copied} FROM approvals WHERE approval_id = ?",
            (f"apv_{uuid.uuid4().hex[:16]}", fork_id, a.approval_id),
        )
        for a in seed.approvals
    )
    at = seed.row.created_at
    ops.extend(
        event_insert(fork_id, e.key, e.type, e.agent, e.data_json, at=at, ref=e.ref)
        for e in seed.events
    )
    return ops


_LINK_COLUMNS = "execution_id, fork_step, status, created_at"


def parent_query(execution_id: str) -> Op:
    """The query for a run's parent link (no row for a run that is not a fork)."""
    return (
        "SELECT p.execution_id, r.fork_step, p.status, p.created_at FROM runs r "
        "JOIN runs p ON p.execution_id = r.parent_id WHERE r.execution_id = ?",
        (execution_id,),
    )


def forks_query(execution_id: str) -> Op:
    """The query for the runs forked from a run, oldest first."""
    return (
        f"SELECT {_LINK_COLUMNS} FROM runs WHERE parent_id = ? ORDER BY created_at, rowid",
        (execution_id,),
    )


def start_context_query(execution_id: str) -> Op:
    """The query for the context a run started with, kept once completing replaced it:
    ``(known, context_json)``, no row if it was never replaced."""
    return (
        "SELECT known, context_json FROM run_start_context WHERE execution_id = ?",
        (execution_id,),
    )


def events_query(execution_id: str) -> Op:
    """The query for a run's events as stored (see :class:`StoredEvent`)."""
    return (
        "SELECT seq, key, type, agent, data_json, ref FROM events WHERE execution_id = ? "
        "ORDER BY seq",
        (execution_id,),
    )


__all__ = [
    "ForkLink",
    "ForkSeed",
    "Lineage",
    "StoredEvent",
    "events_query",
    "fork_ops",
    "forks_query",
    "parent_query",
    "start_context_query",
]
