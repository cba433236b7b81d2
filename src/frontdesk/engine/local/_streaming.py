"""Model calls requested as a stream: text deltas go out live, the response is journaled whole.

When a run streams its tokens (``runtime.stream(...)``, or ``AgentRuntime(stream_tokens=True)``),
:class:`DurableModel` asks the wrapped model for ``stream_response`` instead of
``get_response``. Each ``response.output_text.delta`` is published as a ``text_delta``
:class:`~frontdesk.events.Event` to the run's :class:`TokenFeed`, and the ``ModelResponse`` is
assembled from the stream's ``response.completed`` exactly as the SDK's streamed runner does.
That response is journaled like any other model call, so replay and recovery never stream a
committed call again.

Deltas are not persisted: the ``message`` event that follows them holds the whole text, a row
per token would multiply the history's size and its writes, and nothing of them is lost to a
consumer that was not listening (it reads the message). They reach the live event streams
(:class:`~frontdesk.EventStream`) of this process only, in order, before that ``message``.

Every delta carries the attempt it belongs to. When an attempt that already sent text fails (a
429, a 500, a stream cut off, a timeout) a ``text_delta`` with ``data["reset"] = True`` says so
before the retry streams the call again: its text is to be discarded, not joined to the next.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any

import openai
from agents import Model, ModelSettings
from agents.exceptions import ModelBehaviorError
from agents.items import ModelResponse
from agents.models._response_terminal import (
    response_error_event_failure_error,
    response_terminal_failure_error,
)
from agents.usage import (
    Usage,
    _extract_raw_usage_snapshot,
    _requests_for_response_without_usage,
    _response_usage_to_usage,
)
from openai.types.responses import (
    Response,
    ResponseCompletedEvent,
    ResponseOutputItemDoneEvent,
    ResponseTextDeltaEvent,
)

from ...events import Event, EventType
from ...models._select import RetryPolicy, call_with_retries
from ...store import Store
from .._types import TokenFeed

if TYPE_CHECKING:
    from ._run import DurableRun

TEXT_DELTA: EventType = "text_delta"
_FAILED = frozenset({"response.failed", "response.incomplete"})
_ERRORS = frozenset({"error", "response.error"})


class TokenPublisher:
    """Makes the streamed model calls of one run and publishes their text to its feed."""

    def __init__(
        self, feed: TokenFeed, store: Store, execution_id: str, notify: Callable[[], None]
    ) -> None:
        self.feed = feed
        self._store = store
        self._execution_id = execution_id
        self._notify = notify

    def _last_seq(self) -> int:
        return self._store.last_event_seq(self._execution_id)

    def _publish(self, after_seq: int, agent: str, **data: Any) -> None:
        event = Event(self._execution_id, 0, TEXT_DELTA, time.time(), agent=agent, data=data)
        self.feed.publish(after_seq, event)
        self._notify()

    async def model_call(
        self,
        run: DurableRun,
        agent_name: str,
        inner: Model,
        policy: RetryPolicy,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> ModelResponse:
        """Stream call *k* of ``run`` (with retries) and return its assembled response."""
        k = run.model_calls  # durable_model_call numbers the call before making it
        # Events buffered for the next commit (agent_start, a handoff) come before the text.
        await run.commit([])
        after = await asyncio.to_thread(self._last_seq)
        args, kwargs = _asking_for_usage(args, kwargs)
        settings = kwargs.get("model_settings", args[2] if len(args) > 2 else None)
        preserve_raw = getattr(settings, "preserve_raw_usage", None) is True
        attempts = 0

        async def attempt() -> ModelResponse:
            nonlocal attempts
            attempts += 1
            number, sent = attempts, False

            def on_text(text: str) -> None:
                nonlocal sent
                sent = True
                self._publish(after, agent_name, text=text, model_call=k, attempt=number)

            try:
                stream = inner.stream_response(*args, **kwargs)
                return await collect_response(stream, on_text, preserve_raw_usage=preserve_raw)
            except BaseException:
                if sent:
                    self._publish(
                        after, agent_name, text="", model_call=k, attempt=number, reset=True
                    )
                raise

        return await call_with_retries(attempt, policy)


def _asking_for_usage(
    args: tuple[Any, ...], kwargs: dict[str, Any]
) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """Ask a Chat Completions stream for its usage (``stream_options.include_usage``), as the
    SDK does only for OpenAI's own endpoint: the run records every call's tokens. An agent
    whose ``ModelSettings`` says ``include_usage=False`` is left as it is."""
    if "model_settings" in kwargs:
        settings = kwargs["model_settings"]
        if isinstance(settings, ModelSettings) and settings.include_usage is None:
            kwargs = {**kwargs, "model_settings": _with_usage(settings)}
    elif len(args) > 2 and isinstance(args[2], ModelSettings) and args[2].include_usage is None:
        args = (*args[:2], _with_usage(args[2]), *args[3:])
    return args, kwargs


def _with_usage(settings: ModelSettings) -> ModelSettings:
    return dataclasses.replace(settings, include_usage=True)


async def collect_response(
    stream: AsyncIterator[Any],
    on_text: Callable[[str], None],
    *,
    preserve_raw_usage: bool = False,
) -> ModelResponse:
    """The ``ModelResponse`` of a model's event stream, built as the SDK's streamed runner
    builds it (``run_internal.run_loop``), calling ``on_text`` with each text delta.

    A ``response.failed``, ``response.incomplete`` or ``error`` event raises the SDK's own
    error; a stream that ends without ``response.completed``, or completes without a single
    output item, raises ``ModelBehaviorError`` (all malformed responses to
    :func:`call_with_retries`, never retried): the SDK's Chat Completions handler completes any
    stream that ends, and a stream of chunks it cannot read comes out empty. A connection
    dropped mid-stream raises ``openai.APIConnectionError`` saying so, which is retried.
    """
    final: ModelResponse | None = None
    streamed_output: list[Any] = []
    received = 0
    try:
        async for event in stream:
            received += 1
            event_type = getattr(event, "type", None)
            if isinstance(event, ResponseTextDeltaEvent) and event.delta:
                on_text(event.delta)
            if isinstance(event, ResponseCompletedEvent):
                final = _model_response(event.response, streamed_output, preserve_raw_usage)
            elif event_type in _FAILED:
                response = getattr(event, "response", None)
                raise response_terminal_failure_error(
                    str(event_type), response if isinstance(response, Response) else None
                )
            elif event_type in _ERRORS:
                raise response_error_event_failure_error(str(event_type), event)
            if isinstance(event, ResponseOutputItemDoneEvent):
                streamed_output.append(event.item)
    except openai.APIConnectionError as exc:
        if received == 0 or isinstance(exc, openai.APITimeoutError):
            raise
        raise openai.APIConnectionError(
            message=f"the model's stream was cut off after {received} events, before "
            f"response.completed ({exc})",
            request=exc.request,
        ) from exc
    finally:
        close = getattr(stream, "aclose", None)
        if close is not None:
            await close()
    if final is None:
        raise ModelBehaviorError(
            f"the model's stream ended after {received} events without response.completed"
        )
    if not final.output:
        raise ModelBehaviorError(
            f"the model's stream completed after {received} events without any output "
            "(no message, no tool call)"
        )
    return final


def _model_response(
    terminal: Response, streamed_output: list[Any], preserve_raw_usage: bool
) -> ModelResponse:
    if not terminal.output and streamed_output:
        # Some backends send their items only in output_item.done events (as the SDK notes).
        terminal.output = list(streamed_output)
    usage = (
        _response_usage_to_usage(terminal.usage)
        if terminal.usage
        else Usage(requests=_requests_for_response_without_usage(terminal))
    )
    return ModelResponse(
        output=terminal.output,
        usage=usage,
        response_id=terminal.id,
        request_id=getattr(terminal, "_request_id", None),
        raw_usage=_extract_raw_usage_snapshot(terminal) if preserve_raw_usage else None,
    )
