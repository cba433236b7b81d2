"""``frontdesk disputes`` and ``frontdesk stripe-sandbox``: Stripe disputes from the terminal."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from ._render import Col, fit_table, iso, print_json, status_text
from ._runs import MAX_LIMIT
from ._state import console, err_console, open_runtime, state

if TYPE_CHECKING:
    from ..apps.disputes import ProcessedDispute
    from ..apps.disputes.reporting import DisputeSummary

disputes = typer.Typer(
    help="Stripe disputes: list them with their deadlines, report on them, process one.",
    no_args_is_help=True,
)


def register(app: typer.Typer) -> None:
    """Add the ``disputes`` commands and ``stripe-sandbox``."""
    app.add_typer(disputes, name="disputes")
    app.command("stripe-sandbox")(stripe_sandbox)


def stripe_sandbox(
    port: Annotated[
        int, typer.Option(min=0, max=65535, help="Port to listen on; 0 picks a free port.")
    ] = 12111,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port_file: Annotated[
        str | None,
        typer.Option(help="Write the port listened on to this file (atomically) once bound."),
    ] = None,
) -> None:
    """Serve the local Stripe-compatible sandbox (state in the home's stripe-sandbox.db)."""
    from .._home import resolve_home
    from ..sandbox.stripe import serve
    from ..sandbox.stripe._app import DB_FILENAME

    db_path = resolve_home(state.home) / DB_FILENAME

    def listening(url: str) -> None:
        console.print(f"Stripe sandbox on {url} (state in {db_path}); any sk_test_ key")

    try:
        serve(host=host, port=port, db_path=db_path, port_file=port_file, on_listening=listening)
    except OSError as exc:
        err_console.print(f"[red]error:[/red] {exc.strerror or exc}")
        raise typer.Exit(1) from None


@contextmanager
def _stripe_errors() -> Iterator[None]:
    """Turn a Stripe failure (e.g. the sandbox is not running) into a message and exit 1."""
    import stripe

    from ..apps.disputes import StripeSettings

    try:
        yield
    except stripe.StripeError as exc:
        base = StripeSettings.from_env().api_base
        err_console.print(f"[red]error:[/red] Stripe at {base}: {exc.user_message or exc}")
        if StripeSettings.from_env().is_sandbox:
            err_console.print("start the sandbox with: frontdesk stripe-sandbox")
        raise typer.Exit(1) from None


def _due(due_by: int | None) -> str:
    if due_by is None:
        return "-"
    return datetime.fromtimestamp(due_by, tz=UTC).strftime("%Y-%m-%d %H:%M")


def _deadline(hours_left: float | None, flagged: bool) -> Text:
    if hours_left is None:
        return Text("-")
    if hours_left < 0:
        return Text(f"⚠ past due by {-hours_left:.0f}h", style="bold red")
    text = f"{hours_left:.0f}h left"
    return Text(f"⚠ {text}", style="bold red") if flagged else Text(text)


DISPUTE_COLUMNS = (
    Col("dispute", "key"),
    Col("payment intent", "key", drop=7),
    Col("amount", "key", justify="right"),
    Col("reason", drop=3),
    Col("status", "key"),
    Col("due by (UTC)", "key", drop=6),
    Col("deadline", "key"),
    Col("evidence", drop=2),
    Col("handling", "key", drop=5),
    Col("run", "key", drop=8),
    Col("run status", "key", drop=1),
)


def _dispute_dict(d: DisputeSummary, within: float) -> dict[str, Any]:
    """A dispute for ``--json`` output."""
    request = d.submission
    return {
        "dispute_id": d.dispute_id,
        "payment_intent": d.payment_intent,
        "amount": d.amount,
        "currency": d.currency,
        "reason": d.reason,
        "status": d.status,
        "due_by": iso(d.due_by),
        "hours_left": d.hours_left(),
        "due_soon": d.due_within(within),
        "evidence": d.evidence,
        "staged_not_submitted": d.staged_not_submitted,
        "handling": d.handling,
        "execution_id": d.execution_id,
        "run_status": d.run_status,
        "handled_by": d.handled_by,
        "submission": None
        if request is None
        else {
            "execution_id": request.execution_id,
            "status": request.status,
            "approval_id": request.approval_id,
            "decision": request.decision,
            "outcome": request.outcome,
        },
    }


@disputes.command("list")
def list_disputes(
    within: Annotated[
        float, typer.Option(help="Flag open disputes due within this many hours.")
    ] = 48.0,
    limit: Annotated[
        int, typer.Option(min=1, max=MAX_LIMIT, help="Show at most this many disputes.")
    ] = 100,
    staged: Annotated[
        bool, typer.Option("--staged", help="Only disputes with evidence staged, not submitted.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """List disputes from Stripe with their runs, flagging open ones due soon and showing
    where their evidence stands (staged but not submitted, submitted)."""
    from ..apps.disputes import stripe_client
    from ..apps.disputes._stripe import format_amount
    from ..apps.disputes.reporting import collect_disputes

    with open_runtime() as runtime, _stripe_errors():
        rows = collect_disputes(runtime, stripe_client(), limit=limit)
    if staged:
        rows = [d for d in rows if d.staged_not_submitted]
    rows.sort(key=lambda d: (not d.is_open, d.due_by or 0))
    if as_json:
        print_json(console, [_dispute_dict(d, within) for d in rows])
        return
    flagged = sum(1 for d in rows if d.due_within(within))
    unsubmitted = sum(1 for d in rows if d.staged_not_submitted)
    cells = [
        (d.dispute_id, d.payment_intent or "-", format_amount(d.amount, d.currency), d.reason,
         status_text(d.status), _due(d.due_by),
         _deadline(d.hours_left(), d.due_within(within)) if d.is_open else Text("-"),
         d.evidence if d.evidence != "none" else "-", d.handling, d.execution_id or "-",
         status_text(d.run_status) if d.run_status else Text("-"))
        for d in rows
    ]  # fmt: skip
    title = (
        f"disputes ({flagged} open and due within {within:g}h; "
        f"{unsubmitted} with evidence staged, not submitted)"
    )
    console.print(fit_table(title, DISPUTE_COLUMNS, cells, console.width))


@disputes.command("report")
def report(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")] = False,
) -> None:
    """Counts by status and reason, accepted versus contested, and the win rate."""
    from ..apps.disputes import stripe_client
    from ..apps.disputes.reporting import build_report, collect_disputes

    with open_runtime() as runtime, _stripe_errors():
        summary = build_report(collect_disputes(runtime, stripe_client()))
    if as_json:
        print_json(
            console,
            {
                "total": summary.total,
                "by_status": summary.by_status,
                "by_reason": summary.by_reason,
                "by_handling": summary.by_handling,
                "accepted": summary.accepted,
                "contested": summary.contested,
                "won": summary.won,
                "lost": summary.lost,
                "win_rate": summary.win_rate,
            },
        )
        return
    for title, counts in (("by status", summary.by_status), ("by reason", summary.by_reason)):
        table = Table(title=f"disputes {title}")
        table.add_column(title.removeprefix("by "))
        table.add_column("count", justify="right")
        for key, count in counts.items():
            table.add_row(key, str(count))
        console.print(table)
    pending = summary.by_handling.get("pending", 0)
    console.print(
        f"total {summary.total}: accepted {summary.accepted}, contested {summary.contested}, "
        f"not yet decided {pending}"
    )
    rate = summary.win_rate
    console.print(
        f"contested and closed: won {summary.won}, lost {summary.lost}; win rate "
        + (f"{rate:.1%}" if rate is not None else "n/a (no contested dispute has closed yet)")
    )


@disputes.command("process")
def process(
    payment_intent_id: Annotated[str, typer.Argument(help="The disputed payment intent (pi_...).")],
) -> None:
    """Triage the payment intent's dispute through the durable runtime (once per dispute)."""
    from ..apps.disputes import DisputeLookupError, run_dispute

    with open_runtime() as runtime:
        try:
            processed = asyncio.run(run_dispute(payment_intent_id, runtime=runtime))
        except DisputeLookupError as exc:
            err_console.print(f"[red]error:[/red] {exc}")
            raise typer.Exit(1) from None
        _print_processed(processed)


@disputes.command("demo")
def demo(
    approve: Annotated[
        bool, typer.Option(help="Approve the evidence submission (as 'demo') once requested.")
    ] = True,
) -> None:
    """Both scenarios on the rules model: an unshipped order is accepted, a delivered one
    contested. Starts a sandbox for the duration unless one answers (or STRIPE_SECRET_KEY)."""
    from rich.rule import Rule

    from .._home import resolve_home
    from ..apps.disputes import run_dispute
    from ..apps.disputes.demo import SCENARIOS, create_disputed_payment, stripe_for_demo

    home = resolve_home(state.home)
    with (
        open_runtime(model=state.model or "rules") as runtime,
        _stripe_errors(),
        stripe_for_demo(home) as url,
    ):
        console.print(f"Stripe at {url}; home {home}")
        for scenario in SCENARIOS:
            console.print(Rule(f"order {scenario.order_id}: {scenario.expect}"))
            intent_id = create_disputed_payment(scenario)
            processed = asyncio.run(run_dispute(intent_id, runtime=runtime))
            _print_processed(processed)
            request = processed.submission
            if approve and request is not None and request.waiting:
                runtime.approve(request.execution_id, by="demo", note="evidence reviewed")
                done = runtime.handle(request.execution_id).result(timeout=120)
                console.print(
                    "approved by demo; run ", status_text(done.status), f" ({done.execution_id})"
                )
                console.print(str(done.output), markup=False)


def _print_processed(processed: ProcessedDispute) -> None:
    data, run = processed.relevant_data, processed.run
    console.print(
        f"dispute {data['dispute_id']} on {data['payment_intent']}: {data['reason']}, "
        f"{data['status']}, {data['card_brand']} card, evidence due {_due(data['due_by'])} UTC"
    )
    if run is None:
        console.print("another process is starting this dispute's run; try again shortly")
        return
    how = "started" if processed.started else "already handled by"
    console.print(
        f"{how} run {run.execution_id}: ", status_text(run.status), f" ({run.last_agent})"
    )
    for waiting in (run, processed.submission):
        if waiting is not None and waiting.status == "waiting_approval":
            console.print(
                f"{waiting.execution_id} waits for approval: "
                f"frontdesk approvals approve {waiting.execution_id}"
            )
    if run.output is not None:
        console.print(str(run.output), markup=False)
    if run.error:
        console.print(f"[red]error:[/red] {run.error}")
