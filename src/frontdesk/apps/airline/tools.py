"""The airline agents' context, tools and handoff hook."""

from __future__ import annotations

import asyncio

from agents import RunContextWrapper, function_tool
from pydantic import BaseModel

from ._db import Booking, SeatChangeRefused, change_seat, get_booking

SEAT_NOT_CHANGED = "The seat was not changed."
"""Ends every ``update_seat`` answer that refuses the change."""


class AirlineAgentContext(BaseModel):
    """What the agents know about the customer so far."""

    passenger_name: str | None = None
    confirmation_number: str | None = None
    seat_number: str | None = None
    flight_number: str | None = None


@function_tool(
    name_override="faq_lookup_tool", description_override="Lookup frequently asked questions."
)
async def faq_lookup_tool(question: str) -> str:
    """Answer a frequently asked question about bags, seats or wifi."""
    question_lower = question.lower()
    if "bag" in question_lower or "baggage" in question_lower:
        return (
            "You are allowed to bring one bag on the plane. "
            "It must be under 50 pounds and 22 inches x 14 inches x 9 inches."
        )
    elif "seats" in question_lower or "plane" in question_lower:
        return (
            "There are 120 seats on the plane. "
            "There are 22 business class seats and 98 economy seats. "
            "Exit rows are rows 4 and 16. "
            "Rows 5-8 are Economy Plus, with extra legroom."
        )
    elif "wifi" in question_lower:
        return "We have free wifi on the plane, join Airline-Wifi"
    return "I'm sorry, I don't know the answer to that question."


@function_tool
async def update_seat(
    context: RunContextWrapper[AirlineAgentContext], confirmation_number: str, new_seat: str
) -> str:
    """Update the seat for a given confirmation number.

    Args:
        confirmation_number: The booking's confirmation number, e.g. LL0EZ6.
        new_seat: The seat the customer wants, e.g. 14C.
    """
    try:
        booking = await asyncio.to_thread(change_seat, confirmation_number, new_seat)
    except SeatChangeRefused as refused:
        return f"{refused} {SEAT_NOT_CHANGED}"
    _remember_booking(context.context, booking)
    context.context.seat_number = booking.seat
    return f"Updated seat to {booking.seat} for confirmation number {booking.confirmation_number}"


async def on_seat_booking_handoff(context: RunContextWrapper[AirlineAgentContext]) -> None:
    """Fill in the booking's flight and passenger when the confirmation number is known.

    Nothing is invented otherwise: a placeholder flight number would be wrong data, and a
    random one would change when a durable run is replayed. ``update_seat`` fills the flight in
    once the customer gives their confirmation number.
    """
    confirmation_number = context.context.confirmation_number
    if confirmation_number is None:
        return
    booking = await asyncio.to_thread(get_booking, confirmation_number)
    if booking is not None:
        _remember_booking(context.context, booking)


def _remember_booking(context: AirlineAgentContext, booking: Booking) -> None:
    # Only fields a booking never changes, so reading them again on replay gives the same context.
    context.confirmation_number = booking.confirmation_number
    context.passenger_name = booking.passenger_name
    context.flight_number = booking.flight_number
