"""``frontdesk serve``: the HTTP server (health, Stripe webhooks) on uvicorn."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Annotated

import typer

from ._state import console, err_console, state


def register(app: typer.Typer) -> None:
    """Add the ``serve`` command."""
    app.command("serve")(serve)


def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[
        int, typer.Option(min=0, max=65535, help="Port to listen on; 0 picks a free port.")
    ] = 6767,
    port_file: Annotated[
        Path | None,
        typer.Option(help="Write the port listened on to this file (atomically) once bound."),
    ] = None,
    fd: Annotated[
        int | None,
        typer.Option(help="Serve on this inherited, bound TCP socket instead (socket activation)."),
    ] = None,
) -> None:
    """Serve frontdesk over HTTP; runs it starts are driven here, orphaned runs are recovered.

    Stripe webhooks go to POST /webhooks/stripe, verified with $STRIPE_WEBHOOK_SECRET.
    """
    from .._serving import listen, serve_on, url_of, write_port_file
    from ..runtime import AgentRuntime
    from ..server import create_app

    try:
        sock = listen(host, port) if fd is None else socket.socket(fileno=fd)
    except OSError as exc:
        err_console.print(f"[red]error:[/red] {exc.strerror or exc}")
        raise typer.Exit(1) from None
    with AgentRuntime(state.home, model=state.model, recover=True) as runtime:
        if port_file is not None:
            write_port_file(port_file, sock)
        console.print(f"frontdesk on {url_of(sock)} (home {runtime.home}; Ctrl-C to stop)")
        serve_on(sock, create_app(runtime))
