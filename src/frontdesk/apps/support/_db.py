"""The support desk's SQLite database: schema, seeding from ``data/`` and connections."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from contextlib import closing, contextmanager
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from ..._home import current_home, resolve_home

DB_FILENAME = "support.db"
SEED_VERSION = "1"
BUSY_TIMEOUT_SECONDS = 30.0

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
    text = resources.files(__package__).joinpath("data", name).read_text(encoding="utf-8")
    return [model.model_validate(row) for row in json.loads(text)]


def _seed(conn: sqlite3.Connection) -> None:
    for statement in _SCHEMA.split(";"):
        if statement.strip():
            conn.execute(statement)
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


def _is_seeded(conn: sqlite3.Connection) -> bool:
    try:
        row = conn.execute("SELECT value FROM meta WHERE key = 'seed_version'").fetchone()
    except sqlite3.OperationalError:
        return False
    return row is not None


def _drop_all(conn: sqlite3.Connection) -> None:
    names = [
        row[0]
        for row in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
        )
    ]
    for name in names:
        conn.execute(f'DROP TABLE IF EXISTS "{name}"')


def _open(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT_SECONDS, isolation_level=None)
    conn.row_factory = sqlite3.Row
    return conn


def _ensure_seeded(conn: sqlite3.Connection, reset: bool = False) -> None:
    """Create and seed the schema in one transaction unless it is already there.

    ``BEGIN IMMEDIATE`` takes the write lock first, so a second process waits and then finds
    the seed marker instead of seeding again; a failure rolls everything back.
    """
    if not reset and _is_seeded(conn):
        return
    with transaction(conn):
        if reset:
            _drop_all(conn)
        elif _is_seeded(conn):
            return
        _seed(conn)


def db_path(home: Path | None = None) -> Path:
    """Where the support database lives: ``<home>/support.db`` (home defaults to the runtime's)."""
    base = resolve_home(home) if home is not None else current_home()
    base.mkdir(parents=True, exist_ok=True)
    return base / DB_FILENAME


def init_db(home: Path | None = None, reset: bool = False) -> Path:
    """Create and seed the support database if missing; ``reset`` wipes and reseeds it.

    Returns the database path.
    """
    path = db_path(home)
    with closing(_open(path)) as conn:
        _ensure_seeded(conn, reset=reset)
    return path


@contextmanager
def connect(home: Path | None = None) -> Iterator[sqlite3.Connection]:
    """An autocommit connection to the seeded support database."""
    with closing(_open(db_path(home))) as conn:
        _ensure_seeded(conn)
        yield conn


@contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[None]:
    """One write transaction, taking the write lock up front."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def now() -> str:
    """The current UTC time, ISO 8601 to the second."""
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def list_escalations(home: Path | None = None) -> list[dict[str, Any]]:
    """The human escalation queue, oldest first."""
    with connect(home) as conn:
        rows = conn.execute(
            "SELECT escalation_id, ticket_id, customer_id, reason, priority, status, created_at"
            " FROM escalations ORDER BY id"
        ).fetchall()
    return [dict(row) for row in rows]
