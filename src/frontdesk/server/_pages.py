"""The console's pages: runs, a run, approvals, conversations, disputes, escalations, new run.

Pages are rendered here with Jinja2 (every value escaped) from the same payloads the API
returns. Forms post back with the session's CSRF token and redirect (post/redirect/get). The
live parts of a page are reloaded by ``static/console.js`` when a server-sent event says they
changed; without the script the pages still work, by reloading.
"""

from __future__ import annotations

import json
import secrets
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote, urlencode

import jinja2
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.datastructures import FormData

from ..errors import FrontdeskError, InvalidInput, StaleConversation
from ..store import TERMINAL_STATUSES
from ._api import approval_items
from ._api_apps import (
    conversation_summary,
    conversation_view,
    dispute_items,
    list_escalations,
    open_conversation,
)
from ._auth import (
    CSRF_FIELD,
    LOGIN_COOKIE,
    SESSION_COOKIE,
    SESSION_TTL,
    Identity,
    now,
    valid_name,
)
from ._debug import lineage_dict
from ._errors import ApiError, status_of
from ._state import ConsoleState, console_context, console_state, identify

router = APIRouter(include_in_schema=False)

TEMPLATES = Path(__file__).with_name("templates")
STATUSES = ("running", "waiting_approval", "completed", "failed", "cancelled", "budget_exceeded")


class LoginRequired(Exception):
    """A page was asked for without a session; the browser is sent to the login form."""

    def __init__(self, next_path: str) -> None:
        super().__init__(next_path)
        self.next_path = next_path


def _ago(value: str | None) -> str:
    if not value:
        return "-"
    seconds = max(0.0, now() - datetime.fromisoformat(value).timestamp())
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:.0f} {unit} ago"
    return f"{seconds:.0f} s ago"


def _when(value: str | None) -> str:
    if not value:
        return "-"
    return datetime.fromisoformat(value).astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def _money(value: float | None) -> str:
    if value is None:
        return "n/a"
    return f"${value:.4f}" if value < 1 else f"${value:,.2f}"


def _pretty(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, indent=2, ensure_ascii=False, default=str)


def _ms(value: float | None) -> str:
    if value is None:
        return ""
    return f"{value:.0f} ms" if value >= 10 else f"{value:.1f} ms"


def make_environment() -> jinja2.Environment:
    """The template environment: autoescaping on, filters for times, money and JSON."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(ago=_ago, when=_when, money=_money, pretty=_pretty, ms=_ms)
    env.globals.update(statuses=STATUSES, terminal=TERMINAL_STATUSES, quote=quote)
    return env


_env = make_environment()


def render(name: str, status_code: int = 200, **values: Any) -> HTMLResponse:
    """A rendered template."""
    return HTMLResponse(_env.get_template(name).render(**values), status_code=status_code)


State = Annotated[ConsoleState, Depends(console_state)]


def page_user(request: Request) -> Identity:
    """The operator viewing a page; without a session the browser goes to the login form."""
    identity = identify(request, console_state(request))
    if identity is None:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise LoginRequired(target)
    return identity


User = Annotated[Identity, Depends(page_user)]


async def checked_form(request: Request, state: ConsoleState, user: Identity) -> FormData:
    """The posted form, once its CSRF token matches the session's (403 otherwise)."""
    form = await request.form()
    if user.via == "session" and not state.auth.check_csrf(user, _field(form, CSRF_FIELD)):
        raise ApiError(403, "the form's CSRF token is missing or wrong; reload the page")
    return form


def _field(form: FormData, name: str) -> str:
    value = form.get(name)
    return value if isinstance(value, str) else ""


def _page(state: ConsoleState, user: Identity, **values: Any) -> dict[str, Any]:
    return {**console_context(state, user), **values}


def _safe_next(path: str | None) -> str:
    if not path or not path.startswith("/") or path.startswith("//") or "\\" in path:
        return "/"
    return path


# -- login ------------------------------------------------------------------------------------------


