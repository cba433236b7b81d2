"""The OpenAI Agents plugin as frontdesk configures it, and the activities that go with it.

:func:`frontdesk_plugin` is ``OpenAIAgentsPlugin`` with model calls given a 30 s
``start_to_close_timeout``, a heartbeat timeout (a worker that dies mid-call is noticed in
seconds, not at the timeout) and a retry policy, and with a model provider that follows
frontdesk's model selection (:class:`~._models.SelectedModelProvider`). The plugin brings the
Pydantic data converter, the tracing interceptor and the runner override that workflows need;
frontdesk's own activities (:class:`~._activities.FrontdeskActivities`) are registered beside
its model activity by :func:`frontdesk_worker`.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from datetime import timedelta
from typing import Any

from agents import Agent, Model, ModelProvider

from ...models._select import ModelSelector
from ._activities import FrontdeskActivities, WorkerAgents
from ._extra import missing_extra
from ._models import SelectedModelProvider

try:
    from temporalio.client import Client
    from temporalio.common import RetryPolicy
    from temporalio.openai_agents import ModelActivityParameters, OpenAIAgentsPlugin
    from temporalio.worker import Worker
except ImportError as _exc:  # pragma: no cover - the temporal extra is missing
    raise missing_extra(_exc) from _exc

MODEL_TIMEOUT = timedelta(seconds=30)
"""How long one model call may take."""
MODEL_HEARTBEAT = timedelta(seconds=10)
"""How soon a model call whose worker stopped answering is retried elsewhere."""


def model_params(
    *,
    start_to_close_timeout: timedelta = MODEL_TIMEOUT,
    heartbeat_timeout: timedelta | None = MODEL_HEARTBEAT,
    retry_policy: RetryPolicy | None = None,
) -> ModelActivityParameters:
    """The model activities' parameters: 30 s per call, retried with backoff (5 attempts)."""
    return ModelActivityParameters(
        start_to_close_timeout=start_to_close_timeout,
        heartbeat_timeout=heartbeat_timeout,
        retry_policy=retry_policy
        or RetryPolicy(
            initial_interval=timedelta(seconds=1),
            backoff_coefficient=2.0,
            maximum_interval=timedelta(seconds=20),
            maximum_attempts=5,
        ),
    )


def run_model_params() -> ModelActivityParameters:
    """The model calls of the run workflow: local activities, 30 s per attempt, retried with
    backoff (5 attempts).

    A local activity runs on the worker that runs the workflow, inside its workflow task: no
    server round trip and no extra workflow task per call. Its result is recorded when the
    workflow task completes, so a call a worker was making when it died (or that returned
    just before) is made again by the next worker: a model call may be repeated, a tool call
    (a regular activity) never is. A local activity cannot heartbeat; a dead worker is noticed
    at the workflow task's timeout (10 s).
    """
    params = model_params(heartbeat_timeout=None)
    params.use_local_activity = True
    return params


def frontdesk_plugin(
    agents: Iterable[Agent[Any]] | Mapping[str, Agent[Any]] = (),
    *,
    model: str | Model | None = None,
    provider: ModelProvider | None = None,
    params: ModelActivityParameters | None = None,
) -> OpenAIAgentsPlugin:
    """``OpenAIAgentsPlugin`` with frontdesk's model parameters and model selection.

    ``model`` overrides every agent's model as ``AgentRuntime(model=...)`` does (None:
    ``$FRONTDESK_MODEL``, else each agent's own); ``provider`` is the ``ModelProvider`` for
    model names (None: the SDK's default). A client needs no agents.
    """
    return OpenAIAgentsPlugin(
        model_params=params or model_params(),
        model_provider=SelectedModelProvider(ModelSelector(model, provider), WorkerAgents(agents)),
    )


def frontdesk_worker(
    client: Client,
    agents: Iterable[Agent[Any]] | Mapping[str, Agent[Any]],
    *,
    task_queue: str,
    workflows: Sequence[type],
    home: str | os.PathLike[str] | None = None,
    model: str | Model | None = None,
    provider: ModelProvider | None = None,
    **worker_options: Any,
) -> Worker:
    """A worker for ``workflows`` with frontdesk's activities over ``agents``.

    ``client`` must carry :func:`frontdesk_plugin`. Tools run with ``home`` as their
    ``current_home()``; the conversation items and the tool calls journal are kept there.
    """
    activities = FrontdeskActivities(
        WorkerAgents(agents), home=home, selector=ModelSelector(model, provider)
    )
    return Worker(
        client,
        task_queue=task_queue,
        workflows=workflows,
        activities=activities.all(),
        **worker_options,
    )


__all__ = [
    "MODEL_HEARTBEAT",
    "MODEL_TIMEOUT",
    "frontdesk_plugin",
    "frontdesk_worker",
    "model_params",
    "run_model_params",
]
