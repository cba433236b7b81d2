"""Where a runtime's run traces go, and the entry points its engine calls.

Which tracer provider, checked each time a run is driven:

1. the one given as ``AgentRuntime(tracer_provider=...)``;
2. else the global one, once an application set it (``trace.set_tracer_provider``, or
   ``opentelemetry-instrument``), as every OpenTelemetry library does;
3. else, when ``OTEL_EXPORTER_OTLP_ENDPOINT`` (or ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``) is
   set, a provider the runtime builds for itself and shuts down (flushing it) on close: the
   SDK's standard OTLP/HTTP ``OTLPSpanExporter``, which reads that endpoint and every other
   ``OTEL_EXPORTER_OTLP_*`` variable itself, behind a ``BatchSpanProcessor`` (``OTEL_BSP_*``),
   with ``OTEL_SERVICE_NAME`` / ``OTEL_RESOURCE_ATTRIBUTES`` as the resource (``service.name``
   ``frontdesk`` unless they say otherwise). ``OTEL_TRACES_EXPORTER=none`` or
   ``OTEL_SDK_DISABLED=true`` turn it off;
4. else none: runs are not traced, and nothing is built for them.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from typing import TYPE_CHECKING, Any

from ..errors import InvalidInput

if TYPE_CHECKING:
    from ..store import RunRow, Store
    from ._observer import ModelInfo, RunObserver, TracedRun
    from ._writer import SpanWriter

log = logging.getLogger("frontdesk.otel")

CAPTURE_CONTENT_ENV = "FRONTDESK_OTEL_CAPTURE_CONTENT"
"""``1`` puts customer text (messages, model output, tool arguments and results) in span
attributes; unset or ``0``, it is left out."""
EXTRA = "pip install 'frontdesk[otel]'"
"""How to install what frontdesk's OpenTelemetry traces need."""

_ENDPOINTS = ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")
_PROTOCOLS = ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL")
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off", "")


def require_otel(what: str) -> None:
    """Raise an ``ImportError`` naming the extra if OpenTelemetry is not installed."""
    try:
        import opentelemetry.trace  # noqa: F401
    except ImportError as exc:
        raise ImportError(f"{what} needs OpenTelemetry, which is not installed: {EXTRA}") from exc


def capture_content(value: bool | None = None) -> bool:
    """Whether span attributes carry customer text: ``value`` if given, else
    :data:`CAPTURE_CONTENT_ENV`; :class:`InvalidInput` for a value it does not know."""
    if value is not None:
        return bool(value)
    flag = os.environ.get(CAPTURE_CONTENT_ENV, "").strip().lower()
    if flag in _TRUE:
        return True
    if flag in _FALSE:
        return False
    raise InvalidInput(
        f"{CAPTURE_CONTENT_ENV}={os.environ[CAPTURE_CONTENT_ENV]!r}: use 1 to put customer text "
        "in span attributes or 0 to leave it out (the default)"
    )


def otlp_requested() -> bool:
    """Whether the environment asks for OTLP export (an OTLP endpoint, not turned off)."""
    if not any(os.environ.get(name, "").strip() for name in _ENDPOINTS):
        return False
    if os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    exporters = os.environ.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    return exporters != "none"


def global_provider() -> Any | None:
    """The global tracer provider, if an application configured one."""
    trace = sys.modules.get("opentelemetry.trace")
    if trace is None:  # nobody imported OpenTelemetry: nobody configured it
        return None
    provider = trace.get_tracer_provider()
    if isinstance(provider, trace.ProxyTracerProvider | trace.NoOpTracerProvider):
        return None
    return provider


def otlp_provider() -> Any:
    """A tracer provider exporting to the OTLP endpoint the environment names, built from the
    SDK's own parts, which read their ``OTEL_*`` settings themselves."""
    for name in _PROTOCOLS:
        protocol = os.environ.get(name, "").strip()
        if protocol:
            if protocol != "http/protobuf":
                raise ValueError(
                    f"{name}={protocol!r}: frontdesk's own OTLP exporter speaks http/protobuf; "
                    "for another protocol, configure a tracer provider yourself and pass it "
                    "as AgentRuntime(tracer_provider=...) or set it globally"
                )
            break
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    resource = Resource.create()
    if str(resource.attributes.get(SERVICE_NAME, "")).startswith("unknown_service"):
        resource = resource.merge(Resource({SERVICE_NAME: "frontdesk"}))
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    return provider


