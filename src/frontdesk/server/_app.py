"""The FastAPI app: ``GET /healthz``, ``POST /webhooks/stripe`` and the console.

A webhook is answered 2xx only once it is handled. Everything else gets a 4xx with the reason
(413 for a body over :data:`MAX_BODY_BYTES`, refused before it is read), except a missing
secret (503) and a failure of the server itself (500); Stripe retries those.
"""

from __future__ import annotations

import json
import logging
import os
from typing import Any

import stripe
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from ..apps.disputes import handle_event
from ..errors import InvalidInput
from ..runtime import AgentRuntime

logger = logging.getLogger(__name__)

WEBHOOK_SECRET_ENV = "STRIPE_WEBHOOK_SECRET"
"""The signing secret of the webhook endpoint (``whsec_...``), read at every delivery."""
MAX_BODY_BYTES = 256 * 1024
"""The largest webhook body accepted; Stripe's events are a few kilobytes."""


def create_app(runtime: AgentRuntime, *, webhook_secret: str | None = None) -> FastAPI:
    """The frontdesk app on ``runtime``; the caller keeps and closes the runtime.

    Webhooks are verified with ``webhook_secret``, else ``$STRIPE_WEBHOOK_SECRET``.
    """
    app = FastAPI(title="frontdesk", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.runtime = runtime

    from fastapi import Depends

    from ._errors import ERROR_RESPONSES
    from ._state import api_user

    # Like every route but the webhook, it needs the token: a probe sends the bearer header.
    @app.get("/healthz", dependencies=[Depends(api_user)], responses=ERROR_RESPONSES)
    def healthz() -> dict[str, Any]:
        """Liveness: the server answers and knows its model."""
        return {"status": "ok", "model": runtime.model_label}

    @app.post("/webhooks/stripe")
    async def stripe_webhook(request: Request) -> JSONResponse:
        """Verify a Stripe event's signature, then act on it once (see ``handle_event``)."""
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
            return _too_large()
        secret = webhook_secret or os.environ.get(WEBHOOK_SECRET_ENV, "").strip()
        if not secret:
            # Not a 2xx, so Stripe keeps the event and retries once the secret is configured.
            return _error(503, f"{WEBHOOK_SECRET_ENV} is not set, so events cannot be verified")
        signature = request.headers.get("stripe-signature")
        if not signature:
            return _error(400, "missing Stripe-Signature header")
        raw = await _read_body(request, MAX_BODY_BYTES)
        if raw is None:
            return _too_large()
        try:
            payload = raw.decode("utf-8")
        except UnicodeDecodeError:
            return _error(400, "the payload is not UTF-8 text")
        try:
            stripe.WebhookSignature.verify_header(
                payload, signature, secret, stripe.Webhook.DEFAULT_TOLERANCE
            )
        except stripe.SignatureVerificationError:
            logger.warning("rejected a webhook whose signature does not verify")
            return _error(400, "the Stripe-Signature header does not match the payload")
        try:
            data = json.loads(payload)
        except (ValueError, RecursionError):
            return _error(400, "the payload is not JSON")
        try:
            result = await run_in_threadpool(handle_event, runtime, data)
        except InvalidInput as exc:
            logger.warning("refused a signed webhook: %s", exc)
            return _error(400, str(exc))
        logger.info("webhook %s (%s): %s", result.event_id, result.type, result.action)
        body = {
            "received": True,
            "event": result.event_id,
            "type": result.type,
            "action": result.action,
            "execution_id": result.execution_id,
        }
        return JSONResponse(body)

    from ._console import install_console

    install_console(app, runtime)
    return app


async def _read_body(request: Request, limit: int) -> bytes | None:
    """The request body, or None as soon as it grows past ``limit`` bytes (chunked uploads
    declare no length)."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def _too_large() -> JSONResponse:
    return _error(
        413, f"the body is larger than {MAX_BODY_BYTES // 1024} KiB; Stripe events are small"
    )


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)
