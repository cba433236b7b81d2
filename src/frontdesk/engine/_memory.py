"""Bounded conversation memory: which of a conversation's past items its agents see.

    conv = runtime.conversation("c-42", agent=triage_agent, memory=Memory(last_turns=10))

Without a policy every turn sends the agents every input item of the conversation. With one,
a turn sends the items of the last ``last_turns`` turns and the new message; with
``summarize``, a summary of the turns before those goes first, as one system message. The cut
is always at the start of a turn, so a tool call and its output, a handoff and its output, and
the items of one turn stay together.

Turns are the unit: each completed turn records the item index it starts at
(``conversation_turns``). A turn's stored input reference carries where its window starts and
the summary it sends, both fixed when the turn is claimed, so the turn resolves to the same
model input in whichever process runs or recovers it. The full history and every item stay
stored; only what the model is sent is bounded.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, NamedTuple

from agents import Agent

from ..errors import InvalidInput
from ..store import Store, StoreSummary, StoreTransaction

BUILTIN_SUMMARIZER = "builtin"
"""The stored ``summarize`` value for the built-in summariser."""
SUMMARY_HEADER = "Summary of the conversation before the messages that follow (turns 1-{turns}):"
"""The first line of the summary item; the summariser's text follows it."""
ITEM_TEXT_LIMIT = 2000
"""Characters of one item's text that a transcript for the summariser keeps."""


@dataclass(frozen=True)
class Memory:
    """What the agents of a conversation see of its earlier turns.

    ``Memory(last_turns=10)`` sends the items of the last 10 turns and the new message;
    ``Memory(last_turns=10, summarize=True)`` also sends a summary of the turns before them,
    written by a small built-in summariser agent on the runtime's model (offline, by the rules
    model). A bad value raises :class:`InvalidInput`.
    """

    last_turns: int
    """How many earlier turns the agents see in full besides the new message (at least 1)."""
    summarize: bool | Agent[Any] = False
    """Summarise the turns that drop out of the window: False for no summary, True for the
    built-in summariser, or an agent of your own whose final output is the summary text."""

    def __post_init__(self) -> None:
        turns = self.last_turns
        if isinstance(turns, bool) or not isinstance(turns, int):
            raise InvalidInput(f"Memory.last_turns must be a whole number, got {turns!r}")
        if turns < 1:
            raise InvalidInput(f"Memory.last_turns must be at least 1, got {turns}")
        if not isinstance(self.summarize, bool | Agent):
            raise InvalidInput(
                "Memory.summarize must be True, False or an agents.Agent, "
                f"got {type(self.summarize).__name__}"
            )


def require_memory(value: Any) -> Memory | None:
    """``value`` if it is a :class:`Memory` or None; :class:`InvalidInput` otherwise."""
    if value is not None and not isinstance(value, Memory):
        raise InvalidInput(
            f"memory must be a frontdesk.Memory(last_turns=..., summarize=...), got {value!r}"
        )
    return value


class Policy(NamedTuple):
    """A memory policy as stored with its conversation."""

    last_turns: int
    """Earlier turns sent in full."""
    summarizer: str | None
    """None (no summary), :data:`BUILTIN_SUMMARIZER`, or the summariser agent's reference."""

    def to_json(self) -> str:
        """The stored form (``conversations.memory_json``)."""
        return json.dumps({"last_turns": self.last_turns, "summarize": self.summarizer})

    @classmethod
    def from_json(cls, text: str | None) -> Policy | None:
        """The policy stored as ``text``; None for no policy."""
        if not text:
            return None
        data = json.loads(text)
        return cls(int(data["last_turns"]), data.get("summarize"))