@router.get("/login")
def login_form(
    state: State, next: Annotated[str | None, Query(max_length=2000)] = None
) -> HTMLResponse:
    """The login form: the operator's name and the API token."""
    nonce = secrets.token_urlsafe(12)
    response = render(
        "login.html", next=_safe_next(next), login_token=state.auth.login_token(nonce), error=None
    )
    response.set_cookie(LOGIN_COOKIE, nonce, max_age=600, httponly=True, samesite="strict")
    return response


@router.post("/login")
async def login(request: Request, state: State) -> Response:
    """Check the token, then start a session for the operator (a signed, http-only cookie)."""
    form = await request.form()
    next_path = _safe_next(_field(form, "next"))
    nonce = request.cookies.get(LOGIN_COOKIE, "")
    error = None
    if not nonce or _field(form, "login_token") != state.auth.login_token(nonce):
        error = "The login form expired; try again."
    elif (name := valid_name(_field(form, "name"))) is None:
        error = "Give your name (up to 64 characters): it is recorded with your decisions."
    elif not state.auth.check_token(_field(form, "token")):
        error = "That is not the API token."
    if error is not None:
        fresh = secrets.token_urlsafe(12)
        response: Response = render(
            "login.html",
            status_code=401,
            next=next_path,
            login_token=state.auth.login_token(fresh),
            error=error,
        )
        response.set_cookie(LOGIN_COOKIE, fresh, max_age=600, httponly=True, samesite="strict")
        return response
    assert name is not None
    response = RedirectResponse(next_path, status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        state.auth.new_session(name, now()),
        max_age=int(SESSION_TTL),
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    response.delete_cookie(LOGIN_COOKIE)
    return response


@router.post("/logout")
async def logout(request: Request, state: State, user: User) -> Response:
    """End the session."""
    await checked_form(request, state, user)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE)
    return response


# -- runs -----------------------------------------------------------------------------------------------


@router.get("/")
def runs_page(
    request: Request,
    state: State,
    user: User,
    status: Annotated[str | None, Query(max_length=40)] = None,
    app: Annotated[str | None, Query(max_length=100)] = None,
    agent: Annotated[str | None, Query(max_length=200)] = None,
    q: Annotated[str | None, Query(max_length=500)] = None,
    since: Annotated[str | None, Query(max_length=40)] = None,
    until: Annotated[str | None, Query(max_length=40)] = None,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> HTMLResponse:
    """The runs: a live list with filters; failures one click away."""
    filters = {
        "status": status or None,
        "app": app or None,
        "agent": agent or None,
        "q": q or None,
        "since": since or None,
        "until": until or None,
    }
    error = None
    try:
        if filters["status"] is not None and filters["status"] not in STATUSES:
            raise InvalidInput(f"unknown status {status!r}")
        page = state.runtime.runs_page(
            status=filters["status"],
            app=filters["app"],
            agent=filters["agent"],
            q=filters["q"],
            since=_time(filters["since"], "since"),
            until=_time(filters["until"], "until"),
            cursor=cursor or None,
        )
        runs = [state.presenter.run_summary(r) for r in page.items]
        next_cursor = page.next_cursor
    except InvalidInput as exc:
        runs, next_cursor, error = [], None, str(exc)
    query = {k: v for k, v in filters.items() if v}
    return render(
        "runs.html",
        status_code=422 if error else 200,
        **_page(
            state,
            user,
            runs=runs,
            filters=filters,
            error=error,
            live_url="/api/live/runs?" + urlencode(query),
            next_url=("/?" + urlencode({**query, "cursor": next_cursor})) if next_cursor else None,
            first_page=cursor is None,
        ),
    )


def _time(value: str | None, name: str) -> float | None:
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidInput(f"{name} must be a date and time, e.g. 2025-01-31T09:00") from None
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).timestamp()


@router.get("/runs/new")
def new_run_form(state: State, user: User, app: str | None = None) -> HTMLResponse:
    """Start a run: pick an app, type a message."""
    chosen = state.apps.get(app or "support") or next(iter(state.apps.values()))
    return render("new_run.html", **_page(state, user, chosen=chosen, error=None, message=""))


