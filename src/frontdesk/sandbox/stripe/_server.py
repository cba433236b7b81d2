"""Running the sandbox: blocking ``serve``, a background ``SandboxServer``, SDK configuration."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx
import stripe
import uvicorn

from ..._serving import listen, serve_on, url_of, write_port_file
from ._app import create_app, default_db_path

DEFAULT_SANDBOX_URL = "http://127.0.0.1:12111"
"""Where ``frontdesk stripe-sandbox`` listens by default."""
DEFAULT_API_KEY = "sk_test_frontdesk_sandbox"
"""The test key :class:`SandboxServer` and :func:`configure_stripe` use by default (any
``sk_test_`` key works)."""
_START_TIMEOUT_SECONDS = 10.0


def serve(
    host: str = "127.0.0.1",
    port: int = 12111,
    db_path: str | os.PathLike[str] | None = None,
    *,
    port_file: str | os.PathLike[str] | None = None,
    on_listening: Callable[[str], None] | None = None,
) -> None:
    """Serve the sandbox until interrupted (what ``frontdesk stripe-sandbox`` runs).

    ``port=0`` picks a free port. Once the socket listens, its port is written to
    ``port_file`` (atomically) and ``on_listening`` is called with the base URL.
    """
    app = create_app(db_path)
    sock = listen(host, port)
    if port_file is not None:
        write_port_file(port_file, sock)
    if on_listening is not None:
        on_listening(url_of(sock))
    serve_on(sock, app)


def configure_stripe(url: str, api_key: str | None = None) -> None:
    """Point the global ``stripe`` module at a sandbox (``stripe.api_base``/``stripe.api_key``).

    Without ``api_key`` the sandbox's default test key is used, so a live key already set on
    the module is never sent to the sandbox.
    """
    stripe.api_base = url
    stripe.api_key = api_key or DEFAULT_API_KEY


class SandboxServer:
    """The sandbox served over real HTTP on a loopback port, from a background thread.

    Use as a context manager (or call :meth:`start` and :meth:`stop`). ``port=0`` picks a
    free port; :attr:`url` and :attr:`api_key` are what a Stripe client needs.
    """

    def __init__(
        self,
        db_path: str | os.PathLike[str] | None = None,
        port: int = 0,
        *,
        host: str = "127.0.0.1",
        api_key: str = DEFAULT_API_KEY,
        dispute_review_seconds: float = 0.0,
        webhook_retry_delays: Sequence[float] = (1.0, 5.0, 25.0),
    ) -> None:
        self.db_path = Path(db_path) if db_path is not None else default_db_path()
        self.api_key = api_key
        self._host = host
        self._port = port
        self._app_options: dict[str, Any] = {
            "dispute_review_seconds": dispute_review_seconds,
            "webhook_retry_delays": webhook_retry_delays,
        }
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._url: str | None = None

    @property
    def url(self) -> str:
        """Base URL of the running server, e.g. ``http://127.0.0.1:54321``."""
        if self._url is None:
            raise RuntimeError("the sandbox server is not running; call start() first")
        return self._url

    def start(self) -> None:
        """Start serving and return once the server accepts connections."""
        if self._server is not None:
            raise RuntimeError("the sandbox server is already running")
        app = create_app(self.db_path, **self._app_options)
        sock = listen(self._host, self._port)
        config = uvicorn.Config(
            app, log_level="warning", lifespan="on", timeout_graceful_shutdown=2
        )
        server = uvicorn.Server(config)
        thread = threading.Thread(
            target=server.run, kwargs={"sockets": [sock]}, name="stripe-sandbox", daemon=True
        )
        thread.start()
        deadline = time.monotonic() + _START_TIMEOUT_SECONDS
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                server.should_exit = True
                sock.close()
                raise RuntimeError(f"the Stripe sandbox did not start on {self._host}")
            time.sleep(0.01)
        self._server, self._thread, self._url = server, thread, url_of(sock)

    def stop(self) -> None:
        """Stop the server and its webhook worker; safe to call twice."""
        if self._server is None or self._thread is None:
            return
        self._server.should_exit = True
        self._thread.join(timeout=_START_TIMEOUT_SECONDS)
        self._server = self._thread = self._url = None

    def __enter__(self) -> SandboxServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def client(self, **options: Any) -> stripe.StripeClient:
        """A ``stripe.StripeClient`` for this sandbox (``options`` go to its constructor)."""
        return stripe.StripeClient(
            self.api_key,
            base_addresses={"api": self.url, "files": self.url, "connect": self.url},
            **options,
        )

    def resolve_dispute(self, dispute_id: str, outcome: str | None = None) -> dict[str, Any]:
        """Decide a dispute now (``won``/``lost``, default: what its evidence asks for)."""
        data = {"outcome": outcome} if outcome else {}
        return self._sandbox_post(f"/_sandbox/disputes/{dispute_id}/resolve", data)

    def resend_event(self, event_id: str, webhook_endpoint: str | None = None) -> dict[str, Any]:
        """Deliver an event again (to one endpoint, or to every subscribed endpoint)."""
        data = {"webhook_endpoint": webhook_endpoint} if webhook_endpoint else {}
        return self._sandbox_post(f"/_sandbox/events/{event_id}/resend", data)

    def delivery_attempts(self, event_id: str) -> list[dict[str, Any]]:
        """Every recorded webhook delivery attempt of an event, oldest first."""
        response = httpx.get(f"{self.url}/_sandbox/events/{event_id}/attempts", headers=self._auth)
        return _checked(response)["data"]

    @property
    def _auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"}

    def _sandbox_post(self, path: str, data: dict[str, str]) -> dict[str, Any]:
        return _checked(httpx.post(f"{self.url}{path}", data=data, headers=self._auth))


def _checked(response: httpx.Response) -> dict[str, Any]:
    body: dict[str, Any] = response.json()
    if response.status_code >= 400:
        raise RuntimeError(
            f"Stripe sandbox error {response.status_code}: {body['error']['message']}"
        )
    return body


@contextmanager
def running_sandbox(
    db_path: str | os.PathLike[str] | None = None, port: int = 0, **options: Any
) -> Iterator[SandboxServer]:
    """Run a :class:`SandboxServer` for the duration of a ``with`` block."""
    with SandboxServer(db_path, port, **options) as server:
        yield server
