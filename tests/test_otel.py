"""OpenTelemetry traces of runs: one trace per run, GenAI attributes, the same trace across
processes, no span twice, customer text only when asked for.

Spans are read back through the SDK's in-memory exporter, or through a real OTLP/HTTP
receiver on a loopback port that decodes what the SDK's exporter sends.
"""

from __future__ import annotations

import gzip
import subprocess
import textwrap
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from agents import Agent, function_tool
from agents.testing import ModelStep, ScriptedModel, assistant_message, function_call
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import frontdesk
import frontdesk.otel
from frontdesk import AgentRuntime, InvalidInput
from frontdesk.apps.support import triage_agent
from frontdesk.otel import CAPTURE_CONTENT_ENV, trace_id_for

from conftest import PYTHON, WAIT_SECONDS, Children, child_env, sigkill, wait_for_marker, wait_until

REFUND = "Hi, I was charged $99 twice last month (invoice INV-8821). Can I get a refund?"
"""Goes to billing, looks the invoice and the account up, then waits to refund."""
QUESTION = "Can you explain invoice INV-8821?"
"""Goes to billing, looks the invoice and the account up, and answers."""


# Spans, from either source -------------------------------------------------------------------


@dataclass(frozen=True)
class Span:
    """A finished span as exported: what the assertions look at."""

    name: str
    trace_id: str
    span_id: int
    parent_id: int | None
    attributes: dict[str, Any]
    failed: bool = False

    def __getitem__(self, key: str) -> Any:
        return self.attributes[key]


def from_sdk(spans: Iterable[ReadableSpan]) -> list[Span]:
    out = []
    for span in spans:
        assert span.context is not None
        out.append(
            Span(
                span.name,
                f"{span.context.trace_id:032x}",
                span.context.span_id,
                span.parent.span_id if span.parent is not None else None,
                dict(span.attributes or {}),
                not span.status.is_ok and span.status.status_code.name == "ERROR",
            )
        )
    return out


def from_otlp(request: ExportTraceServiceRequest) -> list[tuple[dict[str, Any], Span]]:
    """Each span of an OTLP export with its resource's attributes."""
    out = []
    for resource_spans in request.resource_spans:
        resource = _values(resource_spans.resource.attributes)
        for scope in resource_spans.scope_spans:
            for span in scope.spans:
                parent = int.from_bytes(span.parent_span_id, "big") if span.parent_span_id else None
                out.append(
                    (
                        resource,
                        Span(
                            span.name,
                            span.trace_id.hex(),
                            int.from_bytes(span.span_id, "big"),
                            parent,
                            _values(span.attributes),
                            span.status.code == span.status.STATUS_CODE_ERROR,
                        ),
                    )
                )
    return out


def _values(pairs: Any) -> dict[str, Any]:
    return {kv.key: getattr(kv.value, kv.value.WhichOneof("value")) for kv in pairs}


def named(spans: list[Span], prefix: str) -> list[Span]:
    return [s for s in spans if s.name.startswith(prefix)]


def one(spans: list[Span], name: str) -> Span:
    found = [s for s in spans if s.name == name]
    assert len(found) == 1, (name, [s.name for s in spans])
    return found[0]


def check_one_trace(spans: list[Span], execution_id: str) -> dict[int, Span]:
    """Every span is in the run's trace, carries its execution id and an id of its own, and
    hangs under another span of the trace, but for the one root: the run span. Returns the
    spans by id."""
    by_id = {s.span_id: s for s in spans}
    assert len(by_id) == len(spans), "two spans share an id"
    assert {s.trace_id for s in spans} == {trace_id_for(execution_id)}
    assert all(s["frontdesk.execution_id"] == execution_id for s in spans)
    roots = [s for s in spans if s.parent_id is None]
    assert [s["gen_ai.operation.name"] for s in roots] == ["invoke_workflow"]
    for span in spans:
        if span.parent_id is not None:
            assert span.parent_id in by_id, f"{span.name}'s parent is not in the trace"
    return by_id


def parent(by_id: dict[int, Span], span: Span) -> Span:
    assert span.parent_id is not None, f"{span.name} has no parent"
    assert span.parent_id in by_id, f"{span.name}'s parent is not in the trace"
    return by_id[span.parent_id]