@router.post("/runs/new")
async def new_run(request: Request, state: State, user: User) -> Response:
    """Start the run and go to its page, where its trace arrives live."""
    form = await checked_form(request, state, user)
    app = state.apps.get(_field(form, "app"))
    message = _field(form, "message")
    try:
        if app is None:
            raise InvalidInput("pick one of the apps")
        from starlette.concurrency import run_in_threadpool

        handle = await run_in_threadpool(
            state.runtime.start, app.agent(), message, context=app.context()
        )
    except InvalidInput as exc:
        chosen = app or next(iter(state.apps.values()))
        return render(
            "new_run.html",
            status_code=422,
            **_page(state, user, chosen=chosen, error=str(exc), message=message),
        )
    return RedirectResponse(f"/runs/{quote(handle.execution_id)}", status_code=303)


@router.get("/runs/{execution_id}")
def run_page(state: State, user: User, execution_id: str) -> HTMLResponse:
    """One run: timeline, agent view, model calls, approvals, context, guardrails, output."""
    result = state.runtime.get(execution_id)
    present = state.presenter
    return render(
        "run.html",
        **_page(
            state,
            user,
            run=present.run_detail(result),
            view=present.agent_view(result),
            lineage=lineage_dict(state.runtime.lineage(execution_id)),
        ),
    )


@router.get("/runs/{execution_id}/diff/{other_id}")
def diff_page(state: State, user: User, execution_id: str, other_id: str) -> HTMLResponse:
    """Two runs side by side, aligned by structure, with their first divergence."""
    compared = state.runtime.diff(execution_id, other_id)
    return render("diff.html", **_page(state, user, diff=compared.to_dict()))


@router.post("/runs/{execution_id}/{action}")
async def run_action(
    request: Request, state: State, user: User, execution_id: str, action: str
) -> Response:
    """The run page's retry and cancel buttons."""
    await checked_form(request, state, user)
    from starlette.concurrency import run_in_threadpool

    if action == "cancel":
        await run_in_threadpool(state.runtime.cancel, execution_id)
    elif action == "retry":
        await run_in_threadpool(state.runtime.retry, execution_id)
    else:
        raise ApiError(404, f"no action {action!r}")
    return RedirectResponse(f"/runs/{quote(execution_id)}", status_code=303)


# -- approvals ------------------------------------------------------------------------------------------


def inbox(state: ConsoleState) -> dict[str, Any]:
    """Pending approvals oldest first, and the latest decisions."""
    runtime = state.runtime
    pending = runtime.approvals_page("pending", limit=100)
    decided = [
        a
        for status in ("approved", "rejected")
        for a in runtime.approvals_page(status, newest_first=True, limit=25).items
    ]
    decided.sort(key=lambda a: a.decided_at or a.requested_at, reverse=True)
    return {
        "pending": approval_items(state, pending.items),
        "more_pending": pending.next_cursor is not None,
        "decided": approval_items(state, decided[:25]),
    }


def inbox_fingerprint(state: ConsoleState) -> Any:
    """What the inbox shows, to notice a change."""
    runtime = state.runtime
    return [
        [(a.approval_id, a.status) for a in runtime.approvals_page(s, limit=100).items]
        for s in ("pending", "approved", "rejected")
    ]


@router.get("/approvals")
def approvals_page(state: State, user: User, error: str | None = None) -> HTMLResponse:
    """The approvals inbox; updates live when another operator decides."""
    return render("approvals.html", **_page(state, user, error=error, **inbox(state)))


@router.post("/approvals/{approval_id}/{decision}")
async def decide(
    request: Request, state: State, user: User, approval_id: str, decision: str
) -> Response:
    """Approve with a note or reject with a reason, as the logged-in operator."""
    form = await checked_form(request, state, user)
    from starlette.concurrency import run_in_threadpool

    runtime = state.runtime
    try:
        if not approval_id.startswith("apv_"):
            raise ApiError(404, f"no approval {approval_id!r}")
        if decision == "approve":
            note = _field(form, "note").strip() or None
            args = _edited_args(_field(form, "args"))
            await run_in_threadpool(
                lambda: runtime.approve(approval_id, by=user.name, note=note, args=args)
            )
        elif decision == "reject":
            reason = _field(form, "reason").strip()
            await run_in_threadpool(lambda: runtime.reject(approval_id, reason, by=user.name))
        else:
            raise ApiError(404, f"no decision {decision!r}")
    except FrontdeskError as exc:
        return render(
            "approvals.html",
            status_code=status_of(exc),
            **_page(state, user, error=str(exc), **inbox(state)),
        )
    return RedirectResponse("/approvals", status_code=303)


