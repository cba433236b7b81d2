"""The agent view: a run's agent graph, the path it took, and where it is now.

As in the OpenAI customer-service agents demo, every agent reachable from the run's starting
agent is a box listing its tools, and every handoff an arrow. The agents the run passed
through, the handoffs it took and the tools it called are highlighted, and the current (or
last) agent is marked. The graph is laid out here, in layers by handoff distance from the
starting agent, and drawn by the template as SVG, so the page needs no script to show it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from agents import Agent, Handoff

from ..engine._agents import handoff_target, iter_graph
from ..errors import AgentNotFound
from ..events import Event
from ..runtime import AgentRuntime

NODE_WIDTH = 210
"""Width of an agent's box, in SVG units."""
LAYER_GAP = 90
"""Horizontal space between layers, where the arrows run."""
NODE_GAP = 24
"""Vertical space between boxes of one layer."""
HEADER = 34
"""Height of a box's title."""
LINE = 17
"""Height of one tool's line."""
MARGIN = 12


@dataclass
class AgentNode:
    """One agent's box."""

    name: str
    """The agent's name."""
    tools: list[str]
    """Its tools' names."""
    handoffs: list[str]
    """The agents it can hand off to."""
    model: str | None = None
    """Its own model's name, when it names one."""
    x: float = 0
    """Left edge."""
    y: float = 0
    """Top edge."""
    height: float = 0
    """Box height."""
    visited: bool = False
    """The run passed through this agent."""
    current: bool = False
    """The run is at this agent now, or ended with it."""
    used_tools: set[str] = field(default_factory=set)
    """Tools the run called on this agent."""

    @property
    def width(self) -> float:
        """Box width."""
        return NODE_WIDTH

    @property
    def css(self) -> str:
        """CSS classes of the box."""
        return " ".join(c for c, on in (("visited", self.visited), ("current", self.current)) if on)


@dataclass
class AgentEdge:
    """One handoff arrow."""

    source: str
    """The agent handing off."""
    target: str
    """The agent handed off to."""
    path: str = ""
    """The SVG path of the arrow."""
    taken: int = 0
    """How often the run took this handoff."""


