"""Debugging agents from their history: fork a run from any step, diff two runs, and turn
runs into regression tests.

* :meth:`AgentRuntime.fork <frontdesk.AgentRuntime.fork>` (``frontdesk runs fork ID --at K``)
  runs a run again from step ``K``: the steps before it replay from its journal, the rest runs
  live, on another model or with replacement agents if asked;
* :meth:`AgentRuntime.diff <frontdesk.AgentRuntime.diff>` (``frontdesk runs diff A B``)
  compares two runs step by step and names where they first diverge, and why;
* ``frontdesk runs export ID... --pytest DIR`` writes each run as a pytest file that replays
  it through the current agents (:func:`frontdesk.testing.replay`).

Steps are numbered as ``frontdesk runs show`` prints them (:func:`run_steps`).
"""

from ..store import ForkLink, Lineage
from ._diff import DiffSide, Divergence, DivergenceReason, RunDiff, ToolView, TurnPair, TurnView
from ._steps import Step, ToolRequest, agent_path, run_steps

__all__ = [
    "DiffSide",
    "Divergence",
    "DivergenceReason",
    "ForkLink",
    "Lineage",
    "RunDiff",
    "Step",
    "ToolRequest",
    "ToolView",
    "TurnPair",
    "TurnView",
    "agent_path",
    "run_steps",
]
