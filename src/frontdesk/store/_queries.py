"""The reads both SQL backends share, each query written once.

Every statement here marks its parameters with :data:`MARK` (``?``); a backend's
:class:`Dialect` turns the marks into its driver's placeholders and writes the few parts the
databases spell differently: matching a prefix or a list of values, a page's cursor, text
search, numbers inside JSON text, a UTC day. The rows each query returns are turned into
records here too, so both backends answer alike.

Listings page by cursor through an index ending in the page's sort key and the backend's row
id (``rowid`` on SQLite, ``row_id`` on PostgreSQL), which breaks ties and goes in the cursor
(see :mod:`._listing`).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

from ._approvals import APPROVAL_COLUMNS, ApprovalRecord, approval_from_row
from ._listing import ConversationRow, Page, RunFilter, decode_cursor, encode_cursor, page_size
from ._records import ConversationState, RunRow
from ._usage import UsageRow, summary_run_prefix

Query = Callable[[str, Sequence[Any]], list[tuple[Any, ...]]]
"""Runs a read query and returns its rows."""
Condition = tuple[str, list[Any]]
"""A piece of SQL and the parameters its marks stand for."""

MARK = "?"
"""The placeholder the shared statements are written with."""

JOURNAL_COLUMNS = (
    "key, kind, state, agent, name, args_json, data_json, context_json, attempts, started_at, "
    "finished_at, ordinal"
)
"""The journal row's columns, in :class:`~frontdesk.store.JournalRow`'s order."""
CONVERSATION_COLUMNS = (
    "conversation_id, agent_ref, current_agent, context_type, context_json, turns, history_len, "
    "pending_run, generation, budget_json, memory_json, summary_json"
)
"""The conversation row's columns, in :class:`~frontdesk.store.ConversationState`'s order."""


class Dialect(ABC):
    """How one SQL database writes what the shared reads leave to it. Everything it returns
    marks its parameters with :data:`MARK`, as the shared statements do."""

    placeholder: ClassVar[str]
    """The driver's placeholder, which :meth:`sql` puts for each mark."""
    row_id: ClassVar[str]
    """The column that numbers a table's rows in insertion order."""
    no_limit: ClassVar[int | None]
    """The ``LIMIT`` that sets none."""
    run_columns: ClassVar[str]
    """The run row's columns, in :class:`~frontdesk.store.RunRow`'s order."""
    snapshot_range: ClassVar[str]
    """The items of a conversation's compacted snapshot from the one numbered ``start`` to
    the one before ``end`` (numbered from 0), in order, as JSON text; its parameters are
    ``(conversation_id, start, end)``."""

    def sql(self, statement: str) -> str:
        """``statement`` with the driver's placeholder for each mark."""
        if self.placeholder == MARK:
            return statement
        return statement.replace(MARK, self.placeholder)

    @abstractmethod
    def starts_with(self, column: str, prefix: str) -> Condition:
        """``column`` starts with ``prefix``, taken literally."""

    @abstractmethod
    def one_of(self, column: str, values: Sequence[Any]) -> Condition:
        """``column`` is one of ``values`` (any number of them)."""

    @abstractmethod
    def after(self, column: str, compare: str, value: float, row_id: int) -> Condition:
        """``(column, row id)`` is ``compare`` (``<`` or ``>``) ``(value, row_id)``: the rows
        past a page's cursor, read through an index on the two."""

    @abstractmethod
    def text_match(self, text: str) -> Condition | None:
        """A run's input or output holds every word of ``text``, the last one as a prefix;
        None when ``text`` has no word to search for."""

    @abstractmethod
    def indexed_by(self, index: str) -> str:
        """What follows a table's name to read it through ``index`` (empty if the planner
        is left to find it)."""

    @abstractmethod
    def json_number(self, column: str, *path: str) -> str:
        """The number at ``path`` in the JSON text ``column`` (NULL where there is none)."""

    @abstractmethod
    def utc_day(self, column: str) -> str:
        """The UTC day of the Unix time ``column``, ``YYYY-MM-DD``."""


# -- runs ------------------------------------------------------------------------------------------


