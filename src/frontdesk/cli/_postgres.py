"""``frontdesk postgres dev``: a local PostgreSQL server for trying shared state."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from .._home import resolve_home
from ..store.postgres import LocalPostgres
from ._foreground import serve_until_stopped
from ._state import console, state

postgres_app = typer.Typer(
    help="A local PostgreSQL server from the machine's PostgreSQL binaries.",
    no_args_is_help=True,
)


def register(app: typer.Typer) -> None:
    """Add the ``postgres`` command group."""
    app.add_typer(postgres_app, name="postgres")


@postgres_app.command("dev")
def dev(
    port: Annotated[
        int, typer.Option(min=1, max=65535, help="Loopback TCP port to listen on.")
    ] = 5433,
    directory: Annotated[
        Path | None,
        typer.Option(
            "--dir",
            help="Where the cluster lives (default: postgres/ under the home). Under root it "
            "must be reachable by the postgres system user.",
        ),
    ] = None,
) -> None:
    """Start a PostgreSQL server, print its URL and serve until Ctrl-C (then stop it).

    The cluster is created on first use (with a generated password) and kept, so a second
    start finds the same data.
    """
    root = directory.resolve() if directory else resolve_home(state.home) / "postgres"
    cluster = LocalPostgres(root, port=port)

    def start() -> None:
        url = cluster.start()
        console.print(f"PostgreSQL {cluster.data_dir} listening on {cluster.host}:{port}")
        console.print(f"FRONTDESK_DATABASE_URL={url}", soft_wrap=True)
        console.print("Ctrl-C stops the server.", style="dim")

    serve_until_stopped(start, cluster.stop)
    console.print("PostgreSQL stopped.")
