"""The SQLite store behind the local engine: history, events, approvals and the journal."""

from ._commit import Checkpointer, GroupCommitter
from ._db import SCHEMA_VERSION, STORE_FILENAME, store_path
from ._store import (
    SETTLED_STATUSES,
    TERMINAL_STATUSES,
    ApprovalRecord,
    JournalRow,
    Op,
    RunRow,
    Store,
)

__all__ = [
    "SCHEMA_VERSION",
    "SETTLED_STATUSES",
    "STORE_FILENAME",
    "TERMINAL_STATUSES",
    "ApprovalRecord",
    "Checkpointer",
    "GroupCommitter",
    "JournalRow",
    "Op",
    "RunRow",
    "Store",
    "store_path",
]
