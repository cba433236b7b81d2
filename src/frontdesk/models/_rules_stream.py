"""Responses-format output items, responses and stream events for the rules model."""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from typing import Any, cast

from agents.items import TResponseOutputItem, TResponseStreamEvent
from agents.usage import Usage
from openai.types.responses import (
    Response,
    ResponseCompletedEvent,
    ResponseContentPartAddedEvent,
    ResponseContentPartDoneEvent,
    ResponseCreatedEvent,
    ResponseFunctionCallArgumentsDeltaEvent,
    ResponseFunctionCallArgumentsDoneEvent,
    ResponseFunctionToolCall,
    ResponseInProgressEvent,
    ResponseOutputItemAddedEvent,
    ResponseOutputItemDoneEvent,
    ResponseOutputMessage,
    ResponseOutputText,
    ResponseTextDeltaEvent,
    ResponseTextDoneEvent,
    ResponseUsage,
)
from openai.types.responses.response_usage import InputTokensDetails, OutputTokensDetails

MODEL_NAME = "frontdesk-rules"


def function_call_item(call_id: str, name: str, arguments: str) -> ResponseFunctionToolCall:
    """A completed function-call output item (tool call or handoff)."""
    return ResponseFunctionToolCall(
        id=call_id.replace("call_", "fc_", 1),
        call_id=call_id,
        type="function_call",
        name=name,
        arguments=arguments,
        status="completed",
    )


def message_item(item_id: str, text: str) -> ResponseOutputMessage:
    """A completed assistant text message."""
    return ResponseOutputMessage(
        id=item_id,
        type="message",
        role="assistant",
        status="completed",
        content=[ResponseOutputText(type="output_text", text=text, annotations=[], logprobs=[])],
    )


def estimate_usage(input_chars: int, output_chars: int) -> Usage:
    """One request; tokens estimated as characters / 4 (rounded up)."""
    input_tokens, output_tokens = -(-input_chars // 4), -(-output_chars // 4)
    return Usage(
        requests=1,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        total_tokens=input_tokens + output_tokens,
    )


def _response(
    response_id: str, output: Sequence[TResponseOutputItem], usage: Usage | None
) -> Response:
    response_usage = None
    if usage is not None:
        response_usage = ResponseUsage(
            input_tokens=usage.input_tokens,
            output_tokens=usage.output_tokens,
            total_tokens=usage.total_tokens,
            input_tokens_details=InputTokensDetails(cached_tokens=0, cache_write_tokens=0),
            output_tokens_details=OutputTokensDetails(reasoning_tokens=0),
        )
    return Response(
        id=response_id,
        created_at=0,
        model=MODEL_NAME,
        object="response",
        output=list(output),
        tool_choice="auto",
        tools=[],
        top_p=None,
        parallel_tool_calls=True,
        status="completed" if usage is not None else "in_progress",
        usage=response_usage,
    )


def _chunks(text: str) -> list[str]:
    return re.findall(r"\s*\S+\s*|\s+", text) or [""]


def _item_events(index: int, item: TResponseOutputItem) -> Iterator[dict[str, Any]]:
    """Event payloads (without sequence numbers) streaming one output item."""
    if isinstance(item, ResponseFunctionToolCall):
        yield {
            "cls": ResponseOutputItemAddedEvent,
            "type": "response.output_item.added",
            "output_index": index,
            "item": item.model_copy(update={"arguments": "", "status": "in_progress"}),
        }
        common = {"item_id": item.id or item.call_id, "output_index": index}
        yield {
            "cls": ResponseFunctionCallArgumentsDeltaEvent,
            "type": "response.function_call_arguments.delta",
            "delta": item.arguments,
            **common,
        }
        yield {
            "cls": ResponseFunctionCallArgumentsDoneEvent,
            "type": "response.function_call_arguments.done",
            "arguments": item.arguments,
            "name": item.name,
            **common,
        }
    elif isinstance(item, ResponseOutputMessage):
        yield {
            "cls": ResponseOutputItemAddedEvent,
            "type": "response.output_item.added",
            "output_index": index,
            "item": item.model_copy(update={"content": [], "status": "in_progress"}),
        }
        part = cast(ResponseOutputText, item.content[0])
        common = {"item_id": item.id, "output_index": index, "content_index": 0}
        yield {
            "cls": ResponseContentPartAddedEvent,
            "type": "response.content_part.added",
            "part": part.model_copy(update={"text": ""}),
            **common,
        }
        for delta in _chunks(part.text):
            yield {
                "cls": ResponseTextDeltaEvent,
                "type": "response.output_text.delta",
                "delta": delta,
                "logprobs": [],
                **common,
            }
        yield {
            "cls": ResponseTextDoneEvent,
            "type": "response.output_text.done",
            "text": part.text,
            "logprobs": [],
            **common,
        }
        yield {
            "cls": ResponseContentPartDoneEvent,
            "type": "response.content_part.done",
            "part": part,
            **common,
        }
    yield {
        "cls": ResponseOutputItemDoneEvent,
        "type": "response.output_item.done",
        "output_index": index,
        "item": item,
    }


def stream_events(
    response_id: str, output: Sequence[TResponseOutputItem], usage: Usage
) -> list[TResponseStreamEvent]:
    """The normalized Responses stream for a finished response, ending in ``completed``."""
    pending = _response(response_id, [], None)
    payloads: list[dict[str, Any]] = [
        {"cls": ResponseCreatedEvent, "type": "response.created", "response": pending},
        {"cls": ResponseInProgressEvent, "type": "response.in_progress", "response": pending},
    ]
    for index, item in enumerate(output):
        payloads.extend(_item_events(index, item))
    payloads.append(
        {
            "cls": ResponseCompletedEvent,
            "type": "response.completed",
            "response": _response(response_id, output, usage),
        }
    )
    events: list[TResponseStreamEvent] = []
    for sequence_number, payload in enumerate(payloads):
        cls = payload.pop("cls")
        events.append(cast(TResponseStreamEvent, cls(sequence_number=sequence_number, **payload)))
    return events
