"""Webhook endpoints, events, and the background worker that delivers them."""

from __future__ import annotations

import hmac
import json
import logging
import re
import secrets
import threading
import time
from collections.abc import Callable
from hashlib import sha256
from urllib.parse import urlparse

import httpx

from ._core import Operation, Sandbox, event_matches, list_object, new_id
from ._errors import invalid_request
from ._forms import Params
from ._store import Delivery, FieldFilter, StripeObject

logger = logging.getLogger(__name__)

_EVENT_TYPE = re.compile(r"^[a-z_]+(\.[a-z_]+)+$")
# Upper bound on the worker's sleep, so work queued by another process on the same
# database file is picked up too.
_IDLE_POLL_SECONDS = 1.0


def sign_payload(payload: str, secret: str, timestamp: int) -> str:
    """The ``Stripe-Signature`` header value Stripe sends with ``payload``."""
    digest = hmac.new(secret.encode(), f"{timestamp}.{payload}".encode(), sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def create_webhook_endpoint(op: Operation, params: Params) -> StripeObject:
    """``POST /v1/webhook_endpoints``: subscribe a URL; the response carries its ``secret``."""
    params.reject_unknown(("url", "enabled_events", "description", "metadata", "api_version"))
    url = params.string("url", required=True)
    assert url is not None
    parsed = urlparse(url)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise invalid_request(
            f"Invalid URL: {url}. URLs must begin with http:// or https://", param="url"
        )
    enabled_events = params.string_list("enabled_events", required=True) or []
    if not enabled_events:
        raise invalid_request("Missing required param: enabled_events.", param="enabled_events")
    for index, event_type in enumerate(enabled_events):
        if event_type != "*" and not _EVENT_TYPE.match(event_type):
            raise invalid_request(
                f"Invalid enabled_events[{index}]: {event_type} is not an event type.",
                param=f"enabled_events[{index}]",
            )
    metadata: dict[str, str] = {}
    params.apply_metadata(metadata)
    endpoint: StripeObject = {
        "id": new_id("we"),
        "object": "webhook_endpoint",
        "api_version": params.string("api_version"),
        "application": None,
        "created": op.now,
        "description": params.string("description"),
        "enabled_events": enabled_events,
        "livemode": False,
        "metadata": metadata,
        "secret": f"whsec_{secrets.token_hex(16)}",
        "status": "enabled",
        "url": url,
    }
    op.tx.insert(endpoint)
    return endpoint


def retrieve_webhook_endpoint(op: Operation, params: Params, object_id: str) -> StripeObject:
    """``GET /v1/webhook_endpoints/{id}`` (the secret is only shown at creation)."""
    params.reject_unknown(())
    return _without_secret(op.require("webhook_endpoint", object_id))


def list_webhook_endpoints(op: Operation, params: Params) -> StripeObject:
    """``GET /v1/webhook_endpoints``."""
    page = op.list_objects(params, "webhook_endpoint")
    page["data"] = [_without_secret(endpoint) for endpoint in page["data"]]
    return page


def delete_webhook_endpoint(op: Operation, params: Params, object_id: str) -> StripeObject:
    """``DELETE /v1/webhook_endpoints/{id}``: stop sending events to it."""
    params.reject_unknown(())
    op.require("webhook_endpoint", object_id)
    op.tx.delete(object_id)
    return {"id": object_id, "object": "webhook_endpoint", "deleted": True}


def list_events(op: Operation, params: Params) -> StripeObject:
    """``GET /v1/events``, filtered by ``type`` (``charge.dispute.*`` works) or ``types[]``."""
    event_type = params.string("type")
    types = params.string_list("types")
    if event_type is not None and types is not None:
        raise invalid_request(
            "You may only specify one of these parameters: type, types.", param="types"
        )
    filters: list[FieldFilter] = []
    if event_type is not None and event_type.endswith("*"):
        filters.append(FieldFilter("type", (event_type[:-1],), prefix=True))
    elif event_type is not None:
        filters.append(FieldFilter("type", (event_type,)))
    elif types:
        filters.append(FieldFilter("type", tuple(types)))
    return op.list_objects(params, "event", extra_params=("type", "types"), extra_filters=filters)


def resend_event(op: Operation, params: Params, object_id: str) -> StripeObject:
    """``POST /_sandbox/events/{id}/resend``: deliver an event again.

    Goes to ``webhook_endpoint`` if given, else to every endpoint subscribed to its type.
    """
    params.reject_unknown(("webhook_endpoint",))
    event = op.require("event", object_id)
    endpoint_id = params.string("webhook_endpoint")
    if endpoint_id is not None:
        endpoints = [op.require("webhook_endpoint", endpoint_id, "webhook_endpoint")]
    else:
        endpoints = [
            endpoint
            for endpoint in op.tx.find("webhook_endpoint")
            if event_matches(endpoint["enabled_events"], event["type"])
        ]
    for endpoint in endpoints:
        op.queue_delivery(event["id"], endpoint["id"])
    event["pending_webhooks"] = op.tx.pending_deliveries(event["id"])
    op.tx.update(event)
    return event


def list_delivery_attempts(op: Operation, params: Params, object_id: str) -> StripeObject:
    """``GET /_sandbox/events/{id}/attempts``: every recorded delivery attempt, oldest first."""
    params.reject_unknown(())
    op.require("event", object_id)
    attempts = [
        {"object": "sandbox.webhook_attempt", "event": object_id, **attempt}
        for attempt in op.tx.attempts(object_id)
    ]
    return list_object(op.meta.path, attempts)


def _without_secret(endpoint: StripeObject) -> StripeObject:
    return {key: value for key, value in endpoint.items() if key != "secret"}


class WebhookWorker:
    """A background thread that delivers queued events and runs ``tick`` (due reviews).

    Failed deliveries (no 2xx answer) are retried after each of the configured delays;
    every attempt is recorded in the database.
    """

    def __init__(self, sandbox: Sandbox, tick: Callable[[Sandbox], None]) -> None:
        self._sandbox = sandbox
        self._tick = tick
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the thread; it also picks up deliveries left pending by a previous run."""
        self._stop.clear()
        self._thread = threading.Thread(
            target=self._run, name="stripe-sandbox-webhooks", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread, letting an in-flight delivery finish."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=self._sandbox.config.webhook_timeout + 5)
            self._thread = None

    def wake(self) -> None:
        """Look for due work now instead of at the next poll."""
        self._wake.set()

    def _run(self) -> None:
        with httpx.Client(timeout=self._sandbox.config.webhook_timeout) as client:
            while not self._stop.is_set():
                self._wake.clear()
                try:
                    self._tick(self._sandbox)
                    self._deliver_due(client)
                    wait = self._seconds_until_next()
                except Exception:
                    logger.exception("stripe sandbox background work failed; retrying")
                    wait = _IDLE_POLL_SECONDS
                self._wake.wait(wait)

    def _deliver_due(self, client: httpx.Client) -> None:
        lease = self._sandbox.config.webhook_timeout + 5
        with self._sandbox.store.transaction(write=True) as tx:
            deliveries = tx.claim_deliveries(time.time(), lease)
        for delivery in deliveries:
            if self._stop.is_set():
                return
            self._attempt(client, delivery)

    def _attempt(self, client: httpx.Client, delivery: Delivery) -> None:
        store = self._sandbox.store
        with store.transaction(write=False) as tx:
            event = tx.get(delivery.event_id, "event")
            endpoint = tx.get(delivery.endpoint_id, "webhook_endpoint")
        status_code: int | None = None
        error: str | None = None
        if event is None or endpoint is None:
            error = "the webhook endpoint was deleted"
        else:
            payload = json.dumps(event, indent=2)
            headers = {
                "Content-Type": "application/json; charset=utf-8",
                "Stripe-Signature": sign_payload(payload, endpoint["secret"], int(time.time())),
                "User-Agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
            }
            try:
                response = client.post(endpoint["url"], content=payload.encode(), headers=headers)
                status_code = response.status_code
            except httpx.HTTPError as exc:
                error = f"{type(exc).__name__}: {exc}"
        delays = self._sandbox.config.webhook_retry_delays
        now = time.time()
        if status_code is not None and 200 <= status_code < 300:
            state, next_at = "succeeded", now
        elif event is None or endpoint is None or delivery.attempts >= len(delays):
            state, next_at = "failed", now
        else:
            state, next_at = "pending", now + delays[delivery.attempts]
        with store.transaction(write=True) as tx:
            tx.record_attempt(delivery, status_code, error, now)
            tx.finish_attempt(delivery, state, next_at)
            stored = tx.get(delivery.event_id, "event")
            if stored is not None:
                stored["pending_webhooks"] = tx.pending_deliveries(delivery.event_id)
                tx.update(stored)

    def _seconds_until_next(self) -> float:
        with self._sandbox.store.transaction(write=False) as tx:
            due = [t for t in (tx.next_delivery_at(), tx.next_review_at()) if t is not None]
        if not due:
            return _IDLE_POLL_SECONDS
        return max(0.0, min(min(due) - time.time(), _IDLE_POLL_SECONDS))
