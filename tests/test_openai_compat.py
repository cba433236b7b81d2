"""The support desk on a real model path: the `openai` client and the SDK's own OpenAI models
(Responses and Chat Completions) against a scripted OpenAI-compatible server on loopback, with
responses whole or streamed."""

from __future__ import annotations

import json
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from agents.models.openai_chatcompletions import OpenAIChatCompletionsModel
from agents.models.openai_responses import OpenAIResponsesModel
from agents.tracing import (
    Span,
    Trace,
    TracingProcessor,
    get_trace_provider,
    set_trace_provider,
)
from agents.tracing.provider import DefaultTraceProvider

from frontdesk import AgentRuntime, Event, InvalidInput, Usage
from frontdesk.apps.support import triage_agent
from frontdesk.models._select import (
    ModelSelector,
    RetryPolicy,
    call_with_retries,
    exports_traces,
)
from openai_server import (
    INPUT_TOKENS,
    NOT_A_COMPLETION,
    NOT_JSON,
    OUTPUT_TOKENS,
    OpenAIServer,
    Step,
    call,
    cut,
    fail,
    gated,
    hang,
    malformed,
    paused,
    say,
    stall,
    unfinished,
)

from conftest import PYTHON, child_env

MESSAGE = "Hi, I was charged $99 twice last month (invoice INV-8821). Can I get a refund?"
ANSWER = "INV-8821 was charged twice; I have asked for a refund of the second charge."
BILLING_CASE = [
    call("transfer_to_billing_specialist"),
    call("get_invoice", invoice_id="INV-8821"),
    say(ANSWER),
]
"""The support case as a model would play it: triage hands off, billing looks, answers."""
WAIT_SECONDS = 60.0
"""How long a test waits for anything that should happen at once."""

APIS = {"chat": "chat", "responses": "responses"}
"""What ``$FRONTDESK_OPENAI_API`` selects, by the API the server then sees."""
MODEL_CLASSES = {"chat": OpenAIChatCompletionsModel, "responses": OpenAIResponsesModel}


@pytest.fixture(params=sorted(APIS))
def api(request: pytest.FixtureRequest) -> str:
    """Each test runs once on Chat Completions and once on the Responses API."""
    return str(request.param)


def use_server(monkeypatch: pytest.MonkeyPatch, server: OpenAIServer, api: str) -> None:
    """Configure the environment as a user of an OpenAI-compatible server would."""
    monkeypatch.setenv("OPENAI_API_KEY", "sk-local-test")
    monkeypatch.setenv("OPENAI_BASE_URL", server.url)
    if api == "chat":
        monkeypatch.delenv("FRONTDESK_OPENAI_API", raising=False)  # the default elsewhere
    else:
        monkeypatch.setenv("FRONTDESK_OPENAI_API", api)
    monkeypatch.delenv("FRONTDESK_TRACE_EXPORT", raising=False)


def serve(monkeypatch: pytest.MonkeyPatch, api: str, script: list[Step]) -> Iterator[OpenAIServer]:
    with OpenAIServer(script) as server:
        use_server(monkeypatch, server, api)
        yield server


@pytest.fixture
def billing_case(home: Path, monkeypatch: pytest.MonkeyPatch, api: str) -> Iterator[OpenAIServer]:
    yield from serve(monkeypatch, api, BILLING_CASE)


def assert_billing_case(server: OpenAIServer, api: str, *, streamed: bool = False) -> None:
    """The server saw the case's three model calls, each with its agent's own model, and
    every request asked for a stream, or none did."""
    answered = server.answered()
    assert [s.model for s in answered] == ["gpt-4o-mini", "gpt-4o", "gpt-4o"]
    assert {s.api for s in server.requests} == {api}
    assert server.streamed() == [streamed] * len(server.requests)
    triage_tools = {_tool_name(t) for t in answered[0].body["tools"]}
    billing_tools = {_tool_name(t) for t in answered[1].body["tools"]}
    assert "transfer_to_billing_specialist" in triage_tools
    assert {"get_invoice", "process_refund"} <= billing_tools


def _tool_name(tool: dict[str, Any]) -> str:
    # Chat Completions nests the function; the Responses API does not.
    return str(tool.get("function", tool)["name"])


def tokens(model_calls: int) -> Usage:
    return Usage(
        model_calls,
        model_calls * INPUT_TOKENS,
        model_calls * OUTPUT_TOKENS,
        model_calls * (INPUT_TOKENS + OUTPUT_TOKENS),
    )


