"""PostgreSQL's queries for listing runs, approvals and conversations a page at a time, and
for what runs spent on models.

Every filter has an index ending in its sort key and ``row_id`` (``created_at`` for runs,
``requested_at`` for approvals, ``updated_at`` for conversations), so a page is read in its
order without a sort; ``row_id`` breaks ties and goes in the cursor. Text search matches the
GIN index of :data:`~._schema.DOCUMENT_FUNCTION`, always current (no queue to index first, as
SQLite's FTS5 has). Usage is read out of each model call's journal row as ``json`` (not
``jsonb``, which refuses a ``\\u0000`` in a response).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from .._approvals import APPROVAL_COLUMNS, ApprovalRecord, approval_from_row
from .._listing import ConversationRow, Page, RunFilter, decode_cursor, encode_cursor, page_size
from .._records import RunRow
from .._usage import UsageRow, summary_run_prefix
from ._compile import RUN_COLUMNS
from ._schema import DOCUMENT_FUNCTION, parsed_json, search_query

Query = Callable[[str, Sequence[Any]], list[tuple[Any, ...]]]
"""Runs a read query and returns its rows."""


# -- runs ----------------------------------------------------------------------------------------


def runs_page(
    query: Query, where: RunFilter = RunFilter(), *, limit: int = 50, cursor: str | None = None
) -> Page[RunRow]:
    """Runs newest first, filtered; every filter is served by an index.

    ``agent`` matches the starting or the last agent; ``q`` every word in the input or the
    output (the last one as a prefix); ``since``/``until`` bound ``created_at``.
    """
    limit = page_size(limit)
    statement = runs_query(where, limit=limit + 1, cursor=cursor)
    if statement is None:
        return Page([], None)
    rows = query(*statement)
    items = [RunRow(*r[:-1]) for r in rows[:limit]]
    if len(rows) <= limit:
        return Page(items, None)
    return Page(items, encode_cursor(items[-1].created_at, rows[limit - 1][-1]))


def runs_query(
    filters: RunFilter, *, limit: int = 50, cursor: str | None = None
) -> tuple[str, list[Any]] | None:
    """The SQL of :func:`runs_page` (rows end with their ``row_id``), or None when ``q`` has
    no word to search for."""
    where: list[str] = []
    params: list[Any] = []
    for column, value in (
        ("status", filters.status),
        ("app", filters.app),
        ("conversation_id", filters.conversation_id),
    ):
        if value is not None:
            where.append(f"{column} = %s")
            params.append(value)
    if filters.since is not None:
        where.append("created_at >= %s")
        params.append(float(filters.since))
    if filters.until is not None:
        where.append("created_at < %s")
        params.append(float(filters.until))
    if filters.q is not None and filters.q.strip():
        match = search_query(filters.q)
        if match is None:
            return None
        where.append(f"{DOCUMENT_FUNCTION}(input, output_json) @@ to_tsquery('simple', %s)")
        params.append(match)
    if cursor is not None:
        created, row_id = decode_cursor(cursor, ((float, int), int))
        where.append("(created_at, row_id) < (%s, %s)")
        params += [float(created), row_id]
    order = "ORDER BY created_at DESC, row_id DESC LIMIT %s"
    select = f"SELECT {RUN_COLUMNS}, row_id FROM runs"
    if filters.agent is None:
        clause = f"WHERE {' AND '.join(where)}" if where else ""
        return f"{select} {clause} {order}", [*params, limit]
    # One ordered index walk per agent column, merged: never a sort of every match.
    parts = []
    for column in ("agent_name", "last_agent"):
        clause = " AND ".join([f"{column} = %s", *where])
        parts.append(f"({select} WHERE {clause} {order})")
    sql = f"SELECT * FROM ({' UNION '.join(parts)}) AS r ORDER BY created_at DESC, row_id DESC LIMIT %s"
    agent = filters.agent
    return sql, [agent, *params, limit, agent, *params, limit, limit]


# -- approvals ------------------------------------------------------------------------------------


def approvals_page(
    query: Query,
    *,
    status: str | None = "pending",
    execution_id: str | None = None,
    newest_first: bool = False,
    limit: int = 50,
    cursor: str | None = None,
) -> Page[ApprovalRecord]:
    """Approvals by request time (oldest first unless ``newest_first``), filtered by status
    and run; served by the ``(status, requested_at, row_id)`` and ``(execution_id, ...)``
    indexes."""
    limit = page_size(limit)
    where: list[str] = []
    params: list[Any] = []
    if status is not None:
        where.append("status = %s")
        params.append(status)
    if execution_id is not None:
        where.append("execution_id = %s")
        params.append(execution_id)
    direction, compare = ("DESC", "<") if newest_first else ("ASC", ">")
    if cursor is not None:
        requested, row_id = decode_cursor(cursor, ((float, int), int))
        where.append(f"(requested_at, row_id) {compare} (%s, %s)")
        params += [float(requested), row_id]
    clause = f"WHERE {' AND '.join(where)}" if where else ""
    rows = query(
        f"SELECT {APPROVAL_COLUMNS}, row_id FROM approvals {clause} "
        f"ORDER BY requested_at {direction}, row_id {direction} LIMIT %s",
        (*params, limit + 1),
    )
    items = [approval_from_row(r[:-1]) for r in rows[:limit]]
    if len(rows) <= limit:
        return Page(items, None)
    return Page(items, encode_cursor(items[-1].requested_at, rows[limit - 1][-1]))


# -- conversations ----------------------------------------------------------------------------------


def conversations_page(
    query: Query, *, limit: int = 50, cursor: str | None = None
) -> Page[ConversationRow]:
    """Conversations, most recently active first, with their token totals."""
    limit = page_size(limit)
    where, params = "", []
    if cursor is not None:
        updated, row_id = decode_cursor(cursor, ((float, int), int))
        where = "WHERE (updated_at, row_id) < (%s, %s)"
        params = [float(updated), row_id]
    rows = query(
        "SELECT conversation_id, agent_ref, current_agent, turns, history_len, pending_run, "
        f"created_at, updated_at, row_id FROM conversations {where} "
        "ORDER BY updated_at DESC, row_id DESC LIMIT %s",
        (*params, limit + 1),
    )
    page = rows[:limit]
    totals: dict[str, list[int]] = {}
    models: dict[str, dict[str, tuple[int, int]]] = {}
    if page:
        for cid, model, last_agent, req, inp, out, tot in query(
            "SELECT conversation_id, model_override, last_agent, SUM(requests), "
            "SUM(input_tokens), SUM(output_tokens), SUM(total_tokens) FROM runs "
            "WHERE conversation_id = ANY(%s) "
            "GROUP BY conversation_id, model_override, last_agent",
            ([r[0] for r in page],),
        ):
            sums = totals.setdefault(cid, [0, 0, 0, 0])
            for i, value in enumerate((req, inp, out, tot)):
                sums[i] += int(value or 0)
            key = model or f"agent:{last_agent}"
            by_model = models.setdefault(cid, {})
            before = by_model.get(key, (0, 0))
            by_model[key] = (before[0] + int(inp or 0), before[1] + int(out or 0))
    items = []
    for r in page:
        requests, input_tokens, output_tokens, total_tokens = totals.get(r[0], [0, 0, 0, 0])
        items.append(
            ConversationRow(
                conversation_id=r[0],
                agent_ref=r[1],
                current_agent=r[2],
                turns=r[3],
                history_len=r[4],
                pending_run=r[5],
                created_at=r[6],
                updated_at=r[7],
                requests=requests,
                input_tokens=input_tokens,
                output_tokens=output_tokens,
                total_tokens=total_tokens,
                models=models.get(r[0], {}),
            )
        )
    last = rows[limit - 1] if len(rows) > limit else None
    return Page(items, encode_cursor(last[7], last[-1]) if last is not None else None)


# -- usage ----------------------------------------------------------------------------------------

_TOKENS = f"COALESCE(({parsed_json('j.data_json')} #>> '{{{{usage,{{}}}}}}')::numeric, 0)"
_USAGE = (
    "SELECT j.execution_id, to_char(to_timestamp(r.created_at) AT TIME ZONE 'UTC', 'YYYY-MM-DD'), "
    "j.agent, COALESCE(j.name, r.model_label) AS model, COUNT(*), "
    f"SUM({_TOKENS.format('input_tokens')}), SUM({_TOKENS.format('output_tokens')}), "
    f"SUM({_TOKENS.format('total_tokens')}) "
    "FROM runs r JOIN journal j ON j.execution_id = r.execution_id "
    "AND j.kind = 'model' AND j.state = 'done' "
)
_GROUP = (
    " GROUP BY j.execution_id, r.created_at, j.agent, COALESCE(j.name, r.model_label) "
    "ORDER BY j.execution_id"
)


def _usage_rows(query: Query, where: str, params: Sequence[Any]) -> list[UsageRow]:
    rows = query(f"{_USAGE} WHERE {where}{_GROUP}", params)
    return [
        UsageRow(run, day, agent, model, int(calls), int(inp or 0), int(out or 0), int(tot or 0))
        for run, day, agent, model, calls, inp, out, tot in rows
    ]


def run_usage(query: Query, execution_ids: Sequence[str]) -> list[UsageRow]:
    """The model usage of these runs."""
    if not execution_ids:
        return []
    return _usage_rows(query, "r.execution_id = ANY(%s)", [list(execution_ids)])


def conversation_usage(query: Query, conversation_id: str) -> list[UsageRow]:
    """The model usage of a conversation so far: every turn, and every run that summarised
    turns of it for its memory policy."""
    prefix = summary_run_prefix(conversation_id)
    where = "(r.conversation_id = %s OR left(r.execution_id, %s) = %s)"
    return _usage_rows(query, where, [conversation_id, len(prefix), prefix])


def window_usage(query: Query, since: float | None, until: float | None) -> list[UsageRow]:
    """The model usage of the runs created in ``[since, until)`` (Unix times; None: open)."""
    where, params = _window(since, until, "r.created_at")
    return _usage_rows(query, where, params)


def window_statuses(query: Query, since: float | None, until: float | None) -> dict[str, int]:
    """How many runs created in ``[since, until)`` have each status."""
    where, params = _window(since, until, "created_at")
    rows = query(f"SELECT status, COUNT(*) FROM runs WHERE {where} GROUP BY status", params)
    return {status: int(count) for status, count in rows}


def _window(since: float | None, until: float | None, column: str) -> tuple[str, list[Any]]:
    where, params = ["TRUE"], []
    if since is not None:
        where.append(f"{column} >= %s")
        params.append(float(since))
    if until is not None:
        where.append(f"{column} < %s")
        params.append(float(until))
    return " AND ".join(where), params


__all__ = [
    "Query",
    "approvals_page",
    "conversation_usage",
    "conversations_page",
    "run_usage",
    "runs_page",
    "runs_query",
    "window_statuses",
    "window_usage",
]
