"""Listing runs, approvals and conversations a page at a time, by cursor.

A page is read through an index that yields rows in the page's order, so a page costs the
same at the start of the history as a hundred thousand runs deep: every filter has an index
ending in its sort key (``created_at`` for runs, ``requested_at`` for approvals), and a cursor
says where the previous page stopped (never an offset to count past). Text search uses the
FTS5 index of the runs' input and output (migration 8 keeps it current with triggers).

Cursors are opaque strings; a cursor that cannot be decoded is refused with
:class:`InvalidInput`.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from ..errors import InvalidInput
from ._store import _APPROVAL_COLUMNS, _RUN_COLUMNS, ApprovalRecord, RunRow, Store, _approval

T = TypeVar("T")

MAX_PAGE = 500
"""The most items one page holds."""

_WORD = re.compile(r"\w+", re.UNICODE)


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a listing, and where the next one starts."""

    items: list[T]
    """The page's items, in the listing's order."""
    next_cursor: str | None
    """Pass it as ``cursor`` to read the next page; None on the last page."""


def read_pages(
    fetch: Callable[[int, str | None], Page[T]], limit: int, cursor: str | None = None
) -> list[T]:
    """Up to ``limit`` items of a cursor listing from ``cursor`` on, read page by page with
    ``fetch(page_size, cursor)``; a limit beyond the listing means all of it."""
    found: list[T] = []
    while len(found) < limit:
        page = fetch(min(MAX_PAGE, limit - len(found)), cursor)
        found.extend(page.items)
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    return found


@dataclass(frozen=True)
class ConversationRow:
    """A stored conversation with its totals over every turn."""

    conversation_id: str
    """The conversation's id."""
    agent_ref: str
    """Where its starting agent is found (``module:attribute`` or a registered name)."""
    current_agent: str
    """The agent that answers the next message."""
    turns: int
    """Completed turns."""
    history_len: int
    """Lines in its history."""
    pending_run: str | None
    """A turn in progress, if any."""
    created_at: float
    """When it was created (Unix time)."""
    updated_at: float
    """When it last changed."""
    requests: int
    """Model requests over every turn."""
    input_tokens: int
    """Input tokens over every turn."""
    output_tokens: int
    """Output tokens over every turn."""
    total_tokens: int
    """Tokens over every turn."""
    models: dict[str, tuple[int, int]]
    """Input and output tokens by the model its turns ran on (``agent:<name>`` for turns that
    ran on that agent's own model)."""


def page_size(limit: int) -> int:
    """A page size between 1 and :data:`MAX_PAGE`; :class:`InvalidInput` otherwise."""
    if isinstance(limit, bool) or not isinstance(limit, int):
        raise InvalidInput(f"limit must be a whole number, got {limit!r}")
    if not 1 <= limit <= MAX_PAGE:
        raise InvalidInput(f"limit must be between 1 and {MAX_PAGE}, got {limit}")
    return limit


def encode_cursor(*values: Any) -> str:
    """An opaque cursor holding ``values``."""
    raw = json.dumps(list(values), separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, kinds: tuple[type | tuple[type, ...], ...]) -> list[Any]:
    """The values of a cursor made by :func:`encode_cursor`, checked against ``kinds``."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        values = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
    except (ValueError, binascii.Error, UnicodeError):
        raise InvalidInput(f"invalid cursor {cursor[:80]!r}: pass back a next_cursor") from None
    ok = isinstance(values, list) and len(values) == len(kinds)
    ok = ok and all(
        isinstance(v, k) and not isinstance(v, bool) for v, k in zip(values, kinds, strict=False)
    )
    if not ok:
        raise InvalidInput(f"invalid cursor {cursor[:80]!r}: pass back a next_cursor")
    return list(values)


def fts_query(text: str) -> str | None:
    """An FTS5 query matching every word of ``text`` (the last one as a prefix), or None
    when ``text`` has no word to search for. Operators in ``text`` are never interpreted."""
    words = _WORD.findall(text)
    if not words:
        return None
    quoted = ['"' + word.replace('"', '""') + '"' for word in words[:32]]
    quoted[-1] += "*"
    return " ".join(quoted)


# -- runs ----------------------------------------------------------------------------------------


def app_of(agent_ref: str) -> str:
    """The app a run belongs to, from its agent reference, as the generated column
    ``runs.app`` computes it: ``support`` for ``frontdesk.apps.support:triage_agent``, else
    the top-level package (``name`` for agents registered by name)."""
    ref = agent_ref.removeprefix("frontdesk.apps.")
    return re.split(r"[.:]", ref, maxsplit=1)[0]


@dataclass(frozen=True)
class RunFilter:
    """Which runs a listing holds; None leaves a field out of the filter."""

    status: str | None = None
    """The run's status."""
    app: str | None = None
    """The app its starting agent belongs to."""
    agent: str | None = None
    """Its starting or its last agent."""
    q: str | None = None
    """Words that must all appear in its input or output."""
    since: float | None = None
    """Created at or after this Unix time."""
    until: float | None = None
    """Created before this Unix time."""
    conversation_id: str | None = None
    """The conversation it is a turn of."""


