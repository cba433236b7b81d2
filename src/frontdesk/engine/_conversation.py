"""Durable conversations in the store: turns, history lines and compacted input items.

A conversation keeps the input items its agents see (``result.to_input_list()`` after each
turn) as a snapshot plus an append-only log of the items added since. Every
``compact_every`` turns the log is folded into a new snapshot, the way Temporal's
continue-as-new starts a fresh history carrying the state over: what the agents see does not
change, but what a turn stores and reads stays bounded.

A turn is a run whose ``conversation_id`` and ``turn`` say which conversation and turn it is,
and whose stored input is a reference (:class:`~._types.TurnInput`: position, message), never
the item list itself. Its history lines, new items, context and current agent are written in
the same transaction that completes the run, so a turn interrupted by a crash is completed
exactly once: no duplicated line, no re-run tool.

With a memory policy (:mod:`._memory`) the reference also says where the turn's window of
items starts and which summary goes before it; the log is then never folded into a snapshot,
since a turn reads only its window, by index.
"""

from __future__ import annotations

import json
import time
from typing import Any

from agents import ItemHelpers
from agents.items import HandoffOutputItem, MessageOutputItem, ToolCallItem, ToolCallOutputItem

from ..store import (
    ConversationState,
    RecordTurn,
    ReleaseTurn,
    RunRow,
    Store,
    StoreTransaction,
    TurnClaim,
    Write,
)
from ._memory import Policy, Summary, Window, plan_window, summary_item
from ._types import TurnInput


def turn_input(base_len: int, message: str, window: Window | None = None) -> dict[str, Any]:
    """The stored input of a turn: where in the conversation it starts, and the message;
    under a memory policy, also where its window starts and the summary sent before it."""
    if window is None:
        return TurnInput(base_len, message).to_json()
    return TurnInput(base_len, message, window.start, window.summary).to_json()


def stored_turn(row: RunRow) -> TurnInput | None:
    """The turn reference a run stored as its input, if the run is a conversation turn
    (runs stored by older versions carry a ``$conversation`` key too; it is ignored)."""
    if row.conversation_id is None or row.turn is None:
        return None
    try:
        value = json.loads(row.input)
    except json.JSONDecodeError:
        return None
    if not isinstance(value, dict) or "message" not in value or "base_len" not in value:
        return None
    return TurnInput(
        int(value["base_len"]),
        str(value["message"]),
        int(value.get("start") or 0),
        value.get("summary"),
    )


def user_input(row: RunRow) -> Any:
    """What the caller asked the run: a turn's message, or the run's stored input."""
    turn = stored_turn(row)
    if turn is not None:
        return turn.message
    return json.loads(row.input)


def resolve_turn_input(store: Store, conversation_id: str, turn: TurnInput) -> list[Any]:
    """The Runner input of a turn: the items before it (its window of them, after its
    summary, under a memory policy) plus the user's message."""
    if turn.start:
        items = store.conversation_item_range(conversation_id, turn.start, turn.base_len)
    else:
        items = store.conversation_items(conversation_id)[: turn.base_len]
    prefix = [summary_item(turn.summary)] if turn.summary is not None else []
    return [*prefix, *items, {"content": turn.message, "role": "user"}]


def runner_input(store: Store, row: RunRow) -> Any:
    """What the SDK's runner is given for the run: a turn's items and message, or the run's
    stored input."""
    turn = stored_turn(row)
    if turn is not None and row.conversation_id is not None:
        return resolve_turn_input(store, row.conversation_id, turn)
    return json.loads(row.input)


def history_lines(result: Any) -> list[str]:
    """The printable lines for the items a turn produced."""
    lines: list[str] = []
    for item in result.new_items:
        agent_name = item.agent.name
        if isinstance(item, MessageOutputItem):
            lines.append(f"{agent_name}: {ItemHelpers.text_message_output(item)}")
        elif isinstance(item, HandoffOutputItem):
            lines.append(f"Handed off from {item.source_agent.name} to {item.target_agent.name}")
        elif isinstance(item, ToolCallItem):
            lines.append(f"{agent_name}: Calling a tool")
        elif isinstance(item, ToolCallOutputItem):
            lines.append(f"{agent_name}: Tool call output: {item.output}")
    return lines


def _plan(tx: StoreTransaction, state: ConversationState, base_len: int) -> Window | None:
    policy = Policy.from_json(state.memory_json)
    if policy is None:
        return None
    summary = Summary.from_json(state.summary_json)
    return plan_window(tx, state.conversation_id, policy, state.turns, base_len, summary)


def claim_turn(
    store: Store, conversation_id: str, chat_length: int | None, execution_id: str
) -> TurnClaim:
    """Reserve the next turn for ``execution_id``, or raise :class:`StaleConversation`; under
    a memory policy the claim's ``window`` says what the turn sends."""
    return store.claim_turn(conversation_id, chat_length, execution_id, time.time(), _plan)


def release_ops(conversation_id: str, execution_id: str) -> list[Write]:
    """Free the conversation after a turn that failed or was cancelled (nothing recorded)."""
    return [ReleaseTurn(conversation_id, execution_id, time.time())]


def completion_ops(
    store: Store,
    row: RunRow,
    turn: TurnInput,
    result: Any,
    context_json: str | None,
    compact_every: int,
) -> list[Write]:
    """Record a finished turn: its lines, its new items and the conversation's new state."""
    conversation_id = row.conversation_id
    assert conversation_id is not None
    state = store.conversation(conversation_id)
    assert state is not None  # a turn's conversation is never deleted
    lines = [f"User: {turn.message}", *history_lines(result)]
    # The run's input ends with the user's message; what follows it is new. Under a memory
    # policy the input is the turn's window, not all of the ``base_len`` items before it.
    sent = len(ItemHelpers.input_to_new_input_list(result.input))
    new_items = result.to_input_list()[sent - 1 :]
    snapshot = None
    # A turn under a memory policy reads only its window, by index: nothing to compact.
    turns = state.turns
    if compact_every > 0 and state.memory_json is None and (turns + 1) % compact_every == 0:
        items = [*store.conversation_items(conversation_id)[: turn.base_len], *new_items]
        snapshot = json.dumps(items, separators=(",", ":"))
    return [
        RecordTurn(
            conversation_id=conversation_id,
            execution_id=row.execution_id,
            turn=turns + 1,
            start=turn.base_len,
            first_line=state.history_len,
            lines=lines,
            first_item=turn.base_len,
            items_json=[json.dumps(item, separators=(",", ":")) for item in new_items],
            current_agent=result.last_agent.name,
            context_json=context_json,
            at=time.time(),
            snapshot_json=snapshot,
        )
    ]
