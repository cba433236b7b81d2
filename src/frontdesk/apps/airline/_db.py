"""The airline's flights, seat maps and bookings, kept beside the runtime's data.

The database lives where the runtime's store says (see :mod:`frontdesk.apps._appdb`):
``<home>/airline.db`` beside a SQLite store, the ``airline`` schema of a PostgreSQL store's
database. It is created and seeded from the JSON
fixtures in ``data/`` the first time anything reads it. Every flight uses the layout in
``data/seat_layout.json``: 120 seats, 22 business (rows 1-4) and 98 economy (rows 5-21), three
and three (A-C, D-F); the exit rows 4 and 16 and the last row 21 have no middle seats (B, E);
rows 5-8 are Economy Plus.

A seat is taken when a booking on that flight holds it; a unique constraint on
``bookings(flight_number, seat)`` makes a double booking impossible.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from frontdesk.errors import InvalidInput

from .._appdb import AppConnection, AppDatabase, read_fixture

if TYPE_CHECKING:
    from ...runtime import AgentRuntime

DB_FILENAME = "airline.db"
SCHEMA_VERSION = 1
NEARBY_LIMIT = 5

_SCHEMA = (
    """
    CREATE TABLE flights (
        flight_number TEXT PRIMARY KEY,
        origin TEXT NOT NULL,
        destination TEXT NOT NULL,
        departure TEXT NOT NULL
    )
    """,
    """
    CREATE TABLE seats (
        flight_number TEXT NOT NULL REFERENCES flights (flight_number),
        seat TEXT NOT NULL,
        row INTEGER NOT NULL,
        letter TEXT NOT NULL,
        cabin TEXT NOT NULL CHECK (cabin IN ('business', 'economy')),
        economy_plus INTEGER NOT NULL,
        exit_row INTEGER NOT NULL,
        PRIMARY KEY (flight_number, seat)
    )
    """,
    """
    CREATE TABLE bookings (
        confirmation_number TEXT PRIMARY KEY,
        passenger_name TEXT NOT NULL,
        flight_number TEXT NOT NULL REFERENCES flights (flight_number),
        seat TEXT,
        FOREIGN KEY (flight_number, seat) REFERENCES seats (flight_number, seat),
        UNIQUE (flight_number, seat)
    )
    """,
)
_TABLES_DROP_ORDER = ("bookings", "seats", "flights")

_SEAT_PATTERN = re.compile(r"(\d{1,3})([A-Z])")

Cabin = Literal["business", "economy"]


@dataclass(frozen=True)
class Booking:
    """A passenger's booking on one flight; ``seat`` is ``None`` until a seat is assigned."""

    confirmation_number: str
    passenger_name: str
    flight_number: str
    seat: str | None


@dataclass(frozen=True)
class Seat:
    """One seat of a flight's seat map."""

    seat: str
    row: int
    letter: str
    cabin: Cabin
    economy_plus: bool
    exit_row: bool
    occupied: bool


class SeatChangeRefused(InvalidInput):
    """The seat change cannot be made; nothing was changed. The message says why."""


class MalformedSeat(SeatChangeRefused):
    """The seat is not written as a row number and a letter."""

    def __init__(self, seat: str) -> None:
        super().__init__(
            f"{seat.strip()!r} is not a seat number: seat numbers are a row number and a "
            "letter, like 14C."
        )
        self.seat = seat


class BookingNotFound(SeatChangeRefused, LookupError):
    """No booking has this confirmation number."""

    def __init__(self, confirmation_number: str) -> None:
        super().__init__(f"There is no booking with confirmation number {confirmation_number}.")
        self.confirmation_number = confirmation_number


class SeatNotFound(SeatChangeRefused, LookupError):
    """The flight has no seat with this number. ``free_nearby`` lists the closest free seats."""

    def __init__(self, seat: str, flight_number: str, free_nearby: list[str]) -> None:
        super().__init__(
            f"Seat {seat} does not exist on {flight_number}. {_nearby_sentence(free_nearby)}"
        )
        self.seat = seat
        self.flight_number = flight_number
        self.free_nearby = free_nearby


class SeatTaken(SeatChangeRefused):
    """Another passenger holds the seat. ``free_nearby`` lists the closest free seats."""

    def __init__(self, seat: str, flight_number: str, free_nearby: list[str]) -> None:
        super().__init__(
            f"Seat {seat} on {flight_number} is already taken. {_nearby_sentence(free_nearby)}"
        )
        self.seat = seat
        self.flight_number = flight_number
        self.free_nearby = free_nearby


def _nearby_sentence(free_nearby: list[str]) -> str:
    if not free_nearby:
        return "There are no free seats on this flight."
    return f"Free seats nearby: {', '.join(free_nearby)}."


def db_path(home: str | os.PathLike[str] | None = None) -> Path:
    """Where the airline database's SQLite file is: in ``home`` if given, else in the
    runtime's home; on a PostgreSQL store the data is in the ``airline`` schema instead."""
    return DATABASE.path(home)


def init_db(
    home: str | os.PathLike[str] | None = None,
    reset: bool = False,
    *,
    runtime: AgentRuntime | None = None,
) -> Path | str:
    """Create and seed the airline database if it is missing; return where it is (the SQLite
    file's path, or the PostgreSQL schema and URL).

    With ``reset=True`` every flight, seat and booking is replaced by the fixtures.
    ``runtime``: the runtime whose store holds the data, when this does not run inside one of
    its runs (else that runtime's, else the store ``$FRONTDESK_DATABASE_URL`` names).
    """
    return DATABASE.init(home, reset=reset, runtime=runtime)


