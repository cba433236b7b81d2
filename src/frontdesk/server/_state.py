"""What the console's routes share: the runtime, the authenticator, and who is asking."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from .._prices import Price, Prices
from ..runtime import AgentRuntime
from ._apps import APPS, ConsoleApp
from ._auth import CSRF_HEADER, SESSION_COOKIE, Authenticator, Identity, now
from ._errors import ApiError
from ._present import Presenter

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass
class ConsoleState:
    """The console's shared state, kept on ``app.state.console``."""

    runtime: AgentRuntime
    """Every read and write goes through its public API."""
    auth: Authenticator
    """Checks tokens, sessions and CSRF tokens."""
    prices: Mapping[str, Price] | None = None
    """The per-model price table for cost estimates (the whole table); None: the runtime's."""
    apps: Mapping[str, ConsoleApp] = field(default_factory=lambda: dict(APPS))
    """The apps the console starts runs and conversations on."""
    poll_interval: float = 0.25
    """How often live streams look for changes, in seconds."""

    @property
    def price_table(self) -> Prices:
        """The price table cost estimates use: :attr:`prices`, else the runtime's."""
        if self.prices is None:
            return self.runtime.prices
        if isinstance(self.prices, Prices):
            return self.prices
        return Prices(self.prices, defaults=False)

    @property
    def presenter(self) -> Presenter:
        """Turns results into payloads."""
        return Presenter(self.runtime, self.price_table)


def console_state(request: Request) -> ConsoleState:
    """The console's state, from the app."""
    state: ConsoleState = request.app.state.console
    return state


def identify(request: Request, state: ConsoleState) -> Identity | None:
    """Who the request comes from: a bearer token, else a console session, else nobody."""
    return state.auth.bearer(request.headers.get("authorization")) or state.auth.session(
        request.cookies.get(SESSION_COOKIE), now()
    )


_bearer = HTTPBearer(auto_error=False, description="The API token (FRONTDESK_API_TOKEN).")


def api_user(
    request: Request,
    _credentials: HTTPAuthorizationCredentials | None = Depends(_bearer),
) -> Identity:
    """The caller of an API route: 401 without a token or session; 403 for a change made
    with a session cookie but without the session's CSRF token."""
    state = console_state(request)
    identity = identify(request, state)
    if identity is None:
        raise ApiError(
            401,
            "authentication required: send 'Authorization: Bearer <token>' (the token is in "
            "FRONTDESK_API_TOKEN or the home's api-token file), or log in to the console",
            headers={"WWW-Authenticate": "Bearer"},
        )
    if (
        request.method not in SAFE_METHODS
        and identity.via == "session"
        and not state.auth.check_csrf(identity, request.headers.get(CSRF_HEADER))
    ):
        raise ApiError(403, "CSRF token missing or wrong: send the session's X-CSRF-Token")
    return identity


def known_query(request: Request) -> None:
    """422 for a query parameter the route does not take: a misspelt filter would otherwise
    be ignored and list everything."""
    dependant = getattr(request.scope.get("route"), "dependant", None)
    if dependant is None:
        return
    allowed = _query_names(dependant)
    unknown = sorted(set(request.query_params) - allowed)
    if unknown:
        names = ", ".join(repr(name[:40]) for name in unknown[:5])
        expected = ", ".join(sorted(allowed)) or "none"
        raise ApiError(422, f"unknown query parameter {names} (this route takes: {expected})")


def _query_names(dependant: Any) -> set[str]:
    names = {param.alias for param in dependant.query_params}
    for sub in dependant.dependencies:
        names |= _query_names(sub)
    return names


def console_context(state: ConsoleState, identity: Identity) -> dict[str, Any]:
    """What every page's template gets: who is logged in and their CSRF token."""
    return {"user": identity, "csrf_token": state.auth.csrf_token(identity), "apps": state.apps}
