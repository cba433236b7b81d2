"""How SQLite writes what the shared reads (:mod:`frontdesk.store._queries`) leave to each
database: ``?`` placeholders, ``rowid``, FTS5 text search, ``json_each`` and
``json_extract``."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from .._listing import _WORD
from .._queries import Condition, Dialect
from ._compile import RUN_COLUMNS


def fts_query(text: str) -> str | None:
    """An FTS5 query matching every word of ``text`` (the last one as a prefix), or None
    when ``text`` has no word to search for. Operators in ``text`` are never interpreted."""
    words = _WORD.findall(text)
    if not words:
        return None
    quoted = ['"' + word.replace('"', '""') + '"' for word in words[:32]]
    quoted[-1] += "*"
    return " ".join(quoted)


class SQLiteDialect(Dialect):
    """SQLite's spelling of the shared reads."""

    placeholder = "?"
    row_id = "rowid"
    no_limit = -1
    run_columns = RUN_COLUMNS
    snapshot_range = (
        "SELECT j.value FROM conversations c, json_each(c.items_json) j "
        "WHERE c.conversation_id = ? AND j.key >= ? AND j.key < ? ORDER BY j.key"
    )

    def starts_with(self, column: str, prefix: str) -> Condition:
        """``column`` starts with ``prefix``."""
        return f"substr({column}, 1, ?) = ?", [len(prefix), prefix]

    def one_of(self, column: str, values: Sequence[Any]) -> Condition:
        """``column`` is one of ``values``, passed as one JSON array (no limit on how many)."""
        return f"{column} IN (SELECT value FROM json_each(?))", [json.dumps(list(values))]

    def after(self, column: str, compare: str, value: float, row_id: int) -> Condition:
        """Past the cursor, spelled so that SQLite walks the index from it."""
        return (
            f"{column} {compare}= ? AND ({column} {compare} ? OR rowid {compare} ?)",
            [value, value, row_id],
        )

    def text_match(self, text: str) -> Condition | None:
        """A match of the FTS5 index of the runs' input and output (see
        :func:`._listing.index_pending`)."""
        match = fts_query(text)
        if match is None:
            return None
        # The unary + keeps SQLite walking an index in page order and checking each run
        # against the matches, instead of fetching and sorting every match of a common word.
        return "+rowid IN (SELECT rowid FROM runs_fts WHERE runs_fts MATCH ?)", [match]

    def indexed_by(self, index: str) -> str:
        """SQLite's ``INDEXED BY``."""
        return f" INDEXED BY {index}"

    def json_number(self, column: str, *path: str) -> str:
        """``json_extract`` of the path."""
        return f"json_extract({column}, '$.{'.'.join(path)}')"

    def utc_day(self, column: str) -> str:
        """``date`` of the Unix time."""
        return f"date({column}, 'unixepoch')"


SQLITE = SQLiteDialect()
"""The dialect of every SQLite store."""


__all__ = ["SQLITE", "SQLiteDialect", "fts_query"]
