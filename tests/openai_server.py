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
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

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
        """The requests that got a scripted completion (not a fault)."""
        return [s for s in self.requests if s.step is not None and _is_reply(s.step)]

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

    def _next(self, api: str, body: dict[str, Any]) -> Step | None:
        with self._lock:
            step = self._script.pop(0) if self._script else None
            self.requests.append(Seen(api, str(body.get("model")), body, step))
            return step

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                api = {"/v1/chat/completions": "chat", "/v1/responses": "responses"}.get(self.path)
                if api is None:
                    return self._send(404, {"error": {"message": f"no route {self.path}"}})
                step = server._next(api, body)
                if step is None:
                    return self._send(400, {"error": {"message": "the script is used up"}})
                if step.hang:
                    server._released.wait()
                    return None
                while step.gate is not None and not step.gate.wait(0.05):
                    if server._released.is_set():
                        return None
                if step.status is not None:
                    return self._send(step.status, {"error": {"message": f"{step.status}"}})
                if step.malformed is not None:
                    return self._send(200, step.malformed)
                model = str(body.get("model"))
                n = len(server.requests)
                reply = _chat(model, step, n) if api == "chat" else _response(model, step, n)
                return self._send(200, reply)

            def _send(self, status: int, payload: dict[str, Any] | bytes) -> None:
                data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (a timeout); nothing to answer

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler


def _is_reply(step: Step) -> bool:
    return step.text is not None or step.tool is not None


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
