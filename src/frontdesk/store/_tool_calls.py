"""What the Temporal engine's activities keep in the store beside runs: the tool calls journal
and conversation item segments.

* **The tool calls journal.** One record per tool call, by its idempotency key (derived from
  the workflow id and the call id): started, then done with its output and the context after
  it. An activity retried after the tool finished (its worker died before Temporal heard of
  it) finds the call done and returns its result instead of running the tool again, whichever
  machine the retry lands on, since every worker shares the runtime's store.
* **Conversation item segments.** A model call's input items stored once, by content: each
  segment holds the items a call added after its parent segment's, under a reference the
  caller computes from the parent's reference and the items. The same items always give the
  same reference, so storing them again is a no-op; segments are never changed or removed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

TOOL_CALL_STATES = ("started", "done")
"""A tool call is ``started`` (running, or its worker died) until it is ``done``."""

TOOL_CALL_COLUMNS = (
    "idempotency_key, workflow_id, call_id, agent_name, tool_name, args_json, state, attempts, "
    "output_json, context_type, context_json, started_at, finished_at"
)
"""The columns a :class:`ToolCallRecord` is read from, in its fields' order."""


@dataclass(frozen=True)
class ToolCallRecord:
    """One tool call in the journal."""

    idempotency_key: str
    """Derived from the workflow id and the call id; the key the tool passes on."""
    workflow_id: str
    """The workflow (run or conversation) the call belongs to."""
    call_id: str
    """The model's id for this call."""
    agent_name: str
    """The agent whose tool it is."""
    tool_name: str
    """The tool's name."""
    args_json: str
    """The arguments as the model sent them."""
    state: str
    """``started`` (running, or its worker died) or ``done``."""
    attempts: int
    """How many times the tool started running for this call."""
    output_json: str | None
    """What the tool returned, as JSON text, once done."""
    context_type: str | None
    """The context's type reference after the call, once done."""
    context_json: str | None
    """The context after the call, once done."""
    started_at: float
    """When the tool last started running for this call (Unix seconds)."""
    finished_at: float | None
    """When the call was recorded done (Unix seconds)."""

    @property
    def done(self) -> bool:
        """Whether the tool finished: do not run it again."""
        return self.state == "done"

    @property
    def output(self) -> Any:
        """What the tool returned, as JSON data (None until done)."""
        return json.loads(self.output_json) if self.output_json is not None else None


def tool_call_from_row(row: tuple[Any, ...]) -> ToolCallRecord:
    """The record of a row read with :data:`TOOL_CALL_COLUMNS`."""
    return ToolCallRecord(
        idempotency_key=row[0],
        workflow_id=row[1],
        call_id=row[2],
        agent_name=row[3],
        tool_name=row[4],
        args_json=row[5],
        state=row[6],
        attempts=int(row[7]),
        output_json=row[8],
        context_type=row[9],
        context_json=row[10],
        started_at=float(row[11]),
        finished_at=float(row[12]) if row[12] is not None else None,
    )


@dataclass(frozen=True)
class ItemSegment:
    """One stored segment of conversation items."""

    ref: str
    """The segment's reference (its content's, see ``segment_ref``)."""
    parent: str | None
    """The reference of the segment before it; None for the first."""
    length: int
    """How many items the chain holds up to and including this segment."""
    items_json: str
    """This segment's own items, as a JSON array."""


def chain_items(chain: list[ItemSegment]) -> list[Any] | None:
    """Every item of a chain read oldest first (see ``Store.item_chain``); None when it is
    not whole (its first segment has a parent, or a segment is missing)."""
    if not chain or chain[0].parent is not None:
        return None
    items: list[Any] = []
    for segment in chain:
        items.extend(json.loads(segment.items_json))
    return items if len(items) == chain[-1].length else None


__all__ = [
    "TOOL_CALL_COLUMNS",
    "TOOL_CALL_STATES",
    "ItemSegment",
    "ToolCallRecord",
    "chain_items",
    "tool_call_from_row",
]
