"""Trace and span ids derived from a run's execution id, the same in every process.

A run's spans are emitted by whichever process drives each part of it: the one that started
it, the one that took it over after a crash, the one that resumed it after an approval days
later. They land in one trace, correctly parented, because every id is a function of the
execution id and of the step it names: nothing about the trace needs to be stored.
"""

from __future__ import annotations

import hashlib

_TRACE = "frontdesk/trace/"
_SPAN = "frontdesk/span/"


def _digest(text: str, size: int) -> int:
    value = int.from_bytes(hashlib.sha256(text.encode()).digest()[:size], "big")
    return value or 1  # 0 is the invalid id in OpenTelemetry; a hash of 0 is unheard of anyway


def trace_id(execution_id: str) -> int:
    """The 128-bit trace id of the run ``execution_id``."""
    return _digest(_TRACE + execution_id, 16)


def trace_id_for(execution_id: str) -> str:
    """The OpenTelemetry trace id of a run, as the 32 hex digits backends search by.

    Every span of the run carries it, whichever process emitted the span.
    """
    return f"{trace_id(execution_id):032x}"


def span_id(execution_id: str, step: str) -> int:
    """The 64-bit span id of ``step`` (``run:1``, ``agent:1:2``, ``model:3``...) in a run."""
    return _digest(f"{_SPAN}{execution_id}/{step}", 8)


__all__ = ["span_id", "trace_id", "trace_id_for"]
