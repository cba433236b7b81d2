"""Choosing an engine by name: ``AgentRuntime(engine="local")`` or ``engine="temporal"``.

``local`` is the embedded engine, which drives runs in this process over the runtime's store;
``temporal`` drives them as Temporal workflows (``frontdesk[temporal]``). The name comes from
the runtime's ``engine`` argument, else ``$FRONTDESK_ENGINE``, else ``local``. An unknown name,
and for Temporal an address that is not ``HOST:PORT``, are refused with
:class:`~frontdesk.errors.InvalidInput` before anything starts or is stored.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import InvalidInput
from ..store import Store
from ._agents import AgentRegistry
from ._base import Engine

ENGINES = ("local", "temporal")
"""The engines :func:`make_engine` knows."""
DEFAULT_ENGINE = "local"
"""The engine a runtime uses unless told otherwise."""
ENGINE_ENV = "FRONTDESK_ENGINE"
"""The engine's name when the runtime is given none."""
TASK_QUEUE_ENV = "FRONTDESK_TEMPORAL_TASK_QUEUE"
"""The Temporal task queue when the runtime is given none."""
NAMESPACE_ENV = "FRONTDESK_TEMPORAL_NAMESPACE"
"""The Temporal namespace when the runtime is given none."""
DEFAULT_TASK_QUEUE = "frontdesk"
"""The task queue of the Temporal engine's run workflows unless told otherwise."""


def require_engine(name: Any) -> str:
    """``name`` if it names a known engine; :class:`InvalidInput` otherwise."""
    if not isinstance(name, str) or name not in ENGINES:
        known = ", ".join(repr(n) for n in ENGINES)
        raise InvalidInput(f"unknown engine {name!r}: frontdesk has {known}; nothing started")
    return name


def engine_name(given: str | None) -> str:
    """The engine a runtime uses: ``given``, else ``$FRONTDESK_ENGINE``, else ``local``;
    checked with :func:`require_engine`."""
    if given is None:
        given = os.environ.get(ENGINE_ENV) or DEFAULT_ENGINE
    return require_engine(given)


@dataclass(frozen=True)
class TemporalSettings:
    """Where the Temporal engine's runs go, checked before anything is stored."""

    address: str
    """The server's ``HOST:PORT``."""
    namespace: str
    """The Temporal namespace."""
    task_queue: str
    """The task queue of the run workflows and their activities."""
    worker: bool
    """Whether the runtime runs a worker for the agents it knows."""

    @classmethod
    def resolve(
        cls,
        address: str | None,
        namespace: str | None,
        task_queue: str | None,
        worker: bool,
    ) -> TemporalSettings:
        """The settings from the arguments, else the environment, else the defaults
        (``localhost:7233``, ``default``, ``frontdesk``); :class:`InvalidInput` for an
        address that does not parse or an empty namespace or task queue."""
        from .temporal._client import default_address, parse_address

        target = parse_address(address if address is not None else default_address())
        space = namespace if namespace is not None else os.environ.get(NAMESPACE_ENV) or "default"
        queue = (
            task_queue
            if task_queue is not None
            else os.environ.get(TASK_QUEUE_ENV) or DEFAULT_TASK_QUEUE
        )
        for what, value in (("namespace", space), ("task queue", queue)):
            if not isinstance(value, str) or not value.strip():
                raise InvalidInput(f"the Temporal {what} is empty; nothing started")
        return cls(target, space, queue, bool(worker))


def make_engine(
    name: str,
    *,
    home: Path,
    store: Store,
    registry: AgentRegistry,
    scope: Any = None,
    temporal: TemporalSettings | None = None,
    **options: Any,
) -> Engine:
    """The engine called ``name``, driving runs recorded in ``store``.

    ``scope`` is the object tools reach through :func:`frontdesk.current_runtime` while the
    engine drives them (the runtime); ``options`` go to the engine (``selector``, ``policy``,
    ``lease_ttl``, ``poll_interval``, ``recover``, ``max_turns``, ``compact_every``,
    ``stream_tokens``, ``tracing`` for the local engine). ``temporal`` says where the
    Temporal engine's runs go (default: :meth:`TemporalSettings.resolve` of the environment).
    """
    require_engine(name)
    if name == "temporal":
        from .temporal._engine import TemporalEngine

        settings = temporal or TemporalSettings.resolve(None, None, None, True)
        return TemporalEngine(
            home=home,
            store=store,
            registry=registry,
            scope=scope,
            settings=settings,
            selector=options["selector"],
            max_turns=options.get("max_turns", 10),
            poll_interval=options.get("poll_interval", 1.0),
            recover=options.get("recover", True),
        )
    from .local import LocalEngine

    return LocalEngine(home=home, store=store, registry=registry, scope=scope, **options)
