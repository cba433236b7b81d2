"""``frontdesk demo``: the three reference apps offline, then the console that shows them.

The support case from the support desk spec asks for a refund of a duplicate charge: the run
pauses for a human approval, which a supervisor grants from a separate process, resumes from
its journal and its whole trace is printed. The two Stripe dispute scenarios run against the
sandbox (started for the duration when none answers): one accepted, one contested with its
evidence submitted once approved. A short airline conversation asks an FAQ question, then
changes a seat through the seat booking agent. The rules baseline stands in for the LLM
throughout. Then the console serves it all, as ``frontdesk serve`` does, until Ctrl-C.
"""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.rule import Rule
from rich.text import Text

from ._live import follow, print_outcome
from ._render import model_calls_table, print_timeline, status_text
from ._serve import HostOption, PortFileOption, PortOption
from ._state import console, err_console, state

if TYPE_CHECKING:
    from ..runtime import AgentRuntime

SEED_MESSAGE = "Hi, I was charged $99 twice last month (invoice INV-8821). Can I get a refund?"


def register(app: typer.Typer) -> None:
    """Add the ``demo`` command."""
    app.command("demo")(demo)


def demo(
    message: Annotated[str, typer.Option(help="The support customer's message.")] = SEED_MESSAGE,
    serve: Annotated[
        bool,
        typer.Option(
            "--serve/--no-serve", help="Serve the console afterwards; --no-serve runs and exits."
        ),
    ] = True,
    host: HostOption = "127.0.0.1",
    port: PortOption = 6767,
    port_file: PortFileOption = None,
) -> None:
    """Run the demo cases of all three apps offline, then serve the console until Ctrl-C.

    The runs are kept in the home's history (``--home``, else the default home), so
    ``frontdesk runs list`` and the console show them afterwards; every demo makes new runs.
    The console prints its URL and the API token to log in with.
    """
    from .._home import resolve_home
    from ..apps import airline, support
    from ..runtime import AgentRuntime

    home = resolve_home(state.home)
    model = state.model or "rules"
    # The refund and the seat change need the sample data as shipped: reseed it (in one
    # transaction each, so a concurrent reader never sees it half-written).
    support.init_db(home, reset=True)
    airline.init_db(home, reset=True)
    console.print(Rule("frontdesk demo: three apps, offline"))
    console.print(f"home: {home}", markup=False, soft_wrap=True)
    console.print("runs, events and approvals are kept there; the apps' sample data was reseeded")
    console.print("model: the rules baseline, a deterministic stand-in for the LLM\n")
    with AgentRuntime(home, model=model, recover=False) as runtime:
        _support_case(runtime, message)
        _dispute_scenarios(runtime, home)
        _airline_conversation(runtime)
    if serve:
        _serve_console(home, model, host, port, port_file)


def _support_case(runtime: AgentRuntime, message: str) -> None:
    """The refund: paused for approval, approved from a second process, resumed, traced."""
    from ..apps.support import triage_agent

    console.print(Rule("1. support desk: a refund that needs a human"))
    console.print(f"[bold]customer:[/bold] {escape(message)}\n")
    handle = runtime.start(triage_agent, message)
    result = follow(runtime, handle)
    last_seq = result.events[-1].seq if result.events else 0
    if result.status == "waiting_approval":
        approval = result.pending_approvals[0]
        console.print(
            f"\n[yellow]⏸ paused[/yellow]: {approval.tool_name} needs a human. Nothing is held in "
            "memory; the run waits in the store.\n  A supervisor approves from another process:\n"
            f"  $ frontdesk approvals approve {approval.approval_id} --by supervisor\n"
        )
        approver = subprocess.run(
            [sys.executable, "-m", "frontdesk", "--home", str(runtime.home), "approvals",
             "approve", approval.approval_id, "--by", "supervisor", "--note",
             "duplicate charge confirmed"],
            check=False,
        )  # fmt: skip
        if approver.returncode != 0:
            err_console.print(
                f"[red]error:[/red] the approving process exited with {approver.returncode}"
            )
            raise typer.Exit(1)
        console.print("\nthe run resumed from its journal (completed steps were not run again):")
        result = follow(runtime, runtime.handle(handle.execution_id), after=last_seq)
    print_outcome(result)
    console.print()
    console.print(Rule("trace"))
    console.print(f"(again with: frontdesk runs show {result.execution_id})", soft_wrap=True)
    print_timeline(console, result)
    console.print(model_calls_table(result, console.width))


