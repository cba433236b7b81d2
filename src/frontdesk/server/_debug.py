"""A run's lineage and two runs compared, as the API returns them and the console shows them.

Read through :class:`~frontdesk.AgentRuntime`'s public API only (``lineage`` and ``diff``).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from ..cli._render import iso
from ..debugging import ForkLink, Lineage
from ..runtime import AgentRuntime


def link_dict(link: ForkLink) -> dict[str, Any]:
    """One end of a fork: the run, the step the fork runs live from, its status."""
    return {
        "execution_id": link.execution_id,
        "fork_step": link.fork_step,
        "status": link.status,
        "created_at": iso(link.created_at),
        "url": f"/runs/{quote(link.execution_id)}",
    }


def lineage_dict(lineage: Lineage) -> dict[str, Any]:
    """Where a run was forked from (``parent``) and the runs forked from it (``forks``)."""
    return {
        "parent": link_dict(lineage.parent) if lineage.parent is not None else None,
        "forks": [link_dict(f) for f in lineage.forks],
    }


def diff_dict(runtime: AgentRuntime, a: str, b: str) -> dict[str, Any]:
    """Runs ``a`` and ``b`` compared step by step (see :class:`~frontdesk.RunDiff`)."""
    return runtime.diff(a, b).to_dict()


__all__ = ["diff_dict", "lineage_dict", "link_dict"]
