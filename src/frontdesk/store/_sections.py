"""Read-check-write sections written once for every backend: cancelling a run that nobody
drives here, and claiming a conversation's next turn.

Each runs in one :class:`~._base.StoreTransaction`, whose reads lock what it then writes: the
run cannot end, nor the conversation move on, between the check and the write.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..errors import InvalidRunState, RunNotFound, StaleConversation
from ..events import encode_payload
from ._records import TERMINAL_STATUSES, ConversationState
from ._writes import CancelRun, ClaimTurn, ReleaseTurn, Write, event_insert

if TYPE_CHECKING:
    from ._base import Store, StoreTransaction


@dataclass(frozen=True)
class TurnClaim:
    """A conversation turn reserved by :meth:`Store.claim_turn`."""

    turn: int
    """Its number (1 for the first)."""
    base_len: int
    """How many input items come before it."""
    current_agent: str
    """The agent that answers it."""
    context_type: str | None
    """The stored context's type."""
    context_json: str | None
    """The stored context, as of the last completed turn."""
    window: Any = None
    """What the turn sends of the items before it, as the claim's planner decided (None: all
    of them)."""


TurnPlanner = Callable[["StoreTransaction", ConversationState, int], Any]
"""Decides, inside the claiming transaction, what a turn sends of the conversation's earlier
items, from the conversation's state and its item count: under a memory policy, the window."""


def cancel_run(store: Store, execution_id: str, now: float) -> None:
    """See :meth:`Store.cancel_run`."""
    row = store.require_run(execution_id)
    writes: list[Write] = [
        event_insert(
            execution_id,
            "cancelled",
            "error",
            None,
            encode_payload(error="run cancelled", status="cancelled"),
            at=now,
        ),
        CancelRun(execution_id, now),
    ]
    if row.conversation_id is not None:
        writes.append(ReleaseTurn(row.conversation_id, execution_id, now))
    with store.transaction() as tx:
        # Re-read under the lock: the run may have ended since.
        status = tx.run_status(execution_id)
        if status is None:
            raise RunNotFound(execution_id)
        if status in TERMINAL_STATUSES:
            raise InvalidRunState(f"run {execution_id} is already {status}; nothing changed")
        tx.write(writes)


def claim_turn(
    store: Store,
    conversation_id: str,
    chat_length: int | None,
    execution_id: str,
    now: float,
    plan: TurnPlanner | None = None,
) -> TurnClaim:
    """See :meth:`Store.claim_turn`."""
    with store.transaction() as tx:
        state = tx.conversation(conversation_id)
        if state is None:
            raise StaleConversation(
                f"conversation {conversation_id!r} does not exist; nothing changed", history=[]
            )
        pending = state.pending_run
        if pending is not None or (chat_length is not None and chat_length != state.history_len):
            why = (
                "another message is being answered"
                if pending is not None
                else f"chat_length {chat_length} does not match the history "
                f"({state.history_len} lines)"
            )
            raise StaleConversation(
                f"stale conversation {conversation_id!r}: {why}; refresh the history and retry",
                history=tx.conversation_lines(conversation_id),
            )
        base_len = tx.conversation_item_count(conversation_id)
        window = plan(tx, state, base_len) if plan is not None else None
        tx.write([ClaimTurn(conversation_id, execution_id, now)])
    return TurnClaim(
        state.turns + 1,
        base_len,
        state.current_agent,
        state.context_type,
        state.context_json,
        window,
    )
