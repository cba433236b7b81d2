"""Conversations in SQLite: counting a conversation's input items in a section's transaction
(its other reads are the shared ones of :mod:`frontdesk.store._queries`), and the statements
its writes compile to (see :mod:`._compile`)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from .._queries import Query
from .._writes import (
    ClaimTurn,
    CreateConversation,
    RecordTurn,
    ReleaseTurn,
    SetConversationBudget,
    SetConversationMemory,
    StoreSummary,
)

Statement = tuple[str, Sequence[Any]]
"""One SQL statement with its parameters."""


def item_count(query: Query, conversation_id: str) -> int:
    """How many input items the conversation holds. Logged items are numbered from the
    conversation's first item on, after the snapshot's."""
    logged = query(
        "SELECT MAX(idx) FROM conversation_items WHERE conversation_id = ?", (conversation_id,)
    )[0][0]
    if logged is not None:
        return int(logged) + 1
    snapshot = query(
        "SELECT json_array_length(items_json) FROM conversations WHERE conversation_id = ?",
        (conversation_id,),
    )
    return int(snapshot[0][0]) if snapshot else 0


# -- writes --------------------------------------------------------------------------------------


def _create_conversation(w: CreateConversation) -> list[Statement]:
    return [
        (
            "INSERT OR IGNORE INTO conversations (conversation_id, agent_ref, current_agent,"
            " context_type, context_json, items_json, created_at, updated_at) "
            "VALUES (?, ?, ?, ?, ?, '[]', ?, ?)",
            (
                w.conversation_id,
                w.agent_ref,
                w.current_agent,
                w.context_type,
                w.context_json,
                w.at,
                w.at,
            ),
        )
    ]


def _conversation_budget(w: SetConversationBudget) -> list[Statement]:
    return [
        (
            "UPDATE conversations SET budget_json = ? WHERE conversation_id = ?",
            (w.budget_json, w.conversation_id),
        )
    ]


def _conversation_memory(w: SetConversationMemory) -> list[Statement]:
    return [
        (
            "UPDATE conversations SET memory_json = ? WHERE conversation_id = ?",
            (w.memory_json, w.conversation_id),
        )
    ]


def _summary(w: StoreSummary) -> list[Statement]:
    return [
        (
            "UPDATE conversations SET summary_json = ? WHERE conversation_id = ? AND "
            "COALESCE(json_extract(summary_json, '$.turns'), 0) < ?",
            (w.summary_json, w.conversation_id, w.turns),
        )
    ]


def _claim_turn(w: ClaimTurn) -> list[Statement]:
    return [
        (
            "UPDATE conversations SET pending_run = ?, updated_at = ? WHERE conversation_id = ?",
            (w.execution_id, w.at, w.conversation_id),
        )
    ]


def _release_turn(w: ReleaseTurn) -> list[Statement]:
    return [
        (
            "UPDATE conversations SET pending_run = NULL, updated_at = ? "
            "WHERE conversation_id = ? AND pending_run = ?",
            (w.at, w.conversation_id, w.execution_id),
        )
    ]


def _record_turn(w: RecordTurn) -> list[Statement]:
    cid = w.conversation_id
    statements: list[Statement] = [
        (
            "INSERT INTO conversation_lines (conversation_id, idx, line, run_id) VALUES (?, ?, ?, ?)",
            (cid, w.first_line + i, line, w.execution_id),
        )
        for i, line in enumerate(w.lines)
    ]
    statements.append(
        (
            "INSERT INTO conversation_turns (conversation_id, turn, start_idx) VALUES (?, ?, ?)",
            (cid, w.turn, w.start),
        )
    )
    if w.snapshot_json is not None:
        statements += [
            ("DELETE FROM conversation_items WHERE conversation_id = ?", (cid,)),
            (
                "UPDATE conversations SET items_json = ?, generation = generation + 1 "
                "WHERE conversation_id = ?",
                (w.snapshot_json, cid),
            ),
        ]
    else:
        statements += [
            (
                "INSERT INTO conversation_items (conversation_id, idx, item_json) VALUES (?, ?, ?)",
                (cid, w.first_item + i, item),
            )
            for i, item in enumerate(w.items_json)
        ]
    statements.append(
        (
            "UPDATE conversations SET current_agent = ?, context_json = COALESCE(?, context_json), "
            "turns = turns + 1, history_len = history_len + ?, pending_run = NULL, updated_at = ? "
            "WHERE conversation_id = ? AND pending_run = ?",
            (w.current_agent, w.context_json, len(w.lines), w.at, cid, w.execution_id),
        )
    )
    return statements


CONVERSATION_COMPILERS: dict[type, Callable[[Any], list[Statement]]] = {
    CreateConversation: _create_conversation,
    SetConversationBudget: _conversation_budget,
    SetConversationMemory: _conversation_memory,
    StoreSummary: _summary,
    ClaimTurn: _claim_turn,
    ReleaseTurn: _release_turn,
    RecordTurn: _record_turn,
}
"""The statements of each conversation write kind."""