def normalize_seat(seat: str) -> str | None:
    """Return ``seat`` in canonical form (``" 14c "`` → ``"14C"``), or ``None`` if malformed."""
    match = _SEAT_PATTERN.fullmatch("".join(seat.split()).upper())
    if match is None or int(match.group(1)) == 0:
        return None
    return f"{int(match.group(1))}{match.group(2)}"


def get_booking(
    confirmation_number: str, home: str | os.PathLike[str] | None = None
) -> Booking | None:
    """The booking with this confirmation number (any case), or ``None``."""
    with DATABASE.connect(home) as conn:
        return _fetch_booking(conn, _normalize_confirmation(confirmation_number))


def seat_map(flight_number: str, home: str | os.PathLike[str] | None = None) -> list[Seat]:
    """Every seat of the flight, front to back; empty if there is no such flight."""
    with DATABASE.connect(home) as conn:
        return _fetch_seat_map(conn, flight_number.strip().upper())


def change_seat(
    confirmation_number: str, new_seat: str, home: str | os.PathLike[str] | None = None
) -> Booking:
    """Move the booking to ``new_seat`` and return the updated booking.

    The old seat is freed and the new one taken in one transaction. Moving to the seat the
    booking already holds succeeds without a change, so a retried call gives the same result.
    Raises a :class:`SeatChangeRefused` subclass, having changed nothing, when the seat is
    malformed, the booking is unknown, or the seat does not exist or is taken.
    """
    seat = normalize_seat(new_seat)
    if seat is None:
        raise MalformedSeat(new_seat)
    confirmation_number = _normalize_confirmation(confirmation_number)
    with DATABASE.connect(home) as conn, conn.transaction():
        booking = _fetch_booking(conn, confirmation_number)
        if booking is None:
            raise BookingNotFound(confirmation_number)
        if booking.seat == seat:
            return booking
        seats = _fetch_seat_map(conn, booking.flight_number)
        wanted = next((s for s in seats if s.seat == seat), None)
        if wanted is None:
            raise SeatNotFound(seat, booking.flight_number, _free_nearby(seats, seat))
        if wanted.occupied:
            raise SeatTaken(seat, booking.flight_number, _free_nearby(seats, seat))
        conn.execute(
            "UPDATE bookings SET seat = ? WHERE confirmation_number = ?",
            (seat, confirmation_number),
        )
        return replace(booking, seat=seat)


def _normalize_confirmation(confirmation_number: str) -> str:
    return confirmation_number.strip().upper()


def _free_nearby(seats: list[Seat], seat: str) -> list[str]:
    """The free seats closest to ``seat`` (a normalized number), counting rows plus letters."""
    row, letter = int(seat[:-1]), seat[-1]

    def distance(s: Seat) -> tuple[int, int, int, str]:
        rows_away, letters_away = abs(s.row - row), abs(ord(s.letter) - ord(letter))
        return rows_away + letters_away, rows_away, s.row, s.letter

    free = sorted((s for s in seats if not s.occupied), key=distance)
    return [s.seat for s in free[:NEARBY_LIMIT]]


def _fetch_booking(conn: AppConnection, confirmation_number: str) -> Booking | None:
    row = conn.execute(
        "SELECT confirmation_number, passenger_name, flight_number, seat"
        " FROM bookings WHERE confirmation_number = ?",
        (confirmation_number,),
    ).fetchone()
    return None if row is None else Booking(*row)


def _fetch_seat_map(conn: AppConnection, flight_number: str) -> list[Seat]:
    rows = conn.execute(
        """
        SELECT s.seat, s.row, s.letter, s.cabin, s.economy_plus, s.exit_row,
               b.confirmation_number IS NOT NULL
        FROM seats AS s
        LEFT JOIN bookings AS b ON b.flight_number = s.flight_number AND b.seat = s.seat
        WHERE s.flight_number = ?
        ORDER BY s.row, s.letter
        """,
        (flight_number,),
    ).fetchall()
    return [
        Seat(
            seat=seat,
            row=row,
            letter=letter,
            cabin=cabin,
            economy_plus=bool(economy_plus),
            exit_row=bool(exit_row),
            occupied=bool(occupied),
        )
        for seat, row, letter, cabin, economy_plus, exit_row, occupied in rows
    ]


def _seed(conn: AppConnection) -> None:
    flights = read_fixture(__package__, "flights.json")
    layout = read_fixture(__package__, "seat_layout.json")["row_groups"]
    conn.executemany(
        "INSERT INTO flights VALUES (:flight_number, :origin, :destination, :departure)",
        flights,
    )
    conn.executemany(
        "INSERT INTO seats VALUES (?, ?, ?, ?, ?, ?, ?)",
        [
            (
                flight["flight_number"],
                f"{row}{letter}",
                row,
                letter,
                group["cabin"],
                int(group.get("economy_plus", False)),
                int(group.get("exit_row", False)),
            )
            for flight in flights
            for group in layout
            for row in range(group["first_row"], group["last_row"] + 1)
            for letter in group["letters"]
        ],
    )
    conn.executemany(
        "INSERT INTO bookings VALUES"
        " (:confirmation_number, :passenger_name, :flight_number, :seat)",
        read_fixture(__package__, "bookings.json"),
    )


DATABASE = AppDatabase(
    name="airline",
    filename=DB_FILENAME,
    schema=_SCHEMA,
    tables=_TABLES_DROP_ORDER,
    seed=_seed,
    version=SCHEMA_VERSION,
)
