"""The data that crosses the Temporal engine's boundary: a run's input, the records its
workflow asks the store to keep, a tool call, and the decisions and retries sent to it.

Plain dataclasses with real (not postponed) annotations, which the Pydantic data converter
resolves inside the workflow sandbox. Nothing here does I/O.
"""

import json
from dataclasses import dataclass, field
from typing import Any

from ._extra import missing_extra

try:
    from temporalio.openai_agents._invoke_model_activity import ActivityModelInput
except ImportError as _exc:  # pragma: no cover - the temporal extra is missing
    raise missing_extra(_exc) from _exc

MODEL_PREFIX = "frontdesk-agent:"
"""How a model name the run workflow gives an agent copy starts (see :func:`agent_model_name`)."""


@dataclass
class RunInput:
    """Everything a run workflow needs, as data: agents cross by reference and name only."""

    execution_id: str
    """The run (and the workflow's id)."""
    agent_ref: str
    """Where the starting agent is found in the runtime's registry."""
    input: Any
    """What the SDK's runner is given: a message or input items."""
    context_type: str | None
    """The context's type reference (see ``dump_context``)."""
    context_json: str | None
    """The context the run starts from."""
    model_override: str | None
    """The model the run was recorded with instead of its agents' own, if any."""
    max_turns: int
    """The SDK's turn limit."""
    attempt: int = 1
    """The run's attempt (a retry makes the next one)."""
    trace: bool = False
    """Whether the SDK's traces are exported (only with OpenAI's own models)."""
    conversation_id: str | None = None
    """The conversation the run is a turn of, if any."""
    turn_base: int = 0
    """For a turn: how many conversation items come before its message."""
    turn_message: str | None = None
    """For a turn: the user's message."""
    budget_json: str | None = None
    """The run's budget as stored (``BudgetPlan`` JSON); None: no limits."""
    models: dict[str, str | None] = field(default_factory=dict)
    """The model name each agent runs on, for the budget's prices and the steps."""


@dataclass
class RecordOp:
    """One thing the store is asked to keep for a run."""

    kind: str
    """``event``, ``step``, ``approval``, ``settle``, ``turn`` or ``release``."""
    key: str = ""
    """An event's or a step's key in its run (each is written once)."""
    type: str = ""
    """An event's type, a step's kind, a settled run's status."""
    agent: str | None = None
    """The agent it is about."""
    data: dict[str, Any] = field(default_factory=dict)
    """The event's payload, the step's columns, the settled columns, the turn's parts."""
    ref: str | None = None
    """The journal row an event's output is read from."""


@dataclass
class RecordInput:
    """What one write of a run's report holds (a ``frontdesk_run_record`` activity's, or a
    model call's before the call), in one transaction."""

    execution_id: str
    """The run."""
    ops: list[RecordOp]
    """What to keep, in order; what the store already holds is skipped."""


@dataclass
class RunModelInput:
    """One model call of a run, with what the run reported since its last write."""

    call: ActivityModelInput
    """The plugin's model activity input."""
    records: RecordInput | None = None
    """Written to the store first, in the same local activity; None: nothing to write."""
    journal_key: str | None = None
    """The call's step in the run's journal (``model:<k>``) on a retry: the response an
    earlier attempt recorded there answers the call, as on the embedded engine; None (a first
    attempt): the model is called."""


@dataclass
class RunToolInput:
    """One function tool call of a run, as data."""

    execution_id: str
    """The run (the workflow id)."""
    agent_ref: str
    """Where the run's starting agent is found."""
    agent_name: str
    """The agent whose tool it is."""
    tool_name: str
    """The tool's name."""
    call_id: str
    """The model's id for the call."""
    call_key: str
    """``<model call>:<call id>``: the call's key in its run."""
    args_json: str
    """The arguments the tool runs with."""
    context_type: str | None
    """The context's type reference."""
    context_json: str | None
    """The context before the call."""


@dataclass
class Decision:
    """A person's (or the clock's) decision on a tool call that waits for approval."""

    call_key: str
    """The call decided on."""
    status: str
    """``approved`` or ``rejected``."""
    reason: str | None = None
    """Why it was rejected."""
    decided_by: str | None = None
    """Who decided."""
    edited_args: dict[str, Any] | None = None
    """The arguments the call runs with, when the approver edited them."""


@dataclass
class ResumeInput:
    """The ``resume`` update: decisions recorded in the store, and the run's attempt."""

    decisions: list[Decision]
    """Every decision on the run's calls (those the workflow knows are ignored)."""
    attempt: int
    """The run's attempt as stored: higher than the workflow's after a retry."""
    budget_json: str | None = None
    """The run's budget as stored (a retry may have replaced it)."""


def agent_model_name(
    override: str | None, agent_ref: str, agent_name: str, execution_id: str
) -> str:
    """The model name an agent's copy carries in a run workflow: the model activity's provider
    finds the agent (and the run's model override) by it."""
    fields = [override, agent_ref, agent_name, execution_id]
    return MODEL_PREFIX + json.dumps(fields, separators=(",", ":"))


def parse_model_name(name: str | None) -> tuple[str | None, str, str, str] | None:
    """``(override, agent_ref, agent_name, execution_id)`` of a name :func:`agent_model_name`
    made, else None."""
    if not name or not name.startswith(MODEL_PREFIX):
        return None
    try:
        override, ref, agent, execution_id = json.loads(name[len(MODEL_PREFIX) :])
    except (ValueError, TypeError):
        return None
    return override, str(ref), str(agent), str(execution_id)


__all__ = [
    "MODEL_PREFIX",
    "Decision",
    "RecordInput",
    "RecordOp",
    "ResumeInput",
    "RunInput",
    "RunModelInput",
    "RunToolInput",
    "agent_model_name",
    "parse_model_name",
]
