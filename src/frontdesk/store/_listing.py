"""Listing runs, approvals and conversations a page at a time, by cursor: what every
backend shares.

A page is read through an index that yields rows in the page's order, so a page costs the
same at the start of the history as a hundred thousand runs deep, and a cursor says where the
previous page stopped (never an offset to count past). The SQL backends' queries are in
:mod:`frontdesk.store._queries`; the filters, pages, cursors and their checks are here.

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
