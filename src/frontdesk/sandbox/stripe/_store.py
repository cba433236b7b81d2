"""SQLite persistence for the sandbox: Stripe objects as JSON, idempotency keys, webhooks."""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ._errors import resource_missing

StripeObject = dict[str, Any]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS objects (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    object TEXT NOT NULL,
    created INTEGER NOT NULL,
    data TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS objects_by_type ON objects (object, seq);
CREATE TABLE IF NOT EXISTS idempotency_keys (
    scope TEXT NOT NULL,
    key TEXT NOT NULL,
    method TEXT NOT NULL,
    path TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    status INTEGER NOT NULL,
    body TEXT NOT NULL,
    request_id TEXT NOT NULL,
    created REAL NOT NULL,
    PRIMARY KEY (scope, key)
);
CREATE TABLE IF NOT EXISTS webhook_deliveries (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id TEXT NOT NULL,
    endpoint_id TEXT NOT NULL,
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS deliveries_due ON webhook_deliveries (status, next_attempt_at);
CREATE TABLE IF NOT EXISTS webhook_attempts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    delivery_id INTEGER NOT NULL,
    event_id TEXT NOT NULL,
    endpoint_id TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    status_code INTEGER,
    error TEXT,
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS dispute_reviews (
    dispute_id TEXT PRIMARY KEY,
    resolve_at REAL NOT NULL
);
"""


@dataclass(frozen=True)
class FieldFilter:
    """Match objects whose top-level JSON ``field`` equals one of ``values``.

    With ``prefix`` the values are prefixes instead (``charge.dispute.`` for event types).
    """

    field: str
    values: tuple[str, ...]
    prefix: bool = False


@dataclass(frozen=True)
class ListQuery:
    """One page request: newest first, like Stripe's list endpoints."""

    limit: int = 10
    starting_after: str | None = None
    ending_before: str | None = None
    created: dict[str, int] | None = None
    filters: tuple[FieldFilter, ...] = ()


@dataclass(frozen=True)
class IdempotencyRecord:
    """The saved outcome of the first request made with an idempotency key."""

    method: str
    path: str
    fingerprint: str
    status: int
    body: str
    request_id: str


@dataclass(frozen=True)
class Delivery:
    """A webhook delivery claimed for sending."""

    id: int
    event_id: str
    endpoint_id: str
    attempts: int


_CREATED_OPS = {"gt": ">", "gte": ">=", "lt": "<", "lte": "<="}


class Transaction:
    """Reads and writes inside one SQLite transaction."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    # Stripe objects

    def get(self, object_id: str, object_type: str | None = None) -> StripeObject | None:
        """The object with ``object_id`` (of ``object_type`` if given), or None."""
        row = self._conn.execute(
            "SELECT object, data FROM objects WHERE id = ?", (object_id,)
        ).fetchone()
        if row is None or (object_type is not None and row[0] != object_type):
            return None
        return json.loads(row[1])

    def insert(self, obj: StripeObject) -> None:
        """Store a new object; it sorts as the newest of its type."""
        self._conn.execute(
            "INSERT INTO objects (id, object, created, data) VALUES (?, ?, ?, ?)",
            (obj["id"], obj["object"], obj["created"], json.dumps(obj)),
        )

    def update(self, obj: StripeObject) -> None:
        """Replace the stored JSON of an existing object."""
        self._conn.execute("UPDATE objects SET data = ? WHERE id = ?", (json.dumps(obj), obj["id"]))

    def delete(self, object_id: str) -> None:
        """Remove an object."""
        self._conn.execute("DELETE FROM objects WHERE id = ?", (object_id,))

    def find(
        self, object_type: str, field: str | None = None, value: str | None = None
    ) -> list[StripeObject]:
        """All objects of a type, newest first, optionally where ``field == value``."""
        sql = "SELECT data FROM objects WHERE object = ?"
        args: list[Any] = [object_type]
        if field is not None:
            sql += " AND json_extract(data, ?) = ?"
            args += [f"$.{field}", value]
        rows = self._conn.execute(sql + " ORDER BY seq DESC", args).fetchall()
        return [json.loads(row[0]) for row in rows]

    def page(self, object_type: str, query: ListQuery) -> tuple[list[StripeObject], bool]:
        """One page of objects and whether more exist beyond it."""
        where = ["object = ?"]
        args: list[Any] = [object_type]
        for flt in query.filters:
            if flt.prefix:
                clause = " OR ".join("substr(json_extract(data, ?), 1, ?) = ?" for _ in flt.values)
                for value in flt.values:
                    args += [f"$.{flt.field}", len(value), value]
            else:
                clause = " OR ".join("json_extract(data, ?) = ?" for _ in flt.values)
                for value in flt.values:
                    args += [f"$.{flt.field}", value]
            where.append(f"({clause})")
        for op, bound in (query.created or {}).items():
            where.append(f"created {_CREATED_OPS[op]} ?")
            args.append(bound)
        order = "DESC"
        for cursor, param in (
            (query.starting_after, "starting_after"),
            (query.ending_before, "ending_before"),
        ):
            if cursor is None:
                continue
            row = self._conn.execute(
                "SELECT seq FROM objects WHERE id = ? AND object = ?", (cursor, object_type)
            ).fetchone()
            if row is None:
                raise resource_missing(object_type, cursor, param)
            if param == "starting_after":
                where.append("seq < ?")
            else:
                where.append("seq > ?")
                order = "ASC"
            args.append(row[0])
        rows = self._conn.execute(
            f"SELECT data FROM objects WHERE {' AND '.join(where)} ORDER BY seq {order} LIMIT ?",
            [*args, query.limit + 1],
        ).fetchall()
        items = [json.loads(row[0]) for row in rows[: query.limit]]
        if order == "ASC":
            items.reverse()
        return items, len(rows) > query.limit

    # Idempotency

    def idempotency_get(self, scope: str, key: str, not_before: float) -> IdempotencyRecord | None:
        """The saved response for ``key`` in ``scope`` unless it expired before ``not_before``."""
        row = self._conn.execute(
            "SELECT method, path, fingerprint, status, body, request_id FROM idempotency_keys "
            "WHERE scope = ? AND key = ? AND created >= ?",
            (scope, key, not_before),
        ).fetchone()
        return IdempotencyRecord(*row) if row else None

    def idempotency_put(self, scope: str, key: str, record: IdempotencyRecord, now: float) -> None:
        """Save the first response for ``key`` (replacing an expired one)."""
        self._conn.execute(
            "INSERT OR REPLACE INTO idempotency_keys VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                scope,
                key,
                record.method,
                record.path,
                record.fingerprint,
                record.status,
                record.body,
                record.request_id,
                now,
            ),
        )

    # Webhook deliveries

    def add_delivery(self, event_id: str, endpoint_id: str, due: float) -> None:
        """Queue ``event_id`` for delivery to ``endpoint_id``."""
        self._conn.execute(
            "INSERT INTO webhook_deliveries (event_id, endpoint_id, status, next_attempt_at) "
            "VALUES (?, ?, 'pending', ?)",
            (event_id, endpoint_id, due),
        )

    def claim_deliveries(self, now: float, lease: float) -> list[Delivery]:
        """Pending deliveries that are due, pushed ``lease`` seconds ahead so no one else sends them."""
        rows = self._conn.execute(
            "SELECT id, event_id, endpoint_id, attempts FROM webhook_deliveries "
            "WHERE status = 'pending' AND next_attempt_at <= ? ORDER BY id LIMIT 20",
            (now,),
        ).fetchall()
        for row in rows:
            self._conn.execute(
                "UPDATE webhook_deliveries SET next_attempt_at = ? WHERE id = ?",
                (now + lease, row[0]),
            )
        return [Delivery(*row) for row in rows]

    def record_attempt(
        self, delivery: Delivery, status_code: int | None, error: str | None, now: float
    ) -> None:
        """Log one HTTP attempt of a delivery."""
        self._conn.execute(
            "INSERT INTO webhook_attempts "
            "(delivery_id, event_id, endpoint_id, attempt, status_code, error, created) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                delivery.id,
                delivery.event_id,
                delivery.endpoint_id,
                delivery.attempts + 1,
                status_code,
                error,
                now,
            ),
        )

    def finish_attempt(self, delivery: Delivery, status: str, next_attempt_at: float) -> None:
        """Set a delivery's state after an attempt (pending with a retry time, or final)."""
        self._conn.execute(
            "UPDATE webhook_deliveries SET status = ?, attempts = attempts + 1, "
            "next_attempt_at = ? WHERE id = ?",
            (status, next_attempt_at, delivery.id),
        )

    def pending_deliveries(self, event_id: str) -> int:
        """How many deliveries of an event are still pending."""
        row = self._conn.execute(
            "SELECT COUNT(*) FROM webhook_deliveries WHERE event_id = ? AND status = 'pending'",
            (event_id,),
        ).fetchone()
        return int(row[0])

    def attempts(self, event_id: str) -> list[dict[str, Any]]:
        """Every recorded delivery attempt of an event, oldest first."""
        rows = self._conn.execute(
            "SELECT a.delivery_id, a.endpoint_id, a.attempt, a.status_code, a.error, a.created, "
            "d.status FROM webhook_attempts a JOIN webhook_deliveries d ON d.id = a.delivery_id "
            "WHERE a.event_id = ? ORDER BY a.id",
            (event_id,),
        ).fetchall()
        keys = (
            "delivery",
            "webhook_endpoint",
            "attempt",
            "status_code",
            "error",
            "created",
            "delivery_status",
        )
        return [dict(zip(keys, row, strict=True)) for row in rows]

    def next_delivery_at(self) -> float | None:
        """When the earliest pending delivery is due, if any."""
        row = self._conn.execute(
            "SELECT MIN(next_attempt_at) FROM webhook_deliveries WHERE status = 'pending'"
        ).fetchone()
        return row[0]

    # Dispute reviews

    def schedule_review(self, dispute_id: str, resolve_at: float) -> None:
        """Resolve a submitted dispute at ``resolve_at``."""
        self._conn.execute(
            "INSERT OR REPLACE INTO dispute_reviews VALUES (?, ?)", (dispute_id, resolve_at)
        )

    def cancel_review(self, dispute_id: str) -> None:
        """Forget a scheduled review."""
        self._conn.execute("DELETE FROM dispute_reviews WHERE dispute_id = ?", (dispute_id,))

    def due_reviews(self, now: float) -> list[str]:
        """Disputes whose review is due."""
        rows = self._conn.execute(
            "SELECT dispute_id FROM dispute_reviews WHERE resolve_at <= ? ORDER BY resolve_at",
            (now,),
        ).fetchall()
        return [row[0] for row in rows]

    def next_review_at(self) -> float | None:
        """When the earliest scheduled review is due, if any."""
        return self._conn.execute("SELECT MIN(resolve_at) FROM dispute_reviews").fetchone()[0]


class Store:
    """The sandbox database. Each transaction uses its own connection, so any thread may call."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        # SQLite allows one writer; serializing writers of this process here avoids busy
        # waits, while the busy timeout covers other processes sharing the file.
        self._write_lock = threading.Lock()
        with self._connect() as conn:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.executescript(_SCHEMA)

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA synchronous=NORMAL")
        return conn

    @contextmanager
    def transaction(self, write: bool) -> Iterator[Transaction]:
        """A transaction committed on success and rolled back on any exception."""
        lock = self._write_lock if write else None
        if lock is not None:
            lock.acquire()
        conn = self._connect()
        try:
            conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
            try:
                yield Transaction(conn)
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
        finally:
            conn.close()
            if lock is not None:
                lock.release()
