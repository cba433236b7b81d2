"""SQLite's queries for what runs spent on models, read from their journals.

Each model call's usage is read out of its journal row's response with ``json_extract``;
rows are summed by run, agent and model (see :class:`~frontdesk.store.UsageRow`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from .._usage import UsageRow, summary_run_prefix
from ._listing import Query

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


def _rows(query: Query, where: str, params: list[Any]) -> list[UsageRow]:
    rows = query(f"{_USAGE} WHERE {where}{_GROUP}", params)
    return [
        UsageRow(run, day, agent, model, int(calls), int(inp or 0), int(out or 0), int(tot or 0))
        for run, day, agent, model, calls, inp, out, tot in rows
    ]


def run_usage(query: Query, execution_ids: Sequence[str]) -> list[UsageRow]:
    """The model usage of these runs."""
    if not execution_ids:
        return []
    where = "r.execution_id IN (SELECT value FROM json_each(?))"
    return _rows(query, where, [json.dumps(list(execution_ids))])


def conversation_usage(query: Query, conversation_id: str) -> list[UsageRow]:
    """The model usage of a conversation so far: every turn, and every run that summarised
    turns of it for its memory policy."""
    where = "(r.conversation_id = ? OR substr(r.execution_id, 1, ?) = ?)"
    prefix = summary_run_prefix(conversation_id)
    return _rows(query, where, [conversation_id, len(prefix), prefix])


def window_usage(query: Query, since: float | None, until: float | None) -> list[UsageRow]:
    """The model usage of the runs created in ``[since, until)`` (Unix times; None: open)."""
    where, params = _window(since, until)
    return _rows(query, where, params)


def window_statuses(query: Query, since: float | None, until: float | None) -> dict[str, int]:
    """How many runs created in ``[since, until)`` have each status."""
    where, params = _window(since, until, column="created_at")
    rows = query(f"SELECT status, COUNT(*) FROM runs WHERE {where} GROUP BY status", params)
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
