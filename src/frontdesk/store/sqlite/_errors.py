"""What went wrong with the SQLite store, in frontdesk's words.

Every ``sqlite3`` error the backend meets is translated here into a
:class:`~frontdesk.errors.StoreError` that says what happened and what to do; none escapes the
store.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from ...errors import StoreCorrupt, StoreError, StoreLocked

BUSY_TIMEOUT_MS = 10_000
"""How long a connection waits for another's write lock by default, in milliseconds."""


def rollback(conn: sqlite3.Connection) -> None:
    """Roll back the connection's open transaction, if SQLite has not already done so.

    After some errors (a full disk, an I/O error) SQLite rolls the transaction back itself;
    a second ``ROLLBACK`` would fail and hide the error that explains what happened.
    """
    if conn.in_transaction:
        try:
            conn.execute("ROLLBACK")
        except sqlite3.Error:
            pass


def is_busy(exc: sqlite3.Error) -> bool:
    """Whether ``exc`` says another connection holds the lock the statement needed."""
    text = str(exc).lower()
    return "locked" in text or "busy" in text


def translate(
    exc: sqlite3.Error, path: Path | None = None, busy_timeout_ms: int = BUSY_TIMEOUT_MS
) -> StoreError:
    """Turn a sqlite3 error into the frontdesk error that explains it."""
    where = f" at {path}" if path else ""
    text = str(exc).lower()
    code = str(getattr(exc, "sqlite_errorname", "") or "")
    if is_busy(exc):
        return StoreLocked(
            f"the store{where} is locked by another process (waited "
            f"{busy_timeout_ms / 1000:g}s); nothing was changed, try again"
        )
    if code.startswith("SQLITE_FULL") or "disk is full" in text:
        return StoreError(
            f"the store{where} cannot grow: database or disk is full; nothing was changed. "
            "Free some space on its file system and try again"
        )
    if code.startswith("SQLITE_READONLY") or "readonly" in text:
        return StoreError(
            f"the store{where} cannot be written: {_not_writable(path)} ({exc}); nothing was "
            "changed"
        )
    if code.startswith("SQLITE_CANTOPEN") or "unable to open" in text:
        return StoreError(f"cannot open the store{where}: {_not_writable(path)} ({exc})")
    damaged_log = _damaged_log(path, code)
    if damaged_log is not None:
        return StoreError(
            f"the store{where} cannot be read consistently ({exc}): {damaged_log}. The "
            "database file itself was left untouched. Stop every process that uses this home "
            "(the last one to close writes back the log it still holds), then try again"
        )
    if "not a database" in text or "malformed" in text or "corrupt" in text:
        if path is not None and _passes_integrity_check(path):
            return StoreError(
                f"the store{where} could not be read ({exc}), but the database passes "
                "integrity_check: another process may have replaced or removed its files "
                "while it was open. Nothing was changed; stop every process that uses this "
                "home and try again"
            )
        return StoreCorrupt(
            f"the store{where} is not a readable frontdesk database ({exc}); it was left "
            "untouched: restore it from a backup or point FRONTDESK_HOME elsewhere"
        )
    return StoreError(f"store error{where}: {exc}")


def _not_writable(path: Path | None) -> str:
    if path is None:
        return "it is not writable by this process"
    directory = path.parent
    if not directory.is_dir():
        return f"its home directory {directory} does not exist"
    if not os.access(directory, os.W_OK):
        return (
            f"its home directory {directory} is read-only for this process (a read-only file "
            "system or missing permissions); make it writable or point FRONTDESK_HOME elsewhere"
        )
    if path.exists() and not os.access(path, os.W_OK):
        return f"the file {path} is read-only for this process; make it writable"
    return "the file or its directory is not writable by this process"


def _damaged_log(path: Path | None, code: str) -> str | None:
    """What is wrong with the store's write-ahead log, if that explains an I/O error."""
    if path is None:
        return None
    wal = path.with_name(path.name + "-wal")
    shm = path.with_name(path.name + "-shm")
    if shm.exists() and not wal.exists():
        return (
            f"its write-ahead log {wal.name} was deleted while a process had the store open "
            f"(its index {shm.name} is still there)"
        )
    if code == "SQLITE_IOERR_SHORT_READ" and wal.exists():
        return (
            f"its write-ahead log {wal.name} is shorter than its index {shm.name} says: it was "
            "deleted, truncated or replaced while a process had the store open"
        )
    return None


def _passes_integrity_check(path: Path) -> bool:
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=1)
    except sqlite3.Error:
        return False
    try:
        return bool(conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)])
    except sqlite3.Error:
        return False
    finally:
        conn.close()
