"""A short airline conversation, ready to run: an FAQ question, then a seat change.

The customer asks how many seats the plane has (the triage agent hands off to the FAQ agent),
then asks to change seats with the demo booking's confirmation number (back to triage, on to
the seat booking agent) and picks a free seat, which ``update_seat`` books. The booking is
``LL0EZ6`` on ``FLT-123``; seat 14C is free in the seeded data.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .agents import triage_agent
from .tools import AirlineAgentContext

if TYPE_CHECKING:
    from ...conversations import Conversation
    from ...runtime import AgentRuntime

TURNS = (
    "How many seats are on the plane?",
    "I'd like to change my seat. My confirmation number is LL0EZ6.",
    "14C, please",
)
"""The customer's messages, in order."""


@dataclass(frozen=True)
class Turn:
    """One message sent and what the agents did about it."""

    message: str
    """The customer's message."""
    lines: list[str]
    """The conversation's new lines, as :meth:`Conversation.send` returns them: the message
    echoed, the handoffs, the tool calls and their outputs, and the agent's answer."""


def open_demo_conversation(runtime: AgentRuntime, conversation_id: str) -> Conversation:
    """Create (or reopen) the conversation with the airline's triage agent."""
    return runtime.conversation(conversation_id, agent=triage_agent, context=AirlineAgentContext())


def play_conversation(conversation: Conversation) -> Iterator[Turn]:
    """Send :data:`TURNS` one at a time, yielding each turn once the agents answered it.

    Each message is sent at the conversation's current length, so a turn sent from elsewhere
    in the meantime makes it stale (:class:`~frontdesk.errors.StaleConversation`) rather than
    being talked over.
    """
    length = len(conversation.history())
    for message in TURNS:
        lines = conversation.send(message, length)
        length += len(lines)
        yield Turn(message, lines)
