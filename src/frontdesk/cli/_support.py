"""``frontdesk support``: the support desk app from the command line."""

from __future__ import annotations

from typing import Annotated

import typer

from ._live import follow, print_outcome
from ._render import Col, fit_table, print_json
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
    """Send a message to the support desk and follow the run as it happens.

    Exits with 1 if the run failed, was cancelled or was stopped by its budget.
    """
    from ..apps.support import triage_agent

    with open_runtime(model=model) as runtime:
        handle = runtime.start(triage_agent, message)
        console.print(f"[dim]run {handle.execution_id}[/dim]")
        result = follow(runtime, handle, approve_as="cli" if approve else None)
        print_outcome(result)
    if result.status in ("failed", "cancelled", "budget_exceeded"):
        raise typer.Exit(1)


ESCALATION_COLUMNS = {
    "escalation_id": Col("escalation", "key"),
    "ticket_id": Col("ticket", "key", drop=2),
    "customer_id": Col("customer", "key", drop=3),
    "reason": Col("reason"),
    "priority": Col("priority", "key"),
    "status": Col("status", "key", drop=1),
    "created_at": Col("created", "key", drop=4),
}


@support.command("escalations")
def escalations(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """The queue of tickets escalated to a human."""
    from .._home import resolve_home
    from ..apps.support import list_escalations

    rows = list_escalations(resolve_home(state.home))
    if as_json:
        print_json(console, rows)
        return
    if not rows:
        console.print("no escalations")
        return
    columns = [ESCALATION_COLUMNS.get(name, Col(name)) for name in rows[0]]
    cells = [[str(v) if v is not None else "" for v in row.values()] for row in rows]
    console.print(fit_table("escalations", columns, cells, console.width))
