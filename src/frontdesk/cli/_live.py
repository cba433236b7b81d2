"""Following a run live on the terminal, shared by ``support ask`` and the demo."""

from __future__ import annotations

from rich.markup import escape

from ..runtime import AgentRuntime, RunHandle, RunResult
from ..store import SETTLED_STATUSES
from ._render import describe_event, print_line
from ._state import console


def follow(
    runtime: AgentRuntime, handle: RunHandle, *, after: int = 0, approve_as: str | None = None
) -> RunResult:
    """Print each event as it happens until the run settles; returns the run.

    With ``approve_as``, approvals are granted under that name and the run continues.
    """
    last = after
    while True:
        stream = handle.stream(after=last)
        for event in stream:
            if event.type not in ("agent_start", "message", "done"):
                print_line(console, f"  {describe_event(event)}")
        last = stream.last_seq
        result = runtime.get(handle.execution_id)
        if result.status == "waiting_approval" and approve_as is not None:
            for approval in result.pending_approvals:
                runtime.approve(
                    approval.approval_id, by=approve_as, note="approved from the terminal"
                )
            continue
        if result.status in SETTLED_STATUSES:
            return result


def print_outcome(result: RunResult) -> None:
    """The answer, or why there is none yet."""
    if result.status == "completed":
        console.print()
        console.print(str(result.output), markup=False)
    elif result.status == "waiting_approval":
        for approval in result.pending_approvals:
            console.print(
                f"\n[yellow]waiting for approval[/yellow] of "
                f"{escape(approval.tool_name)}({escape(str(approval.args))})\n"
                f"  approve: frontdesk approvals approve {approval.approval_id} --by <you>\n"
                f"  reject:  frontdesk approvals reject {approval.approval_id} --reason '...'"
            )
    else:
        console.print(f"\n[red]run {result.status}[/red]: {escape(result.error or '')}")
    console.print(
        f"\n[dim]run {result.execution_id} · {result.usage.total_tokens} tokens"
        + (f" · {escape(result.model_label)}" if result.model_label else "")
        + "[/dim]"
    )
