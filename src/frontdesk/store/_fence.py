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

from ..errors import FrontdeskError
from ._writes import Fence


class LeaseLost(FrontdeskError):
    """This driver no longer holds the run's lease: nothing it wrote landed; it stops driving."""


class StepAlreadyRecorded(FrontdeskError):
    """A second result for a step the journal already holds as done; the first is kept.

    Behind a fence only the lease holder writes, and it replays done steps from the journal,
    so this means its view of the run diverged from the store: nothing of the transaction
    landed, and the run fails with this error.
    """


class RunAlreadyExists(FrontdeskError):
    """A new run's id is taken (a caller-chosen id names an existing run): nothing of the
    transaction that tried to insert it was written."""


def fence(execution_id: str, owner: str, epoch: int) -> Fence:
    """The write that lets a transaction go on only while ``owner`` holds the lease at
    ``epoch``; put it first in every transaction of the run's driver."""
    return Fence(execution_id, owner, epoch)


def step_refused(execution_id: str, key: str) -> StepAlreadyRecorded:
    """The error for a second result of a step the journal holds as done."""
    return StepAlreadyRecorded(
        f"step {key} of run {execution_id} was already recorded; the first record "
        "is kept and nothing of this transaction was written"
    )


def run_exists(execution_id: str) -> RunAlreadyExists:
    """The error for a new run whose id is taken."""
    return RunAlreadyExists(f"a run with id {execution_id} already exists; nothing was written")


def lease_refused(guard: Fence, status: str | None) -> LeaseLost:
    """The error for a transaction ``guard`` refused; ``status`` is the run's current one
    (None: the run is not in the store)."""
    execution_id = guard.execution_id
    if status is None:
        return LeaseLost(f"run {execution_id} is not in the store; this driver stops")
    if status != "running":
        return LeaseLost(
            f"run {execution_id} is {status}; this driver lost its lease and stops, "
            "nothing it wrote was kept"
        )
    return LeaseLost(
        f"run {execution_id} was taken over by another driver (this one held lease "
        f"{guard.epoch}); this driver stops, nothing it wrote was kept"
    )
