"""``frontdesk runs``: run history."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from ..debugging import run_steps
from ..errors import FrontdeskError
from ._render import (
    model_calls_table,
    money,
    print_json,
    print_timeline,
    run_dict,
    runs_table,
    short,
    status_text,
)
from ._render_diff import diff_view, lineage_lines, print_steps
from ._state import console, open_runtime
from ._usage import parse_instant, stats_view

MAX_LIMIT = 1_000_000
"""The most rows a listing shows at once."""

app = typer.Typer(
    help="Run history: list, show, retry and cancel runs; fork, diff and export them.",
    no_args_is_help=True,
)


@app.command("list")
def list_runs(
    status: Annotated[str | None, typer.Option(help="Only runs with this status.")] = None,
    agent: Annotated[
        str | None, typer.Option(help="Only runs that started at or ended with this agent.")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=MAX_LIMIT, help="How many runs to show.")] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """List runs, newest first, with their tokens and estimated cost."""
    with open_runtime() as runtime:
        runs = runtime.runs(status=status, agent=agent, limit=limit)
        costs = runtime.costs(r.execution_id for r in runs)
        if as_json:
            print_json(console, [run_dict(r, costs[r.execution_id]) for r in runs])
            return
        console.print(runs_table(runs, console.width, costs))


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
        for line in lineage_lines(runtime.lineage(execution_id)):
            console.print(line, markup=False)
        console.print(f"input: {escape(short(result.input, 200))}")
        if result.duration is not None:
            console.print(f"duration: {result.duration:.3f}s")
        u = result.usage
        console.print(
            f"tokens: {u.total_tokens} (input {u.input_tokens}, output {u.output_tokens})   "
            f"est. cost: {money(runtime.cost(execution_id))}",
            markup=False,
        )
        if result.budget is not None:
            console.print(f"budget: {result.budget.describe()}", markup=False)
        print_timeline(console, result)
        print_steps(console, run_steps(result.steps, result.approvals))
        console.print(model_calls_table(result, console.width, runtime.prices))
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


@app.command("fork")
def fork(
    execution_id: str,
    at: Annotated[
        int,
        typer.Option(
            "--at", help="The step to run live from (frontdesk runs show numbers the steps)."
        ),
    ],
    model: Annotated[
        str | None,
        typer.Option(help="The model the live steps run on (default: the original's)."),
    ] = None,
    agents: Annotated[
        list[str] | None,
        typer.Option(
            "--agents",
            "-a",
            help="A replacement agent, module:attribute or path/to/script.py:attribute: it "
            "takes the place of the run's agent with its name (repeatable).",
        ),
    ] = None,
    wait: Annotated[bool, typer.Option(help="Drive the fork here until it settles.")] = True,
) -> None:
    """Run a run again from a step: the steps before it replay from its journal (no model
    call, no tool runs again), the rest runs live, on another model or agents if given."""
    from ._worker import load_agent

    replacements = [load_agent(ref) for ref in agents or []]
    with open_runtime() as runtime:
        handle = runtime.fork(execution_id, at, model=model, agents=replacements)
        replayed = f"steps 1 to {at - 1} replayed" if at > 1 else "nothing replayed"
        console.print(
            f"forked {execution_id} at step {at} as {handle.execution_id} ({replayed}, "
            "the rest live)",
            markup=False,
        )
        if wait:
            _wait_settled(runtime, handle.execution_id)
        result = runtime.get(handle.execution_id)
        console.print(f"{handle.execution_id}:", status_text(result.status))
        if result.output is not None:
            console.print(short(result.output, 400), markup=False)
        if result.status == "waiting_approval":
            for approval in result.pending_approvals:
                console.print(
                    f"approval {approval.approval_id}: {approval.tool_name} waits for a decision",
                    markup=False,
                )
        console.print(
            f"compare: frontdesk runs diff {execution_id} {handle.execution_id}", markup=False
        )


@app.command("diff")
def diff(
    a: Annotated[str, typer.Argument(help="The first run.")],
    b: Annotated[str, typer.Argument(help="The run to compare it with.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")] = False,
) -> None:
    """Compare two runs step by step, aligned by structure: agent path, handoffs, tool calls
    with arguments and results, outputs, tokens and latency; name where they first diverge."""
    with open_runtime() as runtime:
        compared = runtime.diff(a, b)
        if as_json:
            print_json(console, compared.to_dict())
            return
        console.print(diff_view(compared))


@app.command("export")
def export(
    execution_ids: Annotated[list[str], typer.Argument(help="The runs to export.")],
    pytest_dir: Annotated[
        Path,
        typer.Option(
            "--pytest",
            help="Write one pytest file per run into this directory (created if missing).",
        ),
    ],
) -> None:
    """Turn runs into regression tests: each file replays the run's recorded model responses
    through the current agents and tools, and fails when an agent hands off differently,
    calls another tool or drops an approval."""
    from ..debugging._export import export_pytest

    with open_runtime() as runtime:
        written = export_pytest(runtime.store, execution_ids, pytest_dir)
    for path in written:
        console.print(f"wrote {path}", markup=False, soft_wrap=True)
    console.print(f"run them with: pytest {pytest_dir}", markup=False, soft_wrap=True)


@app.command("retry")
def retry(
    execution_id: str,
    wait: Annotated[bool, typer.Option(help="Drive the run here until it settles.")] = True,
    max_tokens: Annotated[
        int | None, typer.Option(min=1, help="Raise (or set) the run's token limit.")
    ] = None,
    max_cost_usd: Annotated[
        float | None,
        typer.Option(min=0.000001, help="Raise (or set) the run's cost limit, in US dollars."),
    ] = None,
    max_model_calls: Annotated[
        int | None, typer.Option(min=1, help="Raise (or set) the run's model call limit.")
    ] = None,
) -> None:
    """Resume a failed run: completed steps replay from the journal, the failed step runs again.
    A run stopped by its budget goes on from where it stopped, under the limits given here
    (the others as they were)."""
    from .._budget import Budget

    with open_runtime() as runtime:
        budget = None
        if (max_tokens, max_cost_usd, max_model_calls) != (None, None, None):
            old = runtime.get(execution_id).budget or Budget()
            budget = Budget(
                max_tokens=old.max_tokens if max_tokens is None else max_tokens,
                max_cost_usd=old.max_cost_usd if max_cost_usd is None else max_cost_usd,
                max_model_calls=old.max_model_calls if max_model_calls is None else max_model_calls,
            )
        handle = runtime.retry(execution_id, budget=budget)
        console.print(f"retrying {execution_id}")
        if wait:
            _wait_settled(runtime, execution_id)
        console.print(status_text(handle.status))


@app.command("stats")
def stats(
    since: Annotated[
        str | None,
        typer.Option(help="Runs created from then: a date or time (UTC), or 30m, 12h, 7d, 2w."),
    ] = None,
    until: Annotated[
        str | None, typer.Option(help="Runs created before then (same forms as --since).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")] = False,
) -> None:
    """Total runs, model calls, tokens and estimated cost, by agent, model and day."""
    try:
        start = parse_instant(since, "--since") if since is not None else None
        end = parse_instant(until, "--until") if until is not None else None
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    with open_runtime() as runtime:
        report = runtime.stats(since=start, until=end)
        if as_json:
            print_json(console, report.to_dict())
            return
        console.print(stats_view(report, console.width))


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
        if runtime.handle(execution_id).status != "running" or not runtime.driving(execution_id):
            return
        time.sleep(0.05)
    raise FrontdeskError(f"run {execution_id} did not settle within {timeout:.0f}s")
