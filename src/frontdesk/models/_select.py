"""Choosing the model each agent runs on, and calling it with timeouts and retries.

Order of precedence for an agent:

1. an override: ``AgentRuntime(model=...)`` or ``$FRONTDESK_MODEL``. ``"rules"`` selects the
   offline rules baseline; any other name is an OpenAI (or OpenAI-compatible) model;
2. the agent's own ``model`` when it is a ``Model`` instance, used as given;
3. the agent's model name through the SDK's default provider, which needs
   ``OPENAI_API_KEY`` (``OPENAI_BASE_URL`` points it at Ollama, vLLM, a LiteLLM proxy...).
"""

from __future__ import annotations

import asyncio
import copy
import os
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from agents import Agent, Model, ModelProvider
from agents.models.openai_provider import OpenAIProvider

from ..errors import ModelNotConfigured

MODEL_ENV = "FRONTDESK_MODEL"
RULES = "rules"
INSTANCE_PREFIX = "instance:"
"""How a run records a ``Model`` instance override: ``instance:<class name>``."""

T = TypeVar("T")

HOW_TO_CONFIGURE = (
    "no model is configured: set OPENAI_API_KEY (and optionally OPENAI_BASE_URL for an "
    "OpenAI-compatible server such as Ollama, vLLM or a LiteLLM proxy), or set "
    "FRONTDESK_MODEL=rules (or AgentRuntime(model='rules') / --model rules) for the offline "
    "rules baseline, or give the agent a Model instance"
)


@dataclass(frozen=True)
class RetryPolicy:
    """How model calls are timed out and retried."""

    timeout: float = 30.0
    """Seconds one model call may take."""
    max_attempts: int = 4
    """Attempts per model call, the first included."""
    backoff: float = 0.5
    """Seconds before the second attempt; doubles each time (with jitter)."""
    max_backoff: float = 8.0


def is_transient(exc: BaseException) -> bool:
    """Whether a model error is worth retrying: 429, 5xx, timeouts, dropped connections."""
    if isinstance(exc, TimeoutError | asyncio.TimeoutError | ConnectionError):
        return True
    try:
        import openai
    except ImportError:  # pragma: no cover - openai is a dependency of openai-agents
        return False
    if isinstance(exc, openai.APITimeoutError | openai.APIConnectionError):
        return True
    if isinstance(exc, openai.APIStatusError):
        return exc.status_code == 429 or exc.status_code >= 500
    status = getattr(exc, "status_code", None)
    return isinstance(status, int) and (status == 429 or status >= 500)


async def call_with_retries(
    call: Callable[[], Awaitable[T]],
    policy: RetryPolicy,
    *,
    sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
) -> T:
    """Await ``call()`` with ``policy.timeout`` per attempt, retrying transient errors."""
    attempt = 1
    while True:
        try:
            # asyncio.timeout, unlike wait_for, does not wrap the call in a task of its own.
            async with asyncio.timeout(policy.timeout):
                return await call()
        except Exception as exc:
            if attempt >= policy.max_attempts or not is_transient(exc):
                if isinstance(exc, asyncio.TimeoutError | TimeoutError) and not str(exc):
                    raise TimeoutError(
                        f"model call timed out after {policy.timeout:g}s "
                        f"({attempt} attempt{'s' if attempt > 1 else ''})"
                    ) from exc
                raise
            delay = min(policy.max_backoff, policy.backoff * 2 ** (attempt - 1))
            # Jitter spreads retries of many concurrent runs; it only affects timing, never
            # what is recorded, so replay stays deterministic.
            await sleep(delay * (0.5 + random.random() / 2))
            attempt += 1


class ModelSelector:
    """Resolves the ``Model`` for each agent of a run."""

    def __init__(
        self, override: str | Model | None = None, provider: ModelProvider | None = None
    ) -> None:
        if override is None:
            override = os.environ.get(MODEL_ENV) or None
        self.override = override
        self._provider = provider
        self._default_provider: ModelProvider | None = None

    @property
    def is_rules(self) -> bool:
        """Whether every agent runs on the offline rules baseline."""
        return isinstance(self.override, str) and self.override.strip().lower() == RULES

    @property
    def persistable(self) -> str | None:
        """The override as stored with a run: its name, ``instance:<class>`` for a Model
        instance (which only a process given such an instance can provide), or None."""
        if self.override is None or isinstance(self.override, str):
            return self.override
        return f"{INSTANCE_PREFIX}{type(self.override).__name__}"

    def with_override(self, override: str | None) -> ModelSelector:
        """This selector's provider with another override; None means each agent's own
        model (never ``$FRONTDESK_MODEL``)."""
        selector = copy.copy(self)
        selector.override = override
        return selector

    @property
    def label(self) -> str | None:
        """A label recorded with each run, e.g. for the rules baseline."""
        if self.is_rules:
            from .rules import RULES_LABEL

            return RULES_LABEL
        if isinstance(self.override, str):
            return self.override
        return None

    def resolve(self, agent: Agent[Any]) -> Model:
        """The model ``agent`` runs on; :class:`ModelNotConfigured` if there is none."""
        if self.is_rules:
            return _rules_model(agent)
        if isinstance(self.override, Model):
            return self.override
        if isinstance(self.override, str):
            return self._provider_model(self.override)
        if isinstance(agent.model, Model):
            return agent.model
        return self._provider_model(agent.model)

    def _provider_model(self, name: str | None) -> Model:
        if self._provider is not None:
            return self._provider.get_model(name)
        if not (os.environ.get("OPENAI_API_KEY") or os.environ.get("OPENAI_BASE_URL")):
            raise ModelNotConfigured(HOW_TO_CONFIGURE)
        if self._default_provider is None:
            base_url = os.environ.get("OPENAI_BASE_URL")
            # OpenAI-compatible servers speak Chat Completions; OpenAI itself, Responses.
            api = os.environ.get("FRONTDESK_OPENAI_API", "chat" if base_url else "responses")
            self._default_provider = OpenAIProvider(
                api_key=os.environ.get("OPENAI_API_KEY") or "not-needed",
                base_url=base_url,
                use_responses=api != "chat",
            )
        return self._default_provider.get_model(name)


def _rules_model(agent: Agent[Any]) -> Model:
    try:
        from .rules import RulesModel
    except ImportError as exc:  # pragma: no cover - shipped with the package
        raise ModelNotConfigured(f"the rules baseline is not available: {exc}") from exc
    model: Model = RulesModel.for_agent(agent)
    return model