# Fixtures ----------------------------------------------------------------------------------------


@dataclass
class Traced:
    """A tracer provider with an in-memory exporter."""

    provider: TracerProvider
    exporter: InMemorySpanExporter

    def spans(self) -> list[Span]:
        return from_sdk(self.exporter.get_finished_spans())


def traced() -> Traced:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return Traced(provider, exporter)


class Receiver:
    """An OTLP/HTTP trace receiver on a loopback port: decodes each export it is sent."""

    def __init__(self) -> None:
        self.received: list[tuple[dict[str, Any], Span]] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                if self.path != "/v1/traces":
                    self.send_error(404)
                    return
                request = ExportTraceServiceRequest.FromString(body)
                with receiver.lock:
                    receiver.received.extend(from_otlp(request))
                reply = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def spans(self) -> list[Span]:
        with self.lock:
            return [span for _, span in self.received]

    def resources(self) -> list[dict[str, Any]]:
        with self.lock:
            return [resource for resource, _ in self.received]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(WAIT_SECONDS)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    try:
        yield server
    finally:
        server.close()


def model_calls(spans: list[Span]) -> list[int]:
    """The numbers of the model calls that have a span, in order."""
    return sorted(s["frontdesk.model_call"] for s in spans if s.name.startswith("chat"))


def approve_until_done(runtime: AgentRuntime, execution_id: str) -> str:
    """Drive the run to its end from ``runtime``, approving what it asks; its status."""

    def settled() -> str | None:
        runtime.recover()
        status = runtime.handle(execution_id).status
        if status == "waiting_approval":
            runtime.approve(execution_id, by="ops@example.com")
        elif status in ("completed", "failed", "cancelled"):
            return status
        return None

    return wait_until(settled, f"run {execution_id} to finish")


# One run, one trace --------------------------------------------------------------------------


def test_a_support_run_is_one_trace_of_genai_spans(home: Path) -> None:
    spans_of = traced()
    with AgentRuntime(home, model="rules", recover=False, tracer_provider=spans_of.provider) as rt:
        result = rt.run(triage_agent, QUESTION)
    assert result.status == "completed"
    spans = spans_of.spans()
    by_id = check_one_trace(spans, result.execution_id)

    run = one(spans, "invoke_workflow frontdesk:support_triage")
    assert run["gen_ai.workflow.name"] == "frontdesk:support_triage"
    assert run["frontdesk.run.status"] == "completed"
    assert run["gen_ai.usage.input_tokens"] == result.usage.input_tokens > 0
    assert run["gen_ai.usage.output_tokens"] == result.usage.output_tokens > 0

    triage = one(spans, "invoke_agent support_triage")
    billing = one(spans, "invoke_agent billing_specialist")
    for agent, name in ((triage, "support_triage"), (billing, "billing_specialist")):
        assert agent["gen_ai.operation.name"] == "invoke_agent"
        assert agent["gen_ai.agent.name"] == name
        assert parent(by_id, agent) is run

    chats = named(spans, "chat ")
    assert model_calls(spans) == list(range(1, len(chats) + 1)) and len(chats) >= 3
    for chat in chats:
        assert chat.name == "chat rules"
        assert chat["gen_ai.operation.name"] == "chat"
        assert chat["gen_ai.request.model"] == "rules"
        assert chat["gen_ai.provider.name"] == "frontdesk.rules"
        assert chat["gen_ai.usage.input_tokens"] > 0 and chat["gen_ai.usage.output_tokens"] > 0
        assert parent(by_id, chat)["gen_ai.agent.name"] == chat["gen_ai.agent.name"]
    assert sum(c["gen_ai.usage.input_tokens"] for c in chats) == run["gen_ai.usage.input_tokens"]

    handoff = one(spans, "handoff billing_specialist")
    assert handoff["gen_ai.agent.name"] == "support_triage"
    assert handoff["frontdesk.handoff.to"] == "billing_specialist"
    assert parent(by_id, handoff) is triage

    tools = named(spans, "execute_tool ")
    assert sorted(t["gen_ai.tool.name"] for t in tools) == ["get_account", "get_invoice"]
    calls = {e.call_id for e in result.events if e.type == "tool_call"}
    for tool in tools:
        assert tool["gen_ai.operation.name"] == "execute_tool"
        assert tool["gen_ai.tool.type"] == "function"
        assert tool["gen_ai.tool.call.id"] in calls
        assert parent(by_id, tool) is billing
    assert not any(s.failed for s in spans)


