"""The JSON API under ``/api``: runs and approvals (conversations, disputes and escalations
are in :mod:`._api_apps`).

Every route needs the API token (or a console session, plus its CSRF token for changes) and
goes through :class:`~frontdesk.AgentRuntime`'s public API only, so it works the same on any
store or engine behind it. The decider of an approval is the caller's identity, never a field
of the body.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, model_validator

from ..errors import InvalidInput, RunNotFound
from ._auth import Identity
from ._debug import diff_dict, lineage_dict
from ._errors import ERROR_RESPONSES, NotFound
from ._live import run_events
from ._state import ConsoleState, api_user, console_state, known_query

router = APIRouter(
    prefix="/api", responses=ERROR_RESPONSES, dependencies=[Depends(api_user), Depends(known_query)]
)

RunStatus = Literal[
    "running", "waiting_approval", "completed", "failed", "cancelled", "budget_exceeded"
]
ApprovalStatus = Literal["pending", "approved", "rejected", "cancelled"]
Text200 = Annotated[str, Field(max_length=200)]

State = Annotated[ConsoleState, Depends(console_state)]
User = Annotated[Identity, Depends(api_user)]


class Body(BaseModel):
    """Request bodies refuse unknown fields."""

    model_config = ConfigDict(extra="forbid")


# -- runs ----------------------------------------------------------------------------------------


class RunSummary(BaseModel):
    """A run as listed."""

    execution_id: str
    status: str
    app: str | None
    agent: str
    last_agent: str | None
    input: str
    output: str | None
    error: str | None
    note: str | None
    model: str | None
    conversation_id: str | None
    started_at: str | None
    finished_at: str | None
    duration: float | None
    usage: dict[str, int]
    cost: float | None = Field(description="Estimated US dollars; null when a price is unknown.")


class RunPage(BaseModel):
    """A page of runs, newest first."""

    items: list[RunSummary]
    next_cursor: str | None


class GuardrailVerdict(BaseModel):
    """A guardrail of the run: its recorded result, or that it has none."""

    kind: Literal["input", "output", "tool_input", "tool_output"] = Field(
        description="The SDK's guardrail list it is in: the agent's or a function tool's."
    )
    agent: str | None = Field(description="The agent it guards (or whose tool it guards).")
    name: str = Field(description="The guardrail's name.")
    tool_name: str | None = Field(description="The tool, for a tool guardrail.")
    call_id: str | None = Field(description="The tool call it checked, for a tool guardrail.")
    verdict: Literal["passed", "tripped", "rejected", "not run", "not recorded"] = Field(
        description="``tripped``: its tripwire stopped the run; ``rejected``: a tool guardrail "
        "replaced the call or its output with a message; ``not recorded``: the run went past "
        "it but holds no result (it predates guardrail records); ``not run``: not (yet) run."
    )
    tripwire_triggered: bool | None = Field(description="As the guardrail returned it.")
    output_info: Any = Field(default=None, description="The guardrail's output info, as JSON.")
    message: str | None = Field(description="What a rejecting tool guardrail told the model.")
    duration_ms: float | None = Field(description="How long the guardrail took.")
    seq: int | None = Field(description="The event that recorded it.")
    at: str | None = Field(description="When it was recorded (ISO 8601 UTC).")


class ForkLinkItem(BaseModel):
    """One end of a fork: the run, and the step the fork runs live from."""

    execution_id: str
    fork_step: int = Field(description="The first step the fork ran live (1, 2, ...).")
    status: str
    created_at: str | None
    url: str


class LineageItem(BaseModel):
    """The run a fork was forked from, and the runs forked from a run."""

    parent: ForkLinkItem | None = None
    forks: list[ForkLinkItem] = Field(default_factory=list)


class RunDiffItem(BaseModel):
    """Two runs compared step by step, aligned by structure (``frontdesk runs diff``)."""

    a: dict[str, Any] = Field(description="Run A: status, agent path, tool calls, output, tokens.")
    b: dict[str, Any] = Field(description="Run B, likewise.")
    turns: list[dict[str, Any]] = Field(description="Each model call of both runs side by side.")
    divergence: dict[str, Any] | None = Field(
        description="The first difference (reason, model call, steps, message); null if none."
    )
    same: bool


class RunDetail(RunSummary):
    """A run with everything that happened in it."""

    lineage: LineageItem = Field(default_factory=LineageItem)

    output_value: Any = None
    context: Any = None
    events: list[dict[str, Any]]
    steps: list[dict[str, Any]]
    approvals: list[dict[str, Any]]
    model_calls: list[dict[str, Any]]
    timeline: list[dict[str, Any]]
    agent_view: dict[str, Any]
    context_changes: list[dict[str, Any]]
    guardrails: list[GuardrailVerdict]


class StartRun(Body):
    """Start a run of an app (``support``, ``airline``, ``disputes``) or a registered agent."""

    app: str | None = Field(default=None, max_length=100)
    agent: str | None = Field(default=None, max_length=200)
    message: str = Field(max_length=100_000)

    @model_validator(mode="after")
    def _one_target(self) -> StartRun:
        if (self.app is None) == (self.agent is None):
            raise ValueError("give exactly one of app and agent")
        return self


class StartedRun(BaseModel):
    """A run that was started."""

    execution_id: str
    status: str
    url: str


def _since(value: datetime | None) -> float | None:
    return value.timestamp() if value is not None else None


@router.get("/runs", response_model=RunPage)
def list_runs(
    state: State,
    status: RunStatus | None = None,
    app: Annotated[str | None, Query(max_length=100)] = None,
    agent: Annotated[str | None, Query(max_length=200)] = None,
    q: Annotated[str | None, Query(max_length=500)] = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> dict[str, Any]:
    """Runs newest first, by cursor: filter by status, app, agent (starting or last), text in
    the input or output (``q``) and start time (``since``, ``until``: ISO 8601 or Unix)."""
    page = state.runtime.runs_page(
        status=status,
        app=app or None,
        agent=agent or None,
        q=q,
        since=_since(since),
        until=_since(until),
        limit=limit,
        cursor=cursor or None,
    )
    present = state.presenter
    return {"items": [present.run_summary(r) for r in page.items], "next_cursor": page.next_cursor}


@router.post("/runs", response_model=StartedRun, status_code=201)
def start_run(state: State, body: StartRun) -> dict[str, Any]:
    """Start a run; the server drives it. Follow it at ``/api/runs/{id}/events``."""
    runtime = state.runtime
    if body.app is not None:
        app = state.apps.get(body.app)
        if app is None:
            raise InvalidInput(f"unknown app {body.app!r}; one of: {', '.join(state.apps)}")
        agent, context = app.agent(), app.context()
    else:
        assert body.agent is not None
        if body.agent not in runtime.registry.names():
            names = ", ".join(runtime.registry.names()) or "none are registered"
            raise InvalidInput(f"no agent is registered as {body.agent!r} ({names})")
        agent, context = runtime.registry.resolve(f"name:{body.agent}"), None
    handle = runtime.start(agent, body.message, context=context)
    return {
        "execution_id": handle.execution_id,
        "status": handle.status,
        "url": f"/runs/{handle.execution_id}",
    }


@router.get("/runs/{execution_id}", response_model=RunDetail)
def get_run(state: State, execution_id: str) -> dict[str, Any]:
    """One run: steps, events, approvals, model calls with costs, agent view, context, and
    its lineage (the run it was forked from, the runs forked from it)."""
    detail = state.presenter.run_detail(state.runtime.get(execution_id))
    detail["lineage"] = lineage_dict(state.runtime.lineage(execution_id))
    return detail


@router.get("/runs/{execution_id}/diff/{other_id}", response_model=RunDiffItem)
def diff_runs(state: State, execution_id: str, other_id: str) -> dict[str, Any]:
    """The run compared with another step by step: agent path, handoffs, tool calls with
    arguments and results, outputs, tokens, latency, and where they first diverge."""
    return diff_dict(state.runtime, execution_id, other_id)


@router.get(
    "/runs/{execution_id}/events",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}, "description": "Server-sent events."}},
)
async def stream_events(
    request: Request,
    state: State,
    execution_id: str,
    last_event_id: Annotated[int | None, Header(ge=0, le=2**62)] = None,
    after: Annotated[int | None, Query(ge=0, le=2**62)] = None,
) -> StreamingResponse:
    """The run's events as server-sent events (``id`` is the event's seq), then live until
    the run ends. A client reconnecting with ``Last-Event-ID`` (or ``?after=``) gets every
    event after that one. ``status`` events report status changes; ``end`` closes."""
    runtime = state.runtime
    from starlette.concurrency import run_in_threadpool

    await run_in_threadpool(runtime.handle, execution_id)  # 404 before the stream starts
    start = last_event_id if last_event_id is not None else (after or 0)
    return StreamingResponse(
        run_events(request, state, execution_id, start),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


@router.post("/runs/{execution_id}/cancel", response_model=RunSummary)
def cancel_run(state: State, execution_id: str) -> dict[str, Any]:
    """Cancel a run that has not finished; 409 if it has."""
    return state.presenter.run_summary(state.runtime.cancel(execution_id))


@router.post("/runs/{execution_id}/retry", response_model=RunSummary)
def retry_run(state: State, execution_id: str) -> dict[str, Any]:
    """Retry a failed run: completed steps replay, the failed one runs again; 409 otherwise."""
    runtime = state.runtime
    handle = runtime.retry(execution_id)
    return state.presenter.run_summary(handle.get())


# -- approvals --------------------------------------------------------------------------------------


class ApprovalItem(BaseModel):
    """An approval request, its decision, and the run's message and context."""

    approval_id: str
    execution_id: str
    agent: str | None
    tool_name: str
    call_id: str
    args: dict[str, Any]
    status: str
    requested_at: str | None
    decided_at: str | None
    decided_by: str | None
    note: str | None
    reason: str | None
    edited_args: dict[str, Any] | None = Field(
        default=None, description="The arguments the call ran with, when the approver edited them."
    )
    deadline: str | None = Field(
        default=None, description="When the request times out (ISO 8601 UTC), if it does."
    )
    on_timeout: Literal["reject", "escalate"] | None = Field(
        default=None, description="What happens at the deadline."
    )
    escalated_at: str | None = Field(
        default=None, description="When the request was escalated for passing its deadline."
    )
    run: dict[str, Any] | None = None


