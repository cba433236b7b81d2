"""The support desk's database: schema, seeding from ``data/`` and connections.

It lives where the runtime's store says (see :mod:`frontdesk.apps._appdb`): ``support.db`` in
the home beside a SQLite store, the ``support`` schema of a PostgreSQL store's database.
"""

from __future__ import annotations

import json
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from .._appdb import AppConnection, AppDatabase, read_fixture

if TYPE_CHECKING:
    from ...runtime import AgentRuntime

DB_FILENAME = "support.db"
SEED_VERSION = "1"

_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE customers (
    customer_id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    email TEXT NOT NULL UNIQUE,
    plan TEXT NOT NULL,
    monthly_price REAL NOT NULL,
    billing_status TEXT NOT NULL,
    region TEXT NOT NULL,
    created_at TEXT NOT NULL,
    api_calls_month INTEGER NOT NULL,
    api_calls_limit INTEGER NOT NULL,
    seats_used INTEGER NOT NULL,
    seats_limit INTEGER NOT NULL,
    storage_gb REAL NOT NULL,
    phone_last4 TEXT NOT NULL,
    postal_code TEXT NOT NULL
);
CREATE TABLE invoices (
    invoice_id TEXT PRIMARY KEY,
    customer_id TEXT NOT NULL REFERENCES customers(customer_id),
    issued_at TEXT NOT NULL,
    period_start TEXT NOT NULL,
    period_end TEXT NOT NULL,
    status TEXT NOT NULL,
    currency TEXT NOT NULL
);
CREATE TABLE invoice_lines (
    invoice_id TEXT NOT NULL REFERENCES invoices(invoice_id),
    line_no INTEGER NOT NULL,
    description TEXT NOT NULL,
    amount REAL NOT NULL,
    PRIMARY KEY (invoice_id, line_no)
);
CREATE TABLE charges (
    charge_id TEXT PRIMARY KEY,
    invoice_id TEXT NOT NULL REFERENCES invoices(invoice_id),
    description TEXT NOT NULL,
    amount REAL NOT NULL,
    charged_at TEXT NOT NULL
);
CREATE TABLE refunds (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    refund_id TEXT NOT NULL UNIQUE,
    invoice_id TEXT NOT NULL UNIQUE REFERENCES invoices(invoice_id),
    amount REAL NOT NULL,
    reason TEXT NOT NULL,
    created_at TEXT NOT NULL,
    idempotency_key TEXT UNIQUE,
    execution_id TEXT
);
CREATE TABLE tickets (
    ticket_id TEXT PRIMARY KEY,
    customer_id TEXT NOT NULL REFERENCES customers(customer_id),
    subject TEXT NOT NULL,
    category TEXT NOT NULL,
    status TEXT NOT NULL,
    priority TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE TABLE service_status (
    region TEXT PRIMARY KEY,
    status TEXT NOT NULL,
    summary TEXT NOT NULL,
    components TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE TABLE password_resets (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    reset_id TEXT NOT NULL UNIQUE,
    customer_id TEXT NOT NULL REFERENCES customers(customer_id),
    email TEXT NOT NULL,
    requested_at TEXT NOT NULL,
    idempotency_key TEXT UNIQUE
);
CREATE TABLE escalations (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    escalation_id TEXT NOT NULL UNIQUE,
    ticket_id TEXT NOT NULL,
    customer_id TEXT,
    reason TEXT NOT NULL,
    priority TEXT NOT NULL CHECK (priority IN ('low', 'normal', 'high', 'urgent')),
    status TEXT NOT NULL DEFAULT 'queued',
    created_at TEXT NOT NULL,
    idempotency_key TEXT UNIQUE,
    execution_id TEXT
);
CREATE INDEX invoices_by_customer ON invoices(customer_id);
CREATE INDEX tickets_by_customer ON tickets(customer_id, created_at);
"""


class _Usage(BaseModel):
    api_calls_month: int
    api_calls_limit: int
    seats_used: int
    seats_limit: int
    storage_gb: float


class _Identity(BaseModel):
    phone_last4: str
    postal_code: str


class _Customer(BaseModel):
    customer_id: str
    name: str
    email: str
    plan: str
    monthly_price: float
    billing_status: str
    region: str
    created_at: str
    usage: _Usage
    identity: _Identity


class _Line(BaseModel):
    description: str
    amount: float


class _Charge(BaseModel):
    charge_id: str
    description: str
    amount: float
    charged_at: str


class _Invoice(BaseModel):
    invoice_id: str
    customer_id: str
    issued_at: str
    period_start: str
    period_end: str
    status: str
    currency: str
    line_items: list[_Line]
    charges: list[_Charge]


class _Refund(BaseModel):
    refund_id: str
    invoice_id: str
    amount: float
    reason: str
    created_at: str


class _Ticket(BaseModel):
    ticket_id: str
    customer_id: str
    subject: str
    category: str
    status: str
    priority: str
    created_at: str


class _Region(BaseModel):
    region: str
    status: str
    summary: str
    components: dict[str, str]
    updated_at: str


def _fixture(name: str, model: type[BaseModel]) -> list[Any]:
    return [model.model_validate(row) for row in read_fixture(__package__, name)]


def _seed(conn: AppConnection) -> None:
    for c in _fixture("customers.json", _Customer):
        conn.execute(
            "INSERT INTO customers VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (
                c.customer_id, c.name, c.email, c.plan, c.monthly_price, c.billing_status,
                c.region, c.created_at, c.usage.api_calls_month, c.usage.api_calls_limit,
                c.usage.seats_used, c.usage.seats_limit, c.usage.storage_gb,
                c.identity.phone_last4, c.identity.postal_code,
            ),
        )  # fmt: skip
    for inv in _fixture("invoices.json", _Invoice):
        conn.execute(
            "INSERT INTO invoices VALUES (?,?,?,?,?,?,?)",
            (inv.invoice_id, inv.customer_id, inv.issued_at, inv.period_start, inv.period_end,
             inv.status, inv.currency),
        )  # fmt: skip
        conn.executemany(
            "INSERT INTO invoice_lines VALUES (?,?,?,?)",
            [(inv.invoice_id, n, ln.description, ln.amount) for n, ln in enumerate(inv.line_items)],
        )
        conn.executemany(
            "INSERT INTO charges VALUES (?,?,?,?,?)",
            [
                (ch.charge_id, inv.invoice_id, ch.description, ch.amount, ch.charged_at)
                for ch in inv.charges
            ],
        )
    for r in _fixture("refunds.json", _Refund):
        conn.execute(
            "INSERT INTO refunds (refund_id, invoice_id, amount, reason, created_at)"
            " VALUES (?,?,?,?,?)",
            (r.refund_id, r.invoice_id, r.amount, r.reason, r.created_at),
        )
    for t in _fixture("tickets.json", _Ticket):
        conn.execute(
            "INSERT INTO tickets VALUES (?,?,?,?,?,?,?)",
            (t.ticket_id, t.customer_id, t.subject, t.category, t.status, t.priority, t.created_at),
        )
    for reg in _fixture("regions.json", _Region):
        conn.execute(
            "INSERT INTO service_status VALUES (?,?,?,?,?)",
            (reg.region, reg.status, reg.summary, json.dumps(reg.components), reg.updated_at),
        )
    conn.execute("INSERT INTO meta VALUES ('seed_version', ?)", (SEED_VERSION,))


DATABASE = AppDatabase(
    name="support",
    filename=DB_FILENAME,
    schema=[statement for statement in _SCHEMA.split(";") if statement.strip()],
    tables=(
        "escalations",
        "password_resets",
        "service_status",
        "tickets",
        "refunds",
        "charges",
        "invoice_lines",
        "invoices",
        "customers",
        "meta",
    ),
    seed=_seed,
    version=int(SEED_VERSION),
)


def db_path(home: Path | None = None) -> Path:
    """Where the support database's SQLite file is: ``<home>/support.db`` (home defaults to
    the runtime's); on a PostgreSQL store the data is in the ``support`` schema instead."""
    return DATABASE.path(home)


def init_db(
    home: Path | None = None, reset: bool = False, *, runtime: AgentRuntime | None = None
) -> Path | str:
    """Create and seed the support database if missing; ``reset`` wipes and reseeds it.

    Returns where it is: the SQLite file's path, or the PostgreSQL schema and URL.
    ``runtime``: the runtime whose store holds the data, when this does not run inside one
    of its runs.
    """
    return DATABASE.init(home, reset=reset, runtime=runtime)


def connect(
    home: Path | None = None, *, runtime: AgentRuntime | None = None
) -> AbstractContextManager[AppConnection]:
    """An autocommit connection to the seeded support database: in the app data of
    ``runtime``, else of the runtime driving the code, else of the store
    ``$FRONTDESK_DATABASE_URL`` names."""
    return DATABASE.connect(home, runtime=runtime)


def now() -> str:
    """The current UTC time, ISO 8601 to the second."""
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def list_escalations(
    home: Path | None = None, *, runtime: AgentRuntime | None = None
) -> list[dict[str, Any]]:
    """The human escalation queue, oldest first (``runtime`` as for :func:`connect`)."""
    with connect(home, runtime=runtime) as conn:
        rows = conn.execute(
            "SELECT escalation_id, ticket_id, customer_id, reason, priority, status, created_at"
            " FROM escalations ORDER BY id"
        ).fetchall()
    return [dict(row) for row in rows]
