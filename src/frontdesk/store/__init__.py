"""The run store: runs, their journal and events, approvals and conversations.

:class:`Store` is the interface every backend implements, in the domain's words: writes are
data (:mod:`._writes`), reads are named methods. :func:`open_store` picks the backend from a
database URL (``$FRONTDESK_DATABASE_URL``): the home's SQLite file by default
(:class:`~frontdesk.store.sqlite.SQLiteStore`), or PostgreSQL. The engine commits every step
of the runs it drives; the runtime reads history, events and approvals from it and records
approval decisions, and results and the CLI show its records (:class:`RunRow`,
:class:`JournalRow`, :class:`ApprovalRecord`).
"""

from ._approvals import (
    RESERVED_DECIDER_PREFIX,
    TIMEOUT_DECIDER,
    ApprovalRecord,
    check_decider,
    request_op,
)
from ._base import SentWrite, Store, StoreTransaction
from ._changes import Changes, Runnable
from ._commit import GroupCommitter
from ._fence import LeaseLost, RunAlreadyExists, StepAlreadyRecorded, fence
from ._forks import ForkLink, ForkSeed, Lineage, StoredEvent
from ._listing import ConversationRow, Page, RunFilter, app_of, read_pages
from ._records import (
    SETTLED_STATUSES,
    TERMINAL_STATUSES,
    ConversationState,
    JournalRow,
    RunRow,
    StoreInfo,
)
from ._sections import TurnClaim, TurnPlanner
from ._tool_calls import ItemSegment, ToolCallRecord, chain_items
from ._url import (
    DATABASE_URL_ENV,
    database_url,
    open_store,
    parse_url,
    redact_url,
    require_backend,
)
from ._usage import UsageRow, summary_run_prefix
from ._values import decode_value, encode_value, output_text, plain_value
from ._writes import (
    AppendEvent,
    CancelRun,
    ClaimTurn,
    CopyApproval,
    CreateConversation,
    DecideApproval,
    EscalateApproval,
    Fence,
    InsertRun,
    RecordStep,
    RecordTurn,
    ReleaseLease,
    ReleaseLeases,
    ReleaseTurn,
    RenewLeases,
    RequestApproval,
    RequestCancel,
    ResumeRun,
    RetryRun,
    SetConversationBudget,
    SetConversationMemory,
    SetNote,
    SettleRun,
    StoreSummary,
    Write,
    event_insert,
    run_insert,
)
from .sqlite import SCHEMA_VERSION, STORE_FILENAME, SQLiteStore, store_path

__all__ = [
    "DATABASE_URL_ENV",
    "RESERVED_DECIDER_PREFIX",
    "SCHEMA_VERSION",
    "SETTLED_STATUSES",
    "STORE_FILENAME",
    "TERMINAL_STATUSES",
    "TIMEOUT_DECIDER",
    "AppendEvent",
    "ApprovalRecord",
    "CancelRun",
    "Changes",
    "ClaimTurn",
    "ConversationRow",
    "ConversationState",
    "CopyApproval",
    "CreateConversation",
    "DecideApproval",
    "EscalateApproval",
    "Fence",
    "ForkLink",
    "ForkSeed",
    "GroupCommitter",
    "InsertRun",
    "ItemSegment",
    "JournalRow",
    "LeaseLost",
    "Lineage",
    "Page",
    "RecordStep",
    "RecordTurn",
    "ReleaseLease",
    "ReleaseLeases",
    "ReleaseTurn",
    "RenewLeases",
    "RequestApproval",
    "RequestCancel",
    "ResumeRun",
    "RetryRun",
    "RunAlreadyExists",
    "RunFilter",
    "RunRow",
    "Runnable",
    "SQLiteStore",
    "SentWrite",
    "SetConversationBudget",
    "SetConversationMemory",
    "SetNote",
    "SettleRun",
    "StepAlreadyRecorded",
    "Store",
    "StoreInfo",
    "StoreSummary",
    "StoreTransaction",
    "StoredEvent",
    "ToolCallRecord",
    "TurnClaim",
    "TurnPlanner",
    "UsageRow",
    "Write",
    "app_of",
    "chain_items",
    "check_decider",
    "database_url",
    "decode_value",
    "encode_value",
    "event_insert",
    "fence",
    "open_store",
    "output_text",
    "parse_url",
    "plain_value",
    "read_pages",
    "redact_url",
    "request_op",
    "require_backend",
    "run_insert",
    "store_path",
    "summary_run_prefix",
]
