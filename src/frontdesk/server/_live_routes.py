"""Change notices for the console's live lists, as server-sent events (not in the schema)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse

from ._live import changes
from ._state import ConsoleState, api_user, console_state

router = APIRouter(prefix="/api/live", include_in_schema=False, dependencies=[Depends(api_user)])

State = Annotated[ConsoleState, Depends(console_state)]

_SSE_HEADERS = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}


@router.get("/runs")
async def runs_changes(
    request: Request,
    state: State,
    status: Annotated[str | None, Query(max_length=40)] = None,
    app: Annotated[str | None, Query(max_length=100)] = None,
    agent: Annotated[str | None, Query(max_length=200)] = None,
    q: Annotated[str | None, Query(max_length=500)] = None,
) -> StreamingResponse:
    """``changed`` whenever the first page of runs with these filters changes."""
    runtime = state.runtime

    def fingerprint() -> Any:
        page = runtime.runs_page(status=status, app=app, agent=agent, q=q, limit=50)
        return [(r.execution_id, r.status, r.last_agent, r.usage.total_tokens) for r in page.items]

    return StreamingResponse(
        changes(request, state, fingerprint), media_type="text/event-stream", headers=_SSE_HEADERS
    )


@router.get("/approvals")
async def approvals_changes(request: Request, state: State) -> StreamingResponse:
    """``changed`` whenever an approval is requested or decided."""
    from ._pages import inbox_fingerprint

    return StreamingResponse(
        changes(request, state, lambda: inbox_fingerprint(state)),
        media_type="text/event-stream",
        headers=_SSE_HEADERS,
    )
