"""Opening the SQLite store: pragmas, migrations and clear errors.

The store is one SQLite file in WAL mode, shared by every process on the machine that uses
the same home. Its schema is versioned with ``PRAGMA user_version``; migrations only ever add,
so a store is never rewritten or dropped by an upgrade.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

from ...errors import SchemaTooNew, StoreError
from ._errors import BUSY_TIMEOUT_MS, rollback, translate

STORE_FILENAME = "frontdesk.db"
"""The store's file name inside a frontdesk home."""

# Each entry migrates the schema from version N to N+1.
MIGRATIONS: list[str] = [
    # 0 -> 1: runs, the journal of durable steps, events and approvals.
    """
    CREATE TABLE runs (
        execution_id   TEXT PRIMARY KEY,
        agent_ref      TEXT NOT NULL,
        agent_name     TEXT NOT NULL,
        status         TEXT NOT NULL,
        input          TEXT NOT NULL,
        context_type   TEXT,
        context_json   TEXT,
        output_json    TEXT,
        last_agent     TEXT,
        error          TEXT,
        note           TEXT,
        model_label    TEXT,
        requests       INTEGER NOT NULL DEFAULT 0,
        input_tokens   INTEGER NOT NULL DEFAULT 0,
        output_tokens  INTEGER NOT NULL DEFAULT 0,
        total_tokens   INTEGER NOT NULL DEFAULT 0,
        created_at     REAL NOT NULL,
        started_at     REAL,
        finished_at    REAL,
        updated_at     REAL NOT NULL,
        lease_owner    TEXT,
        lease_expires  REAL,
        cancel_requested INTEGER NOT NULL DEFAULT 0,
        attempt        INTEGER NOT NULL DEFAULT 1,
        conversation_id TEXT,
        turn           INTEGER
    );
    CREATE INDEX runs_status ON runs(status, created_at);
    CREATE INDEX runs_agent ON runs(agent_name, created_at);
    CREATE INDEX runs_conversation ON runs(conversation_id, turn);

    CREATE TABLE journal (
        execution_id TEXT NOT NULL,
        key          TEXT NOT NULL,
        kind         TEXT NOT NULL,
        state        TEXT NOT NULL,
        agent        TEXT,
        name         TEXT,
        args_json    TEXT,
        data_json    TEXT,
        context_json TEXT,
        attempts     INTEGER NOT NULL DEFAULT 1,
        started_at   REAL NOT NULL,
        finished_at  REAL,
        ordinal      INTEGER NOT NULL,
        PRIMARY KEY (execution_id, key)
    );

    CREATE TABLE events (
        execution_id TEXT NOT NULL,
        seq          INTEGER NOT NULL,
        key          TEXT NOT NULL,
        type         TEXT NOT NULL,
        at           REAL NOT NULL,
        agent        TEXT,
        data_json    TEXT NOT NULL,
        PRIMARY KEY (execution_id, seq),
        UNIQUE (execution_id, key)
    );

    CREATE TABLE approvals (
        approval_id  TEXT PRIMARY KEY,
        execution_id TEXT NOT NULL,
        call_key     TEXT NOT NULL,
        call_id      TEXT NOT NULL,
        agent        TEXT,
        tool_name    TEXT NOT NULL,
        args_json    TEXT NOT NULL,
        status       TEXT NOT NULL,
        requested_at REAL NOT NULL,
        decided_at   REAL,
        decided_by   TEXT,
        note         TEXT,
        reason       TEXT,
        UNIQUE (execution_id, call_key)
    );
    CREATE INDEX approvals_status ON approvals(status, requested_at);
    """,
    # 1 -> 2: durable conversations (multi-turn state, compacted input items).
    """
    CREATE TABLE conversations (
        conversation_id TEXT PRIMARY KEY,
        agent_ref       TEXT NOT NULL,
        current_agent   TEXT NOT NULL,
        context_type    TEXT,
        context_json    TEXT,
        items_json      TEXT NOT NULL,
        turns           INTEGER NOT NULL DEFAULT 0,
        history_len     INTEGER NOT NULL DEFAULT 0,
        pending_run     TEXT,
        generation      INTEGER NOT NULL DEFAULT 0,
        created_at      REAL NOT NULL,
        updated_at      REAL NOT NULL
    );
    CREATE TABLE conversation_lines (
        conversation_id TEXT NOT NULL,
        idx             INTEGER NOT NULL,
        line            TEXT NOT NULL,
        run_id          TEXT,
        PRIMARY KEY (conversation_id, idx)
    );
    """,
    # 2 -> 3: the model a run was started with, so whichever process resumes it uses the same.
    """
    ALTER TABLE runs ADD COLUMN model_override TEXT;
    """,
    # 3 -> 4: a conversation's input items added since its last compaction, one row each.
    """
    CREATE TABLE conversation_items (
        conversation_id TEXT NOT NULL,
        idx             INTEGER NOT NULL,
        item_json       TEXT NOT NULL,
        PRIMARY KEY (conversation_id, idx)
    );
    """,
    # 4 -> 5: events lose UNIQUE(execution_id, key). Only a run's lease holder writes its
    # events and it dedupes keys in memory, so the index only cost a B-tree per event.
    """
    CREATE TABLE events_v5 (
        execution_id TEXT NOT NULL,
        seq          INTEGER NOT NULL,
        key          TEXT NOT NULL,
        type         TEXT NOT NULL,
        at           REAL NOT NULL,
        agent        TEXT,
        data_json    TEXT NOT NULL,
        PRIMARY KEY (execution_id, seq)
    );
    INSERT INTO events_v5 SELECT execution_id, seq, key, type, at, agent, data_json FROM events;
    DROP TABLE events;
    ALTER TABLE events_v5 RENAME TO events;
    """,
    # 5 -> 6: events refer to the journal row holding the output they report (stored once).
    """
    ALTER TABLE events ADD COLUMN ref TEXT;
    """,
    # 6 -> 7: a fencing token per lease. Every claim increases it, and a driver's writes only
    # land while the run still carries the token it claimed with.
    """
    ALTER TABLE runs ADD COLUMN lease_epoch INTEGER NOT NULL DEFAULT 0;
    """,
    # 7 -> 8: listings page by cursor through an index per filter (store/_listing.py): the
    # run's app (from its agent reference: ``support`` for ``frontdesk.apps.support:...``,
    # else the top-level package), and a full-text index of input and output. Writes only
    # queue a run for indexing (a small insert); a text search indexes the queue first, so
    # running a run never pays for the full-text index.
    """
    ALTER TABLE runs ADD COLUMN app TEXT GENERATED ALWAYS AS (
        CASE WHEN agent_ref LIKE 'frontdesk.apps.%' THEN
            substr(agent_ref, 16, min(instr(substr(agent_ref, 16) || '.', '.'),
                                      instr(substr(agent_ref, 16) || ':', ':')) - 1)
        ELSE substr(agent_ref, 1, min(instr(agent_ref || '.', '.'),
                                      instr(agent_ref || ':', ':')) - 1) END
    ) VIRTUAL;
    CREATE INDEX runs_created ON runs(created_at);
    CREATE INDEX runs_app ON runs(app, created_at);
    CREATE INDEX runs_last_agent ON runs(last_agent, created_at);
    CREATE INDEX conversations_updated ON conversations(updated_at);
    CREATE VIRTUAL TABLE runs_fts USING fts5(input, output_json, content='runs');
    CREATE TABLE runs_fts_docs (run_rowid INTEGER PRIMARY KEY, with_output INTEGER NOT NULL);
    CREATE TABLE runs_fts_pending (run_rowid INTEGER PRIMARY KEY);
    INSERT INTO runs_fts_pending SELECT rowid FROM runs;
    CREATE TRIGGER runs_fts_new AFTER INSERT ON runs BEGIN
        INSERT OR IGNORE INTO runs_fts_pending VALUES (new.rowid);
    END;
    CREATE TRIGGER runs_fts_changed AFTER UPDATE OF input, output_json ON runs BEGIN
        INSERT OR IGNORE INTO runs_fts_pending VALUES (new.rowid);
    END;
    CREATE TRIGGER runs_fts_gone AFTER DELETE ON runs BEGIN
        INSERT INTO runs_fts(runs_fts, rowid, input, output_json)
        SELECT 'delete', old.rowid, old.input, CASE WHEN d.with_output THEN old.output_json END
        FROM runs_fts_docs d WHERE d.run_rowid = old.rowid;
        DELETE FROM runs_fts_docs WHERE run_rowid = old.rowid;
        DELETE FROM runs_fts_pending WHERE run_rowid = old.rowid;
    END;
    """,
    # 8 -> 9: forks (debugging/_fork.py). A fork is a run seeded with the first steps of
    # another run, its parent, and driven live from its fork step on. A run also keeps the
    # context it started with once completing replaces ``runs.context_json`` (a trigger, so no
    # writer pays for it unless the context changed): a fork starts from that context.
    # Completed runs whose steps changed their context before this version did not keep it
    # (``known = 0``).
    """
    ALTER TABLE runs ADD COLUMN parent_id TEXT;
    ALTER TABLE runs ADD COLUMN fork_step INTEGER;
    CREATE INDEX runs_parent ON runs(parent_id, created_at) WHERE parent_id IS NOT NULL;
    CREATE TABLE run_start_context (
        execution_id TEXT PRIMARY KEY,
        known        INTEGER NOT NULL,
        context_json TEXT
    );
    INSERT INTO run_start_context (execution_id, known, context_json)
        SELECT r.execution_id, 0, NULL FROM runs r WHERE r.status = 'completed' AND EXISTS (
            SELECT 1 FROM journal j
            WHERE j.execution_id = r.execution_id AND j.context_json IS NOT NULL
        );
    CREATE TRIGGER runs_start_context BEFORE UPDATE OF context_json ON runs
    WHEN new.context_json IS NOT old.context_json BEGIN
        INSERT OR IGNORE INTO run_start_context (execution_id, known, context_json)
        VALUES (old.execution_id, 1, old.context_json);
    END;
    """,
    # 9 -> 10: approvals an operator can edit, and that expire: the arguments a reviewer
    # approved a call with (the asked ones stay in ``args_json``), the tool's argument schema
    # to check them against, and for a tool with an approval timeout its deadline, what
    # happens at it (``reject`` or ``escalate``) and when it was escalated. Any process finds
    # the requests past their deadline through ``approvals_due``.
    """
    ALTER TABLE approvals ADD COLUMN edited_args_json TEXT;
    ALTER TABLE approvals ADD COLUMN deadline REAL;
    ALTER TABLE approvals ADD COLUMN on_timeout TEXT;
    ALTER TABLE approvals ADD COLUMN escalated_at REAL;
    ALTER TABLE approvals ADD COLUMN args_schema_json TEXT;
    CREATE INDEX approvals_due ON approvals(deadline)
        WHERE status = 'pending' AND deadline IS NOT NULL AND escalated_at IS NULL;
    """,
    # 10 -> 11: budgets. The budget a run was started (or retried) with, so whichever process
    # drives it enforces the same limits at the same prices (``_budget.BudgetPlan``); the budget
    # a conversation counts over all its turns (the limits alone; NULL: the runtime's default).
    # A run's model calls record the model they ran on in ``journal.name``.
    """
    ALTER TABLE runs ADD COLUMN budget_json TEXT;
    ALTER TABLE conversations ADD COLUMN budget_json TEXT;
    """,
    # 11 -> 12: bounded conversation memory (engine/_memory.py). A conversation's memory policy
    # and the summary of the turns before its window, and the item index each completed turn
    # starts at, so a window is cut between turns; for the turns completed before this
    # version, from their runs' stored input references.
    """
    ALTER TABLE conversations ADD COLUMN memory_json TEXT;
    ALTER TABLE conversations ADD COLUMN summary_json TEXT;
    CREATE TABLE conversation_turns (
        conversation_id TEXT NOT NULL,
        turn            INTEGER NOT NULL,
        start_idx       INTEGER NOT NULL,
        PRIMARY KEY (conversation_id, turn)
    );
    INSERT OR IGNORE INTO conversation_turns (conversation_id, turn, start_idx)
        SELECT conversation_id, turn, json_extract(input, '$.base_len') FROM runs
        WHERE conversation_id IS NOT NULL AND turn IS NOT NULL AND status = 'completed'
          AND CASE WHEN json_valid(input) THEN json_type(input, '$.base_len') END = 'integer';
    """,
    # 12 -> 13: what the Temporal engine's activities keep (store/_tool_calls.py), so every
    # worker sharing the store shares it: the tool calls journal, by idempotency key, and
    # conversation item segments, by content. (Workers used to keep them in a file of their
    # own home, ``temporal-worker.db``, which is no longer read.)
    """
    CREATE TABLE IF NOT EXISTS tool_calls (
        idempotency_key TEXT PRIMARY KEY,
        workflow_id     TEXT NOT NULL,
        call_id         TEXT NOT NULL,
        agent_name      TEXT NOT NULL,
        tool_name       TEXT NOT NULL,
        args_json       TEXT NOT NULL,
        state           TEXT NOT NULL CHECK (state IN ('started', 'done')),
        attempts        INTEGER NOT NULL,
        output_json     TEXT,
        context_type    TEXT,
        context_json    TEXT,
        started_at      REAL NOT NULL,
        finished_at     REAL
    );
    CREATE INDEX IF NOT EXISTS tool_calls_workflow ON tool_calls(workflow_id);
    CREATE TABLE IF NOT EXISTS item_segments (
        ref        TEXT PRIMARY KEY,
        parent     TEXT,
        length     INTEGER NOT NULL,
        items_json TEXT NOT NULL
    );
    """,
]

