"""Offline decision rules for the airline agents (see :mod:`frontdesk.models.rules`).

They follow the agents' instructions. Triage hands a seat change (a request to change seats,
a seat number or a confirmation number) to the Seat Booking Agent and a question about bags,
seats or wifi to the FAQ Agent. The FAQ Agent answers with the FAQ lookup tool and hands
anything else back to triage. The Seat Booking Agent asks for the confirmation number, then
for the seat, then calls ``update_seat``; anything outside that routine goes back to triage.

The booking's state is the conversation's: the confirmation number is read from every user
message, the wanted seat only from the messages since the last seat update attempt, and tool
results only from the current message, so a finished booking is never announced or made
twice and a detour to the FAQ does not lose the confirmation number.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any, Literal

from agents import Agent

from ...models.rules import Call, Conversation, Reply, Route, Rules, attach_rules
from ._db import normalize_seat
from .tools import SEAT_NOT_CHANGED

TRIAGE = "Triage Agent"
FAQ = "FAQ Agent"
SEAT_BOOKING = "Seat Booking Agent"

Topic = Literal["faq", "seat"]

CONFIRMATION = r"\b(?=[A-Z0-9]*\d)(?=[A-Z0-9]*[A-Z])[A-Z0-9]{6}\b"
"""Six letters and digits with at least one of each, like LL0EZ6."""
SEAT = r"\b\d{1,3}[A-Z]\b"
"""A row number and a letter, like 14C."""
SEAT_REQUESTS = (
    r"\b(?:change|changing|switch|swap|move|update|upgrade|book|pick|choose|select|reserve)\b"
    r"[^.?!]{0,30}?\bseats?\b",
    r"\bseats?\s+(?:change|swap|assignment|selection|booking)\b",
    r"\b(?:new|different|another|other|window|aisle|better)\s+seat\b",
)
# The words faq_lookup_tool answers (it matches "bag", "seats", "plane" and "wifi"), so a
# question routed to the FAQ Agent always has an answer.
FAQ_WORDS = ("bag", "bags", "baggage", "wifi", "seats", "plane")

COURTESY = re.compile(
    r"^\s*((thanks|thank you|thx|ok|okay|great|perfect|cheers|bye|goodbye|so much|a lot)"
    r"[\s!.,]*)+$",
    re.IGNORECASE,
)
COURTESY_REPLY = "You're welcome! Is there anything else I can help you with?"
TRIAGE_MENU = (
    "I'm the airline's assistant. I can answer questions about baggage, seats and wifi, or "
    "change your seat. How can I help?"
)
FAQ_FALLBACK = "I'm sorry, I don't know the answer to that question."
SEAT_FALLBACK = (
    "To change your seat I need your confirmation number (six letters and digits) and the "
    "seat you would like, for example 14C."
)
ASK_CONFIRMATION = "I can change your seat. What is your confirmation number?"
REPEAT_PREFIX = "As I mentioned: "


def _seat_request_hits(text: str) -> int:
    return sum(1 for p in SEAT_REQUESTS if re.search(p, text, re.IGNORECASE))


def topic(c: Conversation) -> Topic | None:
    """What the latest message is about: a seat change, an FAQ question, or neither.

    A seat number or a confirmation number counts for a seat change. FAQ words inside a seat
    request ("switch seats") do not count for the FAQ; a tie goes to the seat change.
    """
    text = c.last_user
    seat = _seat_request_hits(text) + sum(
        1 for p in (SEAT, CONFIRMATION) if re.search(p, text, re.IGNORECASE)
    )
    rest = text
    for pattern in SEAT_REQUESTS:
        rest = re.sub(pattern, " ", rest, flags=re.IGNORECASE)
    faq = sum(1 for word in FAQ_WORDS if re.search(rf"(?<!\w){word}(?!\w)", rest, re.I))
    if seat and seat >= faq:
        return "seat"
    return "faq" if faq else None


def is_courtesy(c: Conversation) -> bool:
    """A short thanks or goodbye after an earlier answer."""
    return c.previous_assistant is not None and bool(COURTESY.match(c.last_user))


def confirmation_number(c: Conversation) -> str | None:
    """The confirmation number from the newest user message that has one, in any turn."""
    found = c.search(CONFIRMATION, scope="any")
    return found.upper() if found else None


def _since_last_update(c: Conversation) -> list[str]:
    """User messages after the one that led to the last ``update_seat`` call, newest first."""
    last = max((call.turn for call in c.calls if call.name == "update_seat"), default=-1)
    return list(reversed(c.user_messages[last + 1 :]))


def requested_seat(c: Conversation) -> str | None:
    """The seat the customer asked for since the last seat update attempt, normalized."""
    for text in _since_last_update(c):
        for match in re.finditer(SEAT, text, re.IGNORECASE):
            seat = normalize_seat(match.group(0))
            if seat is not None:
                return seat
    return None


def seat_update_answer(c: Conversation) -> str | None:
    """The answer once ``update_seat`` ran for this message (None before it did)."""
    call = c.last_call("update_seat", scope="turn")
    if call is None or call.output is None:
        return None
    if not call.output.endswith(SEAT_NOT_CHANGED):
        return (
            f"Done! Your seat is now {call.args.get('new_seat')} (confirmation number "
            f"{call.args.get('confirmation_number')}). Is there anything else I can help with?"
        )
    reason = call.output.removesuffix(SEAT_NOT_CHANGED).strip()
    if "no booking with confirmation number" in reason:
        return f"{reason} Could you check your confirmation number?"
    return f"I couldn't change your seat: {reason} Which seat would you like instead?"


def ask_for_seat(c: Conversation) -> str | None:
    """Ask for the seat once the confirmation number is known."""
    confirmation = confirmation_number(c)
    if confirmation is None:
        return None
    return (
        f"Thanks! I have your confirmation number {confirmation}. "
        "Which seat would you like, for example 14C?"
    )


def faq_answer(c: Conversation) -> str | None:
    """The FAQ lookup's answer to the latest message (None before the lookup)."""
    result = c.result("faq_lookup_tool", scope="turn")
    return None if result is None else str(result)


