"""Running a Temporal worker for an app until it is stopped: ``frontdesk worker --engine
temporal --app NAME``.

An app on Temporal is its workflows, the agents its activities look tools up in, and its task
queue (:class:`TemporalApp`); :data:`APPS` names the ones frontdesk ships. :func:`serve`
connects (a bounded wait, a clear error), runs the worker with frontdesk's plugin and
activities, and returns when ``stop`` is set (Ctrl-C, SIGTERM), after the worker shut down.

The activities run in the scope of a runtime on the worker's home that drives nothing itself:
tools find it with :func:`frontdesk.current_runtime`, an app's data is read through its store
(one pool for the worker, not a store opened per call), and the tool calls journal and the
conversation items are kept in that store, shared by every worker of the deployment.
"""

from __future__ import annotations

import asyncio
import importlib
import os
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from agents import Agent, Model, ModelProvider, set_trace_processors

from ...errors import InvalidInput
from ...models._select import ModelSelector, exports_traces
from ._activities import FrontdeskActivities, WorkerAgents
from ._client import DEFAULT_NAMESPACE, connect
from ._plugin import frontdesk_plugin, model_params

try:
    from temporalio.openai_agents import ModelActivityParameters
    from temporalio.worker import Worker
except ImportError as _exc:  # pragma: no cover - the temporal extra is missing
    from ._extra import missing_extra

    raise missing_extra(_exc) from _exc


@dataclass(frozen=True)
class TemporalApp:
    """What a worker runs for one app."""

    name: str
    """The app's name, as ``--app`` takes it."""
    workflows: Sequence[type]
    """The workflow classes."""
    agents: Mapping[str, Agent[Any]]
    """The agents whose tools and handoffs the activities run, by name."""
    task_queue: str
    """The task queue the workflows and activities are served on."""
    model_params: ModelActivityParameters = field(default_factory=model_params)
    """How model calls are timed out and retried."""


APPS: Mapping[str, str] = {"airline": "frontdesk.apps.airline.workflow:TEMPORAL_APP"}
"""The apps frontdesk ships for Temporal, by name: where each :class:`TemporalApp` is."""


def temporal_app(name: str) -> TemporalApp:
    """The app called ``name``; :class:`InvalidInput` naming the known ones otherwise."""
    ref = APPS.get(name)
    if ref is None:
        known = ", ".join(sorted(APPS))
        raise InvalidInput(f"no app {name!r} runs on Temporal; choose one of: {known}")
    module, _, attr = ref.partition(":")
    app: TemporalApp = getattr(importlib.import_module(module), attr)
    return app


async def run_worker(
    app: TemporalApp,
    address: str,
    stop: asyncio.Event,
    *,
    namespace: str = DEFAULT_NAMESPACE,
    home: str | os.PathLike[str] | None = None,
    model: str | Model | None = None,
    provider: ModelProvider | None = None,
    params: ModelActivityParameters | None = None,
    on_ready: Callable[[], None] | None = None,
) -> None:
    """Serve ``app`` on the server at ``address`` until ``stop`` is set."""
    from ...runtime import AgentRuntime

    plugin = frontdesk_plugin(
        app.agents, model=model, provider=provider, params=params or app.model_params
    )
    client = await connect(address, namespace, plugins=[plugin])
    # The scope tools run in: its store holds the journal and the app's data. It drives no
    # run itself (the embedded engine, recovering nothing).
    scope = await asyncio.to_thread(
        AgentRuntime, home, engine="local", recover=False, model=model, model_provider=provider
    )
    try:
        activities = FrontdeskActivities(
            WorkerAgents(app.agents),
            home=scope.home,
            selector=ModelSelector(model, provider),
            store=scope.store,
            scope=scope,
        )
        worker = Worker(
            client, task_queue=app.task_queue, workflows=app.workflows, activities=activities.all()
        )
        async with worker:
            if on_ready is not None:
                on_ready()
            await stop.wait()
    finally:
        await asyncio.to_thread(scope.close)


def serve(
    app: TemporalApp,
    address: str,
    *,
    namespace: str = DEFAULT_NAMESPACE,
    home: str | os.PathLike[str] | None = None,
    model: str | Model | None = None,
    provider: ModelProvider | None = None,
    params: ModelActivityParameters | None = None,
    stop: threading.Event | None = None,
    on_ready: Callable[[], None] | None = None,
) -> None:
    """:func:`run_worker` on its own event loop until ``stop`` is set (or Ctrl-C).

    For a process of its own (``frontdesk worker``): the SDK's traces are sent to OpenAI only
    when the model is OpenAI's (see ``exports_traces``), as on the embedded engine.
    """
    stop = stop or threading.Event()
    if not exports_traces():
        set_trace_processors([])

    async def main() -> None:
        stopping = asyncio.Event()
        loop = asyncio.get_running_loop()

        def watch() -> None:
            stop.wait()
            try:
                loop.call_soon_threadsafe(stopping.set)
            except RuntimeError:  # the loop has already ended
                pass

        threading.Thread(target=watch, name="frontdesk-temporal-stop", daemon=True).start()
        await run_worker(
            app,
            address,
            stopping,
            namespace=namespace,
            home=home,
            model=model,
            provider=provider,
            params=params,
            on_ready=on_ready,
        )

    asyncio.run(main())


__all__ = ["APPS", "TemporalApp", "run_worker", "serve", "temporal_app"]
