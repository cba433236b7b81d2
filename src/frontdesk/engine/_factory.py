"""Choosing an engine by name: ``AgentRuntime(engine="local")``.

``local`` is the embedded engine, which drives runs in this process over the runtime's store.
An unknown name is refused with :class:`~frontdesk.errors.InvalidInput` before anything starts.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import InvalidInput
from ..store import Store
from ._agents import AgentRegistry
from ._base import Engine

ENGINES = ("local",)
"""The engines :func:`make_engine` knows."""
DEFAULT_ENGINE = "local"
"""The engine a runtime uses unless told otherwise."""


def require_engine(name: Any) -> str:
    """``name`` if it names a known engine; :class:`InvalidInput` otherwise."""
    if not isinstance(name, str) or name not in ENGINES:
        known = ", ".join(repr(n) for n in ENGINES)
        raise InvalidInput(f"unknown engine {name!r}: frontdesk has {known}; nothing started")
    return name


def make_engine(
    name: str,
    *,
    home: Path,
    store: Store,
    registry: AgentRegistry,
    scope: Any = None,
    **options: Any,
) -> Engine:
    """The engine called ``name``, driving runs recorded in ``store``.

    ``scope`` is the object tools reach through :func:`frontdesk.current_runtime` while the
    engine drives them (the runtime); ``options`` go to the engine (``selector``, ``policy``,
    ``lease_ttl``, ``poll_interval``, ``recover``, ``max_turns``, ``compact_every``,
    ``stream_tokens``, ``tracing`` for the local engine).
    """
    require_engine(name)
    from .local import LocalEngine

    return LocalEngine(home=home, store=store, registry=registry, scope=scope, **options)