def test_an_approved_call_has_its_wait_and_the_continuation_joins_the_trace(home: Path) -> None:
    first, later = traced(), traced()
    with AgentRuntime(home, model="rules", recover=False, tracer_provider=first.provider) as rt:
        paused = rt.run(triage_agent, REFUND)
    assert paused.status == "waiting_approval"
    before = first.spans()
    # Nothing has ended but the first agent: the run and billing's turn go on after the wait.
    assert not named(before, "invoke_workflow") and not named(before, "approval")
    assert [s.name for s in named(before, "invoke_agent")] == ["invoke_agent support_triage"]

    # Days later, in another runtime: the decision, then the rest of the run.
    with AgentRuntime(home, model="rules", recover=False, tracer_provider=later.provider) as rt:
        rt.approve(paused.execution_id, by="supervisor", note="duplicate confirmed")
        done = rt.handle(paused.execution_id).result(timeout=WAIT_SECONDS)
    assert done.status == "completed"
    after = later.spans()
    spans = before + after
    by_id = check_one_trace(spans, paused.execution_id)
    assert model_calls(spans) == list(range(1, len(named(spans, "chat ")) + 1))

    wait = one(after, "approval process_refund")
    approval = done.approvals[0]
    assert wait["frontdesk.approval.id"] == approval.approval_id
    assert wait["frontdesk.approval.status"] == "approved"
    assert wait["frontdesk.approval.decided_by"] == "supervisor"
    assert wait["gen_ai.tool.name"] == "process_refund"
    assert wait["gen_ai.tool.call.id"] == approval.call_id
    assert "frontdesk.approval.note" not in wait.attributes  # the note is text: left out
    billing = one(after, "invoke_agent billing_specialist")
    assert parent(by_id, wait) is billing
    refund = one(after, "execute_tool process_refund")
    assert parent(by_id, refund) is billing
    assert parent(by_id, billing) is one(after, "invoke_workflow frontdesk:support_triage")


def test_a_rejected_call_has_its_wait_and_never_a_tool_span(home: Path) -> None:
    spans_of = traced()
    with AgentRuntime(home, model="rules", recover=False, tracer_provider=spans_of.provider) as rt:
        paused = rt.run(triage_agent, REFUND)
        rt.reject(paused.execution_id, "already credited", by="lead")
        done = rt.handle(paused.execution_id).result(timeout=WAIT_SECONDS)
    assert done.status == "completed"
    spans = spans_of.spans()
    check_one_trace(spans, paused.execution_id)
    wait = one(spans, "approval process_refund")
    assert (wait["frontdesk.approval.status"], wait["frontdesk.approval.decided_by"]) == (
        "rejected",
        "lead",
    )
    assert "frontdesk.approval.reason" not in wait.attributes
    assert not named(spans, "execute_tool process_refund")


def test_cancelling_a_waiting_run_ends_its_trace(home: Path) -> None:
    spans_of = traced()
    with AgentRuntime(home, model="rules", recover=False, tracer_provider=spans_of.provider) as rt:
        paused = rt.run(triage_agent, REFUND)
        assert rt.cancel(paused.execution_id).status == "cancelled"
    spans = spans_of.spans()
    check_one_trace(spans, paused.execution_id)
    run = one(spans, "invoke_workflow frontdesk:support_triage")
    assert run["frontdesk.run.status"] == "cancelled" and not run.failed
    wait = one(spans, "approval process_refund")
    assert wait["frontdesk.approval.status"] == "cancelled"
    one(spans, "invoke_agent billing_specialist")


