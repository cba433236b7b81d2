"""Checking text before it is stored: whole characters only, and input items within limits.

A Python string can hold what UTF-8 cannot encode: a lone surrogate, such as half of an emoji
cut by a web front end (``"Thanks \\ud83d"``) or bytes that were not UTF-8 decoded with
``surrogateescape``. SQLite cannot store it, and a run that accepted it would fail later.
Such text is refused up front with :class:`InvalidInput`, and nothing is stored.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .errors import InvalidInput

MAX_ITEM_DEPTH = 32
"""How deeply input items may nest (dicts and lists inside each other)."""


def require_text(value: str, what: str) -> None:
    """Raise :class:`InvalidInput` if ``value`` holds a character UTF-8 cannot encode."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidInput(
            f"{what} is not valid text: character {exc.start} is a lone surrogate "
            f"({value[exc.start]!r}, half of an emoji or bytes that were not UTF-8); "
            "send whole characters"
        ) from None


def require_texts(**values: str | None) -> None:
    """:func:`require_text` on each keyword argument that is a string, named after it."""
    for name, value in values.items():
        if isinstance(value, str):
            require_text(value, name.replace("_", " "))


def items_text_length(items: Sequence[Any], what: str = "the input items") -> int:
    """The characters of text (keys and values) in input items, after checking that all of
    it is valid text and that the items nest at most :data:`MAX_ITEM_DEPTH` deep."""
    total = 0
    stack: list[tuple[Any, int]] = [(items, 0)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, str):
            require_text(value, what)
            total += len(value)
            continue
        if not isinstance(value, dict | list | tuple):
            continue
        if depth >= MAX_ITEM_DEPTH:
            raise InvalidInput(f"{what} nest more than {MAX_ITEM_DEPTH} levels deep")
        if isinstance(value, dict):
            stack.extend((part, depth + 1) for pair in value.items() for part in pair)
        else:
            stack.extend((part, depth + 1) for part in value)
    return total
