"""The merchant's orders, emails and phone logs, plus the intake's bookkeeping.

The database lives where the runtime's store says (see :mod:`frontdesk.apps._appdb`):
``<home>/disputes.db`` beside a SQLite store, the ``disputes`` schema of a PostgreSQL store's
database. It is created and seeded from the JSON fixtures in ``data/`` the first time anything
opens it; a process that loses the race to seed waits for the winner's transaction and then
finds the data there.
"""

from __future__ import annotations

import json
import os
import re
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from .._appdb import AppConnection, AppDatabase, Row

if TYPE_CHECKING:
    from ...runtime import AgentRuntime

DB_FILENAME = "disputes.db"
SCHEMA_VERSION = 1
_DATA_DIR = Path(__file__).with_name("data")

_SCHEMA = (
    """
    CREATE TABLE orders (
        order_id INTEGER PRIMARY KEY,
        fulfillment_details TEXT NOT NULL,
        delivery_status TEXT,
        customer_id TEXT,
        customer_name TEXT,
        customer_phone TEXT,
        customer_email TEXT,
        order_date TEXT,
        shipping_date TEXT,
        carrier TEXT,
        tracking_number TEXT,
        tracking_delivery_status TEXT,
        shipping_zip TEXT,
        tos_accepted_on TEXT,
        tos_ip TEXT
    )
    """,
    """
    CREATE TABLE emails (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        email TEXT NOT NULL,
        subject TEXT NOT NULL,
        body TEXT NOT NULL
    )
    """,
    """
    CREATE TABLE phone_logs (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        phone_number TEXT NOT NULL,
        timestamp TEXT NOT NULL,
        duration_minutes INTEGER NOT NULL,
        notes TEXT NOT NULL,
        order_id INTEGER REFERENCES orders (order_id)
    )
    """,
    "CREATE INDEX emails_by_address ON emails (lower(email))",
    "CREATE INDEX phone_logs_by_number ON phone_logs (phone_number, timestamp)",
    """
    CREATE TABLE webhook_events (
        event_id TEXT PRIMARY KEY,
        type TEXT NOT NULL,
        object_id TEXT,
        action TEXT NOT NULL,
        execution_id TEXT,
        deliveries INTEGER NOT NULL,
        first_received_at REAL NOT NULL,
        last_received_at REAL NOT NULL
    )
    """,
)
_TABLES = ("webhook_events", "dispute_runs", "phone_logs", "emails", "orders")
"""Dropped on reset; ``dispute_runs`` was an earlier bookkeeping table."""


class TrackingInfo(BaseModel):
    """How an order travels."""

    carrier: str
    tracking_number: str
    delivery_status: str | None = None


class ShippingAddress(BaseModel):
    """Where an order goes."""

    zip: str


class TosAcceptance(BaseModel):
    """When and from where the customer accepted the terms of service."""

    date: str
    ip: str


class Order(BaseModel):
    """An order, in the shape ``get_order`` returns (absent fields are left out)."""

    order_id: int
    fulfillment_details: str
    customer_id: str | None = None
    customer_name: str | None = None
    customer_phone: str | None = None
    order_date: str | None = None
    shipping_date: str | None = None
    customer_email: str | None = None
    tracking_info: TrackingInfo | None = None
    delivery_status: str | None = None
    shipping_address: ShippingAddress | None = None
    tos_acceptance: TosAcceptance | None = None

    def record(self) -> dict[str, Any]:
        """The order as a plain dict without empty fields."""
        return self.model_dump(exclude_none=True)


class Email(BaseModel):
    """An email from a customer."""

    email: str
    subject: str
    body: str


class PhoneLog(BaseModel):
    """A phone call with a customer; ``order_id`` is None when no order was mentioned."""

    phone_number: str
    timestamp: str
    duration_minutes: int
    notes: str
    order_id: int | None = None


def db_path(home: str | os.PathLike[str] | None = None) -> Path:
    """Where the disputes database's SQLite file is: in ``home`` if given, else in the
    runtime's home; on a PostgreSQL store the data is in the ``disputes`` schema instead."""
    return DATABASE.path(home)


def init_db(
    home: str | os.PathLike[str] | None = None,
    reset: bool = False,
    *,
    runtime: AgentRuntime | None = None,
) -> Path | str:
    """Create and seed the database if it is missing and return where it is (the SQLite
    file's path, or the PostgreSQL schema and URL).

    ``reset=True`` replaces every order, email and phone log with the fixtures and forgets
    which runs handle which disputes. ``runtime``: the runtime whose store holds the data,
    when this does not run inside one of its runs.
    """
    return DATABASE.init(home, reset=reset, runtime=runtime)


