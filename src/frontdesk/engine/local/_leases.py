"""Leases: which process drives which run, and which runs nobody drives any more.

A process that drives a run holds its lease (``lease_owner``, ``lease_expires``) and renews it
every third of the lease's time to live. A lease that expired, or whose owner is a process on
this machine that no longer exists, can be taken over; the pid check makes takeover after a
local crash immediate instead of waiting for the expiry.
"""

from __future__ import annotations

import os
import socket
import time
import uuid

from ...store import RunRow, Store


class Leases:
    """This process's leases on runs in ``store``."""

    def __init__(self, store: Store, ttl: float) -> None:
        self.store = store
        self.ttl = ttl
        self.host = socket.gethostname()
        self.owner = f"{self.host}:{os.getpid()}:{uuid.uuid4().hex[:8]}"

    def expiry(self, now: float | None = None) -> float:
        """When a lease taken or renewed now expires."""
        return (time.time() if now is None else now) + self.ttl

    def dead_owner(self, row: RunRow) -> str | None:
        """The run's lease owner if it is a process on this machine that no longer exists."""
        owner = row.lease_owner
        if not owner or owner == self.owner:
            return None
        host, _, rest = owner.partition(":")
        pid_text = rest.partition(":")[0]
        if host != self.host or not pid_text.isdigit():
            return None
        try:
            os.kill(int(pid_text), 0)
        except ProcessLookupError:
            return owner
        except PermissionError:
            return None
        return None

    def claim(self, row: RunRow) -> bool:
        """Take the run's lease if it is free, expired, or its owner died."""
        now = time.time()
        return self.store.claim(
            row.execution_id, self.owner, self.expiry(now), now, steal_from=self.dead_owner(row)
        )

    def release(self, execution_id: str) -> None:
        """Give the lease back, so another process resumes the run from its journal."""
        self.store.write(
            [
                (
                    "UPDATE runs SET lease_owner = NULL, lease_expires = NULL "
                    "WHERE execution_id = ? AND lease_owner = ? AND status = 'running'",
                    (execution_id, self.owner),
                )
            ]
        )

    def release_all(self) -> None:
        """Give back every lease this process holds (on shutdown)."""
        self.store.write(
            [
                (
                    "UPDATE runs SET lease_owner = NULL, lease_expires = NULL "
                    "WHERE lease_owner = ? AND status = 'running'",
                    (self.owner,),
                )
            ]
        )

    def renew(self) -> list[str]:
        """Extend every lease this process holds; returns the runs asked to cancel."""
        self.store.write(
            [
                (
                    "UPDATE runs SET lease_expires = ? WHERE lease_owner = ? AND status = 'running'",
                    (self.expiry(), self.owner),
                )
            ]
        )
        return [
            row[0]
            for row in self.store.query(
                "SELECT execution_id FROM runs WHERE lease_owner = ? AND cancel_requested = 1",
                (self.owner,),
            )
        ]

    def orphaned(self) -> list[RunRow]:
        """Running runs that nobody drives: lease free, expired, or held by a dead process."""
        now = time.time()
        candidates = {row.execution_id for row in self.store.claimable_runs(now)}
        for execution_id, owner, _expires in self.store.running_leases():
            if owner and owner != self.owner and owner.startswith(f"{self.host}:"):
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
            and (row.lease_expires or 0) > time.time()
            and self.dead_owner(row) is None
        )
