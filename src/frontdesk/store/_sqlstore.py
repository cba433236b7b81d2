"""What both SQL backends do alike: :class:`SQLStore` answers every read of
:class:`~frontdesk.store.Store` with the shared statements of :mod:`._queries`, and keeps the
tool calls journal's one-statement reads and writes.

A backend supplies its :class:`~._queries.Dialect`, how a statement runs (on which
connection, in which transaction, its errors translated into frontdesk's) and what it does its
own way: writes, read-check-write sections, starting a tool call and storing an item segment.
"""

from __future__ import annotations

import json
from abc import abstractmethod
from collections.abc import Sequence
from typing import Any, ClassVar

from ..events import Event, decode_event
from . import _queries as queries
from ._approvals import APPROVAL_COLUMNS, ApprovalRecord, approval_from_row
from ._base import Store
from ._forks import ForkLink, Lineage, StoredEvent
from ._listing import ConversationRow, Page, RunFilter
from ._records import ConversationState, JournalRow, RunRow
from ._tool_calls import TOOL_CALL_COLUMNS, ItemSegment, ToolCallRecord, tool_call_from_row
from ._usage import UsageRow
from ._values import hydrate

_CLAIM = (
    "UPDATE runs SET lease_owner = ?, lease_expires = ?, updated_at = ?, "
    "lease_epoch = lease_epoch + 1 "
    "WHERE execution_id = ? AND status = 'running' AND (lease_owner IS NULL "
    "OR lease_expires < ? OR lease_owner = ? OR lease_owner = ?) "
    "RETURNING lease_epoch"
)
START_TOOL_CALL = (
    "INSERT INTO tool_calls (idempotency_key, workflow_id, call_id, agent_name, tool_name, "
    "args_json, state, attempts, started_at) VALUES (?, ?, ?, ?, ?, ?, 'started', 1, ?) "
    "ON CONFLICT (idempotency_key) DO UPDATE SET attempts = tool_calls.attempts + 1, "
    "started_at = excluded.started_at WHERE tool_calls.state = 'started'"
)
"""Insert a tool call, or count one more attempt of a started one (a call already done is
left alone); marked with ``?``."""
_FINISH = (
    "UPDATE tool_calls SET state = 'done', output_json = ?, context_type = ?, context_json = ?, "
    "finished_at = ? WHERE idempotency_key = ?"
)
_CHAIN = (
    "WITH RECURSIVE chain(ref, parent, length, items_json) AS ("
    " SELECT ref, parent, length, items_json FROM item_segments WHERE ref = ?"
    " UNION ALL"
    " SELECT s.ref, s.parent, s.length, s.items_json FROM item_segments s"
    " JOIN chain c ON s.ref = c.parent"
    ") SELECT ref, parent, length, items_json FROM chain ORDER BY length"
)