def connect(
    home: str | os.PathLike[str] | None = None, *, runtime: AgentRuntime | None = None
) -> AbstractContextManager[AppConnection]:
    """An autocommit connection to the seeded database: in the app data of ``runtime``, else
    of the runtime driving the code, else of the store ``$FRONTDESK_DATABASE_URL`` names."""
    return DATABASE.connect(home, runtime=runtime)


def normalize_phone(phone_number: str) -> str:
    """``"+1 (555) 123-4567"`` -> ``"+15551234567"``."""
    return re.sub(r"[\s().-]", "", phone_number.strip())


def find_order(order_id: int, home: str | os.PathLike[str] | None = None) -> Order | None:
    """The order with this id, or None."""
    with connect(home) as conn:
        row = conn.execute("SELECT * FROM orders WHERE order_id = ?", (order_id,)).fetchone()
    return None if row is None else _order_from_row(row)


def emails_from(email: str, home: str | os.PathLike[str] | None = None) -> list[Email]:
    """Every email from this address (any case), oldest first."""
    with connect(home) as conn:
        rows = conn.execute(
            "SELECT email, subject, body FROM emails WHERE lower(email) = lower(?) ORDER BY id",
            (email.strip(),),
        ).fetchall()
    return [Email(**dict(row)) for row in rows]


def phone_logs_for(phone_number: str, home: str | os.PathLike[str] | None = None) -> list[PhoneLog]:
    """Every call with this number, in the order they were logged."""
    with connect(home) as conn:
        rows = conn.execute(
            "SELECT phone_number, timestamp, duration_minutes, notes, order_id FROM phone_logs"
            " WHERE phone_number = ? ORDER BY id",
            (normalize_phone(phone_number),),
        ).fetchall()
    return [PhoneLog(**dict(row)) for row in rows]


def _order_from_row(row: Row) -> Order:
    tracking = (
        TrackingInfo(
            carrier=row["carrier"],
            tracking_number=row["tracking_number"],
            delivery_status=row["tracking_delivery_status"],
        )
        if row["carrier"] is not None
        else None
    )
    tos = (
        TosAcceptance(date=row["tos_accepted_on"], ip=row["tos_ip"])
        if row["tos_accepted_on"] is not None
        else None
    )
    zip_code = row["shipping_zip"]
    return Order(
        order_id=row["order_id"],
        fulfillment_details=row["fulfillment_details"],
        customer_id=row["customer_id"],
        customer_name=row["customer_name"],
        customer_phone=row["customer_phone"],
        order_date=row["order_date"],
        shipping_date=row["shipping_date"],
        customer_email=row["customer_email"],
        tracking_info=tracking,
        delivery_status=row["delivery_status"],
        shipping_address=ShippingAddress(zip=zip_code) if zip_code is not None else None,
        tos_acceptance=tos,
    )


def _seed(conn: AppConnection) -> None:
    for order in (Order.model_validate(o) for o in _fixture("orders.json")):
        tracking, tos = order.tracking_info, order.tos_acceptance
        conn.execute(
            "INSERT INTO orders VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                order.order_id, order.fulfillment_details, order.delivery_status,
                order.customer_id, order.customer_name, order.customer_phone,
                order.customer_email, order.order_date, order.shipping_date,
                tracking and tracking.carrier, tracking and tracking.tracking_number,
                tracking and tracking.delivery_status,
                order.shipping_address and order.shipping_address.zip,
                tos and tos.date, tos and tos.ip,
            ),
        )  # fmt: skip
    conn.executemany(
        "INSERT INTO emails (email, subject, body) VALUES (:email, :subject, :body)",
        [Email.model_validate(e).model_dump() for e in _fixture("emails.json")],
    )
    conn.executemany(
        "INSERT INTO phone_logs (phone_number, timestamp, duration_minutes, notes, order_id)"
        " VALUES (:phone_number, :timestamp, :duration_minutes, :notes, :order_id)",
        [PhoneLog.model_validate(p).model_dump() for p in _fixture("phone_logs.json")],
    )


def _fixture(name: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = json.loads((_DATA_DIR / name).read_text("utf-8"))
    return rows


DATABASE = AppDatabase(
    name="disputes",
    filename=DB_FILENAME,
    schema=_SCHEMA,
    tables=_TABLES,
    seed=_seed,
    version=SCHEMA_VERSION,
)
