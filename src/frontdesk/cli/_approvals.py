"""``frontdesk approvals``: decide tool calls that wait for a human."""

from __future__ import annotations

import getpass
import json
from typing import Annotated, Any

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


def _os_user() -> str | None:
    try:
        return getpass.getuser() or None
    except (KeyError, OSError, ImportError):  # no user name in the environment or passwd
        return None


def _decider(by: str | None) -> str:
    """Who decides: ``--by``, else the OS user name; one of them is required."""
    if by is not None:
        if not by.strip():
            raise typer.BadParameter(
                "give a name: it is recorded as who decided", param_hint="'--by'"
            )
        return by
    user = _os_user()
    if user is None:
        raise typer.BadParameter(
            "give who decides: it is recorded, and this OS user has no name to default to",
            param_hint="'--by'",
        )
    return user


def _edited_args(text: str | None) -> dict[str, Any] | None:
    if text is None:
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise typer.BadParameter(f"not valid JSON ({exc})", param_hint="'--args'") from exc
    if not isinstance(value, dict):
        raise typer.BadParameter(
            "give a JSON object of argument names to values, e.g. '{\"amount\": 49.5}'",
            param_hint="'--args'",
        )
    return value


WAIT_HELP = (
    "Resume the run here, if its agent can be found, until it settles; with --no-wait a "
    "worker picks it up."
)
BY_HELP = (
    "Who {verb}s; recorded with the decision. Defaults to your OS user name"
    " ('system:' names are kept for frontdesk's own decisions)."
)


@app.command("approve")
def approve(
    approval_or_execution_id: Annotated[
        str, typer.Argument(help="An approval id, or a run id with one pending approval.")
    ],
    by: Annotated[str | None, typer.Option(help=BY_HELP.format(verb="approve"))] = None,
    note: Annotated[str | None, typer.Option(help="A note, recorded with the decision.")] = None,
    args: Annotated[
        str | None,
        typer.Option(
            "--args",
            help="Approve with edited arguments: a JSON object whose keys replace the model's "
            "arguments (the others are kept), e.g. '{\"amount\": 49.5}'. Checked against the "
            "tool's schema; the approval records both.",
        ),
    ] = None,
    wait: Annotated[bool, typer.Option(help=WAIT_HELP)] = True,
) -> None:
    """Approve a pending tool call: exactly that call runs, with its recorded arguments (or
    the edited ones given with --args)."""
    decider = _decider(by)
    edits = _edited_args(args)
    with open_runtime() as runtime:
        record = runtime.approve(
            approval_or_execution_id, by=decider, note=note, args=edits, resume=wait
        )
        edited = (
            f" with edited arguments {json.dumps(record.edited_args)}"
            if record.edited_args is not None
            else ""
        )
        console.print(
            f"approved {record.tool_name} ({record.approval_id}) on run {record.execution_id} "
            f"as {decider}{edited}",
            markup=False,
        )
        _settle(runtime, record.execution_id, wait)


@app.command("reject")
def reject(
    approval_or_execution_id: Annotated[
        str, typer.Argument(help="An approval id, or a run id with one pending approval.")
    ],
    reason: Annotated[str, typer.Option(help="Why; the model receives it as the tool's result.")],
    by: Annotated[str | None, typer.Option(help=BY_HELP.format(verb="reject"))] = None,
    wait: Annotated[bool, typer.Option(help=WAIT_HELP)] = True,
) -> None:
    """Reject a pending tool call: it never runs; the model gets the reason."""
    decider = _decider(by)
    with open_runtime() as runtime:
        record = runtime.reject(approval_or_execution_id, reason, by=decider, resume=wait)
        console.print(
            f"rejected {record.tool_name} ({record.approval_id}) on run {record.execution_id} "
            f"as {decider}",
            markup=False,
        )
        _settle(runtime, record.execution_id, wait)


def _settle(runtime: object, execution_id: str, wait: bool) -> None:
    from ..runtime import AgentRuntime

    assert isinstance(runtime, AgentRuntime)
    if wait:
        _wait_settled(runtime, execution_id)
    status = runtime.handle(execution_id).status
    if status == "running" and not runtime.driving(execution_id):
        note = runtime.get(execution_id).note
        console.print(
            "run is ready to resume; a worker with its agent will pick it up"
            + (f" ({note})" if note else "")
        )
    else:
        console.print(f"run {execution_id}: ", status_text(status))
