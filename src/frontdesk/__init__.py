"""frontdesk: a durable production runtime for OpenAI Agents SDK agents.

Pass any unmodified ``agents.Agent`` to :class:`AgentRuntime` and get crash recovery, human
approval on sensitive tools, a persisted trace of every handoff and tool call, run history
and event streaming.
"""

from ._budget import Budget
from ._prices import Price, Prices
from ._scope import current_runtime
from ._stats import UsageStats, UsageTotals
from .conversations import Conversation
from .debugging import Lineage, RunDiff
from .engine._memory import Memory
from .errors import (
    AgentNotFound,
    ApprovalAlreadyDecided,
    ApprovalNotFound,
    BudgetExceeded,
    EmptyMessage,
    FrontdeskError,
    InvalidDatabaseURL,
    InvalidFork,
    InvalidInput,
    InvalidRunState,
    MalformedModelResponse,
    MessageTooLong,
    ModelNotConfigured,
    RunFailed,
    RunNotFound,
    RunNotWaiting,
    SchemaTooNew,
    StaleConversation,
    StoreCorrupt,
    StoreError,
    StoreLocked,
    StoreUnavailable,
    TurnTimedOut,
)
from .events import Event, EventType, Usage
from .runtime import (
    AgentRuntime,
    EventStream,
    RunHandle,
    RunResult,
    default_runtime,
    run,
    run_async,
    start,
    stream,
)
from .store import ApprovalRecord
from .tools import ToolCall, current_tool_call, tool

__version__ = "0.1.0"

__all__ = [
    "AgentNotFound",
    "AgentRuntime",
    "ApprovalAlreadyDecided",
    "ApprovalNotFound",
    "ApprovalRecord",
    "Budget",
    "BudgetExceeded",
    "Conversation",
    "EmptyMessage",
    "Event",
    "EventStream",
    "EventType",
    "FrontdeskError",
    "InvalidDatabaseURL",
    "InvalidFork",
    "InvalidInput",
    "InvalidRunState",
    "Lineage",
    "MalformedModelResponse",
    "Memory",
    "MessageTooLong",
    "ModelNotConfigured",
    "Price",
    "Prices",
    "RunDiff",
    "RunFailed",
    "RunHandle",
    "RunNotFound",
    "RunNotWaiting",
    "RunResult",
    "SchemaTooNew",
    "StaleConversation",
    "StoreCorrupt",
    "StoreError",
    "StoreLocked",
    "StoreUnavailable",
    "ToolCall",
    "TurnTimedOut",
    "Usage",
    "UsageStats",
    "UsageTotals",
    "__version__",
    "current_runtime",
    "current_tool_call",
    "default_runtime",
    "run",
    "run_async",
    "start",
    "stream",
    "tool",
]
