"""``frontdesk worker``: a process that resumes and drives runs."""

from __future__ import annotations

import importlib
import signal
import threading
from typing import Annotated

import typer

from ._state import console, state


def register(app: typer.Typer) -> None:
    """Add the ``worker`` command."""
    app.command("worker")(worker)


def worker(
    agents: Annotated[
        list[str] | None,
        typer.Option(
            "--agents",
            "-a",
            help="Import agents as module:attribute (repeatable) and register them.",
        ),
    ] = None,
    poll: Annotated[float, typer.Option(help="Seconds between scans for runs to resume.")] = 1.0,
) -> None:
    """Resume runs whose process died and runs that became ready (e.g. after an approval)."""
    from ..runtime import AgentRuntime

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with AgentRuntime(state.home, model=state.model, poll_interval=poll) as runtime:
        for ref in agents or []:
            module, _, attr = ref.partition(":")
            runtime.register(getattr(importlib.import_module(module), attr))
        console.print(f"worker on {runtime.home} (Ctrl-C to stop)")
        try:
            while not stop.wait(0.5):
                pass
        except KeyboardInterrupt:
            pass