class Summary(NamedTuple):
    """A conversation's stored summary: the turns it covers and its text."""

    turns: int
    """It covers turns 1 to ``turns``."""
    text: str
    """What the summariser wrote."""

    @classmethod
    def from_json(cls, text: str | None) -> Summary | None:
        """The summary stored as ``text`` (``conversations.summary_json``); None if none."""
        if not text:
            return None
        data = json.loads(text)
        return cls(int(data["turns"]), str(data["text"]))

    def content(self) -> str:
        """The text of the summary item the agents see."""
        return f"{SUMMARY_HEADER.format(turns=self.turns)}\n{self.text}"


def summary_item(content: str) -> dict[str, Any]:
    """The input item that carries a summary: a system message, first in the model input."""
    return {"content": content, "role": "system"}


def store_summary_op(conversation_id: str, summary: Summary) -> StoreSummary:
    """Store ``summary`` unless the conversation already has one covering as many turns."""
    return StoreSummary(
        conversation_id,
        summary.turns,
        json.dumps({"turns": summary.turns, "text": summary.text}),
    )


# -- turns and windows -----------------------------------------------------------------------


def turn_start(db: Store | StoreTransaction, conversation_id: str, turn: int) -> int:
    """The item index ``turn`` starts at. A turn without a record (stored before turns were
    recorded) starts where the nearest earlier recorded turn does, or at 0: never later."""
    return db.turn_start(conversation_id, turn)


class Window(NamedTuple):
    """What a turn sends of the conversation before its message."""

    start: int
    """The item index the window starts at."""
    summary: str | None
    """The summary item's content, sent first; None for none."""


def plan_window(
    db: Store | StoreTransaction,
    conversation_id: str,
    policy: Policy,
    turns: int,
    base_len: int,
    summary: Summary | None,
) -> Window:
    """The window of the turn after ``turns`` completed turns and ``base_len`` items.

    Without a summariser it holds the last ``last_turns`` turns. With one, it holds the turns
    the stored summary does not cover: the last ``last_turns`` once the summary is up to date
    (if the summariser could not run, more turns rather than a gap).
    """
    if policy.summarizer is not None:
        covered = min(summary.turns, turns) if summary is not None else 0
        first = covered + 1
        content = summary.content() if summary is not None and covered > 0 else None
    else:
        first = max(turns - policy.last_turns + 1, 1)
        content = None
    start = base_len if first > turns else turn_start(db, conversation_id, first)
    return Window(start, content)


def load_range(store: Store, conversation_id: str, start: int, end: int) -> list[Any]:
    """Items ``start`` to ``end`` (excluded), reading only those."""
    return store.conversation_item_range(conversation_id, start, end)


# -- the summariser's input ------------------------------------------------------------------


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = [p.get("text") or p.get("refusal") or "" for p in content if isinstance(p, dict)]
        return "\n".join(p for p in parts if p)
    return "" if content is None else str(content)


def _clip(text: str) -> str:
    text = text.strip()
    return text if len(text) <= ITEM_TEXT_LIMIT else text[:ITEM_TEXT_LIMIT] + " [...]"


def transcript(items: list[Any]) -> str:
    """Input items as plain lines for a summariser: who said what, which tools ran."""
    lines: list[str] = []
    for item in items:
        if not isinstance(item, dict):
            continue
        kind, role = item.get("type"), item.get("role")
        if role in ("user", "assistant", "system", "developer") and kind in (None, "message"):
            who = {"user": "User", "assistant": "Assistant"}.get(str(role), "Note")
            lines.append(f"{who}: {_clip(_text(item.get('content')))}")
        elif kind == "function_call":
            lines.append(f"Tool call: {item.get('name')} {_clip(str(item.get('arguments')))}")
        elif kind == "function_call_output":
            lines.append(f"Tool output: {_clip(_text(item.get('output')))}")
    return "\n".join(lines)


def summariser_input(previous: Summary | None, first: int, last: int, items: list[Any]) -> str:
    """The message a summariser gets: the summary so far and the turns to add to it."""
    so_far = previous.text if previous is not None else "(nothing yet)"
    return f"Summary so far:\n{so_far}\n\nTurns {first}-{last}:\n{transcript(items)}"
