"""``frontdesk runs``: run history."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.markup import escape

from ..errors import FrontdeskError
from ._render import (
    model_calls_table,
    print_json,
    print_timeline,
    run_dict,
    runs_table,
    short,
    status_text,
)
from ._state import console, open_runtime

MAX_LIMIT = 1_000_000
"""The most rows a listing shows at once."""

app = typer.Typer(help="Run history: list, show, retry and cancel runs.", no_args_is_help=True)


@app.command("list")
def list_runs(
    status: Annotated[str | None, typer.Option(help="Only runs with this status.")] = None,
    agent: Annotated[
        str | None, typer.Option(help="Only runs that started at or ended with this agent.")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=MAX_LIMIT, help="How many runs to show.")] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """List runs, newest first."""
    with open_runtime() as runtime:
        runs = runtime.runs(status=status, agent=agent, limit=limit)
        if as_json:
            print_json(console, [run_dict(r) for r in runs])
            return
        console.print(runs_table(runs, console.width))


@app.command("show")
def show(execution_id: str) -> None:
    """Show one run: its agent path, handoffs, tool calls with results and durations, tokens."""
    with open_runtime() as runtime:
        result = runtime.get(execution_id)
        console.print(f"[bold]{result.execution_id}[/bold]  ", status_text(result.status))
        console.print(f"agent: {result.agent}   last agent: {result.last_agent or '-'}")
        if result.model_label:
            console.print(f"model: {escape(result.model_label)}")
        path = [result.agent] + [
            e.target for e in result.events if e.type == "handoff" and e.target
        ]
        console.print(f"agent path: {' → '.join(path)}")
        console.print(f"input: {escape(short(result.input, 200))}")
        if result.duration is not None:
            console.print(f"duration: {result.duration:.3f}s")
        print_timeline(console, result)
        console.print(model_calls_table(result, console.width))
        for approval in result.approvals:
            console.print(
                f"approval {approval.approval_id}: {approval.tool_name} {approval.status}"
                + (f" by {approval.decided_by}" if approval.decided_by else "")
                + (
                    f" ({approval.reason or approval.note})"
                    if approval.reason or approval.note
                    else ""
                )
            )
        if result.note:
            console.print(f"[yellow]{escape(result.note)}[/yellow]")
        if result.error:
            console.print(f"[red]error: {escape(result.error)}[/red]")
        if result.output is not None:
            console.print("[bold]output[/bold]")
            console.print(
                result.output
                if isinstance(result.output, str)
                else json.dumps(result.output, indent=2),
                markup=False,
            )


@app.command("retry")
def retry(
    execution_id: str,
    wait: Annotated[bool, typer.Option(help="Drive the run here until it settles.")] = True,
) -> None:
    """Resume a failed run: completed steps replay from the journal, the failed step runs again."""
    with open_runtime() as runtime:
        handle = runtime.retry(execution_id)
        console.print(f"retrying {execution_id}")
        if wait:
            _wait_settled(runtime, execution_id)
        console.print(status_text(handle.status))


@app.command("cancel")
def cancel(execution_id: str) -> None:
    """Cancel a run that has not finished."""
    with open_runtime() as runtime:
        result = runtime.cancel(execution_id)
        console.print(f"{execution_id}: ", status_text(result.status))


def _wait_settled(runtime: object, execution_id: str, timeout: float = 600.0) -> None:
    import time

    from ..runtime import AgentRuntime

    assert isinstance(runtime, AgentRuntime)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if (
            runtime.handle(execution_id).status != "running"
            or execution_id not in runtime._engine._tasks
        ):
            return
        time.sleep(0.05)
    raise FrontdeskError(f"run {execution_id} did not settle within {timeout:.0f}s")
