"""Events: what happened in a run, in order, persisted and streamable."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, get_args

EventType = Literal[
    "agent_start",
    "handoff",
    "tool_call",
    "tool_result",
    "message",
    "text_delta",
    "approval_required",
    "approval_decided",
    "approval_escalated",
    "guardrail",
    "done",
    "error",
    "budget_exceeded",
]

EVENT_TYPES: tuple[str, ...] = get_args(EventType)


@dataclass(frozen=True)
class Usage:
    """Model usage: requests and tokens."""

    requests: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    total_tokens: int = 0

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.requests + other.requests,
            self.input_tokens + other.input_tokens,
            self.output_tokens + other.output_tokens,
            self.total_tokens + other.total_tokens,
        )

    def to_dict(self) -> dict[str, int]:
        """The usage as a plain dict."""
        return {
            "requests": self.requests,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "total_tokens": self.total_tokens,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> Usage:
        """Build a usage from :meth:`to_dict` output (missing keys count as 0)."""
        data = data or {}
        return cls(
            int(data.get("requests", 0)),
            int(data.get("input_tokens", 0)),
            int(data.get("output_tokens", 0)),
            int(data.get("total_tokens", 0)),
        )


@dataclass(frozen=True)
class Event:
    """One step of a run, as persisted: ``seq`` is 1, 2, ... per run.

    Which fields are set depends on ``type``: ``target`` for handoffs; ``tool_name``,
    ``args`` and ``call_id`` for tool calls; ``result`` for tool results; ``output`` for
    messages and ``done``; ``usage`` for messages (that model call) and ``done`` (the run).
    ``data`` holds everything else (approval ids, durations, errors; for ``guardrail``: its
    ``kind``, ``guardrail`` name, ``tripwire_triggered`` and ``output_info``; for
    ``budget_exceeded``: the ``limit`` reached, its ``limit_value``, the amount ``used`` and
    the ``model_call`` that was not made, with the run's ``usage``).

    A ``text_delta`` is a piece of a model's text as it streams, delivered live to the event
    streams of the process that drives the run and never persisted (the ``message`` after it
    holds the whole text), so its ``seq`` is 0. Its ``data`` holds ``text``, ``model_call``
    (the call's number in the run, as on its ``message``) and ``attempt``; ``reset: True``
    (with empty text) says that attempt failed and its text is void: the retry streams anew.
    """

    execution_id: str
    seq: int
    type: EventType
    at: float
    agent: str | None = None
    target: str | None = None
    tool_name: str | None = None
    call_id: str | None = None
    args: dict[str, Any] | None = None
    result: Any = None
    output: Any = None
    usage: Usage | None = None
    data: dict[str, Any] = field(default_factory=dict)

    @property
    def timestamp(self) -> datetime:
        """``at`` as an aware UTC datetime."""
        return datetime.fromtimestamp(self.at, tz=UTC)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict of the event."""
        out: dict[str, Any] = {
            "execution_id": self.execution_id,
            "seq": self.seq,
            "type": self.type,
            "at": self.at,
            "agent": self.agent,
        }
        for name in ("target", "tool_name", "call_id", "args", "result", "output"):
            value = getattr(self, name)
            if value is not None:
                out[name] = value
        if self.usage is not None:
            out["usage"] = self.usage.to_dict()
        if self.data:
            out["data"] = self.data
        return out


_PAYLOAD_FIELDS = ("target", "tool_name", "call_id", "args", "result", "output")


def encode_payload(
    *,
    target: str | None = None,
    tool_name: str | None = None,
    call_id: str | None = None,
    args: dict[str, Any] | None = None,
    result: Any = None,
    output: Any = None,
    usage: Usage | None = None,
    **data: Any,
) -> str:
    """Serialize the type-specific part of an event for the store."""
    payload: dict[str, Any] = {}
    for name, value in (
        ("target", target),
        ("tool_name", tool_name),
        ("call_id", call_id),
        ("args", args),
        ("result", result),
        ("output", output),
    ):
        if value is not None:
            payload[name] = value
    if usage is not None:
        payload["usage"] = usage.to_dict()
    if data:
        payload["data"] = data
    return json.dumps(payload, default=str, separators=(",", ":"))


def decode_event(
    execution_id: str,
    seq: int,
    type_: str,
    at: float,
    agent: str | None,
    payload: str | dict[str, Any],
) -> Event:
    """Rebuild an :class:`Event` from a stored row (its payload as JSON or already parsed)."""
    data = json.loads(payload) if isinstance(payload, str) else payload
    usage = data.get("usage")
    return Event(
        execution_id=execution_id,
        seq=seq,
        type=type_,  # type: ignore[arg-type]
        at=at,
        agent=agent,
        usage=Usage.from_dict(usage) if usage is not None else None,
        data=data.get("data") or {},
        **{name: data.get(name) for name in _PAYLOAD_FIELDS},
    )


__all__ = ["EVENT_TYPES", "Event", "EventType", "Usage", "decode_event", "encode_payload"]
