"""A scripted OpenAI-compatible HTTP server on a loopback port, for tests.

It answers ``POST /v1/chat/completions`` and ``POST /v1/responses`` with the next step of a
script, one step per request, whichever API asks::

    script = [
        fail(429),                                   # this request gets a 429
        call("transfer_to_billing_specialist"),      # a tool call (handoffs are tool calls)
        call("get_invoice", invoice_id="INV-8821"),
        say("Your refund is on its way."),           # a final message
    ]
    with OpenAIServer(script) as server:
        ...  # point OPENAI_BASE_URL at server.url
    server.requests  # what each request asked for, in order

Every reply reports ``INPUT_TOKENS`` and ``OUTPUT_TOKENS`` of usage. ``hang()`` holds a request
until the server stops (a model slower than any timeout); ``malformed()`` answers 200 with a body
that is not a completion; ``gated(step, event)`` answers once the test sets ``event``. When the
script is used up, requests get a 400 that says so.

A request with ``"stream": true`` is answered with server-sent events, chunked, in the wire
format of each API: the Responses API's typed events (``response.created`` ...
``response.output_text.delta`` ... ``response.completed`` with usage), or Chat Completions'
``chat.completion.chunk`` deltas (text or tool-call arguments), a last chunk with usage when
``stream_options.include_usage`` asks for it, and ``data: [DONE]``. A message streams word by
word, tool-call arguments a few characters at a time. Faults mid-stream strike after a given
number of those deltas: ``cut()`` drops the connection, ``unfinished()`` ends the stream cleanly
but early (no ``response.completed``, no ``[DONE]``), ``stall()`` stops sending until the server
stops, and ``paused()`` holds the rest until the test sets an event. A ``malformed()`` step
streams its body as the data of one event.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal

INPUT_TOKENS = 11
"""Input tokens every scripted reply reports."""
OUTPUT_TOKENS = 7
"""Output tokens every scripted reply reports."""


@dataclass(frozen=True)
class Step:
    """One scripted answer: a message, a tool call or a fault."""

    text: str | None = None
    """The assistant's message."""
    tool: str | None = None
    """The tool (or handoff) the model calls."""
    args: dict[str, Any] = field(default_factory=dict)
    """The tool call's arguments."""
    status: int | None = None
    """An HTTP error status to answer with instead."""
    hang: bool = False
    """Hold the request until the server stops."""
    malformed: bytes | None = None
    """Answer 200 with this body, which is not a completion."""
    gate: threading.Event | None = None
    """Answer only once this is set (or the server stops)."""
    cut: Literal["drop", "end", "stall", "pause"] | None = None
    """What befalls a streamed answer after ``cut_after`` deltas (see the module's doc)."""
    cut_after: int = 0
    """How many deltas (of text or tool-call arguments) are sent before the ``cut``."""
    resume: threading.Event | None = None
    """For a ``pause``: the rest of the stream is sent once this is set."""


def say(text: str) -> Step:
    """The model answers with ``text``."""
    return Step(text=text)


def call(tool: str, **args: Any) -> Step:
    """The model calls ``tool`` with ``args``."""
    return Step(tool=tool, args=args)


def fail(status: int) -> Step:
    """The server answers with an HTTP error."""
    return Step(status=status)


def hang() -> Step:
    """The server never answers (until it stops)."""
    return Step(hang=True)


NOT_JSON = b"<html>502 upstream proxy error</html>"
"""A body that is not JSON at all."""
NOT_A_COMPLETION = b'{"detail": "upstream model unavailable"}'
"""A JSON body that is no completion."""


def malformed(body: bytes = NOT_JSON) -> Step:
    """The server answers 200 with ``body``, which is not a completion."""
    return Step(malformed=body)


def gated(step: Step, gate: threading.Event) -> Step:
    """``step``, answered only once the test sets ``gate``."""
    return replace(step, gate=gate)


def cut(step: Step, after: int = 1) -> Step:
    """``step`` streamed, its connection dropped after ``after`` deltas."""
    return replace(step, cut="drop", cut_after=after)


def unfinished(step: Step, after: int = 1) -> Step:
    """``step`` streamed, the stream ended cleanly after ``after`` deltas: never completed."""
    return replace(step, cut="end", cut_after=after)


def stall(step: Step, after: int = 1) -> Step:
    """``step`` streamed, nothing more sent after ``after`` deltas until the server stops."""
    return replace(step, cut="stall", cut_after=after)


def paused(step: Step, resume: threading.Event, after: int = 1) -> Step:
    """``step`` streamed, the rest held after ``after`` deltas until the test sets ``resume``."""
    return replace(step, cut="pause", cut_after=after, resume=resume)


@dataclass(frozen=True)
class Seen:
    """One request the server received."""

    api: str
    """``"chat"`` or ``"responses"``."""
    model: str
    """The model name the client asked for."""
    body: dict[str, Any]
    """The request's JSON body."""
    step: Step | None
    """The script step it was answered with (None once the script is used up)."""