@dataclass
class AgentView:
    """Everything the template needs to draw the graph."""

    nodes: list[AgentNode]
    """The agents, laid out."""
    edges: list[AgentEdge]
    """The handoffs, routed."""
    width: float
    """SVG width."""
    height: float
    """SVG height."""
    path: list[str]
    """The agents the run passed through, in order."""
    current: str | None
    """The current or last agent."""
    note: str | None = None
    """Why the graph is partial (its agents cannot be found in this process)."""

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form: agents with tools and handoffs, the path, the current agent."""
        return {
            "agents": [
                {
                    "name": n.name,
                    "tools": n.tools,
                    "handoffs": n.handoffs,
                    "model": n.model,
                    "visited": n.visited,
                    "current": n.current,
                    "used_tools": sorted(n.used_tools),
                }
                for n in self.nodes
            ],
            "handoffs": [
                {"source": e.source, "target": e.target, "taken": e.taken} for e in self.edges
            ],
            "path": self.path,
            "current": self.current,
            "note": self.note,
        }


def root_agent(runtime: AgentRuntime, agent_ref: str | None) -> Agent[Any] | None:
    """The agent a run or conversation started from, found again by its reference."""
    if not agent_ref:
        return None
    try:
        return runtime.registry.resolve(agent_ref.partition("#")[0])
    except (AgentNotFound, ValueError):
        return None


def run_path(
    events: Iterable[Event], start: str | None = None
) -> tuple[list[str], list[tuple[str, str]], dict[str, set[str]]]:
    """The agents passed through (in order), the handoffs taken and the tools called per agent."""
    path: list[str] = [start] if start else []
    taken: list[tuple[str, str]] = []
    tools: dict[str, set[str]] = {}
    for event in events:
        if event.type == "agent_start" and event.agent and (not path or path[-1] != event.agent):
            path.append(event.agent)
        elif event.type == "handoff" and event.agent and event.target:
            taken.append((event.agent, event.target))
            if not path or path[-1] != event.target:
                path.append(event.target)
        elif event.type == "tool_call" and event.agent and event.tool_name:
            tools.setdefault(event.agent, set()).add(event.tool_name)
    return path, taken, tools


def build_view(
    root: Agent[Any] | None,
    path: Sequence[str],
    taken: Sequence[tuple[str, str]],
    used_tools: dict[str, set[str]],
    current: str | None,
) -> AgentView:
    """Lay out the graph reachable from ``root`` and mark the run on it.

    Without ``root`` (its agents cannot be found here) the view shows the path only.
    """
    nodes: dict[str, AgentNode] = {}
    note = None
    if root is not None:
        for agent in iter_graph(root):
            if agent.name in nodes:
                continue
            nodes[agent.name] = AgentNode(
                name=agent.name,
                tools=[getattr(t, "name", type(t).__name__) for t in agent.tools],
                handoffs=[name for name in (_handoff_name(h) for h in agent.handoffs) if name],
                model=agent.model if isinstance(agent.model, str) else None,
            )
    else:
        note = "the agent graph cannot be loaded in this server; showing the path the run took"
    for name in [*path, *(t for pair in taken for t in pair), *([current] if current else [])]:
        if name not in nodes:
            nodes[name] = AgentNode(name=name, tools=[], handoffs=[])
    for source, target in taken:
        if target not in nodes[source].handoffs:
            nodes[source].handoffs.append(target)
    for name in path:
        nodes[name].visited = True
    for name, called in used_tools.items():
        if name in nodes:
            nodes[name].used_tools |= called
            nodes[name].visited = True
    if current in nodes:
        nodes[current].current = True
    counts: dict[tuple[str, str], int] = {}
    for pair in taken:
        counts[pair] = counts.get(pair, 0) + 1
    edges = [
        AgentEdge(n.name, target, taken=counts.get((n.name, target), 0))
        for n in nodes.values()
        for target in n.handoffs
        if target in nodes
    ]
    start = root.name if root is not None else (path[0] if path else None)
    width, height = _layout(list(nodes.values()), edges, start)
    return AgentView(list(nodes.values()), edges, width, height, list(path), current, note)


def _handoff_name(item: Agent[Any] | Handoff[Any, Any]) -> str | None:
    target = handoff_target(item)
    if target is not None:
        return target.name
    return getattr(item, "agent_name", None)


def _layout(
    nodes: list[AgentNode], edges: list[AgentEdge], start: str | None
) -> tuple[float, float]:
    """Place boxes in layers by handoff distance from ``start``; route the arrows."""
    by_name = {n.name: n for n in nodes}
    layer: dict[str, int] = {}
    if start in by_name:
        layer[start] = 0
        frontier = [start]
        while frontier:
            following: list[str] = []
            for name in frontier:
                for target in by_name[name].handoffs:
                    if target in by_name and target not in layer:
                        layer[target] = layer[name] + 1
                        following.append(target)
            frontier = following
    deepest = max(layer.values(), default=-1)
    for n in nodes:  # unreachable agents (only seen in events) go in a last column
        layer.setdefault(n.name, deepest + 1)
    columns: dict[int, list[AgentNode]] = {}
    for n in nodes:
        columns.setdefault(layer[n.name], []).append(n)
    height = 0.0
    for index, column in sorted(columns.items()):
        y = float(MARGIN)
        for n in column:
            n.x = MARGIN + index * (NODE_WIDTH + LAYER_GAP)
            n.y = y
            n.height = HEADER + LINE * max(1, len(n.tools)) + 8
            y += n.height + NODE_GAP
        height = max(height, y - NODE_GAP + MARGIN)
    for e in edges:
        s, t = by_name[e.source], by_name[e.target]
        if t.x > s.x:
            x1, y1 = s.x + NODE_WIDTH, s.y + s.height * 0.35
            x2, y2 = t.x, t.y + t.height * 0.35
            bend = (x2 - x1) / 2
            e.path = f"M{x1:.0f},{y1:.0f} C{x1 + bend:.0f},{y1:.0f} {x2 - bend:.0f},{y2:.0f} {x2:.0f},{y2:.0f}"
        else:  # back to an earlier layer (or the same one): leave and enter lower down
            x1, y1 = s.x, s.y + s.height * 0.7
            x2, y2 = t.x + NODE_WIDTH, t.y + t.height * 0.7
            bend = max(40.0, (x1 - x2) / 2)
            e.path = f"M{x1:.0f},{y1:.0f} C{x1 - bend:.0f},{y1:.0f} {x2 + bend:.0f},{y2:.0f} {x2:.0f},{y2:.0f}"
    width = (
        MARGIN * 2 + (max(columns) + 1) * NODE_WIDTH + max(columns) * LAYER_GAP if columns else 0
    )
    return float(width), float(max(height, 60.0))
