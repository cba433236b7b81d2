"""``frontdesk support``: the support desk app from the command line."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from ._live import follow, print_outcome
from ._state import console, open_runtime, state

support = typer.Typer(
    help="The support desk: triage, billing, technical and account specialists.",
    no_args_is_help=True,
)


def register(app: typer.Typer) -> None:
    """Add the ``support`` commands."""
    app.add_typer(support, name="support")


@support.command("init")
def init(
    reset: Annotated[bool, typer.Option(help="Drop the data and seed it again.")] = False,
) -> None:
    """Create (or reset) the support database from its fixtures."""
    from .._home import resolve_home
    from ..apps.support import init_db

    path = init_db(resolve_home(state.home), reset=reset)
    console.print(f"support database {'reset' if reset else 'ready'} at {path}")


@support.command("ask")
def ask(
    message: Annotated[str, typer.Argument(help="The customer's message.")],
    model: Annotated[
        str | None, typer.Option(help="'rules' for the offline baseline, or a model name.")
    ] = None,
    approve: Annotated[
        bool, typer.Option(help="Approve sensitive tool calls right away (as 'cli').")
    ] = False,
) -> None:
    """Send a message to the support desk and follow the run as it happens."""
    from ..apps.support import triage_agent

    with open_runtime(model=model) as runtime:
        handle = runtime.start(triage_agent, message)
        console.print(f"[dim]run {handle.execution_id}[/dim]")
        result = follow(runtime, handle, approve_as="cli" if approve else None)
        print_outcome(result)


@support.command("escalations")
def escalations() -> None:
    """The queue of tickets escalated to a human."""
    from .._home import resolve_home
    from ..apps.support import list_escalations

    rows = list_escalations(resolve_home(state.home))
    table = Table(title="escalations")
    if rows:
        for column in rows[0]:
            table.add_column(str(column), overflow="fold")
        for row in rows:
            table.add_row(*(str(v) if v is not None else "" for v in row.values()))
    console.print(table if rows else "no escalations")
