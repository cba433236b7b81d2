"""Copying an agent graph: every agent reachable through handoffs, each copied once.

Both the durable engine and the offline rules model run a copy of the user's graph, so the
user's agents are never changed and keep working with plain ``Runner.run``. A
:class:`GraphCopy` makes that copy with the SDK's public API: ``copy_agent`` makes each
agent's copy (typically ``agent.clone(model=..., tools=...)``) and every handoff is rebuilt
with the SDK's ``handoff()`` so that it leads to the copy, keeping the original's tool name,
description, input schema, filter, ``is_enabled`` and ``on_handoff`` callback. Handoff cycles
are copied once.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable
from typing import Any

from agents import Agent, Handoff, RunContextWrapper, handoff

from ..errors import InvalidInput
from ._agents import handoff_target

HandoffInvoke = Callable[[RunContextWrapper[Any], str], Awaitable[Agent[Any]]]
"""A handoff's ``on_invoke_handoff``: runs the handoff's callback, returns the next agent."""

AgentCopier = Callable[[Agent[Any]], Agent[Any]]
"""Makes the copy of one agent; its handoffs are replaced afterwards."""

InvokeWrapper = Callable[[HandoffInvoke, Agent[Any]], HandoffInvoke]
"""Wraps a copied handoff's invocation; gets it and the (original) agent handing off."""

# What handoff() derives from the target agent (or we set); every other public field of the
# original handoff is carried over to its copy.
_NOT_CARRIED = frozenset({"agent_name", "tool_name", "on_invoke_handoff"})


class GraphCopy:
    """Copies of the agents reachable from the agents passed to :meth:`copy`.

    ``copy_agent(original)`` returns the copy of one agent; its ``handoffs`` are then replaced
    by handoffs to the copies. A copied handoff runs the original's invocation (its
    ``on_handoff`` callback and input validation) and continues with the copy of the agent it
    returns, so even a hand-built ``Handoff`` whose target is only known when it runs leads
    into the copy. ``wrap_invoke`` may wrap each copied handoff's invocation (the durable
    engine journals handoffs there).
    """

    def __init__(self, copy_agent: AgentCopier, *, wrap_invoke: InvokeWrapper | None = None):
        self._copy_agent = copy_agent
        self._wrap_invoke = wrap_invoke
        self._copies: dict[int, tuple[Agent[Any], Agent[Any]]] = {}
        """id(original) -> (original, copy); holding the original keeps its id unique."""
        self._by_name: dict[str, Agent[Any]] = {}

    def copy(self, agent: Agent[Any]) -> Agent[Any]:
        """The copy of ``agent`` (made, with everything it hands off to, on first use)."""
        found = self._copies.get(id(agent))
        if found is not None:
            return found[1]
        if not isinstance(agent, Agent):
            raise InvalidInput(f"expected an agents.Agent, got {type(agent).__name__}")
        clone = self._copy_agent(agent)
        if clone is agent or not isinstance(clone, Agent):
            raise InvalidInput("copy_agent must return a new agents.Agent (e.g. agent.clone())")
        self._copies[id(agent)] = (agent, clone)
        self._by_name.setdefault(agent.name, clone)
        clone.handoffs = [self._copy_handoff(item, agent) for item in agent.handoffs]
        return clone

    def named(self, name: str) -> Agent[Any] | None:
        """The first copy made of an agent called ``name``, if any."""
        return self._by_name.get(name)

    def _copy_handoff(
        self, item: Agent[Any] | Handoff[Any, Any], source: Agent[Any]
    ) -> Handoff[Any, Any]:
        original: Handoff[Any, Any] = handoff(item) if isinstance(item, Agent) else item
        target = handoff_target(item)
        target_copy = self.copy(target) if target is not None else None
        run_original = original.on_invoke_handoff

        async def invoke(ctx: RunContextWrapper[Any], args_json: str) -> Agent[Any]:
            return self.copy(await run_original(ctx, args_json))

        wrapped = self._wrap_invoke(invoke, source) if self._wrap_invoke is not None else invoke
        if target_copy is None or type(original) is not Handoff:
            # Without a known target (or for a Handoff subclass) there is nothing to link.
            return dataclasses.replace(original, on_invoke_handoff=wrapped)
        # handoff() is the SDK's public way to link a handoff to the agent it leads to.
        renamed = original.tool_name != Handoff.default_tool_name(target_copy)
        copied = handoff(target_copy, tool_name_override=original.tool_name if renamed else None)
        for field in dataclasses.fields(Handoff):
            if field.init and not field.name.startswith("_") and field.name not in _NOT_CARRIED:
                setattr(copied, field.name, getattr(original, field.name))
        copied.on_invoke_handoff = wrapped
        return copied


__all__ = ["AgentCopier", "GraphCopy", "HandoffInvoke", "InvokeWrapper"]
