"""``frontdesk demo``: a support case processed offline through the durable engine.

The customer from the support desk spec asks for a refund of a duplicate charge. The rules
baseline stands in for the LLM; the run pauses for a human approval, which a supervisor grants
from a separate process; the run resumes from its journal and the whole trace is printed.
"""

from __future__ import annotations

import subprocess
import sys
from typing import Annotated

import typer
from rich.markup import escape
from rich.rule import Rule

from ._live import follow, print_outcome
from ._render import model_calls_table, print_timeline
from ._state import console, err_console, state

SEED_MESSAGE = "Hi, I was charged $99 twice last month (invoice INV-8821). Can I get a refund?"


def register(app: typer.Typer) -> None:
    """Add the ``demo`` command."""
    app.command("demo")(demo)


def demo(
    message: Annotated[str, typer.Option(help="The customer's message.")] = SEED_MESSAGE,
) -> None:
    """Process a support case offline through the durable engine and print its trace.

    The run is kept in the home's history (``--home``, else the default home), so
    ``frontdesk runs list`` shows it afterwards; every demo is a new run.
    """
    from .._home import resolve_home
    from ..apps.support import init_db, triage_agent
    from ..runtime import AgentRuntime

    home = resolve_home(state.home)
    # The demo's refund needs the sample invoice unrefunded: reseed the sample data (in one
    # transaction, so a concurrent reader never sees it half-written).
    init_db(home, reset=True)
    console.print(Rule("frontdesk demo: support desk, offline"))
    console.print(f"home: {home}", markup=False, soft_wrap=True)
    console.print(
        "runs, events and approvals are kept there; the support desk's sample data was reseeded"
    )
    console.print("model: the rules baseline, a deterministic stand-in for the LLM\n")
    console.print(f"[bold]customer:[/bold] {escape(message)}\n")

    with AgentRuntime(home, model=state.model or "rules", recover=False) as runtime:
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
            console.print(
                "\nthe run resumed from its journal (completed steps were not run again):"
            )
            result = follow(runtime, runtime.handle(handle.execution_id), after=last_seq)
        print_outcome(result)
        console.print()
        console.print(Rule("trace"))
        console.print(f"(again with: frontdesk runs show {result.execution_id})", soft_wrap=True)
        print_timeline(console, result)
        console.print(model_calls_table(result, console.width))