class ApprovalPage(BaseModel):
    """A page of approvals: pending ones oldest first, decided ones newest first."""

    items: list[ApprovalItem]
    next_cursor: str | None


class Approve(Body):
    """An approval, with an optional note and optionally edited arguments."""

    note: str | None = Field(default=None, max_length=2000)
    args: dict[str, Any] | None = Field(
        default=None,
        description="Edited arguments: each key replaces the model's argument, the others are "
        "kept; they must match the tool's schema (422 if not, and nothing changes).",
    )


class Reject(Body):
    """A rejection; the model receives the reason as the tool's result."""

    reason: str = Field(min_length=1, max_length=2000)


def approval_items(state: ConsoleState, records: list[Any]) -> list[dict[str, Any]]:
    """Approvals with their runs' message and context."""
    runs: dict[str, Any] = {}
    items = []
    for record in records:
        if record.execution_id not in runs:
            try:
                runs[record.execution_id] = state.runtime.get(record.execution_id)
            except RunNotFound:
                runs[record.execution_id] = None
        items.append(state.presenter.approval_item(record, runs[record.execution_id]))
    return items


@router.get("/approvals", response_model=ApprovalPage)
def list_approvals(
    state: State,
    status: ApprovalStatus = "pending",
    execution_id: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> dict[str, Any]:
    """Approvals by status, pending ones oldest first, decided ones newest first."""
    page = state.runtime.approvals_page(
        status,
        execution_id=execution_id,
        newest_first=status != "pending",
        limit=limit,
        cursor=cursor or None,
    )
    return {"items": approval_items(state, page.items), "next_cursor": page.next_cursor}


def _only_approval_ids(approval_id: str) -> None:
    if not approval_id.startswith("apv_"):
        raise NotFound(f"no approval with id {approval_id!r}")


@router.post("/approvals/{approval_id}/approve", response_model=ApprovalItem)
def approve(state: State, user: User, approval_id: str, body: Approve) -> dict[str, Any]:
    """Approve a pending tool call as the caller, as asked or with edited ``args``; the run
    resumes here. 409 if decided, 422 if the edited arguments do not fit the tool."""
    _only_approval_ids(approval_id)
    record = state.runtime.approve(
        approval_id, by=user.name, note=body.note or None, args=body.args
    )
    return approval_items(state, [record])[0]


@router.post("/approvals/{approval_id}/reject", response_model=ApprovalItem)
def reject(state: State, user: User, approval_id: str, body: Reject) -> dict[str, Any]:
    """Reject a pending tool call as the caller; the model gets the reason. 409 if decided."""
    _only_approval_ids(approval_id)
    record = state.runtime.reject(approval_id, body.reason, by=user.name)
    return approval_items(state, [record])[0]
