"""The FastAPI app: routes, API key checks, idempotency, ``expand`` and error responses."""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import logging
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import stripe
from fastapi import FastAPI, Request, Response
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from frontdesk._home import resolve_home

from ._core import (
    Handler,
    RequestMeta,
    Sandbox,
    SandboxConfig,
    list_handler,
    new_id,
    retrieve_handler,
)
from ._disputes import close_dispute, force_resolve_dispute, resolve_due_disputes, update_dispute
from ._errors import StripeError, authentication_error, idempotency_error, invalid_request
from ._forms import Params, decode_form
from ._objects import expand
from ._payments import confirm_payment_intent, create_payment_intent, create_refund
from ._store import IdempotencyRecord
from ._webhooks import (
    WebhookWorker,
    create_webhook_endpoint,
    delete_webhook_endpoint,
    list_delivery_attempts,
    list_events,
    list_webhook_endpoints,
    resend_event,
    retrieve_webhook_endpoint,
)

logger = logging.getLogger(__name__)

DB_FILENAME = "stripe-sandbox.db"
_IDEMPOTENCY_TTL_SECONDS = 24 * 3600
MAX_IDEMPOTENCY_KEY_CHARS = 255
"""Stripe's limit on an idempotency key's length."""
_NO_KEY = (
    "You did not provide an API key. You need to provide your API key in the Authorization "
    "header, using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY'). See "
    "https://stripe.com/docs/api#authentication for details, or we can help at "
    "https://support.stripe.com/."
)


@dataclass(frozen=True)
class Route:
    """One endpoint of the sandbox."""

    method: str
    path: str
    handler: Handler


ROUTES: tuple[Route, ...] = (
    Route("POST", "/v1/payment_intents", create_payment_intent),
    Route("GET", "/v1/payment_intents", list_handler("payment_intent", "customer")),
    Route(
        "GET",
        "/v1/payment_intents/{object_id}",
        retrieve_handler("payment_intent", "client_secret"),
    ),
    Route("POST", "/v1/payment_intents/{object_id}/confirm", confirm_payment_intent),
    Route("GET", "/v1/payment_methods/{object_id}", retrieve_handler("payment_method")),
    Route("GET", "/v1/charges", list_handler("charge", "payment_intent", "customer")),
    Route("GET", "/v1/charges/{object_id}", retrieve_handler("charge")),
    Route("GET", "/v1/balance_transactions/{object_id}", retrieve_handler("balance_transaction")),
    Route("GET", "/v1/disputes", list_handler("dispute", "charge", "payment_intent")),
    Route("GET", "/v1/disputes/{object_id}", retrieve_handler("dispute")),
    Route("POST", "/v1/disputes/{object_id}", update_dispute),
    Route("POST", "/v1/disputes/{object_id}/close", close_dispute),
    Route("POST", "/v1/refunds", create_refund),
    Route("GET", "/v1/refunds", list_handler("refund", "charge", "payment_intent")),
    Route("GET", "/v1/refunds/{object_id}", retrieve_handler("refund")),
    Route("POST", "/v1/webhook_endpoints", create_webhook_endpoint),
    Route("GET", "/v1/webhook_endpoints", list_webhook_endpoints),
    Route("GET", "/v1/webhook_endpoints/{object_id}", retrieve_webhook_endpoint),
    Route("DELETE", "/v1/webhook_endpoints/{object_id}", delete_webhook_endpoint),
    Route("GET", "/v1/events", list_events),
    Route("GET", "/v1/events/{object_id}", retrieve_handler("event")),
    Route("POST", "/_sandbox/disputes/{object_id}/resolve", force_resolve_dispute),
    Route("POST", "/_sandbox/events/{object_id}/resend", resend_event),
    Route("GET", "/_sandbox/events/{object_id}/attempts", list_delivery_attempts),
)


def default_db_path() -> Path:
    """``$FRONTDESK_HOME/stripe-sandbox.db`` (``./.frontdesk`` when the variable is unset)."""
    return resolve_home() / DB_FILENAME