def _edited_args(text: str) -> dict[str, Any] | None:
    """The inbox's "edit arguments" field: empty, or a JSON object of arguments to replace."""
    if not text.strip():
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidInput(
            f"the edited arguments are not valid JSON ({exc}); nothing changed"
        ) from exc
    if not isinstance(value, dict):
        raise InvalidInput(
            'the edited arguments must be a JSON object, e.g. {"amount": 49.5}; nothing changed'
        )
    return value


# -- conversations --------------------------------------------------------------------------------------


@router.get("/conversations")
def conversations_page(
    state: State, user: User, cursor: Annotated[str | None, Query(max_length=200)] = None
) -> HTMLResponse:
    """Conversations with turn counts, tokens and cost; start a new one."""
    page = state.runtime.conversations(cursor=cursor or None)
    return render(
        "conversations.html",
        **_page(
            state,
            user,
            conversations=[conversation_summary(state, row) for row in page.items],
            next_url=f"/conversations?cursor={quote(page.next_cursor)}"
            if page.next_cursor
            else None,
        ),
    )


@router.post("/conversations")
async def new_conversation(request: Request, state: State, user: User) -> Response:
    """Start a conversation with an app's agents."""
    form = await checked_form(request, state, user)
    app = state.apps.get(_field(form, "app"))
    if app is None or not app.chat:
        raise ApiError(422, "pick an app that has conversations")
    conversation_id = f"{app.name}-{secrets.token_hex(4)}"
    from starlette.concurrency import run_in_threadpool

    await run_in_threadpool(state.runtime.conversation, conversation_id, app.agent(), app.context())
    return RedirectResponse(f"/conversations/{quote(conversation_id)}", status_code=303)


@router.get("/conversations/{conversation_id}")
def conversation_page(
    state: State, user: User, conversation_id: str, notice: str | None = None
) -> HTMLResponse:
    """The chat: history and a message box, the agent view beside it."""
    conversation = open_conversation(state, conversation_id)
    detail, view = conversation_view(state, conversation)
    return render(
        "conversation.html",
        **_page(state, user, conversation=detail, view=view, notice=notice, error=None),
    )


@router.post("/conversations/{conversation_id}/messages")
async def send(request: Request, state: State, user: User, conversation_id: str) -> Response:
    """Send a message; a stale page reloads with the current history."""
    form = await checked_form(request, state, user)
    from starlette.concurrency import run_in_threadpool

    conversation = await run_in_threadpool(open_conversation, state, conversation_id)
    target = f"/conversations/{quote(conversation_id)}"
    try:
        chat_length = int(_field(form, "chat_length"))
    except ValueError:
        chat_length = -1
    try:
        await run_in_threadpool(conversation.send, _field(form, "message"), chat_length)
    except StaleConversation:
        return RedirectResponse(target + "?notice=stale", status_code=303)
    except FrontdeskError as exc:
        detail, view = await run_in_threadpool(conversation_view, state, conversation)
        return render(
            "conversation.html",
            status_code=status_of(exc),
            **_page(state, user, conversation=detail, view=view, notice=None, error=str(exc)),
        )
    return RedirectResponse(target + "#end", status_code=303)


# -- disputes and escalations ---------------------------------------------------------------------------


@router.get("/disputes")
def disputes_page(state: State, user: User) -> HTMLResponse:
    """Stripe disputes: deadlines, decisions, evidence, runs."""
    try:
        items, error = dispute_items(state, 100), None
    except ApiError as exc:
        items, error = [], exc.message
    return render("disputes.html", **_page(state, user, disputes=items, error=error))


@router.get("/escalations")
def escalations_page(state: State, user: User) -> HTMLResponse:
    """The support desk's human queue."""
    items = list_escalations(state)["items"]
    return render("escalations.html", **_page(state, user, escalations=items))
