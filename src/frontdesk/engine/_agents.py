"""Finding agents again after a restart.

A run stores a stable reference to its starting agent, never the object: either the
module-level attribute the agent was defined as (``package.module:attribute``) or the name it
was registered under (``name:<registered name>``). Any process that registers the agent, or
can import its module, can resume the run.
"""

from __future__ import annotations

import importlib
import sys
import threading
from typing import Any

from agents import Agent, Handoff

from ..errors import AgentNotFound

_module_refs: dict[int, tuple[Agent[Any], str | None]] = {}
_module_refs_lock = threading.Lock()

# Modules that never define user agents; skipping them keeps the scan cheap.
_SKIP_PREFIXES = (
    "agents.",
    "openai",
    "pydantic",
    "typing",
    "collections",
    "asyncio",
    "_",
    "encodings",
    "importlib",
    "email",
    "http",
    "json",
    "sqlite3",
    "concurrent",
    "logging",
    "rich",
    "typer",
    "click",
    "httpx",
    "httpcore",
    "anyio",
    "starlette",
    "fastapi",
    "uvicorn",
    "stripe",
    "pytest",
    "_pytest",
)


def module_reference(agent: Agent[Any]) -> str | None:
    """``module:attribute`` where ``agent`` is defined at module level, if importable.

    Agents defined in ``__main__`` have no reference another process could import.
    """
    with _module_refs_lock:
        cached = _module_refs.get(id(agent))
        if cached is not None and cached[0] is agent:
            return cached[1]
    found: str | None = None
    # dict.copy() takes no per-item allocation, so no collection (and no other thread's
    # import) can run in the middle of it, as it can in list(sys.modules.items()).
    for name, module in sys.modules.copy().items():
        if module is None or name == "__main__" or name.startswith(_SKIP_PREFIXES):
            continue
        namespace = getattr(module, "__dict__", None)
        if not namespace:
            continue
        for attr, value in namespace.copy().items():
            if value is agent and not attr.startswith("_"):
                found = f"{name}:{attr}"
                break
        if found:
            break
    with _module_refs_lock:
        _module_refs[id(agent)] = (agent, found)
    return found


def import_reference(ref: str) -> Agent[Any]:
    """Import the agent a ``module:attribute`` reference points to."""
    module_name, _, attr = ref.partition(":")
    try:
        module = importlib.import_module(module_name)
        value = getattr(module, attr)
    except (ImportError, AttributeError) as exc:
        raise AgentNotFound(f"cannot import agent {ref!r}: {exc}") from exc
    if not isinstance(value, Agent):
        raise AgentNotFound(f"{ref!r} is a {type(value).__name__}, not an agents.Agent")
    return value


class AgentRegistry:
    """The agents a runtime knows by name, plus everything reachable through handoffs."""

    def __init__(self) -> None:
        self._by_name: dict[str, Agent[Any]] = {}
        self._lock = threading.Lock()
        self._replaced: dict[str, tuple[tuple[Agent[Any], ...], Agent[Any]]] = {}
        """Composite references -> (the agents found for them, the graph built from those)."""

    def register(self, agent: Agent[Any], name: str | None = None) -> str:
        """Register ``agent`` under ``name`` (default: its own name). Returns the reference."""
        if not isinstance(agent, Agent):
            raise TypeError(f"expected an agents.Agent, got {type(agent).__name__}")
        key = name or agent.name
        with self._lock:
            existing = self._by_name.get(key)
            if existing is not None and existing is not agent and name is not None:
                raise ValueError(f"another agent is already registered as {key!r}")
            self._by_name.setdefault(key, agent)
        return key

    def reference(self, agent: Agent[Any]) -> str:
        """The stable reference stored with a run started from ``agent``."""
        module_ref = module_reference(agent)
        if module_ref is not None:
            return module_ref
        with self._lock:
            for key, value in self._by_name.items():
                if value is agent:
                    return f"name:{key}"
        return f"name:{self.register(agent)}"

    def resolve(self, ref: str) -> Agent[Any]:
        """The agent for a stored reference, or :class:`AgentNotFound` saying what to do.

        ``root#name`` is the agent called ``name`` reachable from the agent ``root``;
        ``root|ref|...`` is ``root``'s graph with the agents those references name in place
        of the agents named like them (see :mod:`._replace`).
        """
        if "|" in ref:
            return self._resolve_replaced(ref)
        if "#" in ref:
            root_ref, _, name = ref.rpartition("#")
            root = self.resolve(root_ref)
            for agent in iter_graph(root):
                if agent.name == name:
                    return agent
            raise AgentNotFound(f"no agent named {name!r} is reachable from {root_ref!r}")
        if ref.startswith("name:"):
            key = ref[5:]
            with self._lock:
                found = self._by_name.get(key)
            if found is None:
                raise AgentNotFound(
                    f"agent {key!r} is not registered in this process; call "
                    f"runtime.register(agent, name={key!r}) (or pass it in AgentRuntime(agents=...)),"
                    " or resume it with a worker that loads it from its module or script file: "
                    "frontdesk worker --agents package.module:attribute "
                    "(or --agents path/to/script.py:attribute)"
                )
            return found
        return import_reference(ref)

    def _resolve_replaced(self, ref: str) -> Agent[Any]:
        from ._replace import split, with_replacements

        root_ref, replacement_refs = split(ref)
        found = (self.resolve(root_ref), *(self.resolve(r) for r in replacement_refs))
        with self._lock:
            cached = self._replaced.get(ref)
        # The same graph for as long as the same agents are found: the engine caches by it.
        if cached is not None and all(a is b for a, b in zip(cached[0], found, strict=True)):
            return cached[1]
        graph = with_replacements(found[0], found[1:])
        with self._lock:
            self._replaced[ref] = (found, graph)
        return graph

    def names(self) -> list[str]:
        """Registered names."""
        with self._lock:
            return sorted(self._by_name)


def iter_graph(root: Agent[Any]) -> list[Agent[Any]]:
    """Every agent reachable from ``root`` through handoffs, ``root`` first."""
    seen: dict[int, Agent[Any]] = {}
    stack = [root]
    while stack:
        agent = stack.pop()
        if id(agent) in seen:
            continue
        seen[id(agent)] = agent
        for item in agent.handoffs:
            target = handoff_target(item)
            if target is not None:
                stack.append(target)
    return list(seen.values())


def handoff_target(item: Agent[Any] | Handoff[Any, Any]) -> Agent[Any] | None:
    """The agent a handoff leads to, when it is known without invoking it."""
    if isinstance(item, Agent):
        return item
    ref = getattr(item, "_agent_ref", None)
    target = ref() if ref is not None else None
    return target if isinstance(target, Agent) else None
