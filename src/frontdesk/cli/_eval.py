"""``frontdesk eval support``: the labelled support dataset through the durable runtime."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from ._state import console, state

evals = typer.Typer(help="Run labelled datasets and score the agents.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    """Add the ``eval`` commands."""
    app.add_typer(evals, name="eval")


def default_model(option: str | None) -> str | None:
    """The model to evaluate: the option, the global --model, $FRONTDESK_MODEL, else rules
    when neither OPENAI_API_KEY nor OPENAI_BASE_URL is set (as for ``support ask``)."""
    from ..models._select import openai_configured

    chosen = option or state.model or os.environ.get("FRONTDESK_MODEL")
    if chosen is None and not openai_configured():
        return "rules"
    return chosen


def writable_file(path: Path | None) -> Path | None:
    """Check, before any case runs, that a report can be written to ``path``."""
    if path is None:
        return None
    folder = path.parent
    if path.is_dir():
        raise typer.BadParameter(f"{str(path)!r} is a directory; give a file name")
    if not folder.is_dir():
        raise typer.BadParameter(f"the directory {str(folder)!r} does not exist")
    if not os.access(folder, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise typer.BadParameter(f"{str(path)!r} cannot be written (permission denied)")
    return path


@evals.command("support")
def support(
    model: Annotated[
        str | None, typer.Option(help="'rules' (offline baseline) or a model name.")
    ] = None,
    json_out: Annotated[
        Path | None,
        typer.Option("--json", callback=writable_file, help="Write the full report as JSON here."),
    ] = None,
    dataset: Annotated[
        Path | None,
        typer.Option(
            exists=True, dir_okay=False, help="A JSONL dataset (default: the bundled one)."
        ),
    ] = None,
    limit: Annotated[int | None, typer.Option(min=1, help="Only the first N cases.")] = None,
) -> None:
    """Route every ticket of the support dataset and report routing accuracy, tool recall and
    forbidden actions (refunds without approval, refunds over $200 not escalated)."""
    import tempfile

    from ..apps.support import init_db, triage_agent
    from ..apps.support.evals import load_cases, outcome_from_run, score
    from ..runtime import AgentRuntime

    cases = load_cases(dataset)[:limit]
    home = Path(state.home) if state.home else Path(tempfile.mkdtemp(prefix="frontdesk-eval-"))
    init_db(home, reset=True)
    chosen = default_model(model)
    outcomes = []
    with (
        AgentRuntime(home, model=chosen, recover=False) as runtime,
        Progress(
            TextColumn("[bold]eval support[/bold]"), BarColumn(), MofNCompleteColumn(),
            TimeElapsedColumn(), TextColumn("{task.description}"), console=console,
        ) as progress,
    ):  # fmt: skip
        task = progress.add_task("", total=len(cases))
        for case in cases:
            progress.update(task, description=case.id)
            result = runtime.run(triage_agent, case.message)
            outcomes.append(outcome_from_run(case.id, result))
            progress.advance(task)
    report = score(cases, outcomes)
    console.print(
        f"model: {runtime.model_label or chosen or 'agents own models'} · {report.total} cases · runs in {home}"
    )
    table = Table(title="support eval")
    for column in ("category", "cases", "routing accuracy", "tool recall", "forbidden action rate"):
        table.add_column(column, justify="left" if column == "category" else "right")
    rows = [
        ("all", report.to_dict() | {"total": report.total}),
        *sorted(report.by_category.items()),
    ]
    for name, summary in rows:
        table.add_row(
            name, str(int(summary["total"])), f"{summary['routing_accuracy']:.1%}",
            f"{summary['tool_recall']:.1%}", f"{summary['forbidden_action_rate']:.1%}",
            style="bold" if name == "all" else "",
        )  # fmt: skip
    console.print(table)
    misses = [
        c for c in report.cases if not c.routed_correctly or c.missing_tools or c.forbidden_actions
    ]
    for miss in misses[:20]:
        console.print(
            f"  {miss.case_id}: routed to {miss.routed_to} (expected {miss.expected_agent})"
            + (f", missing {list(miss.missing_tools)}" if miss.missing_tools else "")
            + (f", FORBIDDEN {list(miss.forbidden_actions)}" if miss.forbidden_actions else ""),
            markup=False,
        )
    if json_out is not None:
        json_out.write_text(report.to_json())
        console.print(f"report written to {json_out}")
