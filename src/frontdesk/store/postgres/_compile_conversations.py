"""Conversation writes compiled into PostgreSQL's SQL: a conversation created, its budget,
memory and summary set, a turn claimed, released or recorded (its lines, its items, or a new
snapshot of them, and the conversation's row moved on)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .._writes import (
    ClaimTurn,
    CreateConversation,
    RecordTurn,
    ReleaseTurn,
    SetConversationBudget,
    SetConversationMemory,
    StoreSummary,
)
from ._schema import parsed_json
from ._statements import Compiled


def _create_conversation(c: Compiled, w: CreateConversation) -> None:
    c.add(
        "INSERT INTO conversations (conversation_id, agent_ref, current_agent, context_type, "
        "context_json, items_json, created_at, updated_at) "
        "VALUES (%s, %s, %s, %s, %s, '[]', %s, %s) ON CONFLICT DO NOTHING",
        w.conversation_id,
        w.agent_ref,
        w.current_agent,
        w.context_type,
        w.context_json,
        w.at,
        w.at,
    )


def _conversation_budget(c: Compiled, w: SetConversationBudget) -> None:
    c.add(
        "UPDATE conversations SET budget_json = %s WHERE conversation_id = %s",
        w.budget_json,
        w.conversation_id,
    )


def _conversation_memory(c: Compiled, w: SetConversationMemory) -> None:
    c.add(
        "UPDATE conversations SET memory_json = %s WHERE conversation_id = %s",
        w.memory_json,
        w.conversation_id,
    )


def _summary(c: Compiled, w: StoreSummary) -> None:
    c.add(
        "UPDATE conversations SET summary_json = %s WHERE conversation_id = %s AND "
        f"COALESCE(({parsed_json('summary_json')} ->> 'turns')::integer, 0) < %s",
        w.summary_json,
        w.conversation_id,
        w.turns,
    )


def _claim_turn(c: Compiled, w: ClaimTurn) -> None:
    c.add(
        "UPDATE conversations SET pending_run = %s, updated_at = %s WHERE conversation_id = %s",
        w.execution_id,
        w.at,
        w.conversation_id,
    )


def _release_turn(c: Compiled, w: ReleaseTurn) -> None:
    c.add(
        "UPDATE conversations SET pending_run = NULL, updated_at = %s "
        "WHERE conversation_id = %s AND pending_run = %s",
        w.at,
        w.conversation_id,
        w.execution_id,
    )


def _record_turn(c: Compiled, w: RecordTurn) -> None:
    cid = w.conversation_id
    if w.lines:
        c.add(
            "INSERT INTO conversation_lines (conversation_id, idx, line, run_id) "
            "SELECT %s, %s + n - 1, line, %s FROM unnest(%s::text[]) WITH ORDINALITY AS t(line, n)",
            cid,
            w.first_line,
            w.execution_id,
            list(w.lines),
        )
    c.add(
        "INSERT INTO conversation_turns (conversation_id, turn, start_idx) VALUES (%s, %s, %s)",
        cid,
        w.turn,
        w.start,
    )
    if w.snapshot_json is not None:
        c.add("DELETE FROM conversation_items WHERE conversation_id = %s", cid)
        c.add(
            "UPDATE conversations SET items_json = %s, generation = generation + 1 "
            "WHERE conversation_id = %s",
            w.snapshot_json,
            cid,
        )
    elif w.items_json:
        c.add(
            "INSERT INTO conversation_items (conversation_id, idx, item_json) "
            "SELECT %s, %s + n - 1, item FROM unnest(%s::text[]) WITH ORDINALITY AS t(item, n)",
            cid,
            w.first_item,
            list(w.items_json),
        )
    c.add(
        "UPDATE conversations SET current_agent = %s, context_json = COALESCE(%s, context_json), "
        "turns = turns + 1, history_len = history_len + %s, pending_run = NULL, updated_at = %s "
        "WHERE conversation_id = %s AND pending_run = %s",
        w.current_agent,
        w.context_json,
        len(w.lines),
        w.at,
        cid,
        w.execution_id,
    )


CONVERSATION_COMPILERS: dict[type, Callable[[Compiled, Any], None]] = {
    CreateConversation: _create_conversation,
    SetConversationBudget: _conversation_budget,
    SetConversationMemory: _conversation_memory,
    StoreSummary: _summary,
    ClaimTurn: _claim_turn,
    ReleaseTurn: _release_turn,
    RecordTurn: _record_turn,
}
"""The compiler of each conversation write."""

__all__ = ["CONVERSATION_COMPILERS"]
