"""The Temporal engine's activities: a run's tool calls, and its records in the store.

* ``frontdesk_run_tool`` runs one function tool of a registered agent: the worker finds the
  agent by the run's agent reference and the agent's name, and the tool by its name. The call
  runs once per idempotency key (derived from the workflow id and the call), journaled in the
  runtime's store (:class:`~._store.WorkerStore`), which every worker shares: a retried
  activity returns what a finished call returned, whichever machine ran it. The tool runs in
  the worker runtime's scope, so :func:`frontdesk.current_runtime` (and an app's data, which
  lives in that runtime's store) works in it as on the embedded engine. It heartbeats while the tool runs: a worker that dies is noticed in seconds and
  the call moves to another worker; a cancelled run cancels it. An error of the tool fails the
  call at once (no retry), as on the embedded engine.
* ``frontdesk_run_record`` writes what a run's workflow reports (events, steps, approval
  requests, its outcome, a conversation turn) to the runtime's :class:`~frontdesk.store.Store`
  through its typed writes. Every event and step has a key in its run and is written once, so
  a record replayed after a crash changes nothing; a run that already ended is left alone.

:class:`RunModelProvider` is the plugin's ``model_provider``: it gives the plugin's model
activity the model of the agent a run workflow names (see ``agent_model_name``), chosen as the
embedded engine chooses it.
"""

import asyncio
import json
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

from agents import Agent, FunctionTool, Model, ModelProvider

from ...errors import FrontdeskError
from ...events import Usage, encode_payload
from ...models._select import ModelSelector
from ...store import (
    TERMINAL_STATUSES,
    ApprovalRecord,
    JournalRow,
    RecordStep,
    RecordTurn,
    SettleRun,
    Store,
    Write,
    event_insert,
    request_op,
)
from ...tools import approval_timeout
from .._agents import AgentRegistry, iter_graph
from .._conversation import release_ops
from .._models import run_selector
from .._types import idempotency_key
from ._activities import MODEL_UNAVAILABLE, NOT_REGISTERED, ToolCallOutput, invoke_tool_once
from ._extra import missing_extra
from ._run_data import RecordInput, RecordOp, RunToolInput, parse_model_name
from ._run_registry import pinned
from ._store import WorkerStore

try:
    from temporalio import activity
    from temporalio.exceptions import ApplicationError
except ImportError as _exc:  # pragma: no cover - the temporal extra is missing
    raise missing_extra(_exc) from _exc

RUN_TOOL_ACTIVITY = "frontdesk_run_tool"
RUN_RECORD_ACTIVITY = "frontdesk_run_record"
TOOL_FAILED = "FrontdeskToolFailed"
"""The ``ApplicationError`` type of a tool that raised: the run fails, nothing is retried."""
HEARTBEAT_EVERY = 1.0
"""Seconds between a running tool's heartbeats."""
TEMPORAL_OWNER = "temporal"
"""The lease owner a Temporal run is stored with, so no embedded engine ever takes it over."""
TEMPORAL_LEASE_EXPIRES = 32503680000.0
"""The lease expiry a Temporal run is stored with (the year 3000: never)."""


def _not_registered(message: str) -> ApplicationError:
    return ApplicationError(message, type=NOT_REGISTERED, non_retryable=True)


def find_agent(
    registry: AgentRegistry, agent_ref: str, agent_name: str, execution_id: str
) -> Agent[Any]:
    """The agent ``agent_name`` reachable from the agent run ``execution_id`` started from
    (the object itself if it started here, else the one ``agent_ref`` names)."""
    root = pinned(execution_id)
    if root is None:
        try:
            root = registry.resolve(agent_ref)
        except FrontdeskError as exc:
            raise _not_registered(str(exc)) from exc
    for agent in iter_graph(root):
        if agent.name == agent_name:
            return agent
    raise _not_registered(f"no agent named {agent_name!r} is reachable from {agent_ref!r}")


def find_tool(
    registry: AgentRegistry, agent_ref: str, agent_name: str, name: str, execution_id: str
) -> FunctionTool:
    """The function tool ``name`` of that agent."""
    for tool in find_agent(registry, agent_ref, agent_name, execution_id).tools:
        if isinstance(tool, FunctionTool) and tool.name == name:
            return tool
    raise _not_registered(f"agent {agent_name!r} has no function tool {name!r}")


class RunModelProvider(ModelProvider):
    """The model of the agent a run workflow's model name points to (else ``fallback``'s)."""

    def __init__(
        self, registry: AgentRegistry, selector: ModelSelector, fallback: ModelProvider
    ) -> None:
        self.registry = registry
        """Where agents are found."""
        self.selector = selector
        """The runtime's model selection (a run's recorded override takes precedence)."""
        self.fallback = fallback
        """For model names no run workflow made (the airline workflow's)."""

    def get_model(self, model_name: str | None) -> Model:
        """The model for one model activity."""
        parsed = parse_model_name(model_name)
        if parsed is None:
            return self.fallback.get_model(model_name)
        override, agent_ref, agent_name, execution_id = parsed
        agent = find_agent(self.registry, agent_ref, agent_name, execution_id)
        try:
            return _PlainInput(run_selector(override, self.selector).resolve(agent))
        except FrontdeskError as exc:
            raise ApplicationError(str(exc), type=MODEL_UNAVAILABLE, non_retryable=True) from exc


