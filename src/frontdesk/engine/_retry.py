"""Retrying a run, the same on every engine: a failed run, or one its budget stopped, is made
runnable again as its next attempt; its completed steps are kept and replayed."""

from __future__ import annotations

import time

from ..errors import InvalidRunState, RunNotFound
from ..store import RetryRun, RunRow, Store

RETRYABLE = frozenset({"failed", "budget_exceeded"})
"""Statuses :func:`retry_run` makes runnable again."""


def retry_run(store: Store, execution_id: str, budget_json: str | None) -> RunRow:
    """Make the run runnable again (``budget_json``, if given, replaces its budget in the
    same write) and return its row; raises if it is unknown or not retryable."""
    row = store.get_run(execution_id)
    if row is None:
        raise RunNotFound(execution_id)
    if row.status not in RETRYABLE:
        raise InvalidRunState(
            f"run {execution_id} is {row.status}; only failed runs can be retried, and "
            "runs stopped by their budget (budget_exceeded)"
        )
    store.write([RetryRun(execution_id, time.time(), budget_json)])
    return store.require_run(execution_id)


__all__ = ["RETRYABLE", "retry_run"]
