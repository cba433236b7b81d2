"""Replacing agents of a graph by name, for a run started with changed agents (a fork).

``with_replacements(root, [billing_v2])`` is a copy of ``root``'s graph in which every agent
named like one of the replacements is that replacement: each handoff to ``billing_specialist``
leads to ``billing_v2``, whatever else the graph holds is as it was. The user's agents are not
changed. Such a run stores a composite reference, ``<root ref>|<replacement ref>|...``, so
every process that can find the agents (an approval decided elsewhere, a crash recovery)
drives it with the same replacements.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Sequence
from typing import Any

from agents import Agent

from ..errors import InvalidInput
from ._agents import iter_graph
from ._graph import GraphCopy

SEPARATOR = "|"
"""Separates the root's reference from the replacements' in a composite reference."""


def compose(root_ref: str, replacement_refs: Sequence[str]) -> str:
    """The reference of ``root_ref``'s graph with the agents ``replacement_refs`` name."""
    return SEPARATOR.join([root_ref, *replacement_refs])


def split(ref: str) -> tuple[str, list[str]]:
    """``(root reference, replacement references)`` of a reference made by :func:`compose`."""
    root, *replacements = ref.split(SEPARATOR)
    return root, replacements


def graph_names(root: Agent[Any]) -> list[str]:
    """The names of the agents reachable from ``root``, ``root`` first."""
    names: list[str] = []
    for agent in iter_graph(root):
        if agent.name not in names:
            names.append(agent.name)
    return names


def check_replacements(
    root: Agent[Any],
    replacements: Iterable[Agent[Any]],
    error: type[InvalidInput] = InvalidInput,
) -> None:
    """Raise ``error`` unless every replacement is an agent named like one of the graph's and
    no two replace the same agent."""
    names = graph_names(root)
    seen: set[str] = set()
    for agent in replacements:
        if not isinstance(agent, Agent):
            raise error(f"a replacement must be an agents.Agent, got {type(agent).__name__}")
        if agent.name not in names:
            raise error(
                f"no agent named {agent.name!r} in the graph of {root.name!r} "
                f"(its agents: {', '.join(names)}); a replacement takes the place of the agent "
                "with its name"
            )
        if agent.name in seen:
            raise error(f"two replacements for the agent named {agent.name!r}")
        seen.add(agent.name)


class _Replacing(GraphCopy):
    """A graph copy that, wherever it reaches an agent, copies its replacement instead."""

    def __init__(self, replacements: dict[str, Agent[Any]]) -> None:
        # A shallow copy keeps whatever else is set on the agent (e.g. attached rules).
        super().__init__(copy.copy)
        self._replacements = replacements

    def copy(self, agent: Agent[Any]) -> Agent[Any]:
        return super().copy(self._replacements.get(agent.name, agent))


def with_replacements(root: Agent[Any], replacements: Sequence[Agent[Any]]) -> Agent[Any]:
    """A copy of ``root``'s graph in which the agents named like ``replacements`` are them."""
    check_replacements(root, replacements)
    if not replacements:
        return root
    return _Replacing({agent.name: agent for agent in replacements}).copy(root)


__all__ = [
    "SEPARATOR",
    "check_replacements",
    "compose",
    "graph_names",
    "split",
    "with_replacements",
]
