"""Tool helpers: ``@tool`` and ``current_tool_call()``.

``@tool`` is a drop-in for the SDK's ``@function_tool`` that adds ``approval_required`` and,
for such tools, ``approval_timeout`` with ``on_timeout``. The result is a plain SDK
``FunctionTool`` whose ``needs_approval`` is set, so it works in any agent, with or without
the frontdesk runtime; the timeout rides on its ``needs_approval`` (see :func:`approval_timeout`)
and only the frontdesk runtime acts on it.
"""

from __future__ import annotations

import contextvars
import inspect
import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Literal, get_args, overload

from agents import FunctionTool, RunContextWrapper, function_tool

from .errors import FrontdeskError, InvalidInput


@dataclass(frozen=True)
class ToolCall:
    """What a running tool can know about its own invocation."""

    execution_id: str
    """The run this call belongs to."""
    call_id: str
    """The model's id for this tool call."""
    tool_name: str
    idempotency_key: str
    """Stable across retries and crash recovery: pass it to external APIs (e.g. Stripe)."""
    attempt: int = 1
    """1 on the first try; higher when the call runs again after a crash."""


_current: contextvars.ContextVar[ToolCall | None] = contextvars.ContextVar(
    "frontdesk_current_tool_call", default=None
)


class NoToolCall(FrontdeskError, RuntimeError):
    """``current_tool_call()`` was called outside a tool run by the frontdesk runtime."""


def current_tool_call() -> ToolCall:
    """Return the tool call being executed. Only valid inside a tool run by frontdesk."""
    call = _current.get()
    if call is None:
        raise NoToolCall(
            "current_tool_call() is only available inside a tool executed by the frontdesk runtime"
        )
    return call


def current_tool_call_or_none() -> ToolCall | None:
    """Like :func:`current_tool_call`, but returns ``None`` outside a frontdesk tool call."""
    return _current.get()


@contextmanager
def _tool_call_scope(call: ToolCall) -> Iterator[None]:
    token = _current.set(call)
    try:
        yield
    finally:
        _current.reset(token)


OnTimeout = Literal["reject", "escalate"]
"""What happens to an approval nobody decides in time: the call is rejected (the model is told
it timed out), or the request is escalated (it stays pending and its run records an
``approval_escalated`` event)."""


@dataclass(frozen=True)
class ApprovalTimeout:
    """How long a tool call may wait for approval, and what happens when nobody decides."""

    after: timedelta
    """How long after the request its deadline falls."""
    on_timeout: OnTimeout = "reject"
    """``reject`` or ``escalate``."""


class _ApprovalGate:
    """A ``needs_approval`` callable that carries its tool's :class:`ApprovalTimeout`."""

    def __init__(self, needs: bool | Callable[..., Any], timeout: ApprovalTimeout) -> None:
        self.needs = needs
        self.timeout = timeout

    async def __call__(
        self, ctx: RunContextWrapper[Any], params: dict[str, Any], call_id: str
    ) -> bool:
        if isinstance(self.needs, bool):
            return self.needs
        answer = self.needs(ctx, params, call_id)
        if inspect.isawaitable(answer):
            answer = await answer
        return bool(answer)


def approval_timeout(tool: Any) -> ApprovalTimeout | None:
    """The approval timeout ``@tool`` gave ``tool``, if any."""
    gate = getattr(tool, "needs_approval", None)
    return gate.timeout if isinstance(gate, _ApprovalGate) else None


def _with_timeout(
    needs: bool | Callable[..., Any], timeout: ApprovalTimeout | None
) -> bool | Callable[..., Any]:
    """``needs`` as a ``needs_approval`` setting that also carries ``timeout``."""
    return needs if timeout is None or needs is False else _ApprovalGate(needs, timeout)


def _timeout_of(value: timedelta | float | None, on_timeout: str | None) -> ApprovalTimeout | None:
    if value is None:
        if on_timeout is not None:
            raise InvalidInput("on_timeout needs an approval_timeout to act on")
        return None
    if isinstance(value, timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value)
    else:
        raise InvalidInput(
            f"approval_timeout must be a datetime.timedelta (or seconds), got {value!r}"
        )
    if not math.isfinite(seconds) or seconds <= 0:
        raise InvalidInput(f"approval_timeout must be more than zero, got {value!r}")
    action = "reject" if on_timeout is None else on_timeout
    if action not in get_args(OnTimeout):
        raise InvalidInput(f"on_timeout must be 'reject' or 'escalate', got {on_timeout!r}")
    return ApprovalTimeout(timedelta(seconds=seconds), action)  # type: ignore[arg-type]


@overload
def tool(func: Callable[..., Any], /) -> FunctionTool: ...


@overload
def tool(
    *,
    approval_required: bool = False,
    approval_timeout: timedelta | float | None = None,
    on_timeout: OnTimeout | None = None,
    name_override: str | None = None,
    description_override: str | None = None,
    **function_tool_kwargs: Any,
) -> Callable[[Callable[..., Any]], FunctionTool]: ...


def tool(
    func: Callable[..., Any] | None = None,
    /,
    *,
    approval_required: bool = False,
    approval_timeout: timedelta | float | None = None,
    on_timeout: OnTimeout | None = None,
    name_override: str | None = None,
    description_override: str | None = None,
    **function_tool_kwargs: Any,
) -> FunctionTool | Callable[[Callable[..., Any]], FunctionTool]:
    """Turn a function into an SDK ``FunctionTool``, optionally requiring human approval.

    ``@tool(approval_required=True)`` pauses the run before the tool executes until someone
    approves or rejects the call (``runtime.approve``, ``frontdesk approvals approve``).
    With ``approval_timeout`` (a ``timedelta``, or seconds) a request nobody decides in time
    is rejected (``on_timeout="reject"``, the default: the model is told it timed out) or
    escalated (``on_timeout="escalate"``: it stays pending and the run records an
    ``approval_escalated`` event). The deadline is stored with the request, so it holds across
    restarts. Every other keyword is passed to the SDK's ``function_tool``.
    """
    if approval_required and "needs_approval" in function_tool_kwargs:
        raise TypeError("pass either approval_required or needs_approval, not both")
    needs_approval = function_tool_kwargs.pop("needs_approval", approval_required)
    timeout = _timeout_of(approval_timeout, on_timeout)
    if timeout is not None and needs_approval is False:
        raise InvalidInput(
            "approval_timeout only applies to a tool that needs approval: "
            "add approval_required=True"
        )

    def decorate(f: Callable[..., Any]) -> FunctionTool:
        return function_tool(
            f,
            name_override=name_override,
            description_override=description_override,
            needs_approval=_with_timeout(needs_approval, timeout),
            **function_tool_kwargs,
        )

    if func is not None:
        return decorate(func)
    return decorate


__all__ = [
    "ApprovalTimeout",
    "NoToolCall",
    "OnTimeout",
    "ToolCall",
    "approval_timeout",
    "current_tool_call",
    "current_tool_call_or_none",
    "tool",
]