def create_app(
    db_path: str | os.PathLike[str] | None = None,
    *,
    dispute_review_seconds: float = 0.0,
    webhook_retry_delays: Sequence[float] = (1.0, 5.0, 25.0),
    webhook_timeout: float = 5.0,
) -> FastAPI:
    """Build the sandbox ASGI app, keeping its state in the SQLite file ``db_path``.

    A submitted dispute is decided ``dispute_review_seconds`` after submission (0: on the
    next request). Webhook deliveries run on a background thread while the app is served.
    """
    config = SandboxConfig(
        db_path=Path(db_path) if db_path is not None else default_db_path(),
        dispute_review_seconds=dispute_review_seconds,
        webhook_retry_delays=tuple(webhook_retry_delays),
        webhook_timeout=webhook_timeout,
    )
    sandbox = Sandbox(config)
    worker = WebhookWorker(sandbox, tick=resolve_due_disputes)
    sandbox.on_commit = worker.wake

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        worker.start()
        try:
            yield
        finally:
            await run_in_threadpool(worker.stop)

    app = FastAPI(
        title="frontdesk Stripe sandbox",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.state.sandbox = sandbox
    for route in ROUTES:
        app.add_api_route(
            route.path,
            _endpoint(sandbox, route),
            methods=[route.method],
            include_in_schema=False,
        )
    for error_type in (StripeError, StarletteHTTPException, Exception):
        app.add_exception_handler(error_type, _error_handler)
    return app


@dataclass(frozen=True)
class _Call:
    route: Route
    params: Params
    path_params: dict[str, str]
    meta: RequestMeta
    key_scope: str


def _endpoint(sandbox: Sandbox, route: Route) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        request.state.request_id = request_id = new_id("req")
        api_key = _authenticate(request)
        data = decode_form(request.url.query)
        if request.method == "POST":
            try:
                data.update(decode_form((await request.body()).decode()))
            except UnicodeDecodeError:
                raise invalid_request("The request body must be UTF-8 form encoded.") from None
        meta = RequestMeta(
            path=request.url.path,
            request_id=request_id,
            idempotency_key=request.headers.get("idempotency-key")
            if route.method == "POST"
            else None,
            api_version=request.headers.get("stripe-version"),
        )
        scope = hashlib.sha256(api_key.encode()).hexdigest()
        call = _Call(route, Params(data), dict(request.path_params), meta, scope)
        status, body, headers = await run_in_threadpool(_execute, sandbox, call)
        headers["Stripe-Version"] = meta.api_version or stripe.api_version
        return _json_response(request, status, body, headers)

    endpoint.__doc__ = route.handler.__doc__
    return endpoint


def _execute(sandbox: Sandbox, call: _Call) -> tuple[int, str, dict[str, str]]:
    """Run a handler in one transaction, replaying or saving idempotent POST results."""
    key = call.meta.idempotency_key
    if key is not None and len(key) > MAX_IDEMPOTENCY_KEY_CHARS:
        # Refused before anything runs or is saved, as Stripe does.
        raise idempotency_error(
            f"Idempotency keys can be at most {MAX_IDEMPOTENCY_KEY_CHARS} characters long; this "
            f"one is {len(key)} characters. Use a shorter key, such as a V4 UUID."
        )
    resolve_due_disputes(sandbox)
    with sandbox.operation(call.meta, write=call.route.method != "GET") as op:
        headers = {"Idempotency-Key": key} if key else {}
        fingerprint = json.dumps(call.params.data, sort_keys=True)
        if key:
            record = op.tx.idempotency_get(
                call.key_scope, key, time.time() - _IDEMPOTENCY_TTL_SECONDS
            )
            if record is not None:
                _check_same_request(record, call, key, fingerprint)
                headers.update(
                    {"Idempotent-Replayed": "true", "Original-Request": record.request_id}
                )
                return record.status, record.body, headers
        try:
            result = call.route.handler(op, call.params, **call.path_params)
            status, body = 200, _dump(expand(op.tx, result, call.params.expand()))
        except StripeError as exc:
            if not exc.executed:
                raise
            status, body = exc.status, _dump(exc.body())
        if key:
            assert call.meta.request_id is not None
            record = IdempotencyRecord(
                call.route.method, call.meta.path, fingerprint, status, body, call.meta.request_id
            )
            op.tx.idempotency_put(call.key_scope, key, record, time.time())
        return status, body, headers


def _check_same_request(record: IdempotencyRecord, call: _Call, key: str, fingerprint: str) -> None:
    retry_hint = f"Try using a key other than '{key}' if you meant to execute a different request."
    if (record.method, record.path) != (call.route.method, call.meta.path):
        raise idempotency_error(
            "Keys for idempotent requests can only be used for the same endpoint they were first "
            f"used for ('{record.method} {record.path}' vs '{call.route.method} "
            f"{call.meta.path}'). {retry_hint}"
        )
    if record.fingerprint != fingerprint:
        raise idempotency_error(
            "Keys for idempotent requests can only be used with the same parameters they were "
            f"first used with. {retry_hint}"
        )


def _authenticate(request: Request) -> str:
    header = request.headers.get("authorization", "").strip()
    scheme, _, credentials = header.partition(" ")
    if scheme.lower() == "bearer":
        key = credentials.strip()
    elif scheme.lower() == "basic":
        try:
            key = base64.b64decode(credentials, validate=True).decode().partition(":")[0]
        except (binascii.Error, UnicodeDecodeError):
            key = ""
    else:
        key = ""
    if not key:
        raise authentication_error(_NO_KEY)
    if key.startswith(("sk_live_", "rk_live_")):
        raise authentication_error(
            "The frontdesk Stripe sandbox only accepts test mode keys (sk_test_...), but a live "
            "mode key was provided."
        )
    if not key.startswith(("sk_test_", "rk_test_")) or len(key) <= len("sk_test_"):
        raise authentication_error(f"Invalid API Key provided: {_redact(key)}")
    return key


def _redact(key: str) -> str:
    visible = key[:8] if len(key) > 12 else ""
    return visible + "*" * max(len(key) - len(visible) - 4, 0) + key[-4:]


def _dump(body: dict[str, Any]) -> str:
    return json.dumps(body, indent=2)


def _json_response(request: Request, status: int, body: str, headers: dict[str, str]) -> Response:
    headers["Request-Id"] = getattr(request.state, "request_id", None) or new_id("req")
    if status >= 400:
        # Retrying would give the same answer; tells the SDK not to.
        headers["Stripe-Should-Retry"] = "false"
    return Response(body, status_code=status, media_type="application/json", headers=headers)


async def _error_handler(request: Request, exc: Exception) -> Response:
    """Render any failure as a Stripe error: ours, unknown routes, and unexpected bugs."""
    if isinstance(exc, StripeError):
        error = exc
    elif isinstance(exc, StarletteHTTPException) and exc.status_code in (404, 405):
        error = invalid_request(
            f"Unrecognized request URL ({request.method}: {request.url.path}). Please see "
            "https://stripe.com/docs or we can help at https://support.stripe.com/.",
            status=404,
        )
    elif isinstance(exc, StarletteHTTPException):
        error = StripeError(exc.status_code, str(exc.detail))
    else:
        logger.error("stripe sandbox request failed", exc_info=exc)
        error = StripeError(
            500, "An unexpected error occurred in the Stripe sandbox.", type="api_error"
        )
    return _json_response(request, error.status, _dump(error.body()), {})
