"""Starting exactly one durable run per dispute, from a webhook or from ``process_dispute``.

Stripe delivers events at least once, and a dispute may also be processed by hand. Every
start uses the execution id ``dispute:<dispute id>``, and the runtime starts a run with a given
id at most once (atomically, across processes), so a redelivered event or a second
``process_dispute`` finds the run the first one started.

A verified event this app cannot act on (not an event object, ``data.object`` not an object,
a dispute without a usable id, text that is not valid) raises :class:`InvalidEvent`, saying
why, before anything is recorded or started.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from agents import Agent

from ..._text import items_text_length
from ...errors import InvalidInput
from ...runtime import AgentRuntime
from ._db import connect
from .agents import triage_agent

DISPUTE_CREATED = "charge.dispute.created"
RUN_PREFIX = "dispute:"

IntakeAction = Literal["started", "duplicate", "ignored"]

MAX_ID_CHARS = 255
"""The longest event or object id accepted (Stripe's ids are far shorter)."""
MAX_DISPUTE_ID_CHARS = 185
"""The longest dispute id accepted, so that the execution ids of a dispute's runs (a prefix
of up to 15 characters, such as ``dispute:``, and the id) stay within 200 characters."""
_DISPUTE_ID = re.compile(rf"[A-Za-z0-9_-]{{1,{MAX_DISPUTE_ID_CHARS}}}")


class InvalidEvent(InvalidInput):
    """A Stripe event or dispute that this app cannot act on; the message says why."""


@dataclass(frozen=True)
class DisputeRun:
    """The run that handles a dispute."""

    dispute_id: str
    execution_id: str
    started: bool
    """Whether this call started it (False: it already existed)."""


@dataclass(frozen=True)
class IntakeResult:
    """What a webhook event led to."""

    event_id: str
    type: str
    action: IntakeAction
    execution_id: str | None = None


def dispute_execution_id(dispute_id: Any) -> str:
    """The execution id of the run that handles ``dispute_id``; :class:`InvalidEvent` unless
    the id is 1-185 letters, digits, ``_`` and ``-``, as Stripe's ids are."""
    if dispute_id is None or dispute_id == "":
        raise InvalidEvent("the dispute has no id")
    if not isinstance(dispute_id, str) or not _DISPUTE_ID.fullmatch(dispute_id):
        shown = repr(dispute_id)
        shown = shown if len(shown) <= 60 else f"{shown[:57]}..."
        raise InvalidEvent(
            f"the dispute id {shown} is not a Stripe id: use 1-{MAX_DISPUTE_ID_CHARS} "
            "letters, digits, _ and -"
        )
    return f"{RUN_PREFIX}{dispute_id}"


def relevant_data(dispute: Mapping[str, Any]) -> dict[str, Any]:
    """The dispute fields the agents work from (a Stripe dispute object as a dict)."""
    evidence = _mapping(dispute.get("evidence_details"))
    card = _mapping(_mapping(dispute.get("payment_method_details")).get("card"))
    intent = dispute.get("payment_intent")
    return {
        "dispute_id": dispute.get("id"),
        "amount": dispute.get("amount"),
        "due_by": evidence.get("due_by"),
        "payment_intent": intent.get("id") if isinstance(intent, Mapping) else intent,
        "reason": dispute.get("reason"),
        "status": dispute.get("status"),
        "card_brand": card.get("brand"),
    }


def start_dispute_run(
    runtime: AgentRuntime, data: Mapping[str, Any], *, agent: Agent[Any] | None = None
) -> DisputeRun:
    """Start the run for this dispute unless one exists; either way say which run it is.

    ``data`` is :func:`relevant_data`; the run's input is it as JSON. :class:`InvalidEvent`
    if the dispute has no usable id or its data is too long for a run's input.
    """
    dispute_id = data.get("dispute_id")
    execution_id = dispute_execution_id(dispute_id)
    try:
        handle = runtime.start(
            agent or triage_agent, json.dumps(dict(data)), execution_id=execution_id
        )
    except InvalidInput as exc:
        raise InvalidEvent(f"dispute {dispute_id} cannot start its run: {exc}") from None
    return DisputeRun(str(dispute_id), handle.execution_id, started=handle.created)


def handle_event(runtime: AgentRuntime, event: Any) -> IntakeResult:
    """Act on a verified Stripe event and record it: a new dispute starts its run (once);
    every other event type is recorded and ignored. :class:`InvalidEvent` (nothing recorded,
    nothing started) for an event this app cannot act on."""
    event_id, event_type, obj = _parse_event(event)
    action: IntakeAction = "ignored"
    execution_id = None
    if event_type == DISPUTE_CREATED:
        run = start_dispute_run(runtime, relevant_data(obj))
        execution_id = run.execution_id
        action = "started" if run.started else "duplicate"
    _record_event(runtime, event_id, event_type, obj.get("id"), action, execution_id)
    return IntakeResult(event_id, event_type, action, execution_id)


def _parse_event(event: Any) -> tuple[str, str, Mapping[str, Any]]:
    """The event's id, type and ``data.object``, once the event is known to be usable."""
    if not isinstance(event, Mapping):
        raise InvalidEvent(f"the payload is a JSON {_json_kind(event)}, not a Stripe event object")
    try:
        items_text_length([event], "the event")
    except InvalidInput as exc:
        raise InvalidEvent(str(exc)) from None
    event_id = _id_field(event, "id", "the event's id")
    event_type = _id_field(event, "type", "the event's type")
    data = event.get("data")
    if not isinstance(data, Mapping):
        raise InvalidEvent(f"the event's data is a JSON {_json_kind(data)}, not an object")
    obj = data.get("object")
    if not isinstance(obj, Mapping):
        raise InvalidEvent(f"the event's data.object is a JSON {_json_kind(obj)}, not an object")
    if obj.get("id") is not None:
        _id_field(obj, "id", "the id of the event's object")
    return event_id, event_type, obj


def _id_field(mapping: Mapping[str, Any], name: str, what: str) -> str:
    value = mapping.get(name)
    if not isinstance(value, str) or not 0 < len(value) <= MAX_ID_CHARS:
        raise InvalidEvent(f"{what} is not a string of 1-{MAX_ID_CHARS} characters")
    return value


_JSON_KINDS = (
    (type(None), "null"),
    (bool, "boolean"),
    (Mapping, "object"),
    (list, "array"),
    (str, "string"),
    (int | float, "number"),
)


def _json_kind(value: Any) -> str:
    return next((name for kind, name in _JSON_KINDS if isinstance(value, kind)), "value")


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def dispute_runs(runtime: AgentRuntime) -> dict[str, str]:
    """Every dispute with a run in ``runtime``'s store: dispute id -> execution id."""
    ids = runtime.store.run_ids(RUN_PREFIX)
    return {execution_id[len(RUN_PREFIX) :]: execution_id for execution_id in ids}


def webhook_events(
    home: Path | None = None, *, runtime: AgentRuntime | None = None
) -> list[dict[str, Any]]:
    """Every webhook event received, in the order first received (in ``runtime``'s app data
    when given, see :func:`~._db.connect`)."""
    with connect(home, runtime=runtime) as conn:
        rows = conn.execute(
            "SELECT * FROM webhook_events ORDER BY first_received_at, event_id"
        ).fetchall()
    return [dict(row) for row in rows]


def _record_event(
    runtime: AgentRuntime,
    event_id: str,
    event_type: str,
    object_id: Any,
    action: IntakeAction,
    execution_id: str | None,
) -> None:
    now = time.time()
    with connect(runtime=runtime) as conn:
        # A redelivery counts as one more delivery and keeps the first outcome.
        conn.execute(
            "INSERT INTO webhook_events VALUES (?, ?, ?, ?, ?, 1, ?, ?)"
            " ON CONFLICT (event_id) DO UPDATE SET deliveries = webhook_events.deliveries + 1,"
            " last_received_at = excluded.last_received_at,"
            " execution_id = COALESCE(webhook_events.execution_id, excluded.execution_id)",
            (event_id, event_type, object_id, action, execution_id, now, now),
        )