def runs_page(
    store: Store,
    where: RunFilter = RunFilter(),
    *,
    limit: int = 50,
    cursor: str | None = None,
) -> Page[RunRow]:
    """Runs newest first, filtered; every filter is served by an index.

    ``agent`` matches the starting or the last agent; ``q`` every word in the input or the
    output; ``since``/``until`` bound ``created_at`` (Unix seconds, inclusive/exclusive).
    """
    limit = page_size(limit)
    if where.q is not None and where.q.strip():
        index_pending(store)
    query = runs_query(where, limit=limit + 1, cursor=cursor)
    if query is None:
        return Page([], None)
    rows = store.query(*query)
    items = [RunRow(*r[:-1]) for r in rows[:limit]]
    if len(rows) <= limit:
        return Page(items, None)
    return Page(items, encode_cursor(items[-1].created_at, rows[limit - 1][-1]))


INDEX_BATCH = 2000
"""How many queued runs one transaction adds to the full-text index."""


def index_pending(store: Store) -> int:
    """Add the runs queued since the last search to the full-text index; returns how many.

    Writes to ``runs`` only queue the run (migration 8's triggers), so running a run never pays
    for the index. A run indexed before (at its start) is taken out with the values it was
    indexed with: its input never changes, and its output only once, from nothing to the
    final output, so ``with_output`` says which. Each batch is one short transaction.
    """
    done = 0
    while True:
        with store.transaction() as tx:
            rows = tx.query(
                "SELECT p.run_rowid, r.input, r.output_json, d.with_output "
                "FROM runs_fts_pending p JOIN runs r ON r.rowid = p.run_rowid "
                "LEFT JOIN runs_fts_docs d ON d.run_rowid = p.run_rowid "
                "ORDER BY p.run_rowid LIMIT ?",
                (INDEX_BATCH,),
            )
            for rowid, text, output, with_output in rows:
                if with_output is not None:
                    tx.execute(
                        "INSERT INTO runs_fts (runs_fts, rowid, input, output_json) "
                        "VALUES ('delete', ?, ?, ?)",
                        (rowid, text, output if with_output else None),
                    )
                tx.execute(
                    "INSERT INTO runs_fts (rowid, input, output_json) VALUES (?, ?, ?)",
                    (rowid, text, output),
                )
                tx.execute(
                    "INSERT OR REPLACE INTO runs_fts_docs (run_rowid, with_output) VALUES (?, ?)",
                    (rowid, int(output is not None)),
                )
            if rows:
                last = rows[-1][0]
                tx.execute("DELETE FROM runs_fts_pending WHERE run_rowid <= ?", (last,))
            else:  # only runs that no longer exist, if anything
                tx.execute("DELETE FROM runs_fts_pending")
        done += len(rows)
        if len(rows) < INDEX_BATCH:
            return done


