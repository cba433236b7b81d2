"""What runs spent on models, read from their journals: calls and tokens by run, agent and model.

Every model call of a run is a journal row (``model:<k>``) holding the model's response, with
its usage, and the name of the model it ran on (rows written before frontdesk recorded it fall
back to the run's model override). Costs are not stored: they are priced on read, from the
tokens, by whichever price table the reader holds.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from ._store import Store


@dataclass(frozen=True)
class UsageRow:
    """Model calls of one run by one agent on one model, summed."""

    execution_id: str
    """The run."""
    day: str
    """The UTC day the run was created on, ``YYYY-MM-DD``."""
    agent: str | None
    """The agent that made the calls."""
    model: str | None
    """The model they ran on, when known."""
    calls: int
    """How many calls."""
    input_tokens: int
    """Their input tokens."""
    output_tokens: int
    """Their output tokens."""
    total_tokens: int
    """Their tokens."""


_USAGE = (
    "SELECT j.execution_id, date(r.created_at, 'unixepoch'), j.agent, "
    "COALESCE(j.name, r.model_label) AS model, COUNT(*), "
    "SUM(COALESCE(json_extract(j.data_json, '$.usage.input_tokens'), 0)), "
    "SUM(COALESCE(json_extract(j.data_json, '$.usage.output_tokens'), 0)), "
    "SUM(COALESCE(json_extract(j.data_json, '$.usage.total_tokens'), 0)) "
    "FROM runs r JOIN journal j ON j.execution_id = r.execution_id "
    "AND j.kind = 'model' AND j.state = 'done' "
)
_GROUP = " GROUP BY j.execution_id, j.agent, model"


def _rows(store: Store, where: str, params: list[Any]) -> list[UsageRow]:
    rows = store.query(f"{_USAGE} WHERE {where}{_GROUP}", params)
    return [
        UsageRow(run, day, agent, model, int(calls), int(inp or 0), int(out or 0), int(tot or 0))
        for run, day, agent, model, calls, inp, out, tot in rows
    ]


def run_usage(store: Store, execution_ids: list[str]) -> list[UsageRow]:
    """The model usage of these runs."""
    if not execution_ids:
        return []
    where = "r.execution_id IN (SELECT value FROM json_each(?))"
    return _rows(store, where, [json.dumps(execution_ids)])


def summary_run_prefix(conversation_id: str) -> str:
    """What the execution ids of a conversation's summariser runs start with (see
    :func:`frontdesk._summarizer.summary_run_id`)."""
    return f"summary-{hashlib.sha256(conversation_id.encode()).hexdigest()[:20]}-"


def conversation_usage(store: Store, conversation_id: str) -> list[UsageRow]:
    """The model usage of a conversation so far: every turn, and every run that summarised
    turns of it for its memory policy."""
    where = "(r.conversation_id = ? OR r.execution_id LIKE ?)"
    return _rows(store, where, [conversation_id, summary_run_prefix(conversation_id) + "%"])


def window_usage(store: Store, since: float | None, until: float | None) -> list[UsageRow]:
    """The model usage of the runs created in ``[since, until)`` (Unix times; None: open)."""
    where, params = _window(since, until)
    return _rows(store, where, params)


def window_statuses(store: Store, since: float | None, until: float | None) -> dict[str, int]:
    """How many runs created in ``[since, until)`` have each status."""
    where, params = _window(since, until, column="created_at")
    rows = store.query(f"SELECT status, COUNT(*) FROM runs WHERE {where} GROUP BY status", params)
    return {status: int(count) for status, count in rows}


def _window(
    since: float | None, until: float | None, column: str = "r.created_at"
) -> tuple[str, list[Any]]:
    where, params = ["1"], []
    if since is not None:
        where.append(f"{column} >= ?")
        params.append(float(since))
    if until is not None:
        where.append(f"{column} < ?")
        params.append(float(until))
    return " AND ".join(where), params


__all__ = ["UsageRow", "conversation_usage", "run_usage", "window_statuses", "window_usage"]
