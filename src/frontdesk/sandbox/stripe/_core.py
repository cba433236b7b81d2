"""The sandbox engine: configuration, one operation per request, ids, events and lists."""

from __future__ import annotations

import copy
import secrets
import string
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import stripe

from ._errors import invalid_request, resource_missing
from ._forms import Params
from ._store import FieldFilter, ListQuery, Store, StripeObject, Transaction

_ID_ALPHABET = string.ascii_letters + string.digits
_LIST_PARAMS = ("limit", "starting_after", "ending_before", "created")


def new_id(prefix: str) -> str:
    """A Stripe-style id such as ``pi_3kT9...``."""
    return f"{prefix}_{''.join(secrets.choice(_ID_ALPHABET) for _ in range(24))}"


@dataclass(frozen=True)
class SandboxConfig:
    """How a sandbox app behaves.

    ``dispute_review_seconds`` is how long a submitted dispute stays ``under_review``
    before the bank decides; ``webhook_retry_delays`` are the waits before each retry of a
    failed webhook delivery (one delivery is tried ``len(webhook_retry_delays) + 1`` times).
    """

    db_path: Path
    dispute_review_seconds: float = 0.0
    webhook_retry_delays: tuple[float, ...] = (1.0, 5.0, 25.0)
    webhook_timeout: float = 5.0


@dataclass(frozen=True)
class RequestMeta:
    """What an operation knows about the HTTP request that caused it."""

    path: str = ""
    request_id: str | None = None
    idempotency_key: str | None = None
    api_version: str | None = None


class Operation:
    """One unit of work (a request or a background step) inside one SQLite transaction."""

    def __init__(self, tx: Transaction, meta: RequestMeta, config: SandboxConfig) -> None:
        self.tx = tx
        self.meta = meta
        self.config = config
        self.now = int(time.time())
        self.wake_worker = False

    def require(self, object_type: str, object_id: str, param: str | None = None) -> StripeObject:
        """Load an object or raise Stripe's 404 ``resource_missing``."""
        obj = self.tx.get(object_id, object_type)
        if obj is None:
            raise resource_missing(object_type, object_id, param)
        return obj

    def emit(
        self,
        event_type: str,
        obj: StripeObject,
        previous_attributes: dict[str, Any] | None = None,
    ) -> StripeObject:
        """Record a Stripe event for ``obj`` and queue it for every subscribed endpoint."""
        endpoints = [
            endpoint
            for endpoint in self.tx.find("webhook_endpoint")
            if endpoint["status"] == "enabled"
            and event_matches(endpoint["enabled_events"], event_type)
        ]
        data: dict[str, Any] = {"object": copy.deepcopy(obj)}
        if previous_attributes:
            data["previous_attributes"] = previous_attributes
        event: StripeObject = {
            "id": new_id("evt"),
            "object": "event",
            "api_version": self.meta.api_version or stripe.api_version,
            "created": self.now,
            "data": data,
            "livemode": False,
            "pending_webhooks": len(endpoints),
            "request": {"id": self.meta.request_id, "idempotency_key": self.meta.idempotency_key},
            "type": event_type,
        }
        self.tx.insert(event)
        for endpoint in endpoints:
            self.queue_delivery(event["id"], endpoint["id"])
        # Also wakes the worker when nothing is queued: the change may schedule a review.
        self.wake_worker = True
        return event

    def queue_delivery(self, event_id: str, endpoint_id: str) -> None:
        """Queue one webhook delivery, sent by the worker once this operation commits."""
        self.tx.add_delivery(event_id, endpoint_id, time.time())
        self.wake_worker = True

    def list_objects(
        self,
        params: Params,
        object_type: str,
        filter_params: Sequence[str] = (),
        *,
        extra_params: Sequence[str] = (),
        extra_filters: Sequence[FieldFilter] = (),
    ) -> StripeObject:
        """Answer a list request: pagination, ``created`` and equality filters by name."""
        params.reject_unknown([*_LIST_PARAMS, *filter_params, *extra_params])
        filters = [
            FieldFilter(name, (value,))
            for name in filter_params
            if (value := params.string(name)) is not None
        ]
        query = ListQuery(
            limit=params.integer("limit", minimum=1, maximum=100) or 10,
            starting_after=params.string("starting_after"),
            ending_before=params.string("ending_before"),
            created=_created_filter(params),
            filters=(*filters, *extra_filters),
        )
        if query.starting_after and query.ending_before:
            raise invalid_request(
                "You may only specify one of these parameters: ending_before, starting_after.",
                param="starting_after",
            )
        items, has_more = self.tx.page(object_type, query)
        return list_object(self.meta.path, items, has_more)


Handler = Callable[..., StripeObject]
"""An endpoint implementation: ``(op, params, **path_params) -> response object``."""


def retrieve_handler(object_type: str, *extra_params: str) -> Handler:
    """A ``GET /v1/<objects>/{id}`` handler for ``object_type``."""

    def retrieve(op: Operation, params: Params, object_id: str) -> StripeObject:
        params.reject_unknown(extra_params)
        return op.require(object_type, object_id)

    retrieve.__doc__ = f"Retrieve one {object_type} by id."
    return retrieve


def list_handler(object_type: str, *filter_params: str) -> Handler:
    """A ``GET /v1/<objects>`` handler for ``object_type``, filterable by ``filter_params``."""

    def list_(op: Operation, params: Params) -> StripeObject:
        return op.list_objects(params, object_type, filter_params)

    list_.__doc__ = f"List {object_type} objects, newest first."
    return list_


def list_object(url: str, items: list[StripeObject], has_more: bool = False) -> StripeObject:
    """A Stripe list envelope."""
    return {"object": "list", "data": items, "has_more": has_more, "url": url}


def event_matches(enabled_events: list[str], event_type: str) -> bool:
    """Whether an endpoint subscribed to ``enabled_events`` receives ``event_type``."""
    return "*" in enabled_events or event_type in enabled_events


def _created_filter(params: Params) -> dict[str, int] | None:
    if not params.has("created"):
        return None
    if isinstance(params.data["created"], str):
        exact = params.integer("created", minimum=0)
        return None if exact is None else {"gte": exact, "lte": exact}
    bounds = params.hash("created", allowed=("gt", "gte", "lt", "lte"))
    assert bounds is not None
    return {
        name: value
        for name in ("gt", "gte", "lt", "lte")
        if (value := bounds.integer(name, minimum=0)) is not None
    }


SYSTEM = RequestMeta()
"""Metadata for work the sandbox does on its own (webhook retries, dispute reviews)."""


@dataclass
class Sandbox:
    """Store and configuration shared by the HTTP app and its background worker."""

    config: SandboxConfig
    store: Store = field(init=False)
    on_commit: Callable[[], None] | None = None

    def __post_init__(self) -> None:
        self.store = Store(self.config.db_path)

    @contextmanager
    def operation(self, meta: RequestMeta = SYSTEM, *, write: bool = True) -> Iterator[Operation]:
        """Run one operation in a transaction; wakes the worker when it queued events."""
        with self.store.transaction(write) as tx:
            op = Operation(tx, meta, self.config)
            yield op
        if op.wake_worker and self.on_commit is not None:
            self.on_commit()
