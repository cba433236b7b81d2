"""Wiring the console into the server: state, routes, static files, headers and errors.

:func:`install_console` adds the JSON API (``/api``), the pages, the login, the static
script and stylesheet, and ``/openapi.json`` (behind the token too) to the app made by
:func:`~frontdesk.server.create_app`. Every response carries a Content-Security-Policy that
allows scripts, styles and connections from the server itself only, so even text that slipped
past escaping could not run.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .._prices import Price
from ..errors import FrontdeskError
from ..runtime import AgentRuntime
from ._api import router as api_router
from ._api_apps import router as apps_router
from ._auth import Authenticator, load_token
from ._errors import ApiError, install_error_handlers, status_of
from ._live_routes import router as live_router
from ._pages import LoginRequired, render
from ._pages import router as pages_router
from ._state import ConsoleState, api_user

STATIC = Path(__file__).with_name("static")

CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
"""Scripts, styles, images and connections from this server only; no inline script."""

SECURITY_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),
)


class SecurityHeaders:
    """ASGI middleware adding :data:`SECURITY_HEADERS` (and ``no-store`` on dynamic
    answers) to every response, streamed ones included."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        static = str(scope.get("path", "")).startswith("/static/")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = (
                    [(k, v) for k, v in message.get("headers", []) if k.lower() != b"cache-control"]
                    if not static
                    else list(message.get("headers", []))
                )
                headers.extend(SECURITY_HEADERS)
                if not static:
                    headers.append((b"cache-control", b"no-store"))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _wants_json(request: Request) -> bool:
    path = request.url.path
    return path.startswith(("/api/", "/webhooks/", "/openapi.json")) or path in ("/api", "/healthz")


def install_console(
    app: FastAPI,
    runtime: AgentRuntime,
    *,
    token: str | None = None,
    prices: Mapping[str, Price] | None = None,
    poll_interval: float = 0.25,
) -> ConsoleState:
    """Add the console and the API to ``app``, on ``runtime``.

    ``token`` defaults to ``$FRONTDESK_API_TOKEN`` or the home's token file (created on
    first start); ``prices`` (the whole per-model price table) to the runtime's
    (``runtime.prices``), which its cost budgets use too.
    """
    value = token if token is not None else load_token(runtime.home).value
    state = ConsoleState(
        runtime=runtime,
        auth=Authenticator(value),
        prices=prices,
        poll_interval=poll_interval,
    )
    app.state.console = state
    install_error_handlers(app)

    async def frontdesk_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, FrontdeskError | ApiError)
        status = exc.status if isinstance(exc, ApiError) else status_of(exc)
        message = exc.message if isinstance(exc, ApiError) else str(exc)
        if _wants_json(request):
            body: dict[str, Any] = {"error": message}
            history = getattr(exc, "history", None)
            if history is not None:
                body["history"] = history
            response: Response = JSONResponse(body, status_code=status)
            for name, header in (getattr(exc, "headers", None) or {}).items():
                response.headers[name] = header
            return response
        title = {404: "Not found", 409: "Conflict", 403: "Forbidden"}.get(status, "Error")
        return render("error.html", status_code=status, status=status, title=title, message=message)

    async def login_required(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, LoginRequired)
        return RedirectResponse(f"/login?next={quote(exc.next_path, safe='/')}", status_code=303)

    app.add_exception_handler(FrontdeskError, frontdesk_error)
    app.add_exception_handler(ApiError, frontdesk_error)
    app.add_exception_handler(LoginRequired, login_required)

    app.include_router(api_router)
    app.include_router(apps_router)
    app.include_router(live_router)
    app.include_router(pages_router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    from fastapi import Depends

    @app.get("/openapi.json", include_in_schema=False, dependencies=[Depends(api_user)])
    def openapi() -> dict[str, Any]:
        """The API's OpenAPI schema."""
        return app.openapi()

    app.add_middleware(SecurityHeaders)
    return state
