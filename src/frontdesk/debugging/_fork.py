"""Forking a run from a step: the same run again, replayed up to the step, live from it on.

A fork is a new run stored with copies of its parent's journal rows before the fork step
(and the approval decisions and events of those steps), its parent's input and context, and
optionally another model or replacement agents. The engine then drives it like any run: the
copied steps replay from its journal without calling the model or any tool, and everything
from the fork step on runs live. A tool whose result is copied is therefore never invoked
again: a refund issued before the fork step is not issued a second time (under the fork's own
execution id, its idempotency key would differ and nothing downstream would deduplicate it).

Nothing is created unless the fork can run: an unknown run, a step out of range, a step inside
a pending approval (or after a tool call whose result was never recorded), and replacement
agents that name no agent of the run's graph are refused first.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from agents import Agent

from .._text import require_texts
from ..engine._agents import iter_graph, module_reference
from ..engine._context import dump_context
from ..engine._conversation import runner_input
from ..engine._models import run_selector
from ..engine._replace import check_replacements, compose, split
from ..engine._runstart import fresh
from ..engine._types import new_execution_id
from ..errors import InvalidFork
from ..store import ApprovalRecord, ForkSeed, JournalRow, RunRow, StoredEvent
from ._steps import Step, run_steps

if TYPE_CHECKING:
    from ..runtime import AgentRuntime

_EVERY = 1_000_000
"""Read at most this many approvals of a run (all of them)."""


def _step_number(at_step: Any) -> int:
    if isinstance(at_step, bool) or not isinstance(at_step, int):
        raise InvalidFork(f"the fork step must be a whole number, got {at_step!r}")
    return at_step


def _check_step(parent: RunRow, steps: list[Step], at: int) -> None:
    """Refuse a step out of range, inside a pending approval, or after an unfinished step."""
    recorded = [s for s in steps if s.kind != "approval"]
    # A run that did not complete may be forked after its last step (e.g. to retry a failed
    # model call on another model); a completed one would only replay to the same end.
    last = len(recorded) + (0 if parent.status == "completed" else 1)
    # Past the model call that asked for a pending approval, the history is not decided yet.
    for pending in (s for s in steps if s.kind == "approval"):
        asking = next(
            s for s in recorded if s.kind == "model" and s.model_call == pending.model_call
        )
        last = min(last, asking.number)
        if at > asking.number:
            approval_id = pending.approval.approval_id if pending.approval else "?"
            raise InvalidFork(
                f"step {at} is inside a pending approval: step {asking.number} "
                f"({asking.agent}) asked for {pending.name}, which waits for a human decision "
                f"(approval {approval_id}). Fork at step {asking.number} or before, or decide "
                "the approval first"
            )
    if not 1 <= at <= last:
        span = f"steps 1 to {last}" if last > 1 else "step 1" if last == 1 else "no step"
        raise InvalidFork(
            f"step {at} is out of range: run {parent.execution_id} can be forked at {span} "
            f"(it has {len(recorded)} recorded step{'s' if len(recorded) != 1 else ''}; "
            "frontdesk runs show lists them)"
        )
    for step in recorded[: at - 1]:
        if step.state != "done":
            raise InvalidFork(
                f"step {step.number} ({step.name}) has no recorded result: it was interrupted "
                f"or is running now. Fork at step {step.number} or before"
            )


def _event_step(key: str) -> str | None:
    """The journal key of the step an event reports, or None for events of no one step."""
    kind, _, rest = key.partition(":")
    if kind in ("tool_call", "tool_result", "approval_required", "approval_decided"):
        return f"tool:{rest}"
    if kind == "tool_retry":
        return f"tool:{rest.rsplit(':', 1)[0]}"
    if kind == "message":
        return f"model:{rest}"
    if kind == "handoff":
        return key
    return None


def copied_events(events: Sequence[StoredEvent], copied: set[str]) -> list[StoredEvent]:
    """The parent's events a fork keeps: those reporting the copied steps, and the agent
    starts that came before the first event of a step the fork runs live."""
    later = [
        e.seq for e in events if (step := _event_step(e.key)) is not None and step not in copied
    ]
    cut = min(later, default=None)

    def kept(event: StoredEvent) -> bool:
        step = _event_step(event.key)
        if step is not None:
            return step in copied
        return event.type == "agent_start" and (cut is None or event.seq < cut)

    return [event for event in events if kept(event)]


def _replacement_refs(
    runtime: AgentRuntime, parent: RunRow, agents: Sequence[Agent[Any]], fork_id: str
) -> tuple[str, Agent[Any]]:
    """The fork's agent reference and its root: the parent's, with ``agents`` in place of the
    agents named like them (a reference any process can resolve when they are importable)."""
    root = runtime.registry.resolve(parent.agent_ref)
    if not agents:
        return parent.agent_ref, root
    check_replacements(root, agents, InvalidFork)
    root_ref, earlier = split(parent.agent_ref)
    replaced = {a.name for a in agents}
    kept = [ref for ref in earlier if runtime.registry.resolve(ref).name not in replaced]
    refs = []
    for agent in agents:
        found = module_reference(agent)
        refs.append(found or f"name:{runtime.registry.register(agent, f'{fork_id}/{agent.name}')}")
    ref = compose(root_ref, [*kept, *refs])
    return ref, runtime.registry.resolve(ref)


def _start_context(runtime: AgentRuntime, parent: RunRow, copied: list[JournalRow]) -> str | None:
    """The context the fork starts from: its parent's starting context (its copied steps
    restore the snapshots they recorded), or the last snapshot before the fork step for a run
    completed before starting contexts were kept."""
    kept = runtime.store.start_context(parent.execution_id)
    if kept is None:
        return parent.context_json
    known, context_json = kept
    if known:
        return context_json
    snapshots = [row.context_json for row in copied if row.context_json is not None]
    if snapshots:
        return snapshots[-1]
    raise InvalidFork(
        f"run {parent.execution_id} completed before frontdesk kept the context runs start "
        "with, and its steps changed its context: pass the context to start the fork from"
    )


def _check_model(runtime: AgentRuntime, recorded: str | None, root: Agent[Any]) -> None:
    """Raise now (nothing created) if this process cannot provide the fork's model."""
    selector = run_selector(recorded, runtime.selector)
    for agent in iter_graph(root):
        selector.resolve(agent)