SCHEMA_VERSION = len(MIGRATIONS)

_migrate_lock = threading.Lock()


def store_path(home: Path) -> Path:
    """The store file inside a frontdesk home."""
    return home / STORE_FILENAME


def connect(
    path: Path, *, migrate: bool = True, busy_timeout_ms: int = BUSY_TIMEOUT_MS
) -> sqlite3.Connection:
    """Open (and if needed create or migrate) the store at ``path``.

    Raises :class:`StoreCorrupt` for a file that is not a frontdesk database,
    :class:`SchemaTooNew` for a store written by a newer frontdesk, and
    :class:`StoreLocked` when another process holds the lock for too long.
    """
    try:
        conn = sqlite3.connect(
            path, timeout=busy_timeout_ms / 1000, isolation_level=None, check_same_thread=False
        )
    except sqlite3.Error as exc:
        raise translate(exc, path, busy_timeout_ms) from exc
    try:
        conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
        mode = _switch_to_wal(conn, busy_timeout_ms)
        if str(mode).lower() != "wal":
            raise StoreError(f"the store at {path} could not switch to WAL mode (got {mode})")
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute("PRAGMA foreign_keys = ON")
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise SchemaTooNew(
                f"the store at {path} has schema version {version}, but this frontdesk "
                f"understands up to {SCHEMA_VERSION}; upgrade frontdesk to open it "
                "(the store was left untouched)"
            )
        if version < SCHEMA_VERSION:
            if not migrate:
                raise StoreError(
                    f"the store at {path} has schema version {version} and needs migrating to "
                    f"{SCHEMA_VERSION}: run `frontdesk db migrate`"
                )
            _migrate(conn, path)
    except sqlite3.DatabaseError as exc:
        conn.close()
        raise translate(exc, path, busy_timeout_ms) from exc
    except BaseException:
        conn.close()
        raise
    return conn


