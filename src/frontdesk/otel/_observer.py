"""The spans of one run, from the steps its driver records.

A driver tells its :class:`RunObserver` of each step it records live: a model call, a tool
call started or finished, a handoff, an agent taking over. Steps replayed from the journal are
never recorded again, so they never make a second span. Each span is written once the step it
describes is committed, with the times the journal holds, under the run's trace id and with
ids derived from the step (see :mod:`._ids`); a process that takes the run over later, after
a crash or an approval, writes the rest of the run's spans into the same trace.

The shape of a run's trace::

    invoke_workflow frontdesk:<agent>     one per attempt (a retry's hangs under the first)
      invoke_agent <agent>                one per agent taking the run, in order
        chat <model>                      each model call
        execute_tool <tool>               each tool call (its last attempt)
        approval <tool>                   each wait for a human decision
        handoff <agent>                   each handoff, under the agent that hands off

The run span and the current agent's span end when the run does (completed, failed,
cancelled); a run waiting for approval keeps them open, to be written by whichever process
finishes it. Spans a process had not exported when it died are lost with it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from functools import partial
from typing import Any, NamedTuple, Protocol

from opentelemetry.trace import SpanKind

from ..engine._agents import iter_graph
from ..events import Event
from ..store import ApprovalRecord, JournalRow, RunRow, Write
from . import _attributes as attrs
from ._writer import SpanWriter


class TracedRun(Protocol):
    """What tracing reads of a run while its driver drives it."""

    agent_starts: int
    """How many times an agent took the run so far."""
    decisions: dict[str, ApprovalRecord]
    """The approval decisions on its tool calls, by call key."""


log = logging.getLogger("frontdesk.otel")

OPEN_STATUSES = frozenset({"running", "waiting_approval"})
"""Statuses of a run that has not ended: its run and agent spans stay open."""
ENDS_ATTEMPT = frozenset({"error", "budget_exceeded"})
"""Events that end an attempt a retry may follow (a cancellation's error ends the run)."""


class ModelInfo(NamedTuple):
    """What the spans of an agent's model calls say about its model."""

    name: str | None
    """``gen_ai.request.model``."""
    provider: str | None
    """``gen_ai.provider.name``."""


def models_of(graph: Any) -> dict[str, ModelInfo]:
    """The model of each agent of a durable graph, by agent name."""
    return {agent.name: model_info(agent.model) for agent in iter_graph(graph)}


def model_info(model: Any) -> ModelInfo:
    """The name and provider of a model (unwrapped from frontdesk's durable wrapper)."""
    inner = getattr(model, "inner", model)
    kind = type(inner)
    if kind.__name__ == "RulesModel":
        return ModelInfo(attrs.RULES_MODEL, "frontdesk.rules")
    name = getattr(inner, "model", None)
    if isinstance(model, str):
        name = model
    provider = "openai" if kind.__module__.startswith("agents.models.openai") else None
    if kind.__module__.startswith("agents.extensions.models.litellm"):
        provider = "litellm"
    return ModelInfo(name if isinstance(name, str) else kind.__name__, provider)


class RunObserver:
    """Writes the spans of one run's steps as one driver records them."""

    def __init__(
        self,
        writer: SpanWriter,
        row: RunRow,
        *,
        run: TracedRun | None,
        models: dict[str, ModelInfo],
        history: Iterable[Event] = (),
        approvals: Callable[[], list[ApprovalRecord]] | None = None,
        content: bool = False,
    ) -> None:
        self.writer = writer
        self.execution_id = row.execution_id
        self.attempt = max(1, row.attempt)
        self.run = run
        self.models = models
        self.approvals = approvals
        self.content = content
        self.common = attrs.common(row.execution_id, row.conversation_id)
        self.agents: dict[int, tuple[str, float]] = {}
        """Each agent that took the run, by its place in order: its name and when."""
        failures: list[float] = []
        for event in history:
            if event.type == "agent_start":
                self.agents[len(self.agents) + 1] = (event.agent or "", event.at)
            elif event.type in ENDS_ATTEMPT and event.data.get("status") != "cancelled":
                failures.append(event.at)
        # Attempt n of a retried run starts where attempt n - 1 stopped.
        retried = self.attempt > 1 and len(failures) >= self.attempt - 1
        self.started = failures[self.attempt - 2] if retried else row.created_at
        self.open_tools: dict[str, tuple[JournalRow, int]] = {}
        self.pending: dict[int, tuple[Write, Callable[[], None]]] = {}

    # -- what the driver tells (see the durable run's observer) ---------------------------

    def event(self, key: str, type_: str, agent: str | None, at: float, op: Write) -> None:
        """A new event is about to be committed with ``op``."""
        if type_ == "agent_start":
            self._guarded(lambda: self._agent_started(key, agent, at, op))

    def recorded(self, row: JournalRow, previous: JournalRow | None, op: Write) -> None:
        """A journal row is about to be committed with ``op`` (``previous``: the row it
        replaces, a tool call's started row)."""
        self._guarded(lambda: self._recorded(row, previous, op))

    def _agent_started(self, key: str, agent: str | None, at: float, op: Write) -> None:
        index = self._agent_index(key)
        before = self.agents.get(index - 1)
        self.agents[index] = (agent or "", at)
        if before is not None:
            self._once_durable(op, lambda: self._agent_span(index - 1, before, at))

    def _recorded(self, row: JournalRow, previous: JournalRow | None, op: Write) -> None:
        agent = self.run.agent_starts if self.run is not None else 0
        if row.kind == "model" and row.state == "done":
            self._once_durable(op, lambda: self._model_span(row, agent))
        elif row.kind == "handoff" and row.state == "done":
            self._once_durable(op, lambda: self._handoff_span(row, agent))
        elif row.kind == "tool":
            self._tool(row, previous, op, agent)

    def committed(self, ops: Iterable[Write]) -> None:
        """``ops`` are durable: write the spans of the steps they record."""
        for op in ops:
            entry = self.pending.pop(id(op), None)
            if entry is not None and entry[0] is op:
                self._guarded(entry[1])

    def settle(self, row: RunRow) -> None:
        """The driver left the run as ``row``: if it ended, close its open spans."""
        if row.status in OPEN_STATUSES:
            return
        self.pending.clear()
        end = row.finished_at or row.updated_at
        error = None if row.status == "completed" else row.status
        for tool_row, agent in self.open_tools.values():
            # Started and never finished: the run ended (failed, cancelled) inside the call.
            self._guarded(partial(self._tool_span, tool_row, agent, end, row.status))
        self.open_tools.clear()
        current = max(self.agents, default=0)
        if row.status == "cancelled" and self.approvals is not None:
            for record in self.approvals():
                if record.status == "cancelled":
                    self._guarded(partial(self._approval_span, record, current, "cancelled", end))
        if current:
            failed = error if row.status != "cancelled" else None
            started = self.agents[current]
            self._guarded(partial(self._agent_span, current, started, end, failed))
        self._guarded(partial(self._run_span, row, end, error))

    # -- spans -----------------------------------------------------------------------------

    def _run_span(self, row: RunRow, end: float, error: str | None) -> None:
        self.writer.write(
            self.execution_id,
            f"run:{self.attempt}",
            f"invoke_workflow {attrs.workflow_name(row.agent_name)}",
            parent=None if self.attempt == 1 else "run:1",
            start=self.started,
            end=end,
            attributes={**self.common, **attrs.workflow(row, self.attempt, self.content)},
            error=error if error != "cancelled" else None,
        )

    def _agent_span(
        self, index: int, started: tuple[str, float], end: float, error: str | None = None
    ) -> None:
        name, at = started
        self.writer.write(
            self.execution_id,
            self._agent_step(index),
            f"invoke_agent {name}",
            parent=f"run:{self.attempt}",
            start=max(at, self.started),
            end=end,
            attributes={**self.common, **attrs.agent(name, index)},
            error=error,
        )

    def _model_span(self, row: JournalRow, agent: int) -> None:
        info = self.models.get(row.agent or "", ModelInfo(None, None))
        model = row.name or info.name
        call = _number(row.key)
        self.writer.write(
            self.execution_id,
            row.key,
            f"chat {model}" if model else "chat",
            parent=self._agent_step(agent),
            start=row.started_at,
            end=row.finished_at or row.started_at,
            attributes={
                **self.common,
                **attrs.model_call(row, call, model, info.provider, self.content),
            },
            kind=SpanKind.CLIENT,
        )

    def _tool(self, row: JournalRow, previous: JournalRow | None, op: Write, agent: int) -> None:
        call_key = row.key.split(":", 1)[1]
        decision = self.run.decisions.get(call_key) if self.run is not None else None
        if decision is not None and previous is None:
            # The first step after the decision: the wait for it is over.
            end = decision.decided_at or row.started_at
            self._once_durable(
                op, lambda: self._approval_span(decision, agent, decision.status, end)
            )
        if row.state == "started":
            self.open_tools[row.key] = (row, agent)
        elif row.state == "done":
            self.open_tools.pop(row.key, None)
            if decision is None or decision.status != "rejected":  # a rejected call never ran
                end = row.finished_at or row.started_at
                self._once_durable(op, lambda: self._tool_span(row, agent, end))

    def _tool_span(self, row: JournalRow, agent: int, end: float, error: str | None = None) -> None:
        call_id = row.key.split(":", 2)[-1]
        self.writer.write(
            self.execution_id,
            f"{row.key}#{row.attempts}",
            f"execute_tool {row.name}",
            parent=self._agent_step(agent),
            start=row.started_at,
            end=end,
            attributes={**self.common, **attrs.tool_call(row, call_id, self.content)},
            error=error,
        )

    def _handoff_span(self, row: JournalRow, agent: int) -> None:
        self.writer.write(
            self.execution_id,
            row.key,
            f"handoff {row.name}",
            parent=self._agent_step(agent),
            start=row.started_at,
            end=row.finished_at or row.started_at,
            attributes={**self.common, **attrs.handoff(row)},
        )

    def _approval_span(self, record: ApprovalRecord, agent: int, status: str, end: float) -> None:
        self.writer.write(
            self.execution_id,
            f"approval:{record.call_key}",
            f"approval {record.tool_name}",
            parent=self._agent_step(agent),
            start=record.requested_at,
            end=end,
            attributes={**self.common, **attrs.approval(record, status, self.content)},
        )

    # -- plumbing --------------------------------------------------------------------------

    def _agent_step(self, index: int) -> str:
        """The span an agent's steps hang under (the run's, before any agent started)."""
        return f"agent:{self.attempt}:{index}" if index > 0 else f"run:{self.attempt}"

    def _agent_index(self, key: str) -> int:
        _, _, number = key.rpartition(":")
        if number.isdigit():
            return int(number)
        return self.run.agent_starts if self.run is not None else len(self.agents) + 1

    def _once_durable(self, op: Write, write: Callable[[], None]) -> None:
        self.pending[id(op)] = (op, write)

    def _guarded(self, write: Callable[[], None]) -> None:
        # A trace is worth less than the run it describes: never let it fail the run.
        try:
            write()
        except Exception:
            log.warning("run %s: a span could not be written", self.execution_id, exc_info=True)


def _number(key: str) -> int:
    _, _, number = key.rpartition(":")
    return int(number) if number.isdigit() else 0
