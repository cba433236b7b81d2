"""The run store: history, events, approvals and the journal in one SQLite file per home.

The engine commits every step of the runs it drives; the runtime reads history, events and
approvals from it and records approval decisions, and results and the CLI show its records
(:class:`RunRow`, :class:`JournalRow`, :class:`ApprovalRecord`).
"""

from ._commit import Checkpointer, GroupCommitter
from ._db import SCHEMA_VERSION, STORE_FILENAME, store_path
from ._fence import JOURNAL_WRITE, LeaseLost, StepAlreadyRecorded, fence
from ._store import (
    SETTLED_STATUSES,
    TERMINAL_STATUSES,
    ApprovalRecord,
    JournalRow,
    Op,
    RunRow,
    Store,
    event_insert,
    run_insert,
)

__all__ = [
    "JOURNAL_WRITE",
    "SCHEMA_VERSION",
    "SETTLED_STATUSES",
    "STORE_FILENAME",
    "TERMINAL_STATUSES",
    "ApprovalRecord",
    "Checkpointer",
    "GroupCommitter",
    "JournalRow",
    "LeaseLost",
    "Op",
    "RunRow",
    "StepAlreadyRecorded",
    "Store",
    "event_insert",
    "fence",
    "run_insert",
    "store_path",
]
