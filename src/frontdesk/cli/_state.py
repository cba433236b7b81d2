"""Options shared by every command: where the home is and which model to use."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from rich.console import Console

from ..runtime import AgentRuntime

console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)


@dataclass
class CliState:
    """Global options given before the command."""

    home: str | None = None
    model: str | None = None


state = CliState()


@contextmanager
def open_runtime(*, model: str | None = None, recover: bool = False) -> Iterator[AgentRuntime]:
    """A runtime on the CLI's home; it drives what it resumes before the command exits."""
    with AgentRuntime(state.home, model=model or state.model, recover=recover) as runtime:
        yield runtime
