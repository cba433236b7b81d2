"""Who holds a lease: an owner string that says which process, on which boot, in which PID
namespace, so another process can tell for sure whether that owner is dead.

A hostname and a pid are not enough: container replicas often share a hostname, and a process
in another PID namespace sees none of our pids (or someone else's under the same numbers). An
owner is therefore written as::

    <hostname>:<pid>:<nonce>:<boot id>:<pid namespace>:<start time>

The boot id (``/proc/sys/kernel/random/boot_id``) names one boot of one kernel; the PID
namespace (``readlink /proc/self/ns/pid``) says in which pid numbering ``pid`` is meant; the
start time (field 22 of ``/proc/<pid>/stat``) tells a reused pid from the original process.
An owner counts as dead only when all three match ours and the pid is gone, a zombie, or
belongs to a process that started at another time. Anything else, including owners written in
the older ``<hostname>:<pid>:<nonce>`` form, waits for its lease to expire.
"""

from __future__ import annotations

import os
import socket
import uuid
from dataclasses import dataclass
from pathlib import Path

_PROC = Path("/proc")
_FIELDS = 6


@dataclass(frozen=True)
class OwnerId:
    """One process that can hold leases, as recorded in ``runs.lease_owner``."""

    host: str
    """The hostname, for people reading the owner; never trusted on its own."""
    pid: int
    """The process id, meaningful only inside :attr:`pid_namespace`."""
    nonce: str
    """Random per lease holder, so two holders in one process never share an owner string."""
    boot_id: str
    """The kernel's boot id; empty where the platform does not provide one."""
    pid_namespace: str
    """The PID namespace's inode number; empty where it cannot be read reliably."""
    start_time: int
    """The process start time in clock ticks after boot; 0 where it cannot be read."""

    def __str__(self) -> str:
        return ":".join(
            [
                self.host,
                str(self.pid),
                self.nonce,
                self.boot_id,
                self.pid_namespace,
                str(self.start_time),
            ]
        )

    @classmethod
    def parse(cls, text: str) -> OwnerId | None:
        """The owner in ``text``, or None for the older format or anything unreadable."""
        fields = text.split(":")
        if len(fields) != _FIELDS or not fields[1].isdigit() or not fields[5].isdigit():
            return None
        host, pid, nonce, boot_id, namespace, start = fields
        return cls(host, int(pid), nonce, boot_id, namespace, int(start))

    @property
    def checkable(self) -> bool:
        """Whether this owner carries everything needed to prove its death."""
        return bool(self.boot_id and self.pid_namespace and self.start_time)


def this_process() -> OwnerId:
    """A fresh owner identity for the calling process."""
    pid = os.getpid()
    stat = _stat(pid)
    # A /proc mounted for another PID namespace describes other processes than ours: only
    # trust it when it knows this process under its own pid.
    own_proc = stat is not None and _read(_PROC / "self" / "stat").split(" ", 1)[0] == str(pid)
    return OwnerId(
        host=socket.gethostname().replace(":", "-"),
        pid=pid,
        nonce=uuid.uuid4().hex[:8],
        boot_id=_read(_PROC / "sys" / "kernel" / "random" / "boot_id"),
        pid_namespace=_namespace() if own_proc else "",
        start_time=_start_time(stat) if own_proc and stat is not None else 0,
    )


def provably_dead(owner: OwnerId, me: OwnerId) -> bool:
    """Whether ``owner`` is a process that can never renew its lease again.

    Only decidable for an owner on this boot of this kernel, in this PID namespace: its pid
    must be gone, a zombie, or now belong to a process that started at another time.
    """
    if not (owner.checkable and me.checkable):
        return False
    if (owner.boot_id, owner.pid_namespace) != (me.boot_id, me.pid_namespace):
        return False
    stat = _stat(owner.pid)
    if stat is None:
        return True
    return _state(stat) in ("Z", "X") or _start_time(stat) != owner.start_time


def _read(path: Path) -> str:
    try:
        return path.read_text().strip()
    except OSError:
        return ""


def _namespace() -> str:
    try:
        link = os.readlink(_PROC / "self" / "ns" / "pid")
    except OSError:
        return ""
    # "pid:[4026531836]" -> "4026531836"
    digits = "".join(ch for ch in link if ch.isdigit())
    return digits


def _stat(pid: int) -> list[str] | None:
    """The fields of ``/proc/<pid>/stat`` after the command name, or None if there is none."""
    text = _read(_PROC / str(pid) / "stat")
    if not text:
        return None
    # The command name (field 2) may hold spaces and parentheses: split after its last ")".
    return text.rpartition(")")[2].split()


def _state(fields: list[str]) -> str:
    return fields[0] if fields else ""


def start_time(pid: int) -> int:
    """When process ``pid`` of this PID namespace started (clock ticks after boot); 0 if
    there is no such process or no ``/proc`` to tell."""
    stat = _stat(pid)
    return _start_time(stat) if stat is not None else 0


def _start_time(fields: list[str]) -> int:
    # Field 22 of the whole line; fields here start at field 3.
    try:
        return int(fields[22 - 3])
    except (IndexError, ValueError):
        return 0
