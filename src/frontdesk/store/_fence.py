"""Fenced writes: a driver's writes land only while it still holds the run's lease.

Every claim of a run's lease increases ``runs.lease_epoch``, the fencing token. A driver
writes its journal rows, events and outcome in transactions that begin with a fence, a check
that the run is still ``running`` under the same owner and token. A driver that lost its lease
(its process was stopped past the expiry and another took over, or the run was cancelled
meanwhile) therefore changes nothing, and its commit raises :class:`LeaseLost`.

Journal rows are also written insert-once: a completed step is never replaced, so a second
response for the same step is refused even without a fence.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..errors import FrontdeskError


class LeaseLost(FrontdeskError):
    """This driver no longer holds the run's lease: nothing it wrote landed; it stops driving."""


class StepAlreadyRecorded(FrontdeskError):
    """A second result for a step the journal already holds as done; the first is kept.

    Behind a fence only the lease holder writes, and it replays done steps from the journal,
    so this means its view of the run diverged from the store: nothing of the transaction
    landed, and the run fails with this error.
    """


class Guarded(str):
    """SQL whose every execution must match exactly one row, or the writer is refused.

    ``what`` names the guard for the error: ``"lease"`` for a fence, ``"step"`` for a
    journal write.
    """

    what: str

    def __new__(cls, sql: str, what: str) -> Guarded:
        guarded = super().__new__(cls, sql)
        guarded.what = what
        return guarded


FENCE = Guarded(
    "SELECT 1 FROM runs WHERE execution_id = ? AND lease_owner = ? AND lease_epoch = ? "
    "AND status = 'running'",
    "lease",
)

JOURNAL_WRITE = Guarded(
    "INSERT INTO journal (execution_id, key, kind, state, agent, name, args_json, data_json, "
    "context_json, attempts, started_at, finished_at, ordinal) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (execution_id, key) DO UPDATE SET kind = excluded.kind, "
    "state = excluded.state, agent = excluded.agent, name = excluded.name, "
    "args_json = excluded.args_json, data_json = excluded.data_json, "
    "context_json = excluded.context_json, attempts = excluded.attempts, "
    "started_at = excluded.started_at, finished_at = excluded.finished_at "
    "WHERE journal.state <> 'done'",
    "step",
)
"""Insert a journal row, or update one whose step has not completed; a done row is kept."""


def fence(execution_id: str, owner: str, epoch: int) -> tuple[str, Sequence[Any]]:
    """The statement that lets a transaction go on only while ``owner`` holds the lease at
    ``epoch``; put it first in every transaction of the run's driver."""
    return (FENCE, (execution_id, owner, epoch))


def refusal(
    guard: Guarded, params: Sequence[Any], status: str | None
) -> LeaseLost | StepAlreadyRecorded:
    """The error for a write that ``guard`` refused; ``status`` is the run's current one."""
    execution_id = params[0]
    if guard.what == "step":
        return StepAlreadyRecorded(
            f"step {params[1]} of run {execution_id} was already recorded; the first record "
            "is kept and nothing of this transaction was written"
        )
    if status is None:
        return LeaseLost(f"run {execution_id} is not in the store; this driver stops")
    if status != "running":
        return LeaseLost(
            f"run {execution_id} is {status}; this driver lost its lease and stops, "
            "nothing it wrote was kept"
        )
    return LeaseLost(
        f"run {execution_id} was taken over by another driver (this one held lease "
        f"{params[2]}); this driver stops, nothing it wrote was kept"
    )