class OpenAIServer:
    """Serves a script of model replies on ``127.0.0.1`` and a port the OS picks."""

    def __init__(self, script: list[Step]) -> None:
        self._script = list(script)
        self._lock = threading.Lock()
        self._released = threading.Event()
        self.requests: list[Seen] = []
        """Every request received, in order."""
        self._http = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        # Handler threads are joined at close, after hung requests are released.
        self._http.daemon_threads = False
        self._thread = threading.Thread(target=self._http.serve_forever, args=(0.05,))

    @property
    def url(self) -> str:
        """The base URL to give the client (``OPENAI_BASE_URL``)."""
        return f"http://127.0.0.1:{self._http.server_address[1]}/v1"

    def models(self) -> list[str]:
        """The model named by each request, in order."""
        return [seen.model for seen in self.requests]

    def answered(self) -> list[Seen]:
        """The requests that got a whole scripted completion (not a fault)."""
        return [s for s in self.requests if s.step is not None and _is_reply(s.step)]

    def streamed(self) -> list[bool]:
        """Whether each request, in order, asked for a stream."""
        return [s.body.get("stream") is True for s in self.requests]

    def __enter__(self) -> OpenAIServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        """Release held requests, stop serving and join every thread."""
        self._released.set()
        self._http.shutdown()
        self._http.server_close()
        self._thread.join()

    def _wait(self, gate: threading.Event) -> bool:
        """Wait for ``gate``; False if the server stops first."""
        while not gate.wait(0.05):
            if self._released.is_set():
                return False
        return True

    def _next(self, api: str, body: dict[str, Any]) -> Step | None:
        with self._lock:
            step = self._script.pop(0) if self._script else None
            self.requests.append(Seen(api, str(body.get("model")), body, step))
            return step

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            # HTTP/1.1 for chunked streams; every answer still closes its connection.
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                api = {"/v1/chat/completions": "chat", "/v1/responses": "responses"}.get(self.path)
                if api is None:
                    return self._send(404, {"error": {"message": f"no route {self.path}"}})
                step = server._next(api, body)
                if step is None:
                    return self._send(400, {"error": {"message": "the script is used up"}})
                self.close_connection = True
                if step.hang:
                    server._released.wait()
                    return None
                if step.gate is not None and not server._wait(step.gate):
                    return None
                if step.status is not None:
                    return self._send(step.status, {"error": {"message": f"{step.status}"}})
                model = str(body.get("model"))
                n = len(server.requests)
                if body.get("stream") is True:
                    return self._stream(step, _sse(api, model, step, n, body))
                if step.malformed is not None:
                    return self._send(200, step.malformed)
                reply = _chat(model, step, n) if api == "chat" else _response(model, step, n)
                return self._send(200, reply)

            def _stream(self, step: Step, events: Iterator[tuple[bool, bytes]]) -> None:
                try:
                    self.send_response(200)
                    self.send_header("Content-Type", "text/event-stream")
                    self.send_header("Cache-Control", "no-cache")
                    self.send_header("Transfer-Encoding", "chunked")
                    self.send_header("Connection", "close")
                    self.end_headers()
                    deltas = 0
                    for is_delta, data in events:
                        if is_delta and step.cut is not None and deltas == step.cut_after:
                            if step.cut == "drop":
                                return  # no last chunk: the client reads a body cut short
                            if step.cut == "end":
                                break
                            if step.cut == "stall":
                                server._released.wait()
                                return
                            assert step.resume is not None
                            if not server._wait(step.resume):
                                return
                        deltas += is_delta
                        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
                    self.wfile.write(b"0\r\n\r\n")
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (a timeout); nothing to answer

            def _send(self, status: int, payload: dict[str, Any] | bytes) -> None:
                data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.send_header("Connection", "close")
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (a timeout); nothing to answer

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler


def _is_reply(step: Step) -> bool:
    # A paused stream completes; one cut off, ended early or stalled does not.
    complete = step.cut is None or step.cut == "pause"
    return complete and (step.text is not None or step.tool is not None)


def _chat(model: str, step: Step, n: int) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": step.text}
    if step.tool is not None:
        message["tool_calls"] = [
            {
                "id": f"call_{n}",
                "type": "function",
                "function": {"name": step.tool, "arguments": json.dumps(step.args)},
            }
        ]
    return {
        "id": f"chatcmpl-{n}",
        "object": "chat.completion",
        "created": 0,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": message,
                "finish_reason": "tool_calls" if step.tool else "stop",
            }
        ],
        "usage": {
            "prompt_tokens": INPUT_TOKENS,
            "completion_tokens": OUTPUT_TOKENS,
            "total_tokens": INPUT_TOKENS + OUTPUT_TOKENS,
        },
    }


