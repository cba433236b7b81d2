"""Serving an ASGI app on a socket bound before the server starts.

Binding first means ``port=0`` picks a free port that is known before anyone connects: the
caller can print it or write it to a port file (atomically, so a reader never sees half a
number) for the process that started the server. Used by ``frontdesk serve``,
``frontdesk stripe-sandbox`` and the in-process :class:`~frontdesk.sandbox.stripe.SandboxServer`.
"""

from __future__ import annotations

import os
import socket
import tempfile
from pathlib import Path
from typing import Any

import uvicorn
from uvicorn.server import Server

_BACKLOG = 2048
_STARTUP_FAILURE = 3  # the exit status uvicorn.run uses when the server never started


def listen(host: str, port: int) -> socket.socket:
    """A TCP socket bound to ``host``/``port`` and listening; ``port=0`` picks a free port.

    Raises ``OSError`` saying which address could not be taken (e.g. a port in use).
    Connections made before the server runs wait in the backlog. The socket is created with
    an explicit ``IPPROTO_TCP`` so asyncio sets ``TCP_NODELAY`` on accepted connections;
    without it every response waits ~40 ms on delayed ACKs.
    """
    family, kind, proto, _name, address = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP, flags=socket.AI_PASSIVE
    )[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(_BACKLOG)
    except OSError as exc:
        sock.close()
        raise OSError(exc.errno, f"cannot listen on {host}:{port}: {exc.strerror}") from exc
    except BaseException:
        sock.close()
        raise
    return sock


def url_of(sock: socket.socket) -> str:
    """The ``http://host:port`` base URL of a bound socket."""
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def write_port_file(path: str | os.PathLike[str], sock: socket.socket) -> None:
    """Write the socket's port to ``path`` atomically (a temporary file, then a rename)."""
    target = Path(path)
    fd, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
    try:
        with os.fdopen(fd, "w") as file:
            file.write(f"{sock.getsockname()[1]}\n")
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def serve_on(sock: socket.socket, app: Any, *, log_level: str = "info") -> None:
    """Serve ``app`` on ``sock`` until SIGINT or SIGTERM, as ``uvicorn.run`` does.

    Exits with uvicorn's start-up failure status if the server never started.
    """
    server = Server(uvicorn.Config(app, log_level=log_level))
    try:
        server.run(sockets=[sock])
    except KeyboardInterrupt:
        pass
    finally:
        sock.close()
    if not server.started:
        raise SystemExit(_STARTUP_FAILURE)
