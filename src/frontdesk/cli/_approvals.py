"""``frontdesk approvals``: decide tool calls that wait for a human."""

from __future__ import annotations

from typing import Annotated

import typer

from ._render import approval_dict, approvals_table, print_json, status_text
from ._runs import _wait_settled
from ._state import console, open_runtime

app = typer.Typer(help="Approve or reject tool calls waiting for a human.", no_args_is_help=True)


@app.command("list")
def list_approvals(
    all_: Annotated[bool, typer.Option("--all", help="Include decided approvals.")] = False,
    run: Annotated[str | None, typer.Option(help="Only this run's approvals.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """List approval requests (pending ones unless --all)."""
    with open_runtime() as runtime:
        records = runtime.approvals(status=None if all_ else "pending", execution_id=run)
    if as_json:
        print_json(console, [approval_dict(a) for a in records])
    else:
        console.print(approvals_table(records, console.width))


@app.command("approve")
def approve(
    approval_or_execution_id: Annotated[
        str, typer.Argument(help="An approval id, or a run id with one pending approval.")
    ],
    by: Annotated[str | None, typer.Option(help="Who approves (recorded).")] = None,
    note: Annotated[str | None, typer.Option(help="A note, recorded with the decision.")] = None,
    wait: Annotated[
        bool, typer.Option(help="Resume the run here, if its agent can be found, until it settles.")
    ] = True,
) -> None:
    """Approve a pending tool call: exactly that call runs, with its recorded arguments."""
    with open_runtime() as runtime:
        record = runtime.approve(approval_or_execution_id, by=by, note=note)
        console.print(
            f"approved {record.tool_name} ({record.approval_id}) on run {record.execution_id}"
        )
        _settle(runtime, record.execution_id, wait)


@app.command("reject")
def reject(
    approval_or_execution_id: Annotated[
        str, typer.Argument(help="An approval id, or a run id with one pending approval.")
    ],
    reason: Annotated[str, typer.Option(help="Why; the model receives it as the tool's result.")],
    by: Annotated[str | None, typer.Option(help="Who rejects (recorded).")] = None,
    wait: Annotated[
        bool, typer.Option(help="Resume the run here, if its agent can be found, until it settles.")
    ] = True,
) -> None:
    """Reject a pending tool call: it never runs; the model gets the reason."""
    with open_runtime() as runtime:
        record = runtime.reject(approval_or_execution_id, reason, by=by)
        console.print(
            f"rejected {record.tool_name} ({record.approval_id}) on run {record.execution_id}"
        )
        _settle(runtime, record.execution_id, wait)


def _settle(runtime: object, execution_id: str, wait: bool) -> None:
    from ..runtime import AgentRuntime

    assert isinstance(runtime, AgentRuntime)
    if wait:
        _wait_settled(runtime, execution_id)
    status = runtime.handle(execution_id).status
    if status == "running" and execution_id not in runtime._engine._tasks:
        note = runtime.get(execution_id).note
        console.print(
            "run is ready to resume; a worker with its agent will pick it up"
            + (f" ({note})" if note else "")
        )
    else:
        console.print(f"run {execution_id}: ", status_text(status))