def _response(model: str, step: Step, n: int) -> dict[str, Any]:
    item: dict[str, Any]
    if step.tool is not None:
        item = {
            "type": "function_call",
            "id": f"fc_{n}",
            "call_id": f"call_{n}",
            "name": step.tool,
            "arguments": json.dumps(step.args),
            "status": "completed",
        }
    else:
        item = {
            "type": "message",
            "id": f"msg_{n}",
            "role": "assistant",
            "status": "completed",
            "content": [{"type": "output_text", "text": step.text, "annotations": []}],
        }
    return {
        "id": f"resp_{n}",
        "object": "response",
        "created_at": 0,
        "status": "completed",
        "model": model,
        "output": [item],
        "parallel_tool_calls": True,
        "tool_choice": "auto",
        "tools": [],
        "usage": {
            "input_tokens": INPUT_TOKENS,
            "output_tokens": OUTPUT_TOKENS,
            "total_tokens": INPUT_TOKENS + OUTPUT_TOKENS,
            "input_tokens_details": {"cached_tokens": 0},
            "output_tokens_details": {"reasoning_tokens": 0},
        },
    }


# Streams -----------------------------------------------------------------------------------


def _pieces(text: str, size: int = 0) -> list[str]:
    """``text`` word by word (``size`` 0) or ``size`` characters at a time; joined, the text."""
    if size:
        return [text[i : i + size] for i in range(0, len(text), size)] or [""]
    return re.findall(r"\s*\S+\s*$|\s*\S+", text) or [text]


def _sse(
    api: str, model: str, step: Step, n: int, body: dict[str, Any]
) -> Iterator[tuple[bool, bytes]]:
    """The stream answering request ``n``: ``(is a delta, event bytes)`` pairs."""
    if step.malformed is not None:
        yield False, b"data: " + step.malformed + b"\n\n"
        return
    if api == "chat":
        usage = (body.get("stream_options") or {}).get("include_usage") is True
        for is_delta, chunk in _chat_chunks(model, step, n, usage):
            yield is_delta, b"data: " + json.dumps(chunk).encode() + b"\n\n"
        yield False, b"data: [DONE]\n\n"
        return
    for seq, (is_delta, event) in enumerate(_response_events(model, step, n)):
        event["sequence_number"] = seq
        line = f"event: {event['type']}\ndata: {json.dumps(event)}\n\n"
        yield is_delta, line.encode()


def _chat_chunks(
    model: str, step: Step, n: int, usage: bool
) -> Iterator[tuple[bool, dict[str, Any]]]:
    def chunk(delta: dict[str, Any] | None, finish: str | None = None) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": f"chatcmpl-{n}",
            "object": "chat.completion.chunk",
            "created": 0,
            "model": model,
            "choices": []
            if delta is None
            else [{"index": 0, "delta": delta, "finish_reason": finish}],
        }
        if usage:
            out["usage"] = None
        return out

    yield False, chunk({"role": "assistant", "content": "" if step.tool is None else None})
    if step.tool is not None:
        call = {"index": 0, "id": f"call_{n}", "type": "function"}
        yield (
            False,
            chunk({"tool_calls": [{**call, "function": {"name": step.tool, "arguments": ""}}]}),
        )
        for piece in _pieces(json.dumps(step.args), 8):
            yield True, chunk({"tool_calls": [{"index": 0, "function": {"arguments": piece}}]})
        yield False, chunk({}, "tool_calls")
    else:
        for piece in _pieces(step.text or ""):
            yield True, chunk({"content": piece})
        yield False, chunk({}, "stop")
    if usage:
        last = chunk(None)
        last["usage"] = _chat(model, step, n)["usage"]
        yield False, last


def _response_events(model: str, step: Step, n: int) -> Iterator[tuple[bool, dict[str, Any]]]:
    done = _response(model, step, n)
    item = done["output"][0]
    started = {**done, "status": "in_progress", "output": [], "usage": None}
    yield False, {"type": "response.created", "response": started}
    yield False, {"type": "response.in_progress", "response": started}
    at = {"item_id": item["id"], "output_index": 0}
    if step.tool is not None:
        yield (
            False,
            {
                "type": "response.output_item.added",
                "output_index": 0,
                "item": {**item, "arguments": "", "status": "in_progress"},
            },
        )
        for piece in _pieces(item["arguments"], 8):
            yield True, {"type": "response.function_call_arguments.delta", **at, "delta": piece}
        yield (
            False,
            {
                "type": "response.function_call_arguments.done",
                **at,
                "arguments": item["arguments"],
            },
        )
    else:
        text = step.text or ""
        part = {"type": "output_text", "text": "", "annotations": []}
        yield (
            False,
            {
                "type": "response.output_item.added",
                "output_index": 0,
                "item": {**item, "status": "in_progress", "content": []},
            },
        )
        at_part = {**at, "content_index": 0}
        yield False, {"type": "response.content_part.added", **at_part, "part": part}
        for piece in _pieces(text):
            yield (
                True,
                {
                    "type": "response.output_text.delta",
                    **at_part,
                    "delta": piece,
                    "logprobs": [],
                },
            )
        yield (
            False,
            {
                "type": "response.output_text.done",
                **at_part,
                "text": text,
                "logprobs": [],
            },
        )
        yield (
            False,
            {
                "type": "response.content_part.done",
                **at_part,
                "part": {**part, "text": text},
            },
        )
    yield False, {"type": "response.output_item.done", "output_index": 0, "item": item}
    yield False, {"type": "response.completed", "response": done}