def read_version(path: Path) -> int:
    """The schema version of the store at ``path`` (0 if there is no file), read without
    creating, migrating or locking anything."""
    if not path.exists():
        return 0
    conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=1)
    try:
        return int(conn.execute("PRAGMA user_version").fetchone()[0])
    finally:
        conn.close()


def _switch_to_wal(conn: sqlite3.Connection, busy_timeout_ms: int) -> str:
    """Put the database in WAL mode, waiting out other processes that are doing the same.

    Switching needs the database to itself and SQLite does not apply the busy timeout to it,
    so processes opening a new store at the same moment would fail at once without this.
    """
    deadline = time.monotonic() + busy_timeout_ms / 1000
    while True:
        try:
            return str(conn.execute("PRAGMA journal_mode = WAL").fetchone()[0])
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc).lower() or time.monotonic() >= deadline:
                raise
            time.sleep(0.01)


def _migrate(conn: sqlite3.Connection, path: Path) -> None:
    with _migrate_lock:
        conn.execute("BEGIN IMMEDIATE")
        try:
            # Re-read under the write lock: another process may have migrated meanwhile.
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise SchemaTooNew(f"the store at {path} was upgraded by a newer frontdesk")
            for target in range(version, SCHEMA_VERSION):
                for statement in _statements(MIGRATIONS[target]):
                    conn.execute(statement)
                conn.execute(f"PRAGMA user_version = {target + 1}")
            conn.execute("COMMIT")
        except BaseException:
            rollback(conn)
            raise


def _statements(script: str) -> list[str]:
    # Split on the semicolons that end a statement, not on those inside a trigger's body.
    statements: list[str] = []
    pending = ""
    for piece in script.split(";"):
        pending += piece + ";"
        if sqlite3.complete_statement(pending):
            if pending.strip(" \n\t;"):
                statements.append(pending.strip().removesuffix(";"))
            pending = ""
    if pending.strip(" \n\t;"):
        statements.append(pending.strip().removesuffix(";"))
    return statements