def test_a_retried_run_adds_an_attempt_to_its_trace_and_replays_nothing(home: Path) -> None:
    broken = {"on": True}

    @function_tool(failure_error_function=None)
    def flaky(x: str) -> str:
        """Fails while the switch is on."""
        if broken["on"]:
            raise RuntimeError("downstream is down")
        return f"ok {x}"

    def responder(call: Any) -> Any:
        items = [i if isinstance(i, dict) else i.model_dump() for i in call.input]
        outputs = {i["call_id"] for i in items if i.get("type") == "function_call_output"}
        if "a" not in outputs:
            return [function_call("flaky", {"x": "1"}, call_id="a")]
        return [assistant_message("recovered")]

    agent = Agent(
        name="fragile",
        model=ScriptedModel([ModelStep.respond(responder) for _ in range(10)]),
        tools=[flaky],
    )
    spans_of = traced()
    with AgentRuntime(home, recover=False, tracer_provider=spans_of.provider) as rt:
        failed = rt.run(agent, "go")
        assert failed.status == "failed"
        broken["on"] = False
        rt.register(agent, "fragile")
        done = rt.retry(failed.execution_id).result(timeout=WAIT_SECONDS)
    assert done.status == "completed"
    spans = spans_of.spans()
    by_id = check_one_trace(spans, failed.execution_id)
    assert model_calls(spans) == [1, 2]  # call 1 replayed on retry: not traced again
    runs = named(spans, "invoke_workflow")
    assert sorted(
        (r["frontdesk.run.attempt"], r["frontdesk.run.status"], r.failed) for r in runs
    ) == [
        (1, "failed", True),
        (2, "completed", False),
    ]
    first, second = sorted(runs, key=lambda r: r["frontdesk.run.attempt"])
    assert parent(by_id, second) is first
    tools = sorted(named(spans, "execute_tool flaky"), key=lambda t: t["frontdesk.tool.attempt"])
    assert [(t["frontdesk.tool.attempt"], t.failed) for t in tools] == [(1, True), (2, False)]
    agents = named(spans, "invoke_agent fragile")
    assert sorted(parent(by_id, a)["frontdesk.run.attempt"] for a in agents) == [1, 2]


def test_each_turn_of_a_conversation_is_a_trace_of_its_own(home: Path) -> None:
    spans_of = traced()
    with AgentRuntime(home, model="rules", recover=False, tracer_provider=spans_of.provider) as rt:
        chat = rt.conversation("conv-otel", triage_agent)
        chat.send(QUESTION)
        chat.send("And what about invoice INV-8820?")
        turns = chat.runs()
    assert len(turns) == 2
    spans = spans_of.spans()
    for turn in turns:
        mine = [s for s in spans if s["frontdesk.execution_id"] == turn.execution_id]
        check_one_trace(mine, turn.execution_id)
        assert {s["gen_ai.conversation.id"] for s in mine} == {"conv-otel"}
    assert len({s.trace_id for s in spans}) == 2


# Customer text -----------------------------------------------------------------------------------


def _texts(spans: list[Span]) -> str:
    return "\n".join(f"{s.name} {v}" for s in spans for v in s.attributes.values())


