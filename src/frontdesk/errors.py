"""Errors raised by frontdesk.

Everything derives from :class:`FrontdeskError`. A caller's mistake (bad input, an unknown
id, deciding an approval twice) is also a :class:`ValueError` through :class:`InvalidInput`,
so code that already catches ``ValueError`` keeps working. Failures of a run or of the store
are not ``ValueError``.
"""

from __future__ import annotations


class FrontdeskError(Exception):
    """Root of every error frontdesk raises."""


class InvalidInput(FrontdeskError, ValueError):
    """The caller passed something frontdesk cannot accept. Nothing was stored."""


class EmptyMessage(InvalidInput):
    """The message is empty or only whitespace."""


class MessageTooLong(InvalidInput):
    """The message is longer than the configured limit."""

    def __init__(self, length: int, limit: int, what: str = "message") -> None:
        super().__init__(
            f"{what} is {length} characters; the limit is {limit} (limit to {limit} characters)"
        )
        self.length = length
        self.limit = limit


class RunNotFound(InvalidInput, LookupError):
    """No run has this execution id."""

    def __init__(self, execution_id: str) -> None:
        super().__init__(f"no run with execution id {execution_id!r}")
        self.execution_id = execution_id


class ApprovalNotFound(InvalidInput, LookupError):
    """No pending approval matches the given id."""


class ApprovalAlreadyDecided(InvalidInput):
    """The approval was already approved or rejected; nothing was changed."""


class RunNotWaiting(InvalidInput):
    """The run is not waiting for an approval; nothing was changed."""


class InvalidRunState(InvalidInput):
    """The requested action does not fit the run's current status (e.g. retrying a completed run)."""


class AgentNotFound(InvalidInput, LookupError):
    """No agent is registered or importable under this reference."""


class InvalidFork(InvalidInput):
    """A fork names a step or replacement agents that do not fit the run; nothing was created."""


class ModelNotConfigured(FrontdeskError):
    """A model would have to come from OpenAI, but no key and no override are set."""


class MalformedModelResponse(FrontdeskError):
    """The model's server answered with something that is not a completion; not retried."""


class RunFailed(FrontdeskError):
    """A run ended in failure. ``execution_id`` and ``error`` describe it."""

    def __init__(self, execution_id: str, error: str | None) -> None:
        super().__init__(f"run {execution_id} failed: {error}")
        self.execution_id = execution_id
        self.error = error


class BudgetExceeded(RunFailed):
    """A conversation turn stopped at its budget before a model call (its run is
    ``budget_exceeded``); nothing of the turn was added to the conversation. Reopen the
    conversation with a raised budget to go on."""

    def __init__(self, execution_id: str, error: str | None) -> None:
        super().__init__(execution_id, error)
        self.args = (f"run {execution_id} stopped: {error}",)


class TurnTimedOut(FrontdeskError, TimeoutError):
    """A conversation turn did not finish within ``turn_timeout``; it goes on in the background.

    ``execution_id`` is the turn's run: its result is read with ``runtime.handle(id).wait()``.
    """

    def __init__(self, execution_id: str, timeout: float) -> None:
        super().__init__(
            f"the turn did not finish within {timeout:g}s and goes on in the background as run "
            f"{execution_id}: read its result with runtime.handle({execution_id!r}).wait() "
            f"(or frontdesk runs show {execution_id}); once it completes, conversation.history() "
            "shows its lines, and the next send() waits for it first"
        )
        self.execution_id = execution_id
        self.timeout = timeout


class StoreError(FrontdeskError):
    """The store cannot be used. The message says why; no data was changed."""


class StoreLocked(StoreError):
    """Another process held the store's write lock for longer than the busy timeout."""


class StoreCorrupt(StoreError):
    """The store file is not a readable frontdesk database."""


class SchemaTooNew(StoreError):
    """The store was written by a newer frontdesk; upgrade frontdesk to open it."""


class StoreUnavailable(StoreError):
    """The store's database cannot be used: its server cannot be reached, the connection to
    it was lost, or its backend cannot be loaded in this process (its extra is not installed).

    A transaction cut off by it committed whole or not at all (the message says when it
    cannot tell which); nothing half-written is kept. Try again once the server is back.
    """


class StoreAuthFailed(StoreError):
    """The store's database server refused the credentials in the database URL."""


class InvalidDatabaseURL(InvalidInput):
    """The database URL is malformed or names a scheme frontdesk does not know; nothing was
    created."""


class StaleConversation(InvalidInput):
    """The caller's view of a conversation is out of date.

    ``history`` holds the conversation's current lines, so a client can refresh.
    """

    def __init__(self, message: str, history: list[str] | None = None) -> None:
        super().__init__(message)
        self.history = list(history or [])


__all__ = [
    "AgentNotFound",
    "ApprovalAlreadyDecided",
    "ApprovalNotFound",
    "BudgetExceeded",
    "EmptyMessage",
    "FrontdeskError",
    "InvalidDatabaseURL",
    "InvalidFork",
    "InvalidInput",
    "InvalidRunState",
    "MalformedModelResponse",
    "MessageTooLong",
    "ModelNotConfigured",
    "RunFailed",
    "RunNotFound",
    "RunNotWaiting",
    "SchemaTooNew",
    "StaleConversation",
    "StoreAuthFailed",
    "StoreCorrupt",
    "StoreError",
    "StoreLocked",
    "StoreUnavailable",
    "TurnTimedOut",
]