def plan_fork(
    runtime: AgentRuntime,
    execution_id: str,
    at_step: int,
    *,
    model: str | None = None,
    agents: Iterable[Agent[Any]] | None = None,
    context: Any = None,
) -> ForkSeed:
    """Check a fork and return everything it is stored with; nothing is written."""
    require_texts(execution_id=execution_id, model=model)
    at = _step_number(at_step)
    if model is not None and (not isinstance(model, str) or not model.strip()):
        raise InvalidFork(f"the fork's model must be a model name, got {model!r}")
    replacements = list(agents or [])
    parent = runtime.store.require_run(execution_id)
    journal = runtime.store.journal(execution_id)
    approvals = runtime.store.approvals(execution_id=execution_id, limit=_EVERY)
    steps = run_steps(journal, approvals)
    _check_step(parent, steps, at)

    fork_id = new_execution_id()
    agent_ref, root = _replacement_refs(runtime, parent, replacements, fork_id)
    model_override = parent.model_override if model is None else model
    _check_model(runtime, model_override, root)
    label = parent.model_label if model is None else runtime.selector.with_override(model).label

    rows = sorted(journal, key=lambda r: r.ordinal)[: at - 1]
    copied = [dataclasses.replace(row, ordinal=n) for n, row in enumerate(rows, start=1)]
    if context is not None:
        context_type, context_json = dump_context(context)
        # The given context is the one the live steps see: no copied snapshot replaces it.
        copied = [dataclasses.replace(row, context_json=None) for row in copied]
    else:
        context_type, context_json = parent.context_type, _start_context(runtime, parent, rows)
    keys = {row.key for row in copied}
    decided: list[ApprovalRecord] = [
        a for a in approvals if a.status != "pending" and f"tool:{a.call_key}" in keys
    ]
    # A fork of a turn stands alone: it starts from the items the turn saw, in no conversation.
    stored_input = runner_input(runtime.store, parent)
    # The parent's row with what a new run resets; whatever else it carries is kept.
    row = dataclasses.replace(
        parent,
        execution_id=fork_id,
        agent_ref=agent_ref,
        input=json.dumps(stored_input),
        context_type=context_type,
        context_json=context_json,
        model_label=label,
        lease_owner=None,
        lease_expires=None,
        conversation_id=None,
        turn=None,
        model_override=model_override,
        lease_epoch=0,
        **fresh(time.time()),
    )
    events = copied_events(runtime.store.stored_events(execution_id), keys)
    return ForkSeed(row, execution_id, at, copied, decided, events)


__all__ = ["copied_events", "plan_fork"]