class RunTracing:
    """A runtime's run traces: finds the tracer provider and gives each run driven an
    observer that writes its spans (see :mod:`._observer`)."""

    def __init__(self, tracer_provider: Any | None = None, content: bool | None = None) -> None:
        if tracer_provider is not None:
            require_otel("AgentRuntime(tracer_provider=...)")
            if not callable(getattr(tracer_provider, "get_tracer", None)):
                raise InvalidInput(
                    f"tracer_provider must be an OpenTelemetry TracerProvider, got "
                    f"{type(tracer_provider).__name__}"
                )
        self.store: Store | None = None
        """The store runs are read from (see :meth:`attach`)."""
        self.content = capture_content(content)
        """Whether span attributes carry customer text."""
        self._given = tracer_provider
        self._otlp = tracer_provider is None and otlp_requested()
        self._owned: Any | None = None
        self._writers: dict[int, tuple[Any, SpanWriter | None]] = {}
        self._live: dict[str, RunObserver] = {}
        self._lock = threading.Lock()
        self._closed = False

    def attach(self, store: Store) -> RunTracing:
        """Read the history of the runs it traces from ``store``; returns itself."""
        self.store = store
        return self

    def provider(self) -> Any | None:
        """The tracer provider runs are traced through now, if any."""
        if self._given is not None:
            return self._given
        found = global_provider()
        if found is not None or not self._otlp:
            return found
        with self._lock:
            if self._owned is None and self._otlp and not self._closed:
                try:
                    self._owned = otlp_provider()
                except ImportError as exc:
                    self._otlp = False
                    log.warning("OTLP export is configured but not installed (%s): %s", exc, EXTRA)
                except ValueError as exc:
                    self._otlp = False
                    log.warning("%s", exc)
            return self._owned

    def observe(self, row: RunRow, run: TracedRun, graph: Any, fresh: bool) -> RunObserver | None:
        """An observer for a driver of ``row``'s run (None when runs are not traced).

        ``fresh``: the run was just created, so nothing of it is stored yet.
        """
        try:
            writer = self._writer()
            if writer is None:
                return None
            from ._observer import models_of

            observer = self._observer(writer, row, run, models_of(graph), fresh)
        except Exception:
            log.warning("run %s is not traced", row.execution_id, exc_info=True)
            return None
        self._live[row.execution_id] = observer
        return observer

    def settled(self, row: RunRow) -> RunRow:
        """The run's driver left it as ``row``: if it ended, write its last spans. Returns
        ``row``."""
        observer = self._live.pop(row.execution_id, None)
        if row.status in ("running", "waiting_approval"):
            return row
        try:
            if observer is None:  # ended without a driver here (e.g. cancelled while waiting)
                observer = self._cold(row)
            if observer is not None:
                observer.settle(row)
        except Exception:
            log.warning("run %s: its last spans could not be written", row.execution_id,
                        exc_info=True)  # fmt: skip
        return row

    def discard(self, execution_id: str) -> None:
        """Forget the run's observer: its driver stopped without settling it."""
        self._live.pop(execution_id, None)

    def close(self) -> None:
        """Flush and shut down the provider this runtime built for itself, if it did."""
        with self._lock:
            self._closed = True
            owned, self._owned = self._owned, None
        if owned is not None:
            owned.shutdown()

    def _cold(self, row: RunRow) -> RunObserver | None:
        writer = self._writer()
        return None if writer is None else self._observer(writer, row, None, {}, False)

    def _observer(
        self,
        writer: SpanWriter,
        row: RunRow,
        run: TracedRun | None,
        models: dict[str, ModelInfo],
        fresh: bool,
    ) -> RunObserver:
        from ._observer import RunObserver

        store = self.store
        if store is None:
            raise RuntimeError("RunTracing.attach(store) was never called")
        execution_id = row.execution_id
        return RunObserver(
            writer,
            row,
            run=run,
            models=models,
            history=() if fresh else store.events(execution_id),
            approvals=lambda: store.approvals(execution_id=execution_id),
            content=self.content,
        )

    def _writer(self) -> SpanWriter | None:
        provider = self.provider()
        if provider is None:
            return None
        cached = self._writers.get(id(provider))
        if cached is not None and cached[0] is provider:
            return cached[1]
        from .. import __version__
        from ._writer import SpanWriter

        writer = SpanWriter.for_provider(provider, __version__)
        with self._lock:
            self._writers[id(provider)] = (provider, writer)
        return writer
