"""Tool helpers: ``@tool`` and ``current_tool_call()``.

``@tool`` is a drop-in for the SDK's ``@function_tool`` that adds ``approval_required``.
The result is a plain SDK ``FunctionTool`` whose ``needs_approval`` is set, so it works in any
agent, with or without the frontdesk runtime.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, overload

from agents import FunctionTool, function_tool

from .errors import FrontdeskError


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


@overload
def tool(func: Callable[..., Any], /) -> FunctionTool: ...


@overload
def tool(
    *,
    approval_required: bool = False,
    name_override: str | None = None,
    description_override: str | None = None,
    **function_tool_kwargs: Any,
) -> Callable[[Callable[..., Any]], FunctionTool]: ...


def tool(
    func: Callable[..., Any] | None = None,
    /,
    *,
    approval_required: bool = False,
    name_override: str | None = None,
    description_override: str | None = None,
    **function_tool_kwargs: Any,
) -> FunctionTool | Callable[[Callable[..., Any]], FunctionTool]:
    """Turn a function into an SDK ``FunctionTool``, optionally requiring human approval.

    ``@tool(approval_required=True)`` pauses the run before the tool executes until someone
    approves or rejects the call (``runtime.approve``, ``frontdesk approvals approve``).
    Every other keyword is passed to the SDK's ``function_tool``.
    """
    if approval_required and "needs_approval" in function_tool_kwargs:
        raise TypeError("pass either approval_required or needs_approval, not both")
    needs_approval = function_tool_kwargs.pop("needs_approval", approval_required)

    def decorate(f: Callable[..., Any]) -> FunctionTool:
        return function_tool(
            f,
            name_override=name_override,
            description_override=description_override,
            needs_approval=needs_approval,
            **function_tool_kwargs,
        )

    if func is not None:
        return decorate(func)
    return decorate


__all__ = ["NoToolCall", "ToolCall", "current_tool_call", "current_tool_call_or_none", "tool"]
