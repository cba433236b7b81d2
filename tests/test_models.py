"""Model selection, timeouts, retries, and what happens without a configured model."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from agents import Agent
from agents.items import ModelResponse
from agents.models.interface import Model
from agents.testing import ScriptedModel, assistant_message
from agents.usage import Usage

from frontdesk import AgentRuntime
from frontdesk.models._select import RetryPolicy, call_with_retries, is_transient

from conftest import WAIT_SECONDS


class FlakyModel(Model):
    """Fails with the given errors first, then answers. Counts calls."""

    def __init__(self, errors: list[Exception], delay: float = 0.0) -> None:
        self.errors = list(errors)
        self.delay = delay
        self.calls = 0

    async def get_response(self, *args: Any, **kwargs: Any) -> ModelResponse:
        self.calls += 1
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.errors:
            raise self.errors.pop(0)
        return ModelResponse(
            output=[assistant_message("finally")], usage=Usage(requests=1), response_id=None
        )

    def stream_response(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError


def status_error(code: int) -> openai.APIStatusError:
    request = httpx.Request("POST", "https://api.openai.com/v1/responses")
    response = httpx.Response(code, request=request)
    cls = openai.RateLimitError if code == 429 else openai.InternalServerError
    return cls(f"status {code}", response=response, body=None)


def test_agent_with_a_model_name_and_no_key_fails_at_once_with_advice(
    runtime: AgentRuntime,
) -> None:
    agent = Agent(name="needs_openai", model="gpt-4o")
    start = time.monotonic()
    result = runtime.run(agent, "hello")
    assert time.monotonic() - start < 5
    assert result.status == "failed"
    for hint in ("OPENAI_API_KEY", "FRONTDESK_MODEL=rules", "OPENAI_BASE_URL"):
        assert hint in (result.error or "")
    assert result.events[-1].type == "error"


def test_agent_with_a_model_instance_needs_no_key(runtime: AgentRuntime) -> None:
    agent = Agent(name="local", model=ScriptedModel([[assistant_message("no key needed")]]))
    assert runtime.run(agent, "hello").output == "no key needed"


def test_model_override_applies_to_every_agent(home: Path) -> None:
    override = ScriptedModel([[assistant_message("from the override")]])
    agent = Agent(name="named", model="gpt-4o")
    with AgentRuntime(home, recover=False, model=override) as runtime:
        assert runtime.run(agent, "hi").output == "from the override"


def test_frontdesk_model_env_names_an_openai_model(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FRONTDESK_MODEL", "gpt-4.1-mini")
    agent = Agent(name="a", model=ScriptedModel([[assistant_message("unused")]]))
    with AgentRuntime(home, recover=False) as runtime:
        assert runtime.model_label == "gpt-4.1-mini"
        result = runtime.run(agent, "hi")
    assert result.status == "failed" and "OPENAI_API_KEY" in (result.error or "")


def test_transient_errors_are_retried_with_backoff(home: Path) -> None:
    model = FlakyModel(
        [
            status_error(429),
            status_error(503),
            openai.APITimeoutError(request=httpx.Request("POST", "https://x")),
        ]
    )
    with AgentRuntime(home, recover=False, model_retries=3) as runtime:
        result = runtime.run(Agent(name="flaky", model=model), "hi")
    assert result.status == "completed" and result.output == "finally"
    assert model.calls == 4


def test_persistent_errors_fail_the_run_and_retry_resumes(home: Path) -> None:
    model = FlakyModel([status_error(500)] * 3)
    agent = Agent(name="down", model=model)
    with AgentRuntime(home, recover=False, model_retries=2) as runtime:
        result = runtime.run(agent, "hi")
        assert result.status == "failed"
        assert "InternalServerError" in (result.error or "")
        assert model.calls == 3
        runtime.register(agent, "down")
        final = runtime.retry(result.execution_id).result(timeout=WAIT_SECONDS)
    assert final.status == "completed" and final.output == "finally"


def test_non_transient_errors_are_not_retried(home: Path) -> None:
    model = FlakyModel([ValueError("bad request shape")])
    with AgentRuntime(home, recover=False, model_retries=3) as runtime:
        result = runtime.run(Agent(name="bad", model=model), "hi")
    assert result.status == "failed" and model.calls == 1
    assert "bad request shape" in (result.error or "")


def test_each_model_call_has_a_timeout(home: Path) -> None:
    model = FlakyModel([], delay=3600.0)  # only the timeout can end this run
    with AgentRuntime(home, recover=False, model_timeout=0.1, model_retries=1) as runtime:
        result = runtime.run(Agent(name="slow", model=model), "hi")
    assert result.status == "failed" and "timed out after 0.1s" in (result.error or "")
    assert model.calls == 2


def test_transient_classification() -> None:
    assert is_transient(status_error(429)) and is_transient(status_error(502))
    assert is_transient(TimeoutError()) and not is_transient(ValueError())
    request = httpx.Request("POST", "https://x")
    assert not is_transient(
        openai.BadRequestError("no", response=httpx.Response(400, request=request), body=None)
    )


async def test_call_with_retries_gives_up_after_max_attempts() -> None:
    attempts = 0

    async def call() -> str:
        nonlocal attempts
        attempts += 1
        raise status_error(503)

    async def no_sleep(_: float) -> None:
        return None

    with pytest.raises(openai.InternalServerError):
        await call_with_retries(call, RetryPolicy(max_attempts=3), sleep=no_sleep)
    assert attempts == 3


def test_run_whose_agent_cannot_be_found_stays_pending_with_a_note(home: Path) -> None:
    agent = Agent(name="ephemeral", model=FlakyModel([]))
    with AgentRuntime(home, recover=False) as first:
        handle = first.start(agent, "hello")
        handle.result(timeout=WAIT_SECONDS)
    # Simulate a run left mid-flight by a process that is gone: make it runnable again.
    import sqlite3

    from frontdesk.store import store_path

    conn = sqlite3.connect(store_path(home))
    conn.execute("UPDATE runs SET status='running', output_json=NULL, lease_owner=NULL")
    conn.commit()
    conn.close()
    with AgentRuntime(home, recover=False) as other:
        assert other.recover() == []
        result = other.get(handle.execution_id)
        assert result.status == "running"
        assert "ephemeral" in (result.note or "") and "register" in (result.note or "")
        other.register(agent, "ephemeral")
        assert other.recover() == [handle.execution_id]
        final = other.handle(handle.execution_id).result(timeout=WAIT_SECONDS)
        assert final.status == "completed", final.error