def test_customer_text_is_left_out_unless_asked_for(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    plain = traced()
    with AgentRuntime(home, model="rules", recover=False, tracer_provider=plain.provider) as rt:
        result = rt.run(triage_agent, QUESTION)
    texts = _texts(plain.spans())
    invoice = next(e for e in result.events if e.tool_name == "get_invoice" and e.result)
    customer = [QUESTION, "INV-8821", str(invoice.result["customer_id"]), "$99.00", "Pro plan"]
    assert result.output and "Pro plan" in result.output
    for text in customer:
        assert text not in texts, text

    for switch in ("keyword", "environment"):
        shown = traced()
        where = tmp_path / switch
        if switch == "environment":
            monkeypatch.setenv(CAPTURE_CONTENT_ENV, "1")
        options: dict[str, Any] = {"trace_content": True} if switch == "keyword" else {}
        with AgentRuntime(
            where, model="rules", recover=False, tracer_provider=shown.provider, **options
        ) as rt:
            rt.run(triage_agent, QUESTION)
        spans = shown.spans()
        run = one(spans, "invoke_workflow frontdesk:support_triage")
        assert QUESTION in run["gen_ai.input.messages"]
        assert "Pro plan" in run["gen_ai.output.messages"]
        lookup = one(spans, "execute_tool get_invoice")
        assert "INV-8821" in lookup["gen_ai.tool.call.arguments"]
        assert "duplicate" in lookup["gen_ai.tool.call.result"].lower()
        answers = [c["gen_ai.output.messages"] for c in named(spans, "chat ")]
        assert any("Pro plan" in a for a in answers)
        assert any('"tool_call"' in a and "get_invoice" in a for a in answers)


def test_a_bad_content_switch_is_refused_before_anything_is_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(CAPTURE_CONTENT_ENV, "maybe")
    where = tmp_path / "untouched"
    with pytest.raises(InvalidInput, match=CAPTURE_CONTENT_ENV):
        AgentRuntime(where)
    monkeypatch.delenv(CAPTURE_CONTENT_ENV)
    with pytest.raises(InvalidInput, match="TracerProvider"):
        AgentRuntime(where, tracer_provider=object())
    assert not where.exists() or not any(where.iterdir())


# Across processes --------------------------------------------------------------------------------


def test_a_run_recovered_after_a_crash_continues_its_trace_without_duplicate_spans(
    tmp_path: Path, children: Children, receiver: Receiver
) -> None:
    flow_dir, home = tmp_path / "flow", tmp_path / "home"
    flow_dir.mkdir()
    home.mkdir()
    env = child_env(
        CRASHFLOW_DIR=str(flow_dir),
        CRASH_AT="after_model:2",
        OTEL_EXPORTER_OTLP_ENDPOINT=receiver.url,
        OTEL_BSP_SCHEDULE_DELAY="20",
    )
    child = children.popen(
        [PYTHON, "-m", "crashflow", str(home)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert wait_for_marker(flow_dir / "parked", child) == "after_model:2"
    # What the child finished before it parked: the first agent, a handoff, two model calls
    # and the two lookups they asked for. Kill it once they have been exported.
    expected = {
        "chat ScriptedModel": 2,
        "handoff billing": 1,
        "invoke_agent triage": 1,
        "execute_tool lookup_invoice": 1,
        "execute_tool lookup_account": 1,
    }

    def exported() -> bool:
        names = [s.name for s in receiver.spans()]
        return all(names.count(name) == n for name, n in expected.items())

    wait_until(exported, "the child's spans", explain=lambda: str(receiver.spans()))
    sigkill(child)
    crashed = receiver.spans()
    assert len(crashed) == sum(expected.values())

    recovered = traced()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CRASHFLOW_DIR", str(flow_dir))
        with AgentRuntime(home, poll_interval=0.05, tracer_provider=recovered.provider) as rt:
            (run,) = rt.runs()
            assert approve_until_done(rt, run.execution_id) == "completed"
    spans = crashed + recovered.spans()
    by_id = check_one_trace(spans, run.execution_id)
    # Each model call has one span, whichever process made it; none for the replayed ones.
    assert model_calls(crashed) == [1, 2]
    assert model_calls(recovered.spans()) == [3, 4]
    assert sorted(s.name for s in named(spans, "execute_tool")) == [
        "execute_tool lookup_account",
        "execute_tool lookup_invoice",
        "execute_tool refund",
    ]
    billing = one(spans, "invoke_agent billing")
    triage = one(spans, "invoke_agent triage")
    # Spans from the dead process hang under spans the recovering process wrote.
    assert parent(by_id, triage) is one(spans, "invoke_workflow frontdesk:triage")
    for lookup in named(crashed, "execute_tool"):
        assert parent(by_id, lookup) is billing
    assert parent(by_id, one(spans, "approval refund")) is billing


def test_otlp_export_to_the_endpoint_the_environment_names(
    home: Path, children: Children, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.url)
    monkeypatch.delenv("OTEL_SERVICE_NAME", raising=False)
    monkeypatch.delenv("OTEL_RESOURCE_ATTRIBUTES", raising=False)
    with AgentRuntime(home, model="rules", recover=False) as rt:
        paused = rt.run(triage_agent, REFUND)
        assert paused.status == "waiting_approval"
        # Another process decides, and finishes the run: its spans go to the same endpoint.
        approver = children.popen(
            [PYTHON, "-m", "frontdesk", "--home", str(home), "approvals", "approve",
             paused.execution_id, "--by", "ops"],
            env=child_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )  # fmt: skip
        _out, err = approver.communicate(timeout=WAIT_SECONDS)
        assert approver.returncode == 0, err.decode()
    # The runtime flushed its exporter on close; the approver did before it exited.

    def whole() -> list[Span] | None:
        spans = receiver.spans()
        return spans if named(spans, "invoke_workflow") else None

    spans = wait_until(whole, "the run span", explain=lambda: str(receiver.spans()))
    by_id = check_one_trace(spans, paused.execution_id)
    assert model_calls(spans) == list(range(1, len(named(spans, "chat ")) + 1))
    assert {r.get("service.name") for r in receiver.resources()} == {"frontdesk"}
    wait = one(spans, "approval process_refund")
    assert wait["frontdesk.approval.decided_by"] == "ops"
    assert parent(by_id, wait) is one(spans, "invoke_agent billing_specialist")
    one(spans, "execute_tool process_refund")


# Without OpenTelemetry ----------------------------------------------------------------------------

_RUN_ONE = """
import sys
from frontdesk import AgentRuntime
from frontdesk.apps.support import triage_agent

def run(home, **options):
    with AgentRuntime(home, model="rules", recover=False, **options) as runtime:
        result = runtime.run(triage_agent, "Can you explain invoice INV-8821?")
    assert result.status == "completed", result
    return result
"""


def run_script(children: Children, script: str, *args: str, **env: str) -> str:
    proc = children.popen(
        [PYTHON, "-c", textwrap.dedent(script), *args],
        env=child_env(**env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    out, err = proc.communicate(timeout=WAIT_SECONDS)
    assert proc.returncode == 0, err
    return out + err


def test_without_the_sdk_runs_work_and_export_says_which_extra(
    tmp_path: Path, children: Children, refused_url: str
) -> None:
    script = (
        "import sys\n"
        "sys.modules['opentelemetry.sdk'] = None\n"
        "sys.modules['opentelemetry.exporter'] = None\n"
        + _RUN_ONE
        + "run(sys.argv[1])\nprint('ran untraced')\n"
    )
    out = run_script(
        children, script, str(tmp_path / "home"), OTEL_EXPORTER_OTLP_ENDPOINT=refused_url
    )
    assert "ran untraced" in out
    assert "pip install 'frontdesk[otel]'" in out


def test_runs_use_the_global_provider_and_pay_nothing_without_one(
    tmp_path: Path, children: Children
) -> None:
    script = (
        _RUN_ONE
        + """
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from frontdesk.otel import trace_id_for

run(sys.argv[1] + "/a")
built = sorted(m for m in sys.modules if m.startswith("frontdesk.otel._"))
print("built for an untraced run:", built)
exporter = InMemorySpanExporter()
provider = TracerProvider()
provider.add_span_processor(SimpleSpanProcessor(exporter))
trace.set_tracer_provider(provider)
result = run(sys.argv[1] + "/b")
spans = exporter.get_finished_spans()
assert spans and {f"{s.context.trace_id:032x}" for s in spans} == {
    trace_id_for(result.execution_id)
}, spans
print("global provider spans:", len(spans))
"""
    )
    out = run_script(children, script, str(tmp_path))
    built = next(line for line in out.splitlines() if line.startswith("built for"))
    # An untraced run reaches for neither the observer nor the span writer.
    assert "_observer" not in built and "_writer" not in built, built
    assert "global provider spans:" in out


def test_the_otel_package_keeps_its_api() -> None:
    assert set(frontdesk.otel.__all__) == {
        "CAPTURE_CONTENT_ENV", "EXECUTION_ID", "EXTRA", "trace_id_for",
    }  # fmt: skip
    assert trace_id_for("run_1") == trace_id_for("run_1") != trace_id_for("run_2")
    assert len(trace_id_for("run_1")) == 32 and int(trace_id_for("run_1"), 16)
    assert "otel" not in frontdesk.__all__