def runs_query(
    dialect: Dialect, filters: RunFilter, *, limit: int = 50, cursor: str | None = None
) -> Condition | None:
    """The statement of a page of runs newest first (rows end with their row id), or None
    when ``q`` has no word to search for.

    ``agent`` matches the starting or the last agent; ``q`` every word in the input or the
    output; ``since``/``until`` bound ``created_at`` (Unix seconds, inclusive/exclusive).
    """
    where: list[str] = []
    params: list[Any] = []
    for column, value in (
        ("status", filters.status),
        ("app", filters.app),
        ("conversation_id", filters.conversation_id),
    ):
        if value is not None:
            where.append(f"{column} = ?")
            params.append(value)
    if filters.since is not None:
        where.append("created_at >= ?")
        params.append(float(filters.since))
    if filters.until is not None:
        where.append("created_at < ?")
        params.append(float(filters.until))
    if filters.q is not None and filters.q.strip():
        match = dialect.text_match(filters.q)
        if match is None:
            return None
        where.append(match[0])
        params += match[1]
    if cursor is not None:
        created, row_id = decode_cursor(cursor, ((float, int), int))
        after = dialect.after("created_at", "<", float(created), row_id)
        where.append(after[0])
        params += after[1]
    order = f"ORDER BY created_at DESC, {dialect.row_id} DESC LIMIT ?"
    select = f"SELECT {dialect.run_columns}, {dialect.row_id} FROM runs"
    if filters.agent is None:
        clause = f"WHERE {' AND '.join(where)}" if where else ""
        return f"{select} {clause} {order}", [*params, limit]
    # One ordered index walk per agent column, merged: never a sort of every match.
    parts = []
    for column in ("agent_name", "last_agent"):
        clause = " AND ".join([f"{column} = ?", *where])
        parts.append(f"SELECT * FROM ({select} WHERE {clause} {order}) AS by_{column}")
    sql = f"SELECT * FROM ({' UNION '.join(parts)}) AS r {order}"
    agent = filters.agent
    return sql, [agent, *params, limit, agent, *params, limit, limit]


def runs_page(
    query: Query,
    dialect: Dialect,
    where: RunFilter = RunFilter(),
    *,
    limit: int = 50,
    cursor: str | None = None,
) -> Page[RunRow]:
    """Runs newest first, filtered (see :func:`runs_query`); ``query`` takes the statement
    with its marks."""
    limit = page_size(limit)
    statement = runs_query(dialect, where, limit=limit + 1, cursor=cursor)
    if statement is None:
        return Page([], None)
    rows = query(*statement)
    items = [RunRow(*r[:-1]) for r in rows[:limit]]
    if len(rows) <= limit:
        return Page(items, None)
    return Page(items, encode_cursor(items[-1].created_at, rows[limit - 1][-1]))


# -- approvals -------------------------------------------------------------------------------------


def approvals_page(
    query: Query,
    dialect: Dialect,
    *,
    status: str | None,
    execution_id: str | None,
    newest_first: bool,
    limit: int,
    cursor: str | None,
) -> Page[ApprovalRecord]:
    """Approvals by request time (oldest first unless ``newest_first``), filtered by status
    and run; served by the ``(status, requested_at)`` and ``(execution_id, ...)`` indexes.
    ``query`` takes the statement with its marks."""
    limit = page_size(limit)
    where: list[str] = []
    params: list[Any] = []
    if status is not None:
        where.append("status = ?")
        params.append(status)
    if execution_id is not None:
        where.append("execution_id = ?")
        params.append(execution_id)
    direction, compare = ("DESC", "<") if newest_first else ("ASC", ">")
    if cursor is not None:
        requested, row_id = decode_cursor(cursor, ((float, int), int))
        after = dialect.after("requested_at", compare, float(requested), row_id)
        where.append(after[0])
        params += after[1]
    clause = f"WHERE {' AND '.join(where)}" if where else ""
    rows = query(
        f"SELECT {APPROVAL_COLUMNS}, {dialect.row_id} FROM approvals {clause} "
        f"ORDER BY requested_at {direction}, {dialect.row_id} {direction} LIMIT ?",
        (*params, limit + 1),
    )
    items = [approval_from_row(r[:-1]) for r in rows[:limit]]
    if len(rows) <= limit:
        return Page(items, None)
    return Page(items, encode_cursor(items[-1].requested_at, rows[limit - 1][-1]))


# -- conversations ---------------------------------------------------------------------------------


def conversation(query: Query, conversation_id: str) -> ConversationState | None:
    """The conversation's state, or None; ``query`` takes the statement with its marks."""
    rows = query(
        f"SELECT {CONVERSATION_COLUMNS} FROM conversations WHERE conversation_id = ?",
        (conversation_id,),
    )
    return ConversationState(*rows[0]) if rows else None


