"""``frontdesk serve``: the HTTP server (console, API, Stripe webhooks) on uvicorn."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Annotated

import typer

from ._state import console, err_console, state


def register(app: typer.Typer) -> None:
    """Add the ``serve`` command."""
    app.command("serve")(serve)


HostOption = Annotated[str, typer.Option(help="Address to listen on.")]
"""``--host``: the address the console listens on."""
PortOption = Annotated[
    int, typer.Option(min=0, max=65535, help="Port to listen on; 0 picks a free port.")
]
"""``--port``: 0 to 65535, 0 picking a free port."""
PortFileOption = Annotated[
    Path | None,
    typer.Option(help="Write the port listened on to this file (atomically) once bound."),
]
"""``--port-file``: where the bound port is written, for a parent that asked for port 0."""


def serve(
    host: HostOption = "127.0.0.1",
    port: PortOption = 6767,
    port_file: PortFileOption = None,
    fd: Annotated[
        int | None,
        typer.Option(help="Serve on this inherited, bound TCP socket instead (socket activation)."),
    ] = None,
) -> None:
    """Serve the console and its API over HTTP; runs it starts are driven here, orphaned runs
    are recovered.

    The API and the console need the token in $FRONTDESK_API_TOKEN, else the one generated into
    the home's api-token file on first start (printed then). Stripe webhooks go to
    POST /webhooks/stripe, verified with $STRIPE_WEBHOOK_SECRET.
    """
    from .._serving import listen, serve_on, url_of, write_port_file
    from ..runtime import AgentRuntime
    from ..server import bind_warning, create_app, load_token

    try:
        sock = listen(host, port) if fd is None else socket.socket(fileno=fd)
    except OSError as exc:
        err_console.print(f"[red]error:[/red] {exc.strerror or exc}")
        raise typer.Exit(1) from None
    with AgentRuntime(state.home, model=state.model, recover=True) as runtime:
        try:
            token = load_token(runtime.home)
        except ValueError as exc:
            err_console.print(f"[red]error:[/red] {exc}")
            raise typer.Exit(1) from None
        app = create_app(runtime)
        if port_file is not None:
            write_port_file(port_file, sock)
        url = url_of(sock)
        console.print(f"frontdesk on {url} (home {runtime.home}; Ctrl-C to stop)", soft_wrap=True)
        console.print(f"console: {url}/ (log in with your name and the API token)", soft_wrap=True)
        if token.created:
            console.print(
                f"API token, shown this once (kept in {token.source}): {token.value}",
                markup=False,
                soft_wrap=True,
            )
        warning = bind_warning(str(sock.getsockname()[0]))
        if warning is not None:
            err_console.print(warning, markup=False, soft_wrap=True)
        serve_on(sock, app)
