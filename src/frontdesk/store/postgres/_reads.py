"""How PostgreSQL writes what the shared reads (:mod:`frontdesk.store._queries`) leave to each
database.

Every filter of a listing has an index ending in its sort key and ``row_id``, which breaks
ties and goes in the cursor, compared as a row value. Text search matches the GIN index of
:data:`~._schema.DOCUMENT_FUNCTION`, always current (no queue to index first, as SQLite's
FTS5 has). Numbers in JSON text, such as a model call's usage in its journal row, are read as
``json`` (not ``jsonb``, which refuses a ``\\u0000`` in a response).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .._queries import Condition, Dialect, Query
from ._compile import RUN_COLUMNS
from ._schema import DOCUMENT_FUNCTION, parsed_json, search_query


class PostgresDialect(Dialect):
    """PostgreSQL's spelling of the shared reads, for psycopg."""

    placeholder = "%s"
    row_id = "row_id"
    no_limit = None
    run_columns = RUN_COLUMNS
    snapshot_range = (
        "SELECT j.item::text FROM conversations c, "
        "json_array_elements(c.items_json::json) WITH ORDINALITY AS j(item, n) "
        "WHERE c.conversation_id = ? AND j.n > ? AND j.n <= ? ORDER BY j.n"
    )

    def starts_with(self, column: str, prefix: str) -> Condition:
        """``starts_with``."""
        return f"starts_with({column}, ?)", [prefix]

    def one_of(self, column: str, values: Sequence[Any]) -> Condition:
        """``= ANY`` of one array parameter."""
        return f"{column} = ANY(?)", [list(values)]

    def after(self, column: str, compare: str, value: float, row_id: int) -> Condition:
        """A row-value comparison, which walks the index from the cursor."""
        return f"({column}, row_id) {compare} (?, ?)", [value, row_id]

    def text_match(self, text: str) -> Condition | None:
        """A ``tsquery`` of the words against the search index."""
        match = search_query(text)
        if match is None:
            return None
        return f"{DOCUMENT_FUNCTION}(input, output_json) @@ to_tsquery('simple', ?)", [match]

    def indexed_by(self, index: str) -> str:
        """Nothing: the planner finds the index."""
        return ""

    def json_number(self, column: str, *path: str) -> str:
        """The text at the path, as ``numeric``."""
        return f"({parsed_json(column)} #>> '{{{','.join(path)}}}')::numeric"

    def utc_day(self, column: str) -> str:
        """``to_char`` of the UTC time."""
        return f"to_char(to_timestamp({column}) AT TIME ZONE 'UTC', 'YYYY-MM-DD')"


POSTGRES = PostgresDialect()
"""The dialect of every PostgreSQL store."""


__all__ = ["POSTGRES", "PostgresDialect", "Query"]