def again(answer: Callable[[Conversation], str | None]) -> Callable[[Conversation], str | None]:
    """The same answer, marked as a repeat (a reply never repeats the previous one verbatim)."""

    def repeated(c: Conversation) -> str | None:
        text = answer(c)
        return None if text is None else REPEAT_PREFIX + text

    return repeated


def _answer_steps(answer: Callable[[Conversation], str | None]) -> list[Reply]:
    return [Reply(answer), Reply(again(answer))]


TRIAGE_RULES = Rules(
    [
        Reply(COURTESY_REPLY, when=is_courtesy),
        Route(FAQ, when=lambda c: topic(c) == "faq"),
        Route(SEAT_BOOKING, when=lambda c: topic(c) == "seat"),
    ],
    fallback=TRIAGE_MENU,
)

FAQ_RULES = Rules(
    [
        Route(TRIAGE, when=lambda c: topic(c) != "faq"),
        Call("faq_lookup_tool", {"question": lambda c: c.last_user}),
        *_answer_steps(faq_answer),
    ],
    fallback=FAQ_FALLBACK,
)

SEAT_BOOKING_RULES = Rules(
    [
        Route(TRIAGE, when=lambda c: topic(c) != "seat"),
        *_answer_steps(seat_update_answer),
        Call(
            "update_seat",
            {"confirmation_number": confirmation_number, "new_seat": requested_seat},
        ),
        Reply(ASK_CONFIRMATION, when=lambda c: confirmation_number(c) is None),
        Reply(ask_for_seat),
    ],
    fallback=SEAT_FALLBACK,
)

RULES: Mapping[str, Rules] = {
    TRIAGE: TRIAGE_RULES,
    FAQ: FAQ_RULES,
    SEAT_BOOKING: SEAT_BOOKING_RULES,
}
"""Each airline agent's rules, by agent name."""


def attach_airline_rules(agents: Mapping[str, Agent[Any]]) -> None:
    """Attach the offline rules to one airline agent graph, given as agents by name."""
    for name, rules in RULES.items():
        attach_rules(agents[name], rules)
