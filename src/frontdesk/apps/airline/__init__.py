"""Airline customer service: a triage agent that hands off to FAQ and seat booking agents.

Bookings and seat maps live beside the runtime's store (``airline.db`` in its home, or the
``airline`` schema of its PostgreSQL database), seeded from the fixtures in ``data/`` on first
use. The demo booking is ``LL0EZ6`` on ``FLT-123``.
Every graph :func:`init_agents` builds, the module's own included, carries the offline rules
(:mod:`.rules`), so the app runs keyless with ``FRONTDESK_MODEL=rules``.
The same conversation as a Temporal workflow, ``CustomerServiceWorkflow``, is in
:mod:`.workflow` (it needs the ``temporal`` extra, so it is not imported here).
"""

from ._db import (
    Booking,
    BookingNotFound,
    MalformedSeat,
    Seat,
    SeatChangeRefused,
    SeatNotFound,
    SeatTaken,
    change_seat,
    db_path,
    get_booking,
    init_db,
    normalize_seat,
    seat_map,
)
from .agents import AGENTS, faq_agent, init_agents, seat_booking_agent, triage_agent
from .rules import attach_airline_rules
from .tools import AirlineAgentContext, faq_lookup_tool, on_seat_booking_handoff, update_seat

__all__ = [
    "AGENTS",
    "AirlineAgentContext",
    "Booking",
    "BookingNotFound",
    "MalformedSeat",
    "Seat",
    "SeatChangeRefused",
    "SeatNotFound",
    "SeatTaken",
    "attach_airline_rules",
    "change_seat",
    "db_path",
    "faq_agent",
    "faq_lookup_tool",
    "get_booking",
    "init_agents",
    "init_db",
    "normalize_seat",
    "on_seat_booking_handoff",
    "seat_booking_agent",
    "seat_map",
    "triage_agent",
    "update_seat",
]