def _dispute_scenarios(runtime: AgentRuntime, home: Path) -> None:
    """Both dispute scenarios against Stripe (a sandbox started when none answers)."""
    from ..apps.disputes.demo import SCENARIOS, play_scenario, stripe_for_demo
    from ._disputes import _stripe_errors

    console.print()
    console.print(Rule("2. Stripe disputes: one accepted, one contested"))
    with _stripe_errors(), stripe_for_demo(home) as url:
        console.print(f"Stripe at {url}", markup=False, soft_wrap=True)
        for scenario in SCENARIOS:
            outcome = play_scenario(scenario, runtime, approve_as="demo")
            data, run = outcome.processed.relevant_data, outcome.processed.run
            console.print(f"\n[bold]order {scenario.order_id}[/bold]: {escape(scenario.expect)}")
            console.print(f"  dispute {data['dispute_id']}: {data['reason']}, {outcome.amount}")
            if run is not None:
                console.print(
                    f"  run {run.execution_id}: ", status_text(run.status), f" ({run.last_agent})"
                )
            if outcome.submitted is not None:
                console.print(
                    "  evidence approved by demo; submission run ",
                    status_text(outcome.submitted.status),
                )
            console.print(f"  Stripe now shows the dispute as {outcome.dispute_status}")


def _airline_conversation(runtime: AgentRuntime) -> None:
    """A few turns of a durable conversation: an FAQ question, then a seat change."""
    from ..apps.airline.demo import open_demo_conversation, play_conversation
    from ..errors import FrontdeskError
    from ..models._rules_conversation import RULES_LABEL

    conversation_id = f"demo-{uuid.uuid4().hex[:12]}"
    console.print()
    console.print(Rule("3. airline: a question, then a seat change"))
    conversation = open_demo_conversation(runtime, conversation_id)
    try:
        for turn in play_conversation(conversation):
            console.print()
            for line in turn.lines:
                agent, _, text = line.partition(": ")
                if text == "Calling a tool":
                    continue
                if text.startswith("Tool call output: "):
                    # A tool's result on one line, cut at the edge: the answer follows.
                    result = text.removeprefix("Tool call output: ")
                    console.print(
                        Text(f"  ↳ {result}", style="dim"), no_wrap=True, overflow="ellipsis"
                    )
                    continue
                line = line.removesuffix(RULES_LABEL).rstrip()
                style = "bold" if agent == "User" else None
                console.print(line, markup=False, style=style)
    except FrontdeskError as exc:
        err_console.print(f"[red]error:[/red] the airline conversation: {escape(str(exc))}")
        raise typer.Exit(1) from None
    console.print(
        f"\nconversation {conversation_id}: {conversation.turns} turns, now with the "
        f"{conversation.current_agent}\n(continue with: frontdesk chat airline "
        f"--conversation-id {conversation_id})",
        markup=False,
    )


def _serve_console(home: Path, model: str, host: str, port: int, port_file: Path | None) -> None:
    """Serve the console as ``frontdesk serve`` does, on the demo's model, after printing the
    token to log in with."""
    from ..server import load_token
    from ._serve import serve

    console.print()
    console.print(Rule("the console"))
    try:
        token = load_token(home)
    except ValueError as exc:
        err_console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from None
    if token.source == "env":
        console.print("API token: the one in $FRONTDESK_API_TOKEN")
    else:
        console.print(f"API token: {token.value}", markup=False, soft_wrap=True)
        console.print(f"(kept in {token.source})", markup=False, soft_wrap=True)
    # Runs started from the console go on the demo's model too.
    state.model = model
    serve(host=host, port=port, port_file=port_file, fd=None)
