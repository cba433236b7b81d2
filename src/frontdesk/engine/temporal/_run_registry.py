"""Which agents the run workflows of a task queue can run, in this process.

A run workflow finds its agent by reference in the registry of a runtime that serves its task
queue here (several runtimes of one process may serve the same queue). The run workflow runs
without a sandbox (and a sandbox would pass this module through), so it sees the registries the
runtimes attached.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any

from agents import Agent

from ...errors import AgentNotFound
from .._agents import AgentRegistry

_lock = threading.Lock()
_serving: dict[str, list[AgentRegistry]] = {}
_pinned: OrderedDict[str, Agent[Any]] = OrderedDict()
PINNED_RUNS = 10_000
"""How many runs started here keep their own agent object (the newest)."""


def pin(execution_id: str, agent: Agent[Any]) -> None:
    """Run ``execution_id`` with the very ``agent`` it was started from, while this process
    serves it (another agent may be registered under the same name)."""
    with _lock:
        _pinned[execution_id] = agent
        _pinned.move_to_end(execution_id)
        while len(_pinned) > PINNED_RUNS:
            _pinned.popitem(last=False)


def unpin(execution_id: str) -> None:
    """Forget the agent :func:`pin` kept for a run."""
    with _lock:
        _pinned.pop(execution_id, None)


def pinned(execution_id: str) -> Agent[Any] | None:
    """The agent a run started in this process was started from, if kept."""
    with _lock:
        return _pinned.get(execution_id)


def attach(task_queue: str, registry: AgentRegistry) -> None:
    """Let the run workflows of ``task_queue`` find agents in ``registry``."""
    with _lock:
        _serving.setdefault(task_queue, []).append(registry)


def detach(task_queue: str, registry: AgentRegistry) -> None:
    """Undo :func:`attach`."""
    with _lock:
        registries = _serving.get(task_queue, [])
        if registry in registries:
            registries.remove(registry)
        if not registries:
            _serving.pop(task_queue, None)


def resolve_agent(task_queue: str, agent_ref: str, execution_id: str) -> Agent[Any]:
    """The agent run ``execution_id`` was started from if it started here, else the agent
    ``agent_ref`` names in a registry serving ``task_queue``; :class:`AgentNotFound` (which
    fails the workflow task, to be retried) otherwise."""
    with _lock:
        own = _pinned.get(execution_id)
        if own is not None:
            return own
        registries = list(_serving.get(task_queue, []))
    error: AgentNotFound | None = None
    for registry in registries:
        try:
            return registry.resolve(agent_ref)
        except AgentNotFound as exc:
            error = exc
    raise error or AgentNotFound(f"no runtime in this process serves task queue {task_queue!r}")


__all__ = ["PINNED_RUNS", "attach", "detach", "pin", "pinned", "resolve_agent", "unpin"]