def plain(value: Any) -> Any:
    """``value`` with the lazy iterators the data converter leaves in input items (for
    ``Iterable`` fields) made lists, so a model may read (or copy) them more than once."""
    if isinstance(value, dict):
        return {key: plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [plain(item) for item in value]
    if type(value).__name__ == "ValidatorIterator":
        return [plain(item) for item in value]
    return value


class _PlainInput(Model):
    """A model whose input items are plain data (see :func:`plain`)."""

    def __init__(self, inner: Model) -> None:
        self.inner = inner

    async def get_response(
        self, system_instructions: Any, input: Any, *args: Any, **kw: Any
    ) -> Any:
        return await self.inner.get_response(system_instructions, plain(input), *args, **kw)

    def stream_response(self, system_instructions: Any, input: Any, *args: Any, **kw: Any) -> Any:
        return self.inner.stream_response(system_instructions, plain(input), *args, **kw)

    async def close(self) -> None:
        await self.inner.close()


class RunActivities:
    """The activities of the Temporal engine's worker (register :meth:`all` on the worker)."""

    def __init__(
        self,
        *,
        store: Store,
        registry: AgentRegistry,
        home: Path,
        notify: Callable[[str], None],
        worker_store: WorkerStore | None = None,
        scope: Any = None,
    ) -> None:
        self.store = store
        """The runtime's store, where runs are recorded."""
        self.registry = registry
        """Where agents and their tools are found."""
        self.home = home
        """The home tools run in."""
        self.notify = notify
        """Wakes whoever waits for news about the run it names."""
        self.worker_store = worker_store if worker_store is not None else WorkerStore(store)
        """The tool calls journal (in ``store`` unless given)."""
        self.scope = scope
        """What :func:`frontdesk.current_runtime` gives tools (the runtime), if any."""

    def all(self) -> list[Any]:
        """The activity functions, for ``Worker(activities=...)``."""
        return [self.tool, self.record]

    @activity.defn(name=RUN_TOOL_ACTIVITY)
    async def tool(self, call: RunToolInput) -> ToolCallOutput:
        """Run one tool call once, heartbeating while it runs."""
        tool = find_tool(
            self.registry, call.agent_ref, call.agent_name, call.tool_name, call.execution_id
        )
        running = asyncio.ensure_future(
            invoke_tool_once(
                self.worker_store,
                self.home,
                tool,
                workflow_id=call.execution_id,
                call_id=call.call_id,
                key=idempotency_key(call.execution_id, call.call_key),
                agent_name=call.agent_name,
                args_json=call.args_json,
                context_type=call.context_type,
                context_json=call.context_json,
                scope=self.scope,
            )
        )
        try:
            while True:
                done, _ = await asyncio.wait([running], timeout=HEARTBEAT_EVERY)
                if done:
                    break
                activity.heartbeat()
        except asyncio.CancelledError:
            running.cancel()
            raise
        error = running.exception()
        if error is None:
            return running.result()
        if isinstance(error, ApplicationError):
            raise error
        raise ApplicationError(
            f"{type(error).__name__}: {error}", type=TOOL_FAILED, non_retryable=True
        ) from error

    @activity.defn(name=RUN_RECORD_ACTIVITY)
    async def record(self, data: RecordInput) -> None:
        """Write what the workflow reports to the store (what it holds already is skipped)."""
        await asyncio.to_thread(self._record, data)
        self.notify(data.execution_id)

    def recorded_response(self, execution_id: str, key: str) -> str | None:
        """The model response the run's journal holds under ``key`` (a done ``model`` step),
        as stored, or None."""
        for row in self.store.journal(execution_id):
            if row.key == key:
                done = row.kind == "model" and row.state == "done"
                return row.data_json if done else None
        return None

    def _record(self, data: RecordInput) -> None:
        execution_id = data.execution_id
        row = self.store.get_run(execution_id)
        if row is None or row.status in TERMINAL_STATUSES:
            return  # cancelled (or finished) meanwhile: its outcome is final
        keys = self.store.event_keys(execution_id)
        journal = {r.key: r for r in self.store.journal(execution_id)}
        ordinal = max((r.ordinal for r in journal.values()), default=0)
        now = time.time()
        writes: list[Write] = []
        for op in data.ops:
            if op.kind == "event":
                if op.key in keys:
                    continue
                keys.add(op.key)
                payload = dict(op.data)
                if isinstance(payload.get("usage"), dict):
                    payload["usage"] = Usage(**payload["usage"])
                writes.append(
                    event_insert(
                        execution_id,
                        op.key,
                        op.type,
                        op.agent,
                        encode_payload(**payload),
                        at=now,
                        ref=op.ref,
                    )
                )
            elif op.kind == "step":
                existing = journal.get(op.key)
                if existing is not None and existing.state == "done":
                    continue
                if existing is None:
                    ordinal += 1
                step = JournalRow(
                    op.key,
                    op.type,
                    "done",
                    op.agent,
                    op.data.get("name"),
                    op.data.get("args_json"),
                    op.data.get("data_json"),
                    op.data.get("context_json"),
                    int(op.data.get("attempts", 1)),
                    now - float(op.data.get("duration", 0.0)),
                    now,
                    existing.ordinal if existing is not None else ordinal,
                )
                journal[op.key] = step
                writes.append(RecordStep(execution_id, step))
            elif op.kind == "approval":
                writes.append(request_op(self._approval(row.agent_ref, execution_id, op, now)))
            elif op.kind == "settle":
                writes.append(SettleRun(execution_id, _settled(op, now)))
            elif op.kind == "turn":
                writes.extend(self._turn(row.conversation_id, execution_id, op, now))
            elif op.kind == "release" and row.conversation_id is not None:
                writes.extend(release_ops(row.conversation_id, execution_id))
        if writes:
            self.store.write(writes)

    def _approval(
        self, agent_ref: str, execution_id: str, op: RecordOp, now: float
    ) -> ApprovalRecord:
        agent_name = op.agent or ""
        tool = find_tool(
            self.registry, agent_ref, agent_name, str(op.data["tool_name"]), execution_id
        )
        timeout = approval_timeout(tool)
        deadline = now + timeout.after.total_seconds() if timeout is not None else None
        return ApprovalRecord(
            approval_id=str(op.data["approval_id"]),
            execution_id=execution_id,
            call_key=op.key,
            call_id=str(op.data["call_id"]),
            agent=op.agent,
            tool_name=tool.name,
            args=op.data.get("args") or {},
            status="pending",
            requested_at=now,
            decided_at=None,
            decided_by=None,
            note=None,
            reason=None,
            deadline=deadline,
            on_timeout=timeout.on_timeout if timeout is not None else None,
            args_schema=tool.params_json_schema,
        )

    def _turn(
        self, conversation_id: str | None, execution_id: str, op: RecordOp, now: float
    ) -> list[Write]:
        if conversation_id is None:
            return []
        state = self.store.conversation(conversation_id)
        if state is None:
            return []
        base = int(op.data["base_len"])
        return [
            RecordTurn(
                conversation_id=conversation_id,
                execution_id=execution_id,
                turn=state.turns + 1,
                start=base,
                first_line=state.history_len,
                lines=list(op.data["lines"]),
                first_item=base,
                items_json=[json.dumps(i, separators=(",", ":")) for i in op.data["items"]],
                current_agent=str(op.data["current_agent"]),
                context_json=op.data.get("context_json"),
                at=now,
            )
        ]


def _settled(op: RecordOp, now: float) -> dict[str, Any]:
    """The columns of a run settling as ``op`` says (its status in ``op.type``)."""
    columns: dict[str, Any] = {"status": op.type, "updated_at": now, **op.data}
    usage = columns.pop("usage", None)
    if isinstance(usage, dict):
        columns.update(
            requests=usage.get("requests", 0),
            input_tokens=usage.get("input_tokens", 0),
            output_tokens=usage.get("output_tokens", 0),
            total_tokens=usage.get("total_tokens", 0),
        )
    if op.type in TERMINAL_STATUSES:
        columns.setdefault("finished_at", now)
        columns.update(lease_owner=None, lease_expires=None)
    else:
        columns.update(lease_owner=TEMPORAL_OWNER, lease_expires=TEMPORAL_LEASE_EXPIRES)
    return columns


TOOL_TIMEOUT = timedelta(minutes=10)
"""How long one attempt of a tool call may take."""
TOOL_HEARTBEAT = timedelta(seconds=5)
"""How soon a tool call whose worker stopped heartbeating is run again elsewhere."""
RECORD_TIMEOUT = timedelta(seconds=30)
"""How long one record may take."""


__all__ = [
    "HEARTBEAT_EVERY",
    "RECORD_TIMEOUT",
    "RUN_RECORD_ACTIVITY",
    "RUN_TOOL_ACTIVITY",
    "TEMPORAL_LEASE_EXPIRES",
    "TEMPORAL_OWNER",
    "TOOL_FAILED",
    "TOOL_HEARTBEAT",
    "TOOL_TIMEOUT",
    "RunActivities",
    "RunModelProvider",
    "find_agent",
    "find_tool",
]
