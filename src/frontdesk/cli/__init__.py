"""The ``frontdesk`` command line."""

from __future__ import annotations

import importlib
import sys
from typing import Annotated

import typer

from .._dotenv import load_env_files
from ..errors import FrontdeskError
from . import _approvals, _runs
from ._state import err_console, state

app = typer.Typer(
    name="frontdesk",
    help="Durable runtime for OpenAI Agents SDK customer-service agents.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(_runs.app, name="runs")
app.add_typer(_approvals.app, name="approvals")

# Commands contributed by the apps and the server; each module adds itself to ``app``.
_EXTENSIONS = (
    "frontdesk.cli._worker",
    "frontdesk.cli._demo",
    "frontdesk.cli._support",
    "frontdesk.cli._eval",
    "frontdesk.cli._disputes",
    "frontdesk.cli._airline",
    "frontdesk.cli._serve",
)


@app.callback()
def _global(
    home: Annotated[
        str | None, typer.Option(help="frontdesk home (default $FRONTDESK_HOME or ./.frontdesk).")
    ] = None,
    model: Annotated[
        str | None, typer.Option(help="Model for every agent: 'rules' (offline) or a model name.")
    ] = None,
) -> None:
    state.home = home
    state.model = model


def _load_extensions() -> None:
    for name in _EXTENSIONS:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
            continue
        module.register(app)


def main() -> None:
    """Entry point of the ``frontdesk`` command."""
    _load_extensions()
    try:
        load_env_files()
        app()
    except FrontdeskError as exc:
        err_console.print(f"[red]error:[/red] {exc}")
        sys.exit(2)
