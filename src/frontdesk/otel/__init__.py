"""OpenTelemetry traces of runs: one trace per run, after the GenAI semantic conventions.

Install the ``otel`` extra (``pip install 'frontdesk[otel]'``), then either pass a provider::

    from opentelemetry.sdk.trace import TracerProvider

    runtime = AgentRuntime(tracer_provider=TracerProvider(...))

or configure the global provider as for any OpenTelemetry library, or just set
``OTEL_EXPORTER_OTLP_ENDPOINT`` (the runtime then exports through the SDK's own OTLP/HTTP
exporter; see :mod:`frontdesk.otel._setup` for the order these are looked at).

A run's trace id is derived from its execution id (:func:`trace_id_for`), so every process
that drives part of a run, after a crash or an approval days later, adds to the same trace;
steps replayed from the journal are never traced twice. Customer text stays out of span
attributes unless ``AgentRuntime(trace_content=True)`` or ``FRONTDESK_OTEL_CAPTURE_CONTENT=1``.

The OpenTelemetry SDK is imported only when a run is traced: without the extra installed
(the Agents SDK brings only the OpenTelemetry API), frontdesk works unchanged.
"""

from __future__ import annotations

from ._attributes import EXECUTION_ID
from ._ids import trace_id_for
from ._setup import CAPTURE_CONTENT_ENV, EXTRA

__all__ = ["CAPTURE_CONTENT_ENV", "EXECUTION_ID", "EXTRA", "trace_id_for"]