def runs_query(
    filters: RunFilter, *, limit: int = 50, cursor: str | None = None
) -> tuple[str, list[Any]] | None:
    """The SQL of :func:`runs_page` (rows end with their rowid), or None when ``q`` has no
    word to search for."""
    status, app, agent, q = filters.status, filters.app, filters.agent, filters.q
    since, until, conversation_id = filters.since, filters.until, filters.conversation_id
    where: list[str] = []
    params: list[Any] = []
    for column, value in (("status", status), ("app", app), ("conversation_id", conversation_id)):
        if value is not None:
            where.append(f"{column} = ?")
            params.append(value)
    if since is not None:
        where.append("created_at >= ?")
        params.append(float(since))
    if until is not None:
        where.append("created_at < ?")
        params.append(float(until))
    if q is not None and q.strip():
        match = fts_query(q)
        if match is None:
            return None
        # The unary + keeps SQLite walking an index in page order and checking each run
        # against the matches, instead of fetching and sorting every match of a common word.
        where.append("+rowid IN (SELECT rowid FROM runs_fts WHERE runs_fts MATCH ?)")
        params.append(match)
    if cursor is not None:
        created, rowid = decode_cursor(cursor, ((float, int), int))
        where.append("created_at <= ? AND (created_at < ? OR rowid < ?)")
        params += [created, created, rowid]
    order = "ORDER BY created_at DESC, rowid DESC LIMIT ?"
    select = f"SELECT {_RUN_COLUMNS}, rowid FROM runs"
    if agent is None:
        clause = f"WHERE {' AND '.join(where)}" if where else ""
        return f"{select} {clause} {order}", [*params, limit]
    # One ordered index walk per agent column, merged: never a sort of every match.
    parts = []
    for column in ("agent_name", "last_agent"):
        clause = " AND ".join([f"{column} = ?", *where])
        parts.append(f"SELECT * FROM ({select} WHERE {clause} {order})")
    sql = f"SELECT * FROM ({' UNION '.join(parts)}) ORDER BY created_at DESC, rowid DESC LIMIT ?"
    return sql, [agent, *params, limit, agent, *params, limit, limit]


# -- approvals ------------------------------------------------------------------------------------


def approvals_page(
    store: Store,
    *,
    status: str | None = "pending",
    execution_id: str | None = None,
    newest_first: bool = False,
    limit: int = 50,
    cursor: str | None = None,
) -> Page[ApprovalRecord]:
    """Approvals by request time (oldest first unless ``newest_first``), filtered by status
    and run; served by the ``(status, requested_at)`` and ``(execution_id, ...)`` indexes."""
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
        requested, rowid = decode_cursor(cursor, ((float, int), int))
        where.append(
            f"requested_at {compare}= ? AND (requested_at {compare} ? OR rowid {compare} ?)"
        )
        params += [requested, requested, rowid]
    clause = f"WHERE {' AND '.join(where)}" if where else ""
    rows = store.query(
        f"SELECT {_APPROVAL_COLUMNS}, rowid FROM approvals {clause} "
        f"ORDER BY requested_at {direction}, rowid {direction} LIMIT ?",
        (*params, limit + 1),
    )
    items = [_approval(r[:-1]) for r in rows[:limit]]
    if len(rows) <= limit:
        return Page(items, None)
    return Page(items, encode_cursor(items[-1].requested_at, rows[limit - 1][-1]))


# -- conversations ----------------------------------------------------------------------------------


def conversations_page(
    store: Store, *, limit: int = 50, cursor: str | None = None
) -> Page[ConversationRow]:
    """Conversations, most recently active first, with their token totals."""
    limit = page_size(limit)
    where, params = "", []
    if cursor is not None:
        updated, rowid = decode_cursor(cursor, ((float, int), int))
        where = "WHERE updated_at <= ? AND (updated_at < ? OR rowid < ?)"
        params = [updated, updated, rowid]
    rows = store.query(
        "SELECT conversation_id, agent_ref, current_agent, turns, history_len, pending_run, "
        f"created_at, updated_at, rowid FROM conversations {where} "
        "ORDER BY updated_at DESC, rowid DESC LIMIT ?",
        (*params, limit + 1),
    )
    page = rows[:limit]
    totals: dict[str, list[int]] = {}
    models: dict[str, dict[str, tuple[int, int]]] = {}
    if page:
        marks = ", ".join("?" for _ in page)
        for cid, model, last_agent, req, inp, out, tot in store.query(
            "SELECT conversation_id, model_override, last_agent, SUM(requests), "
            "SUM(input_tokens), SUM(output_tokens), SUM(total_tokens) FROM runs "
            f"WHERE conversation_id IN ({marks}) "
            "GROUP BY conversation_id, model_override, last_agent",
            [r[0] for r in page],
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
