"""The reference apps the console can start runs and conversations on."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from agents import Agent


@dataclass(frozen=True)
class ConsoleApp:
    """An app: its starting agent, the context a new run gets, and a sample message."""

    name: str
    """The app's name, as in a run's ``app``."""
    title: str
    """What the console calls it."""
    agent_ref: str
    """``module:attribute`` of its starting agent."""
    sample: str
    """A message to try it with."""
    context_ref: str | None = None
    """``module:attribute`` of the context class a new run or conversation starts with."""
    chat: bool = False
    """Whether the console offers conversations with it."""

    def agent(self) -> Agent[Any]:
        """The starting agent (its module is imported on first use)."""
        value = _import(self.agent_ref)
        assert isinstance(value, Agent)
        return value

    def context(self) -> Any:
        """A new context for a run or conversation, or None."""
        if self.context_ref is None:
            return None
        factory: Callable[[], Any] = _import(self.context_ref)
        return factory()


def _import(ref: str) -> Any:
    module, _, attr = ref.partition(":")
    return getattr(importlib.import_module(module), attr)


APPS: dict[str, ConsoleApp] = {
    app.name: app
    for app in (
        ConsoleApp(
            "support",
            "Support desk",
            "frontdesk.apps.support:triage_agent",
            "Hi, I was charged $99 twice last month (invoice INV-8821). Can I get a refund?",
            chat=True,
        ),
        ConsoleApp(
            "airline",
            "Airline",
            "frontdesk.apps.airline:triage_agent",
            "I'd like to change my seat",
            context_ref="frontdesk.apps.airline:AirlineAgentContext",
            chat=True,
        ),
        ConsoleApp(
            "disputes",
            "Stripe disputes",
            "frontdesk.apps.disputes:triage_agent",
            "Please handle the dispute on payment intent pi_...",
        ),
    )
}
"""The apps by name."""
