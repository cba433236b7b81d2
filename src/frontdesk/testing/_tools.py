"""``call_tool``: unit-test one tool as the runtime runs it, inside a tool-call scope."""

from __future__ import annotations

import asyncio
import functools
import json
import uuid
from collections.abc import Callable, Coroutine, Mapping
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

from agents import FunctionTool
from agents.tool_context import ToolContext

from .._scope import driving_for
from ..errors import InvalidInput
from ..tools import ToolCall, _tool_call_scope

if TYPE_CHECKING:
    from ..runtime import AgentRuntime

P = ParamSpec("P")
R = TypeVar("R")


def _raw_arguments(tool: FunctionTool, args: Mapping[str, Any] | str | None) -> str:
    if args is None:
        return "{}"
    if isinstance(args, str):
        return args
    if not isinstance(args, Mapping):
        raise InvalidInput(
            f"call_tool({tool.name!r}): args must be a mapping or a JSON string,"
            f" not {type(args).__name__}"
        )
    try:
        return json.dumps(dict(args))
    except (TypeError, ValueError) as error:
        raise InvalidInput(f"call_tool({tool.name!r}): args are not JSON: {error}") from error


async def call_tool(
    tool: FunctionTool,
    args: Mapping[str, Any] | str | None = None,
    *,
    context: Any = None,
    idempotency_key: str | None = None,
    execution_id: str = "call-tool",
    call_id: str | None = None,
    attempt: int = 1,
    runtime: AgentRuntime | None = None,
) -> Any:
    """Run ``tool`` once with ``args``, as the runtime does, and return what it returns.

    The tool's own ``on_invoke_tool`` runs with the arguments as the model would send them
    (``args`` as a mapping, or a raw JSON string to test malformed input) and ``context`` as
    the run context, inside a tool-call scope: :func:`frontdesk.current_tool_call` gives the
    ``execution_id``, ``call_id``, ``attempt`` and ``idempotency_key``. Every call gets a
    fresh call id and idempotency key unless given; pass the same ``idempotency_key`` again
    to test a retry after a crash. The tool runs as if approved (``needs_approval`` is not
    asked) and, like the runner, the SDK turns an exception into an error message result.
    With ``runtime`` the tool runs as if that runtime drove it: :func:`frontdesk.current_runtime`
    gives it.
    """
    if not isinstance(tool, FunctionTool):
        raise InvalidInput(
            f"call_tool needs an agents.FunctionTool (e.g. made with @tool or @function_tool),"
            f" not {type(tool).__name__}"
        )
    raw = _raw_arguments(tool, args)
    call = ToolCall(
        execution_id=execution_id,
        call_id=call_id or f"call_{uuid.uuid4().hex[:24]}",
        tool_name=tool.name,
        idempotency_key=idempotency_key or f"fd_test_{uuid.uuid4().hex}",
        attempt=attempt,
    )
    tool_context = ToolContext(
        context, tool_name=tool.name, tool_call_id=call.call_id, tool_arguments=raw
    )
    with _tool_call_scope(call), driving_for(runtime):
        return await tool.on_invoke_tool(tool_context, raw)


def _synchronous(run: Callable[P, Coroutine[Any, Any, R]]) -> Callable[P, R]:
    """``run`` for synchronous callers, with its signature and its own name and docstring."""
    name = f"{run.__name__}_sync"

    @functools.wraps(run)
    def run_sync(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return asyncio.run(run(*args, **kwargs))
        raise InvalidInput(f"{name} cannot run inside an event loop; await {run.__name__}(...)")

    run_sync.__name__ = run_sync.__qualname__ = name
    run_sync.__doc__ = (
        f":func:`{run.__name__}` for synchronous tests: it runs its own event loop.\n\n"
        f"Inside a running event loop (an ``async def`` test), ``await {run.__name__}(...)``."
    )
    return run_sync


call_tool_sync = _synchronous(call_tool)