class SQLStore(Store):
    """A store on an SQL database whose reads are the shared ones of :mod:`._queries`."""

    dialect: ClassVar[queries.Dialect]
    """How this backend's database writes what the shared statements leave to it."""

    # -- what a backend supplies ---------------------------------------------------------------

    @abstractmethod
    def _query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Run one read statement, in the driver's placeholders, and return its rows."""

    @abstractmethod
    def _statement(
        self, sql: str, params: Sequence[Any], *, repeatable: bool = False
    ) -> list[tuple[Any, ...]]:
        """Run one writing statement, in the driver's placeholders, in a transaction of its
        own and return its rows; ``repeatable`` when running it twice does no harm."""

    @abstractmethod
    def _start_tool_call(
        self, idempotency_key: str, upsert: str, params: Sequence[Any]
    ) -> ToolCallRecord:
        """Run ``upsert`` (:data:`START_TOOL_CALL` in the driver's placeholders) with
        ``params`` in one transaction, and return the record of the call
        ``idempotency_key`` as it then is."""

    def _before_search(self) -> None:
        """Bring what a text search of runs reads up to date (nothing to do unless a backend
        indexes runs lazily)."""

    def _rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Run one read statement written with the shared marks."""
        return self._query(self.dialect.sql(sql), params)

    # -- leases ---------------------------------------------------------------------------------

    def claim(
        self, execution_id: str, owner: str, expires: float, now: float, *, steal_from: str | None
    ) -> int | None:
        """Take the run's lease (see :meth:`Store.claim`): one statement, which may run again
        after a lost connection (claiming a lease already ours is harmless)."""
        rows = self._statement(
            self.dialect.sql(_CLAIM),
            (owner, expires, now, execution_id, now, owner, steal_from or owner),
            repeatable=True,
        )
        return int(rows[0][0]) if rows else None

    # -- runs -----------------------------------------------------------------------------------

    def get_run(self, execution_id: str) -> RunRow | None:
        """The run with this id, or None."""
        rows = self._rows(
            f"SELECT {self.dialect.run_columns} FROM runs WHERE execution_id = ?", (execution_id,)
        )
        return RunRow(*rows[0]) if rows else None

    def runs_page(
        self, where: RunFilter = RunFilter(), *, limit: int = 50, cursor: str | None = None
    ) -> Page[RunRow]:
        """Runs newest first, filtered; every filter is served by an index."""
        if where.q is not None and where.q.strip():
            self._before_search()
        return queries.runs_page(self._rows, self.dialect, where, limit=limit, cursor=cursor)

    def run_ids(self, prefix: str) -> list[str]:
        """The ids of every run whose id starts with ``prefix`` (taken literally)."""
        match, params = self.dialect.starts_with("execution_id", prefix)
        return [
            row[0] for row in self._rows(f"SELECT execution_id FROM runs WHERE {match}", params)
        ]

    def claimable_runs(self, now: float, limit: int = 100) -> list[RunRow]:
        """Running runs whose lease is free or expired, oldest first."""
        rows = self._rows(
            f"SELECT {self.dialect.run_columns} FROM runs WHERE status = 'running' "
            "AND (lease_owner IS NULL OR lease_expires < ?) ORDER BY created_at LIMIT ?",
            (now, limit),
        )
        return [RunRow(*r) for r in rows]

    def running_leases(self) -> list[tuple[str, str | None, float | None]]:
        """``(execution_id, lease_owner, lease_expires)`` of every running run."""
        rows = self._rows(
            "SELECT execution_id, lease_owner, lease_expires FROM runs WHERE status = 'running'"
        )
        return [(r[0], r[1], r[2]) for r in rows]

    def cancel_requests(self, owner: str) -> list[str]:
        """The runs leased by ``owner`` that someone asked to cancel."""
        rows = self._rows(
            "SELECT execution_id FROM runs WHERE lease_owner = ? AND cancel_requested = 1",
            (owner,),
        )
        return [row[0] for row in rows]

    # -- journal and events ---------------------------------------------------------------------

    def journal(self, execution_id: str) -> list[JournalRow]:
        """The run's durable steps in the order they started."""
        rows = self._rows(
            f"SELECT {queries.JOURNAL_COLUMNS} FROM journal WHERE execution_id = ? "
            "ORDER BY ordinal",
            (execution_id,),
        )
        return [JournalRow(*r) for r in rows]

    def events(self, execution_id: str, after: int = 0, limit: int | None = None) -> list[Event]:
        """The run's events with ``seq > after``, in order, completed from the journal."""
        rows = self._rows(
            "SELECT e.seq, e.type, e.at, e.agent, e.data_json, j.data_json, r.output_json "
            "FROM events e "
            "LEFT JOIN journal j ON j.execution_id = e.execution_id AND j.key = e.ref "
            "LEFT JOIN runs r ON r.execution_id = e.execution_id AND e.type = 'done' "
            "WHERE e.execution_id = ? AND e.seq > ? ORDER BY e.seq LIMIT ?",
            (execution_id, after, self.dialect.no_limit if limit is None else limit),
        )
        return [
            decode_event(
                execution_id, seq, type_, at, agent, hydrate(type_, json.loads(payload), step, out)
            )
            for seq, type_, at, agent, payload, step, out in rows
        ]

    def event_keys(self, execution_id: str) -> set[str]:
        """The keys of the run's events (its driver records each key once)."""
        rows = self._rows("SELECT key FROM events WHERE execution_id = ?", (execution_id,))
        return {r[0] for r in rows}

    def last_event_seq(self, execution_id: str) -> int:
        """The number of the run's last event (0 if it has none)."""
        rows = self._rows(
            "SELECT COALESCE(MAX(seq), 0) FROM events WHERE execution_id = ?", (execution_id,)
        )
        return int(rows[0][0])

    def stored_events(self, execution_id: str) -> list[StoredEvent]:
        """The run's events as stored, their payloads not completed from the journal."""
        rows = self._rows(
            "SELECT seq, key, type, agent, data_json, ref FROM events WHERE execution_id = ? "
            "ORDER BY seq",
            (execution_id,),
        )
        return [StoredEvent(*row) for row in rows]

    # -- forks ----------------------------------------------------------------------------------

    def lineage(self, execution_id: str) -> Lineage:
        """The run's parent (if it is a fork) and the runs forked from it."""
        parent = self._rows(
            "SELECT p.execution_id, r.fork_step, p.status, p.created_at FROM runs r "
            "JOIN runs p ON p.execution_id = r.parent_id WHERE r.execution_id = ?",
            (execution_id,),
        )
        forks = self._rows(
            "SELECT execution_id, fork_step, status, created_at FROM runs WHERE parent_id = ? "
            f"ORDER BY created_at, {self.dialect.row_id}",
            (execution_id,),
        )
        return Lineage(
            execution_id,
            ForkLink(*parent[0]) if parent else None,
            [ForkLink(*row) for row in forks],
        )

    def start_context(self, execution_id: str) -> tuple[bool, str | None] | None:
        """The context the run started with, once completing it replaced it."""
        rows = self._rows(
            "SELECT known, context_json FROM run_start_context WHERE execution_id = ?",
            (execution_id,),
        )
        return (bool(rows[0][0]), rows[0][1]) if rows else None

    # -- approvals ------------------------------------------------------------------------------

    def approvals(
        self, *, execution_id: str | None = None, status: str | None = None, limit: int = 200
    ) -> list[ApprovalRecord]:
        """Approvals, oldest first, optionally filtered by run and status."""
        where, params = [], []
        if execution_id is not None:
            where.append("execution_id = ?")
            params.append(execution_id)
        if status is not None:
            where.append("status = ?")
            params.append(status)
        clause = f"WHERE {' AND '.join(where)}" if where else ""
        rows = self._rows(
            f"SELECT {APPROVAL_COLUMNS} FROM approvals {clause} "
            f"ORDER BY requested_at, {self.dialect.row_id} LIMIT ?",
            (*params, limit),
        )
        return [approval_from_row(r) for r in rows]

    def approvals_page(
        self,
        *,
        status: str | None = "pending",
        execution_id: str | None = None,
        newest_first: bool = False,
        limit: int = 50,
        cursor: str | None = None,
    ) -> Page[ApprovalRecord]:
        """Approvals by request time, one page at a time."""
        return queries.approvals_page(
            self._rows,
            self.dialect,
            status=status,
            execution_id=execution_id,
            newest_first=newest_first,
            limit=limit,
            cursor=cursor,
        )

    def due_approvals(self, now: float, limit: int = 100) -> list[ApprovalRecord]:
        """Pending requests past their deadline not escalated yet, earliest first."""
        rows = self._rows(
            f"SELECT {APPROVAL_COLUMNS} FROM approvals{self.dialect.indexed_by('approvals_due')} "
            "WHERE status = 'pending' AND deadline IS NOT NULL AND escalated_at IS NULL "
            "AND deadline <= ? ORDER BY deadline LIMIT ?",
            (now, limit),
        )
        return [approval_from_row(r) for r in rows]

    # -- conversations --------------------------------------------------------------------------

    def conversation(self, conversation_id: str) -> ConversationState | None:
        """The conversation's state, or None."""
        return queries.conversation(self._rows, conversation_id)

    def conversation_lines(self, conversation_id: str, start: int = 0) -> list[str]:
        """The conversation's history lines from line ``start`` on, oldest first."""
        return queries.conversation_lines(self._rows, conversation_id, start)

    def conversation_item_range(self, conversation_id: str, start: int, end: int) -> list[Any]:
        """Items ``start`` to ``end`` (excluded), reading only those: the part in the
        compacted snapshot, then the logged ones by index."""
        snapshot = self._rows(self.dialect.snapshot_range, (conversation_id, start, end))
        items: list[Any] = [json.loads(r[0]) for r in snapshot]
        logged = self._rows(
            "SELECT item_json FROM conversation_items WHERE conversation_id = ? "
            "AND idx >= ? AND idx < ? ORDER BY idx",
            (conversation_id, start + len(items), end),
        )
        items.extend(json.loads(r[0]) for r in logged)
        return items

    def turn_start(self, conversation_id: str, turn: int) -> int:
        """The item index ``turn`` starts at."""
        return queries.turn_start(self._rows, conversation_id, turn)

    def conversation_items(self, conversation_id: str) -> list[Any]:
        """The conversation's input items: the snapshot followed by the log."""
        rows = self._rows(
            "SELECT items_json FROM conversations WHERE conversation_id = ?", (conversation_id,)
        )
        if not rows:
            return []
        items: list[Any] = json.loads(rows[0][0])
        logged = self._rows(
            "SELECT item_json FROM conversation_items WHERE conversation_id = ? ORDER BY idx",
            (conversation_id,),
        )
        items.extend(json.loads(r[0]) for r in logged)
        return items

    def conversations_page(
        self, *, limit: int = 50, cursor: str | None = None
    ) -> Page[ConversationRow]:
        """Conversations, most recently active first, with their token totals."""
        return queries.conversations_page(self._rows, self.dialect, limit=limit, cursor=cursor)

    # -- usage ----------------------------------------------------------------------------------

    def run_usage(self, execution_ids: Sequence[str]) -> list[UsageRow]:
        """The model usage of these runs."""
        if not execution_ids:
            return []
        runs = self.dialect.one_of("r.execution_id", list(execution_ids))
        return queries.usage(self._rows, self.dialect, runs)

    def conversation_usage(self, conversation_id: str) -> list[UsageRow]:
        """The model usage of every turn of a conversation so far, and of every run that
        summarised turns of it for its memory policy."""
        runs = queries.conversation_runs(self.dialect, conversation_id)
        return queries.usage(self._rows, self.dialect, runs)

    def window_usage(self, since: float | None, until: float | None) -> list[UsageRow]:
        """The model usage of the runs created in ``[since, until)``."""
        runs = queries.window(since, until, "r.created_at")
        return queries.usage(self._rows, self.dialect, runs)

    def window_statuses(self, since: float | None, until: float | None) -> dict[str, int]:
        """How many runs created in ``[since, until)`` have each status."""
        where, params = queries.window(since, until, "created_at")
        rows = self._rows(
            f"SELECT status, COUNT(*) FROM runs WHERE {where} GROUP BY status", params
        )
        return {status: int(count) for status, count in rows}

    # -- the tool calls journal and item segments (see :mod:`._tool_calls`) ----------------------

    def start_tool_call(
        self,
        *,
        idempotency_key: str,
        workflow_id: str,
        call_id: str,
        agent_name: str,
        tool_name: str,
        args_json: str,
        now: float,
    ) -> ToolCallRecord:
        """Record that a tool starts running for one call (see :meth:`Store.start_tool_call`)."""
        return self._start_tool_call(
            idempotency_key,
            self.dialect.sql(START_TOOL_CALL),
            (idempotency_key, workflow_id, call_id, agent_name, tool_name, args_json, now),
        )

    def finish_tool_call(
        self,
        idempotency_key: str,
        *,
        output_json: str,
        context_type: str | None,
        context_json: str | None,
        now: float,
    ) -> None:
        """Record the call done: its output and the context after it."""
        self._statement(
            self.dialect.sql(_FINISH),
            (output_json, context_type, context_json, now, idempotency_key),
        )

    def tool_call(self, idempotency_key: str) -> ToolCallRecord | None:
        """The journal's record of one tool call, or None."""
        found = self._tool_calls("idempotency_key", idempotency_key)
        return found[0] if found else None

    def tool_calls(self, workflow_id: str) -> list[ToolCallRecord]:
        """Every journaled tool call of a workflow, in the order they were first started."""
        return self._tool_calls("workflow_id", workflow_id)

    def _tool_calls(self, column: str, value: str) -> list[ToolCallRecord]:
        rows = self._rows(
            f"SELECT {TOOL_CALL_COLUMNS} FROM tool_calls WHERE {column} = ? "
            f"ORDER BY {self.dialect.row_id}",
            (value,),
        )
        return [tool_call_from_row(row) for row in rows]

    def item_chain(self, ref: str) -> list[ItemSegment]:
        """The segment ``ref`` and every segment before it, oldest first."""
        return [ItemSegment(r[0], r[1], int(r[2]), r[3]) for r in self._rows(_CHAIN, (ref,))]


__all__ = ["START_TOOL_CALL", "SQLStore"]
