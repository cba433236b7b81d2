"""Choosing the model each agent runs on, and calling it with timeouts and retries.

Order of precedence for an agent:

1. an override: ``AgentRuntime(model=...)`` or ``$FRONTDESK_MODEL``. ``"rules"`` selects the
   offline rules baseline; any other name is an OpenAI (or OpenAI-compatible) model;
2. the agent's own ``model`` when it is a ``Model`` instance, used as given;
3. the agent's model name through the SDK's default provider, which needs
   ``OPENAI_API_KEY`` (``OPENAI_BASE_URL`` points it at Ollama, vLLM, a LiteLLM proxy...).

The default provider speaks the Responses API to OpenAI and Chat Completions to any other
``OPENAI_BASE_URL``; ``$FRONTDESK_OPENAI_API`` (``responses`` or ``chat``) chooses otherwise.
Its client never retries on its own: :func:`call_with_retries` is the one retry policy.

The SDK's traces go to OpenAI only when the model does (see :func:`exports_traces`).
"""

from __future__ import annotations

import asyncio
import copy
import json
import os
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlsplit

import openai
import pydantic
from agents import Agent, Model, ModelProvider
from agents.exceptions import ModelBehaviorError
from agents.models.openai_provider import OpenAIProvider

from ..errors import InvalidInput, MalformedModelResponse, ModelNotConfigured

MODEL_ENV = "FRONTDESK_MODEL"
RULES = "rules"
API_ENV = "FRONTDESK_OPENAI_API"
"""Which OpenAI API the default provider speaks: ``responses`` or ``chat``."""
TRACE_EXPORT_ENV = "FRONTDESK_TRACE_EXPORT"
"""``1`` sends the SDK's traces to OpenAI whatever the model; ``0`` never does."""
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


def openai_configured() -> bool:
    """Whether the SDK's default provider has somewhere to send requests: an
    ``OPENAI_API_KEY`` or an ``OPENAI_BASE_URL``."""
    return bool(os.environ.get("OPENAI_API_KEY") or os.environ.get("OPENAI_BASE_URL"))


def is_openai_url(base_url: str | None) -> bool:
    """Whether ``base_url`` (None or empty: the client's default) is OpenAI's own API."""
    if not base_url:
        return True
    host = urlsplit(base_url.strip()).hostname or ""
    return host == "openai.com" or host.endswith(".openai.com")


def exports_traces() -> bool:
    """Whether runs send the SDK's traces to OpenAI.

    ``$FRONTDESK_TRACE_EXPORT`` decides when set (``1``/``true``/``yes``/``on`` or
    ``0``/``false``/``no``/``off``). Otherwise traces go to OpenAI when there is an
    ``OPENAI_API_KEY`` and ``OPENAI_BASE_URL`` does not point elsewhere: a key for a vLLM,
    Ollama or LiteLLM server means nothing to OpenAI's trace ingest, and sending to it only
    prints errors. :class:`InvalidInput` for any other value of the variable.
    """
    flag = os.environ.get(TRACE_EXPORT_ENV, "").strip().lower()
    if flag in ("1", "true", "yes", "on"):
        return True
    if flag in ("0", "false", "no", "off"):
        return False
    if flag:
        raise InvalidInput(
            f"{TRACE_EXPORT_ENV}={os.environ[TRACE_EXPORT_ENV]!r}: use 1 to send traces to "
            "OpenAI or 0 not to (unset: only when the model is OpenAI's)"
        )
    return bool(os.environ.get("OPENAI_API_KEY")) and is_openai_url(
        os.environ.get("OPENAI_BASE_URL")
    )


def is_transient(exc: BaseException) -> bool:
    """Whether a model error is worth retrying: 429, 5xx, timeouts, dropped connections."""
    if isinstance(exc, TimeoutError | asyncio.TimeoutError | ConnectionError):
        return True
    if isinstance(exc, openai.APITimeoutError | openai.APIConnectionError):
        return True
    if isinstance(exc, openai.APIStatusError):
        return exc.status_code == 429 or exc.status_code >= 500
    status = getattr(exc, "status_code", None)
    return isinstance(status, int) and (status == 429 or status >= 500)


def is_malformed(exc: BaseException) -> bool:
    """Whether a model error means the server's answer was not a usable completion."""
    return isinstance(
        exc,
        json.JSONDecodeError
        | pydantic.ValidationError
        | openai.APIResponseValidationError
        | ModelBehaviorError,
    )


def retry_after(exc: BaseException) -> float | None:
    """The seconds a 429 or 503 asks the client to wait (``Retry-After``), if it says."""
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None)
    value = headers.get("retry-after") if headers is not None else None
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None  # an HTTP date: the backoff decides


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
            if is_malformed(exc):
                raise MalformedModelResponse(
                    f"the model sent a malformed response (not retried): "
                    f"{type(exc).__name__}: {exc}"
                ) from exc
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
            delay *= 0.5 + random.random() / 2
            asked = retry_after(exc)
            await sleep(max(delay, min(asked, policy.max_backoff)) if asked else delay)
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
        if not openai_configured():
            raise ModelNotConfigured(HOW_TO_CONFIGURE)
        if self._default_provider is None:
            self._default_provider = _default_provider()
        return self._default_provider.get_model(name)


def _default_provider() -> OpenAIProvider:
    base_url = os.environ.get("OPENAI_BASE_URL") or None
    # OpenAI-compatible servers speak Chat Completions; OpenAI itself, Responses.
    api = os.environ.get(API_ENV, "").strip().lower() or ("chat" if base_url else "responses")
    if api not in ("chat", "responses"):
        raise InvalidInput(
            f"{API_ENV}={os.environ[API_ENV]!r}: use 'responses' (the Responses API) or "
            "'chat' (Chat Completions, what most OpenAI-compatible servers speak)"
        )
    client = openai.AsyncOpenAI(
        api_key=os.environ.get("OPENAI_API_KEY") or "not-needed",
        base_url=base_url,
        # call_with_retries retries within the per-call timeout; a second retry loop inside
        # the client would multiply the attempts and outlast that timeout.
        max_retries=0,
    )
    return OpenAIProvider(openai_client=client, use_responses=api == "responses")


def _rules_model(agent: Agent[Any]) -> Model:
    try:
        from .rules import RulesModel
    except ImportError as exc:  # pragma: no cover - shipped with the package
        raise ModelNotConfigured(f"the rules baseline is not available: {exc}") from exc
    model: Model = RulesModel.for_agent(agent)
    return model
