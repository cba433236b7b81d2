"""How step results are written to the journal, and read back for events.

A tool result or model output is stored once, in the journal. Events that report it carry a
reference to the journal row instead of a copy, and are completed on read.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel

_JSON_SCALARS = (str, int, float, bool, type(None))


def encode_value(value: Any) -> str:
    """Serialize a tool result; strings stay strings, models become their JSON."""
    if isinstance(value, str):
        return json.dumps({"s": value})
    if isinstance(value, BaseModel):
        return json.dumps({"v": value.model_dump(mode="json")})
    try:
        return json.dumps({"v": value})
    except TypeError:
        return json.dumps({"s": str(value)})


def decode_value(text: str) -> Any:
    """Inverse of :func:`encode_value`."""
    data = json.loads(text)
    return data["s"] if "s" in data else data.get("v")


def plain_value(value: Any) -> Any:
    """A JSON-ready form of a tool result or final output."""
    if isinstance(value, _JSON_SCALARS):
        return value
    return decode_value(encode_value(value))


def output_text(items: list[Any]) -> str | None:
    """The assistant text in model output items (SDK objects or their JSON), if any."""
    parts: list[str] = []
    for item in items:
        kind = item.get("type") if isinstance(item, dict) else getattr(item, "type", None)
        if kind != "message":
            continue
        contents = item.get("content") if isinstance(item, dict) else getattr(item, "content", None)
        for content in contents or []:
            text = (
                content.get("text") if isinstance(content, dict) else getattr(content, "text", None)
            )
            if text:
                parts.append(text)
    return "\n".join(parts) if parts else None


def hydrate(
    type_: str, payload: dict[str, Any], step_json: str | None, run_output_json: str | None
) -> dict[str, Any]:
    """Complete an event's payload from the journal row (or run output) it refers to."""
    if type_ == "tool_result" and "result" not in payload and step_json is not None:
        payload["result"] = decode_value(step_json)
    elif type_ == "message" and "output" not in payload and step_json is not None:
        payload["output"] = output_text(json.loads(step_json).get("output") or [])
    elif type_ == "done" and "output" not in payload and run_output_json is not None:
        payload["output"] = json.loads(run_output_json)
    return payload