def conversation_lines(query: Query, conversation_id: str, start: int = 0) -> list[str]:
    """The conversation's history lines from line ``start`` on, oldest first."""
    rows = query(
        "SELECT line FROM conversation_lines WHERE conversation_id = ? AND idx >= ? ORDER BY idx",
        (conversation_id, start),
    )
    return [r[0] for r in rows]


def turn_start(query: Query, conversation_id: str, turn: int) -> int:
    """The item index ``turn`` starts at: that of the nearest recorded turn at or before it,
    or 0."""
    rows = query(
        "SELECT start_idx FROM conversation_turns WHERE conversation_id = ? AND turn <= ? "
        "ORDER BY turn DESC LIMIT 1",
        (conversation_id, turn),
    )
    return int(rows[0][0]) if rows else 0


def conversations_page(
    query: Query, dialect: Dialect, *, limit: int, cursor: str | None
) -> Page[ConversationRow]:
    """Conversations, most recently active first, with their token totals; ``query`` takes
    the statements with their marks."""
    limit = page_size(limit)
    where, params = "", []
    if cursor is not None:
        updated, row_id = decode_cursor(cursor, ((float, int), int))
        after = dialect.after("updated_at", "<", float(updated), row_id)
        where, params = f"WHERE {after[0]}", after[1]
    rows = query(
        "SELECT conversation_id, agent_ref, current_agent, turns, history_len, pending_run, "
        f"created_at, updated_at, {dialect.row_id} FROM conversations {where} "
        f"ORDER BY updated_at DESC, {dialect.row_id} DESC LIMIT ?",
        (*params, limit + 1),
    )
    page = rows[:limit]
    totals: dict[str, list[int]] = {}
    models: dict[str, dict[str, tuple[int, int]]] = {}
    if page:
        among, ids = dialect.one_of("conversation_id", [r[0] for r in page])
        for cid, model, last_agent, req, inp, out, tot in query(
            "SELECT conversation_id, model_override, last_agent, SUM(requests), "
            f"SUM(input_tokens), SUM(output_tokens), SUM(total_tokens) FROM runs WHERE {among} "
            "GROUP BY conversation_id, model_override, last_agent",
            ids,
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


# -- usage -----------------------------------------------------------------------------------------


def usage(query: Query, dialect: Dialect, where: Condition) -> list[UsageRow]:
    """The model usage of the runs ``where`` selects (it names the runs ``r``), read out of
    each model call's journal row; ``query`` takes the statement with its marks."""

    def tokens(field: str) -> str:
        return f"SUM(COALESCE({dialect.json_number('j.data_json', 'usage', field)}, 0))"

    rows = query(
        f"SELECT j.execution_id, {dialect.utc_day('r.created_at')}, j.agent, "
        "COALESCE(j.name, r.model_label) AS model, COUNT(*), "
        f"{tokens('input_tokens')}, {tokens('output_tokens')}, {tokens('total_tokens')} "
        "FROM runs r JOIN journal j ON j.execution_id = r.execution_id "
        f"AND j.kind = 'model' AND j.state = 'done' WHERE {where[0]} "
        "GROUP BY j.execution_id, r.created_at, j.agent, COALESCE(j.name, r.model_label) "
        "ORDER BY j.execution_id",
        where[1],
    )
    return [
        UsageRow(run, day, agent, model, int(calls), int(inp or 0), int(out or 0), int(tot or 0))
        for run, day, agent, model, calls, inp, out, tot in rows
    ]


def conversation_runs(dialect: Dialect, conversation_id: str) -> Condition:
    """The runs ``r`` of a conversation: every turn, and every run that summarised turns of
    it for its memory policy."""
    summaries = dialect.starts_with("r.execution_id", summary_run_prefix(conversation_id))
    return f"(r.conversation_id = ? OR {summaries[0]})", [conversation_id, *summaries[1]]


def window(since: float | None, until: float | None, column: str) -> Condition:
    """``column`` in ``[since, until)`` (Unix times; None: open)."""
    where, params = ["TRUE"], []
    if since is not None:
        where.append(f"{column} >= ?")
        params.append(float(since))
    if until is not None:
        where.append(f"{column} < ?")
        params.append(float(until))
    return " AND ".join(where), params


__all__ = [
    "CONVERSATION_COLUMNS",
    "JOURNAL_COLUMNS",
    "MARK",
    "Condition",
    "Dialect",
    "Query",
    "approvals_page",
    "conversation",
    "conversation_lines",
    "conversation_runs",
    "conversations_page",
    "runs_page",
    "runs_query",
    "turn_start",
    "usage",
    "window",
]
