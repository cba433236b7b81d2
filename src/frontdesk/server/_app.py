"""The FastAPI app: ``GET /healthz`` and ``POST /webhooks/stripe``."""

from __future__ import annotations

import logging
import os
from typing import Any

import stripe
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from ..apps.disputes import handle_event
from ..runtime import AgentRuntime

logger = logging.getLogger(__name__)

WEBHOOK_SECRET_ENV = "STRIPE_WEBHOOK_SECRET"
"""The signing secret of the webhook endpoint (``whsec_...``), read at every delivery."""


def create_app(runtime: AgentRuntime, *, webhook_secret: str | None = None) -> FastAPI:
    """The frontdesk app on ``runtime``; the caller keeps and closes the runtime.

    Webhooks are verified with ``webhook_secret``, else ``$STRIPE_WEBHOOK_SECRET``.
    """
    app = FastAPI(title="frontdesk", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.runtime = runtime

    @app.get("/healthz")
    def healthz() -> dict[str, Any]:
        """Liveness: the server answers and knows its model."""
        return {"status": "ok", "model": runtime.model_label}

    @app.post("/webhooks/stripe")
    async def stripe_webhook(request: Request) -> JSONResponse:
        """Verify a Stripe event's signature, then act on it once (see ``handle_event``)."""
        secret = webhook_secret or os.environ.get(WEBHOOK_SECRET_ENV, "").strip()
        if not secret:
            # Not a 2xx, so Stripe keeps the event and retries once the secret is configured.
            return _error(503, f"{WEBHOOK_SECRET_ENV} is not set, so events cannot be verified")
        signature = request.headers.get("stripe-signature")
        if not signature:
            return _error(400, "missing Stripe-Signature header")
        payload = await request.body()
        try:
            event = stripe.Webhook.construct_event(payload, signature, secret)
        except stripe.SignatureVerificationError:
            logger.warning("rejected a webhook whose signature does not verify")
            return _error(400, "the Stripe-Signature header does not match the payload")
        except ValueError:
            return _error(400, "the payload is not JSON")
        data = event.to_dict()
        if not isinstance(data.get("id"), str) or not isinstance(data.get("type"), str):
            return _error(400, "the payload is not a Stripe event")
        result = await run_in_threadpool(handle_event, runtime, data)
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


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)
