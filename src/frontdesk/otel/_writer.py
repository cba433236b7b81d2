"""Writing one finished span, with the ids frontdesk derived for it, through a tracer provider.

Spans are written after the fact, once the step they describe is durable, with the start and
end times the journal recorded. Their ids come from :mod:`._ids`: the tracer frontdesk uses is
a copy of the provider's own tracer (same sampler, resource, processors and exporters) whose
id generator hands out the derived ids. That needs the OpenTelemetry SDK's tracer, which any
``opentelemetry.sdk.trace.TracerProvider`` gives.
"""

from __future__ import annotations

import contextvars
import copy
import logging
from typing import Any

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import (
    NonRecordingSpan,
    SpanContext,
    SpanKind,
    Status,
    StatusCode,
    TraceFlags,
)

from ._attributes import ERROR_TYPE, Attributes
from ._ids import span_id, trace_id

log = logging.getLogger("frontdesk.otel")

TRACER_NAME = "frontdesk"
"""The instrumentation scope of frontdesk's spans."""

_fixed: contextvars.ContextVar[tuple[int, int] | None] = contextvars.ContextVar(
    "frontdesk_otel_fixed_ids", default=None
)


class FixedIds:
    """An SDK id generator that gives the span being written the ids frontdesk derived for
    it, and leaves every other span to the generator it wraps."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def generate_trace_id(self) -> int:
        """The run's trace id while frontdesk writes a span, else the wrapped generator's."""
        fixed = _fixed.get()
        return fixed[0] if fixed is not None else int(self.inner.generate_trace_id())

    def generate_span_id(self) -> int:
        """The step's span id while frontdesk writes a span, else the wrapped generator's."""
        fixed = _fixed.get()
        return fixed[1] if fixed is not None else int(self.inner.generate_span_id())

    def is_trace_id_random(self) -> bool:
        """Derived trace ids are hashes, not random draws (W3C's random flag stays off)."""
        if _fixed.get() is not None:
            return False
        return bool(getattr(self.inner, "is_trace_id_random", lambda: False)())


class SpanWriter:
    """Writes the spans of runs through one tracer provider."""

    def __init__(self, tracer: Any) -> None:
        self.tracer = tracer

    @classmethod
    def for_provider(cls, provider: Any, version: str) -> SpanWriter | None:
        """A writer on ``provider``, or None if it records nothing or is not the SDK's."""
        tracer = provider.get_tracer(TRACER_NAME, version)
        if isinstance(tracer, trace.NoOpTracer):
            return None
        if not hasattr(tracer, "id_generator"):
            log.warning(
                "frontdesk writes run traces through the OpenTelemetry SDK's tracer provider; "
                "%s is not one, so runs are not traced",
                type(provider).__name__,
            )
            return None
        own: Any = copy.copy(tracer)
        own.id_generator = FixedIds(tracer.id_generator)
        return cls(own)

    def write(
        self,
        execution_id: str,
        step: str,
        name: str,
        *,
        parent: str | None,
        start: float,
        end: float,
        attributes: Attributes,
        kind: SpanKind = SpanKind.INTERNAL,
        error: str | None = None,
    ) -> None:
        """Write the finished span of ``step`` in the run's trace, under the span of the
        step ``parent`` (None: the trace's root), from ``start`` to ``end`` (Unix times).

        ``error`` marks the span failed, with that ``error.type``.
        """
        trace_ = trace_id(execution_id)
        context = Context()  # never the caller's current span: the run's trace is its own
        if parent is not None:
            above = SpanContext(
                trace_,
                span_id(execution_id, parent),
                is_remote=True,
                trace_flags=TraceFlags(TraceFlags.SAMPLED),
            )
            context = trace.set_span_in_context(NonRecordingSpan(above), context)
        token = _fixed.set((trace_, span_id(execution_id, step)))
        try:
            span = self.tracer.start_span(
                name, context=context, kind=kind, attributes=attributes, start_time=_ns(start)
            )
        finally:
            _fixed.reset(token)
        if error is not None:
            span.set_attribute(ERROR_TYPE, error)
            span.set_status(Status(StatusCode.ERROR))
        span.end(end_time=_ns(max(start, end)))


def _ns(seconds: float) -> int:
    return int(seconds * 1_000_000_000)