# The API a user selects, and a whole run ------------------------------------------------------


def test_the_environment_selects_the_sdk_model_for_each_api(
    home: Path, monkeypatch: pytest.MonkeyPatch, api: str
) -> None:
    with OpenAIServer([]) as server:
        use_server(monkeypatch, server, api)
        model = ModelSelector().resolve(triage_agent)
    assert isinstance(model, MODEL_CLASSES[api])


def test_an_unknown_api_setting_is_a_clear_error(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
    monkeypatch.setenv("FRONTDESK_OPENAI_API", "completions")
    with pytest.raises(
        InvalidInput,
        match=r"FRONTDESK_OPENAI_API='completions': use 'responses' .* or 'chat'",
    ):
        ModelSelector().resolve(triage_agent)


def test_the_support_desk_runs_on_a_compatible_server(
    home: Path, billing_case: OpenAIServer, api: str
) -> None:
    with AgentRuntime(home, recover=False) as runtime:
        result = runtime.run(triage_agent, MESSAGE)
        stored = runtime.get(result.execution_id)
    assert (result.status, result.output, result.error) == ("completed", ANSWER, None)
    assert (result.agent, result.last_agent) == ("support_triage", "billing_specialist")
    assert_billing_case(billing_case, api)
    invoice = next(e for e in result.events if e.type == "tool_result")
    assert invoice.tool_name == "get_invoice" and "INV-8821" in json.dumps(invoice.result)
    assert result.usage == stored.usage == tokens(3)
    assert [e.usage for e in stored.events if e.type in ("message", "done")] == [
        tokens(1),  # the answer's own model call
        tokens(3),  # the run
    ]


def test_the_runtime_stream_follows_a_run_on_a_compatible_server(
    home: Path, monkeypatch: pytest.MonkeyPatch, api: str
) -> None:
    gate = threading.Event()
    script = [*BILLING_CASE[:2], gated(BILLING_CASE[2], gate)]
    with OpenAIServer(script) as server, AgentRuntime(home, recover=False) as runtime:
        use_server(monkeypatch, server, api)
        stream = runtime.stream(triage_agent, MESSAGE, stream_tokens=False)
        seen = []
        for event in stream:
            seen.append(event)
            if event.type == "tool_result":
                # Delivered while the run still waits on its last model call.
                assert runtime.get(event.execution_id).status == "running"
                gate.set()
        result = stream.get_result(timeout=WAIT_SECONDS)
    assert [(e.type, e.agent) for e in seen] == [
        ("agent_start", "support_triage"),
        ("handoff", "support_triage"),
        ("agent_start", "billing_specialist"),
        ("tool_call", "billing_specialist"),
        ("tool_result", "billing_specialist"),
        ("message", "billing_specialist"),
        ("done", "billing_specialist"),
    ]
    assert [e.seq for e in seen] == list(range(1, len(seen) + 1))
    assert seen[-1].output == result.output == ANSWER
    assert seen[-1].usage == tokens(3)
    assert_billing_case(server, api)


# Faults: rate limits, server errors, timeouts, malformed answers ------------------------------


def test_a_429_and_500s_are_retried_with_backoff(
    home: Path, monkeypatch: pytest.MonkeyPatch, api: str
) -> None:
    script = [fail(429), BILLING_CASE[0], fail(500), fail(503), *BILLING_CASE[1:]]
    with OpenAIServer(script) as server, AgentRuntime(home, recover=False) as runtime:
        use_server(monkeypatch, server, api)
        result = runtime.run(triage_agent, MESSAGE)
    assert (result.status, result.output) == ("completed", ANSWER)
    # Each attempt reached the server once: the client does not retry behind the policy.
    assert [s.step.status if s.step else None for s in server.requests] == [
        429, None, 500, 503, None, None,
    ]  # fmt: skip
    assert_billing_case(server, api)
    assert result.usage == tokens(3)  # failed attempts used no tokens


async def test_a_retry_waits_at_least_what_retry_after_asks() -> None:
    request = httpx.Request("POST", "http://127.0.0.1/v1/chat/completions")
    limited = openai.RateLimitError(
        "slow down",
        response=httpx.Response(429, headers={"Retry-After": "3"}, request=request),
        body=None,
    )
    answers: list[Exception | str] = [limited, "ok"]
    waits: list[float] = []

    async def model_call() -> str:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    async def record(seconds: float) -> None:
        waits.append(seconds)

    policy = RetryPolicy(backoff=0.5, max_backoff=8.0)
    assert await call_with_retries(model_call, policy, sleep=record) == "ok"
    assert waits == [3.0]  # the backoff alone would wait 0.25 to 0.5


def test_persistent_server_errors_fail_the_run_after_the_policy_attempts(
    home: Path, monkeypatch: pytest.MonkeyPatch, api: str
) -> None:
    with (
        OpenAIServer([fail(500)] * 10) as server,
        AgentRuntime(home, recover=False, model_retries=2) as runtime,
    ):
        use_server(monkeypatch, server, api)
        result = runtime.run(triage_agent, MESSAGE)
    assert result.status == "failed"
    assert "500" in (result.error or "")
    assert len(server.requests) == 3


def test_a_model_call_past_its_timeout_is_retried_then_fails_the_run(
    home: Path, monkeypatch: pytest.MonkeyPatch, api: str
) -> None:
    # The first call times out once and then succeeds; the second never answers.
    script = [hang(), BILLING_CASE[0], hang(), hang()]
    with (
        OpenAIServer(script) as server,
        AgentRuntime(home, recover=False, model_timeout=3.0, model_retries=1) as runtime,
    ):
        use_server(monkeypatch, server, api)
        result = runtime.run(triage_agent, MESSAGE)
    assert result.status == "failed"
    assert result.error == "TimeoutError: model call timed out after 3s (2 attempts)"
    assert len(server.requests) == 4
    assert [e.type for e in result.events if e.type == "handoff"] == ["handoff"]
    assert result.usage == tokens(1)


@pytest.mark.parametrize("body", [NOT_JSON, NOT_A_COMPLETION], ids=["not-json", "not-a-completion"])
def test_a_malformed_response_fails_the_run_clearly_at_once(
    home: Path, monkeypatch: pytest.MonkeyPatch, api: str, body: bytes
) -> None:
    with (
        OpenAIServer([malformed(body), *BILLING_CASE]) as server,
        AgentRuntime(home, recover=False, model_timeout=WAIT_SECONDS) as runtime,
    ):
        use_server(monkeypatch, server, api)
        result = runtime.run(triage_agent, MESSAGE)
    assert result.status == "failed"
    assert (result.error or "").startswith("the model sent a malformed response (not retried): ")
    assert len(server.requests) == 1


# Streamed responses: text as it arrives, the same journal ------------------------------------


def deltas(events: list[Event]) -> list[Event]:
    return [e for e in events if e.type == "text_delta"]


def attempts(events: list[Event]) -> list[tuple[int, int, str, bool]]:
    """Each text delta as (model call, attempt, text, whether it resets the attempt)."""
    return [
        (d.data["model_call"], d.data["attempt"], d.data["text"], d.data.get("reset", False))
        for d in deltas(events)
    ]


def test_a_streamed_run_shows_the_answer_as_it_arrives(
    home: Path, monkeypatch: pytest.MonkeyPatch, api: str
) -> None:
    resume = threading.Event()
    script = [*BILLING_CASE[:2], paused(BILLING_CASE[2], resume, after=3)]
    with OpenAIServer(script) as server, AgentRuntime(home, recover=False) as runtime:
        use_server(monkeypatch, server, api)
        stream = runtime.stream(triage_agent, MESSAGE)
        seen = []
        for event in stream:
            seen.append(event)
            if event.type == "text_delta" and not resume.is_set():
                # The server holds the rest of the answer: this text is live, nothing of the
                # answer is stored yet.
                stored = runtime.events(event.execution_id)
                assert "message" not in [e.type for e in stored]
                assert runtime.get(event.execution_id).status == "running"
                resume.set()
        result = stream.get_result(timeout=WAIT_SECONDS)
    persisted = [e for e in seen if e.type != "text_delta"]
    assert [(e.type, e.agent) for e in persisted] == [
        ("agent_start", "support_triage"),
        ("handoff", "support_triage"),
        ("agent_start", "billing_specialist"),
        ("tool_call", "billing_specialist"),
        ("tool_result", "billing_specialist"),
        ("message", "billing_specialist"),
        ("done", "billing_specialist"),
    ]
    assert [e.seq for e in persisted] == list(range(1, len(persisted) + 1))
    # The answer's text comes word by word after the tool's result, before its message.
    kinds = [e.type for e in seen]
    first, last = kinds.index("text_delta"), len(kinds) - 1 - kinds[::-1].index("text_delta")
    assert kinds[first - 1] == "tool_result" and kinds[last + 1] == "message"
    assert set(kinds[first : last + 1]) == {"text_delta"}
    message = persisted[5]
    assert {(d.agent, d.seq) for d in deltas(seen)} == {("billing_specialist", 0)}
    assert {(k, n, reset) for k, n, _, reset in attempts(seen)} == {(3, 1, False)}
    assert message.data["model_call"] == 3
    assert len(deltas(seen)) > 3
    assert "".join(text for *_, text, _ in attempts(seen)) == ANSWER
    assert message.output == result.output == ANSWER
    # Every call was a stream; each agent's model reached the server; tokens were counted.
    assert_billing_case(server, api, streamed=True)
    if api == "chat":
        assert {json.dumps(s.body["stream_options"]) for s in server.requests} == {
            '{"include_usage": true}'
        }
    assert result.usage == tokens(3)
    assert (message.usage, persisted[-1].usage) == (tokens(1), tokens(3))
    assert result.events == persisted  # nothing of the stream was persisted


def test_a_429_a_500_and_a_cut_stream_are_retried_while_streaming(
    home: Path, monkeypatch: pytest.MonkeyPatch, api: str
) -> None:
    script = [
        fail(429),
        BILLING_CASE[0],
        fail(500),
        BILLING_CASE[1],
        cut(BILLING_CASE[2], after=2),  # the connection drops two words into the answer
        BILLING_CASE[2],
    ]
    with OpenAIServer(script) as server, AgentRuntime(home, recover=False) as runtime:
        use_server(monkeypatch, server, api)
        stream = runtime.stream(triage_agent, MESSAGE)
        seen = list(stream)
        result = stream.get_result(timeout=WAIT_SECONDS)
    assert (result.status, result.output) == ("completed", ANSWER)
    assert [s.step.status if s.step else None for s in server.requests] == [
        429, None, 500, None, None, None,
    ]  # fmt: skip
    assert_billing_case(server, api, streamed=True)
    # The first attempt's two words, then a reset that voids them, then the whole answer.
    streamed = attempts(seen)
    assert [(k, n, reset) for k, n, _, reset in streamed[:3]] == [
        (3, 1, False), (3, 1, False), (3, 1, True),
    ]  # fmt: skip
    assert ANSWER.startswith("".join(text for *_, text, _ in streamed[:2]))
    assert {(k, n, reset) for k, n, _, reset in streamed[3:]} == {(3, 2, False)}
    assert "".join(text for *_, text, _ in streamed[3:]) == ANSWER
    assert result.usage == tokens(3)  # failed attempts used no tokens


def test_a_stream_cut_on_every_attempt_fails_the_run_clearly(
    home: Path, monkeypatch: pytest.MonkeyPatch, api: str
) -> None:
    with (
        OpenAIServer([cut(say(ANSWER), after=2)] * 3) as server,
        AgentRuntime(home, recover=False, model_retries=1) as runtime,
    ):
        use_server(monkeypatch, server, api)
        stream = runtime.stream(triage_agent, MESSAGE)
        seen = list(stream)
        result = stream.get_result(timeout=WAIT_SECONDS)
    assert result.status == "failed"
    assert (result.error or "").startswith(
        "APIConnectionError: the model's stream was cut off after "
    )
    assert "before response.completed" in (result.error or "")
    assert len(server.requests) == 2
    assert [(n, reset) for _, n, _, reset in attempts(seen)] == [
        (1, False), (1, False), (1, True), (2, False), (2, False), (2, True),
    ]  # fmt: skip
    assert seen[-1].type == "error" and result.usage == Usage()


def test_a_stream_stalled_past_its_timeout_is_retried_then_fails_the_run(
    home: Path, monkeypatch: pytest.MonkeyPatch, api: str
) -> None:
    with (
        OpenAIServer([stall(say(ANSWER), after=2)] * 3) as server,
        AgentRuntime(home, recover=False, model_timeout=3.0, model_retries=1) as runtime,
    ):
        use_server(monkeypatch, server, api)
        stream = runtime.stream(triage_agent, MESSAGE)
        seen = list(stream)
        result = stream.get_result(timeout=WAIT_SECONDS)
    assert result.status == "failed"
    assert result.error == "TimeoutError: model call timed out after 3s (2 attempts)"
    assert len(server.requests) == 2
    assert [(n, reset) for _, n, _, reset in attempts(seen)] == [
        (1, False), (1, False), (1, True), (2, False), (2, False), (2, True),
    ]  # fmt: skip


MALFORMED_STREAMS = {
    "not-json": malformed(NOT_JSON),
    "not-a-completion": malformed(NOT_A_COMPLETION),
}


@pytest.mark.parametrize("fault", sorted(MALFORMED_STREAMS))
def test_a_malformed_stream_fails_the_run_clearly_at_once(
    home: Path, monkeypatch: pytest.MonkeyPatch, api: str, fault: str
) -> None:
    with (
        OpenAIServer([MALFORMED_STREAMS[fault], *BILLING_CASE]) as server,
        AgentRuntime(home, recover=False, model_timeout=WAIT_SECONDS) as runtime,
    ):
        use_server(monkeypatch, server, api)
        stream = runtime.stream(triage_agent, MESSAGE)
        seen = list(stream)
        result = stream.get_result(timeout=WAIT_SECONDS)
    assert result.status == "failed"
    assert (result.error or "").startswith("the model sent a malformed response (not retried): ")
    assert server.streamed() == [True]
    assert [e.type for e in seen] == ["agent_start", "error"]


def test_a_responses_stream_that_ends_without_completing_fails_the_run_clearly(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Chat Completions has no such event: the SDK completes a chunk stream wherever it ends.
    script = [*BILLING_CASE[:2], unfinished(BILLING_CASE[2], after=2), BILLING_CASE[2]]
    with (
        OpenAIServer(script) as server,
        AgentRuntime(home, recover=False, model_timeout=WAIT_SECONDS) as runtime,
    ):
        use_server(monkeypatch, server, "responses")
        stream = runtime.stream(triage_agent, MESSAGE)
        seen = list(stream)
        result = stream.get_result(timeout=WAIT_SECONDS)
    assert result.status == "failed"
    assert result.error == (
        "the model sent a malformed response (not retried): ModelBehaviorError: the model's "
        "stream ended after 6 events without response.completed"
    )
    assert len(server.requests) == 3
    assert [(n, reset) for _, n, _, reset in attempts(seen)] == [
        (1, False), (1, False), (1, True),
    ]  # fmt: skip
    assert result.usage == tokens(2)


def test_a_resumed_streaming_run_replays_its_committed_calls_without_the_server(
    home: Path, monkeypatch: pytest.MonkeyPatch, api: str
) -> None:
    resume = threading.Event()
    refunded = "The second charge on INV-8821 is refunded."
    script = [
        *BILLING_CASE[:2],
        call("process_refund", invoice_id="INV-8821", reason="charged twice"),
        paused(say(refunded), resume, after=1),
    ]
    with (
        OpenAIServer(script) as server,
        AgentRuntime(home, recover=False, stream_tokens=True) as runtime,
    ):
        use_server(monkeypatch, server, api)
        waiting = runtime.run(triage_agent, MESSAGE)  # the blocking run streams too
        assert waiting.status == "waiting_approval"
        assert server.streamed() == [True] * 3
        runtime.approve(waiting.execution_id, by="alice")
        stream = runtime.handle(waiting.execution_id).stream(after=len(waiting.events))
        seen = []
        for event in stream:
            seen.append(event)
            if event.type == "text_delta":
                resume.set()  # the answer's first word came live: let the rest come
        result = stream.get_result(timeout=WAIT_SECONDS)
    assert (result.status, result.output) == ("completed", refunded)
    # The three committed calls replayed from the journal: only the answer reached the server.
    assert len(server.requests) == 4 and server.streamed() == [True] * 4
    assert {(k, n, reset) for k, n, _, reset in attempts(seen)} == {(4, 1, False)}
    assert "".join(text for *_, text, _ in attempts(seen)) == refunded
    assert result.usage == tokens(4)


# Traces stay home unless they are OpenAI's or asked for -----------------------------------------


class TraceRecorder(TracingProcessor):
    """Keeps the names of the traces the SDK starts; sends nothing anywhere."""

    def __init__(self) -> None:
        self.names: list[str] = []

    def on_trace_start(self, trace: Trace) -> None:
        self.names.append(trace.name)

    def on_trace_end(self, trace: Trace) -> None:
        pass

    def on_span_start(self, span: Span[Any]) -> None:
        pass

    def on_span_end(self, span: Span[Any]) -> None:
        pass

    def shutdown(self) -> None:
        pass

    def force_flush(self) -> None:
        pass


@pytest.fixture
def traces() -> Iterator[list[str]]:
    """The traces the SDK exports while the test runs (to a recorder instead of OpenAI)."""
    recorder = TraceRecorder()
    provider = DefaultTraceProvider()
    provider.register_processor(recorder)
    previous = get_trace_provider()
    set_trace_provider(provider)
    try:
        yield recorder.names
    finally:
        set_trace_provider(previous)


@pytest.mark.parametrize(("export", "expected"), [(None, []), ("1", ["frontdesk:support_triage"])])
def test_runs_on_another_server_export_traces_only_when_asked(
    home: Path,
    billing_case: OpenAIServer,
    monkeypatch: pytest.MonkeyPatch,
    traces: list[str],
    export: str | None,
    expected: list[str],
) -> None:
    if export is not None:
        monkeypatch.setenv("FRONTDESK_TRACE_EXPORT", export)
    with AgentRuntime(home, recover=False) as runtime:
        assert runtime.run(triage_agent, MESSAGE).status == "completed"
    assert traces == expected


@pytest.mark.parametrize(
    ("env", "exported"),
    [
        ({}, False),
        ({"OPENAI_API_KEY": "sk-x"}, True),
        ({"OPENAI_API_KEY": "sk-x", "OPENAI_BASE_URL": "https://api.openai.com/v1"}, True),
        ({"OPENAI_API_KEY": "sk-x", "OPENAI_BASE_URL": "http://127.0.0.1:11434/v1"}, False),
        ({"OPENAI_API_KEY": "sk-x", "OPENAI_BASE_URL": "https://openai.example.com/v1"}, False),
        ({"OPENAI_BASE_URL": "http://localhost:8000/v1", "FRONTDESK_TRACE_EXPORT": "1"}, True),
        ({"OPENAI_API_KEY": "sk-x", "FRONTDESK_TRACE_EXPORT": "off"}, False),
        ({"OPENAI_API_KEY": "sk-x", "FRONTDESK_TRACE_EXPORT": " True "}, True),
    ],
)
def test_which_settings_export_traces(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], exported: bool
) -> None:
    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "FRONTDESK_TRACE_EXPORT"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert exports_traces() is exported


def test_a_bad_trace_export_setting_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FRONTDESK_TRACE_EXPORT", "maybe")
    with pytest.raises(InvalidInput, match="FRONTDESK_TRACE_EXPORT='maybe': use 1"):
        exports_traces()


# The command line: support ask and eval support on the same server ------------------------------


def frontdesk(
    home: Path, server: OpenAIServer, *args: str, key: str | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the CLI in a child process pointed at the local server (with ``key``, if given)."""
    env = child_env(COLUMNS="200", OPENAI_BASE_URL=server.url)
    if key is not None:
        env["OPENAI_API_KEY"] = key
    proc = subprocess.run(
        [PYTHON, "-m", "frontdesk", "--home", str(home), *args],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr + proc.stdout
    return proc


@pytest.mark.e2e
def test_support_ask_on_a_compatible_server_prints_no_trace_errors(home: Path) -> None:
    with OpenAIServer(BILLING_CASE) as server:
        proc = frontdesk(home, server, "support", "ask", MESSAGE, key="sk-local-test")
    assert ANSWER in proc.stdout
    assert_billing_case(server, "chat")
    # The process exited, so the SDK flushed its traces: none went to OpenAI.
    assert "Tracing" not in proc.stderr + proc.stdout


@pytest.mark.e2e
@pytest.mark.parametrize("model", [None, "local-llama"])
def test_eval_support_runs_on_the_compatible_server_as_support_ask_does(
    home: Path, tmp_path: Path, model: str | None
) -> None:
    # No key: OPENAI_BASE_URL alone is enough for `support ask`, so it is for the eval.
    report = tmp_path / "report.json"
    chosen = ["--model", model] if model else []
    with OpenAIServer(BILLING_CASE) as server:
        frontdesk(home, server, "eval", "support", *chosen, "--limit", "1", "--json", str(report))
    expected = [model] * 3 if model else ["gpt-4o-mini", "gpt-4o", "gpt-4o"]
    assert server.models() == expected
    summary = json.loads(report.read_text())
    assert summary["routing_accuracy"] == 1.0
