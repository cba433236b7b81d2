"""How errors become HTTP answers: 401, 403, 404, 409, 422, 502, 503; never a 500.

A caller's mistake is a 4xx with a JSON body ``{"error": ...}`` saying what to do: 404 for an
unknown id, 409 when the action does not fit the current state (an approval already decided,
a stale conversation, whose body carries the current ``history``), 422 for bad input. A store
that cannot be used is a 503 and a failed model call a 502, both saying why.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..errors import (
    AgentNotFound,
    ApprovalAlreadyDecided,
    ApprovalNotFound,
    FrontdeskError,
    InvalidInput,
    InvalidRunState,
    ModelNotConfigured,
    RunFailed,
    RunNotFound,
    RunNotWaiting,
    StaleConversation,
    StoreError,
)

logger = logging.getLogger(__name__)


class ErrorBody(BaseModel):
    """What every error answers with."""

    error: str
    """What went wrong and what to do about it."""
    history: list[str] | None = None
    """For a stale conversation: its current lines, to show before sending again."""


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorBody, "description": "No valid token or session."},
    403: {"model": ErrorBody, "description": "A cookie-authenticated change without CSRF token."},
    404: {"model": ErrorBody, "description": "No such run, approval or conversation."},
    409: {"model": ErrorBody, "description": "The action does not fit the current state."},
    422: {"model": ErrorBody, "description": "The request is invalid."},
    502: {"model": ErrorBody, "description": "The model failed the run (a conversation turn)."},
    503: {"model": ErrorBody, "description": "The store (or Stripe) cannot be reached."},
}
"""The error answers every API route documents."""


class ApiError(Exception):
    """An error answer raised by a route or a dependency."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers


class NotFound(InvalidInput, LookupError):
    """No such conversation (or other record the API looks up)."""


def status_of(exc: FrontdeskError) -> int:
    """The HTTP status of a frontdesk error."""
    if isinstance(exc, RunNotFound | ApprovalNotFound | NotFound):
        return 404
    if isinstance(
        exc, ApprovalAlreadyDecided | RunNotWaiting | InvalidRunState | StaleConversation
    ):
        return 409
    if isinstance(exc, AgentNotFound | InvalidInput):
        return 422
    if isinstance(exc, StoreError | ModelNotConfigured):
        return 503
    if isinstance(exc, RunFailed):
        return 502
    return 503


def error_json(status: int, message: str, **extra: Any) -> JSONResponse:
    """A JSON error answer."""
    return JSONResponse({"error": message, **extra}, status_code=status)


def install_error_handlers(app: FastAPI) -> None:
    """Answer invalid requests (and bodies that cannot be parsed) as JSON 422s; other HTTP
    errors keep their status, with a JSON body."""

    async def invalid_request(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        problems = []
        for error in exc.errors():
            where = ".".join(str(p) for p in error.get("loc", ()) if p != "body")
            problems.append(f"{where}: {error.get('msg')}" if where else str(error.get("msg")))
        return error_json(422, "; ".join(problems) or "invalid request")

    async def http_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        # A body that cannot be parsed is a bad body like any other: 422.
        status = 422 if exc.status_code == 400 else exc.status_code
        response = error_json(status, str(exc.detail))
        for name, value in (exc.headers or {}).items():
            response.headers[name] = value
        return response

    app.add_exception_handler(RequestValidationError, invalid_request)
    app.add_exception_handler(StarletteHTTPException, http_error)

    @app.middleware("http")
    async def one_value_per_parameter(request: Request, call_next: Any) -> Any:
        # Every API parameter takes one value; FastAPI would silently keep the last of several.
        if request.url.path.startswith("/api/"):
            names = [name for name, _ in request.query_params.multi_items()]
            repeated = sorted({name for name in names if names.count(name) > 1})
            if repeated:
                return error_json(
                    422, f"query parameter {repeated[0]!r} is given more than once; it takes one"
                )
        return await call_next(request)
