"""Leases: which process drives which run, and which runs nobody drives any more.

A process that drives a run holds its lease (``lease_owner``, ``lease_expires``) and renews it
every third of the lease's time to live, for as long as its driver lives. Each claim increases
the lease's fencing token (``lease_epoch``); the driver's writes only land under the token it
claimed with (see :mod:`frontdesk.store._fence`).

A lease that expired can be taken over. So can one whose owner is provably dead: a process on
this boot of this kernel, in this PID namespace, whose pid is gone or now names another
process (see :mod:`._identity`). Any other owner, on another machine, in another container's
PID namespace, or recorded in the older owner format, keeps its lease until it expires.
Expiry is told by the store's clock (:meth:`Store.clock`: a database server's, on
PostgreSQL), so machines whose clocks differ still agree on it.
"""

from __future__ import annotations

from collections.abc import Iterable

from ...store import ReleaseLease, ReleaseLeases, RenewLeases, RunRow, Store
from ._identity import OwnerId, provably_dead, this_process


class Leases:
    """This process's leases on runs in ``store``."""

    def __init__(self, store: Store, ttl: float) -> None:
        self.store = store
        self.ttl = ttl
        self.identity = this_process()
        self.owner = str(self.identity)

    def expiry(self, now: float | None = None) -> float:
        """When a lease taken or renewed now expires."""
        return (self.store.clock() if now is None else now) + self.ttl

    def dead_owner(self, row: RunRow) -> str | None:
        """The run's lease owner if it is provably a dead process, else None."""
        owner = row.lease_owner
        if not owner or owner == self.owner:
            return None
        parsed = OwnerId.parse(owner)
        if parsed is None or not provably_dead(parsed, self.identity):
            return None
        return owner

    def claim(self, row: RunRow) -> int | None:
        """Take the run's lease if it is free, expired, or its owner died.

        Returns the lease's fencing token, or None if the run is not ours to take.
        """
        now = self.store.clock()
        return self.store.claim(
            row.execution_id, self.owner, self.expiry(now), now, steal_from=self.dead_owner(row)
        )

    def release(self, execution_id: str, epoch: int | None = None) -> None:
        """Give the lease back, so another process resumes the run from its journal.

        With ``epoch``, only the lease claimed with that token is given back.
        """
        self.store.write([ReleaseLease(execution_id, self.owner, epoch)])

    def release_all(self) -> None:
        """Give back every lease this process holds (on shutdown)."""
        self.store.write([ReleaseLeases(self.owner)])

    def renew(self, driving: Iterable[str]) -> list[str]:
        """Extend the leases of the runs this process is ``driving``; returns the runs asked
        to cancel. A lease whose driver is gone is not renewed: it expires, and the run is
        taken over."""
        self.store.write([RenewLeases(self.owner, sorted(driving), self.expiry())])
        return self.store.cancel_requests(self.owner)

    def orphaned(self) -> list[RunRow]:
        """Running runs that nobody drives: lease free, expired, or held by a dead process."""
        now = self.store.clock()
        candidates = {row.execution_id for row in self.store.claimable_runs(now)}
        for execution_id, owner, _expires in self.store.running_leases():
            parsed = OwnerId.parse(owner) if owner and owner != self.owner else None
            if parsed is not None and provably_dead(parsed, self.identity):
                candidates.add(execution_id)
        orphans = []
        for execution_id in sorted(candidates):
            row = self.store.get_run(execution_id)
            if row is None or row.status != "running":
                continue
            expired = row.lease_owner is None or (row.lease_expires or 0) < now
            if expired or self.dead_owner(row) is not None:
                orphans.append(row)
        return orphans

    def held_elsewhere(self, row: RunRow) -> bool:
        """Whether a live process other than this one currently drives the run."""
        return (
            row.status == "running"
            and row.lease_owner is not None
            and row.lease_owner != self.owner
            and (row.lease_expires or 0) > self.store.clock()
            and self.dead_owner(row) is None
        )
