"""Which runtime drives the code running now: how a tool reaches the runtime that runs it.

An engine marks every run it drives with the runtime it drives it for, wherever the run's
code executes (the engine's thread, a caller's event loop, a sync tool's worker thread, an
activity on another machine that rebuilds the runtime). A tool then starts runs, reads history
or finds its app's database through :func:`current_runtime`, instead of opening a store or a
runtime of its own.
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from .errors import FrontdeskError

if TYPE_CHECKING:
    from .runtime import AgentRuntime

_runtime: contextvars.ContextVar[Any] = contextvars.ContextVar("frontdesk_runtime", default=None)


class NoRuntime(FrontdeskError, RuntimeError):
    """:func:`current_runtime` was called outside a run driven by a frontdesk runtime."""


def current_runtime() -> AgentRuntime:
    """The runtime driving the current run: in a tool (or an agent hook) that frontdesk runs,
    the :class:`~frontdesk.AgentRuntime` it runs for. :class:`NoRuntime` elsewhere."""
    runtime = _runtime.get()
    if runtime is None:
        raise NoRuntime(
            "current_runtime() is only available inside a run driven by a frontdesk runtime"
        )
    result: AgentRuntime = runtime
    return result


def current_runtime_or_none() -> AgentRuntime | None:
    """Like :func:`current_runtime`, but None outside a run driven by frontdesk."""
    runtime: AgentRuntime | None = _runtime.get()
    return runtime


@contextmanager
def driving_for(runtime: Any) -> Iterator[None]:
    """Make ``runtime`` the value of :func:`current_runtime` within the block (engines wrap
    the runs they drive in it)."""
    token = _runtime.set(runtime)
    try:
        yield
    finally:
        _runtime.reset(token)
