"""The PostgreSQL store's schema: versioned, in a PostgreSQL schema (namespace) of its own.

frontdesk's tables live in the ``frontdesk`` schema of the database the URL names; each
reference app will keep its own tables in a schema named after it (``support``, ``disputes``,
``airline``), versioned the same way (:class:`Schema`). A schema's version is the highest
row of its ``frontdesk_schema`` table; migrations only ever add, so a database is never
rewritten or dropped by an upgrade.

Version 1 holds what the SQLite store holds at the end of ``store._db.MIGRATIONS``, in
PostgreSQL's dialect:

- ``rowid``, which SQLite's listings page by, is an identity column ``row_id``; every listing
  index ends with its sort key and ``row_id``, so a page is an index walk as in SQLite;
- times stay Unix seconds (``double precision``) and JSON stays the text its writer wrote
  (``text``, not ``jsonb``): readers get back the very string that was stored, keys in their
  order, and a ``\\u0000`` in a tool's output is stored as in SQLite (``jsonb`` refuses it);
- full-text search of a run's input and output is a GIN index over the ``tsvector`` of
  :data:`DOCUMENT_FUNCTION` instead of FTS5. The index expression is only computed when a run
  is stored and when its input or output changes, so lease renewals and usage updates do not
  pay for it (they are HOT updates that touch no index);
- the app a run belongs to is a stored generated column, computed as ``store._listing.app_of``
  does;
- the context a run started with is kept by a trigger, as in SQLite.

Version 2 adds ``frontdesk.refuse_unless(ok, statement)``, which a write's guard statements
call (see :mod:`._compile`): it raises :data:`GUARD_REFUSED` naming the statement when its
guard fails, so a write's whole transaction, its ``COMMIT`` included, goes in one round trip.

Version 3 adds the Temporal engine's tool calls journal and conversation item segments
(``tool_calls``, ``item_segments``; see :mod:`frontdesk.store._tool_calls`).

Migrating takes a transaction-scoped advisory lock (``pg_advisory_xact_lock``) on a key of the
schema's name, so processes that start at once migrate one after the other and each finds the
work done by the one before.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql

from ...errors import SchemaTooNew, StoreError

VERSION_TABLE = "frontdesk_schema"
"""The table, in each schema, whose highest ``version`` is the schema's version."""

GUARD_REFUSED = "FDG01"
"""The SQLSTATE ``frontdesk.refuse_unless`` raises; the error's detail is the number of the
refused statement in its transaction."""
GUARD_FUNCTION = "frontdesk.refuse_unless"
"""The SQL function a guard statement calls with whether its guard passed."""
DOCUMENT_FUNCTION = "frontdesk.run_document"
"""The SQL function whose ``tsvector`` of a run's input and output the search index holds;
a search matches ``frontdesk.run_document(input, output_json) @@ query``."""

# Each entry migrates the ``frontdesk`` schema from version N to N+1. Scripts run with the
# schema first on the search path; function bodies name their tables in full, since they
# run with the caller's search path.
MIGRATIONS: list[str] = [
    # 0 -> 1: the SQLite store's schema as of its version 12.
    r"""
    CREATE TABLE runs (
        execution_id     text PRIMARY KEY,
        agent_ref        text NOT NULL,
        agent_name       text NOT NULL,
        status           text NOT NULL,
        input            text NOT NULL,
        context_type     text,
        context_json     text,
        output_json      text,
        last_agent       text,
        error            text,
        note             text,
        model_label      text,
        requests         bigint NOT NULL DEFAULT 0,
        input_tokens     bigint NOT NULL DEFAULT 0,
        output_tokens    bigint NOT NULL DEFAULT 0,
        total_tokens     bigint NOT NULL DEFAULT 0,
        created_at       double precision NOT NULL,
        started_at       double precision,
        finished_at      double precision,
        updated_at       double precision NOT NULL,
        lease_owner      text,
        lease_expires    double precision,
        cancel_requested integer NOT NULL DEFAULT 0,
        attempt          integer NOT NULL DEFAULT 1,
        conversation_id  text,
        turn             integer,
        model_override   text,
        lease_epoch      bigint NOT NULL DEFAULT 0,
        app              text GENERATED ALWAYS AS (
            split_part(split_part(
                CASE WHEN starts_with(agent_ref, 'frontdesk.apps.')
                     THEN substr(agent_ref, 16) ELSE agent_ref END,
                '.', 1), ':', 1)
        ) STORED,
        parent_id        text,
        fork_step        integer,
        budget_json      text,
        row_id           bigint GENERATED ALWAYS AS IDENTITY
    );
    CREATE INDEX runs_status ON runs (status, created_at, row_id);
    CREATE INDEX runs_agent ON runs (agent_name, created_at, row_id);
    CREATE INDEX runs_conversation ON runs (conversation_id, turn);
    CREATE INDEX runs_created ON runs (created_at, row_id);
    CREATE INDEX runs_app ON runs (app, created_at, row_id);
    CREATE INDEX runs_last_agent ON runs (last_agent, created_at, row_id);
    CREATE INDEX runs_parent ON runs (parent_id, created_at, row_id) WHERE parent_id IS NOT NULL;

    -- The words of a run's input and output. Punctuation that would make PostgreSQL's parser
    -- keep e-mail addresses, host names, paths or hyphenated words whole becomes a space, so
    -- a run is found by each word in it, as with FTS5's unicode61 tokenizer.
    CREATE FUNCTION run_document(input text, output_json text) RETURNS tsvector
    LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
        SELECT to_tsvector('pg_catalog.simple'::regconfig, translate(
            coalesce(input, '') || ' ' || coalesce(output_json, ''),
            '@./:_-+<>&' || chr(92), '           '))
    $$;
    CREATE INDEX runs_search ON runs USING gin (run_document(input, output_json));

    CREATE TABLE journal (
        execution_id text NOT NULL,
        key          text NOT NULL,
        kind         text NOT NULL,
        state        text NOT NULL,
        agent        text,
        name         text,
        args_json    text,
        data_json    text,
        context_json text,
        attempts     integer NOT NULL DEFAULT 1,
        started_at   double precision NOT NULL,
        finished_at  double precision,
        ordinal      integer NOT NULL,
        PRIMARY KEY (execution_id, key)
    );

    CREATE TABLE events (
        execution_id text NOT NULL,
        seq          integer NOT NULL,
        key          text NOT NULL,
        type         text NOT NULL,
        at           double precision NOT NULL,
        agent        text,
        data_json    text NOT NULL,
        ref          text,
        PRIMARY KEY (execution_id, seq)
    );

    CREATE TABLE approvals (
        approval_id      text PRIMARY KEY,
        execution_id     text NOT NULL,
        call_key         text NOT NULL,
        call_id          text NOT NULL,
        agent            text,
        tool_name        text NOT NULL,
        args_json        text NOT NULL,
        status           text NOT NULL,
        requested_at     double precision NOT NULL,
        decided_at       double precision,
        decided_by       text,
        note             text,
        reason           text,
        edited_args_json text,
        deadline         double precision,
        on_timeout       text,
        escalated_at     double precision,
        args_schema_json text,
        row_id           bigint GENERATED ALWAYS AS IDENTITY,
        UNIQUE (execution_id, call_key)
    );
    CREATE INDEX approvals_status ON approvals (status, requested_at, row_id);
    CREATE INDEX approvals_due ON approvals (deadline)
        WHERE status = 'pending' AND deadline IS NOT NULL AND escalated_at IS NULL;

    CREATE TABLE conversations (
        conversation_id text PRIMARY KEY,
        agent_ref       text NOT NULL,
        current_agent   text NOT NULL,
        context_type    text,
        context_json    text,
        items_json      text NOT NULL,
        turns           integer NOT NULL DEFAULT 0,
        history_len     integer NOT NULL DEFAULT 0,
        pending_run     text,
        generation      integer NOT NULL DEFAULT 0,
        created_at      double precision NOT NULL,
        updated_at      double precision NOT NULL,
        budget_json     text,
        memory_json     text,
        summary_json    text,
        row_id          bigint GENERATED ALWAYS AS IDENTITY
    );
    CREATE INDEX conversations_updated ON conversations (updated_at, row_id);

    CREATE TABLE conversation_lines (
        conversation_id text NOT NULL,
        idx             integer NOT NULL,
        line            text NOT NULL,
        run_id          text,
        PRIMARY KEY (conversation_id, idx)
    );
    CREATE TABLE conversation_items (
        conversation_id text NOT NULL,
        idx             integer NOT NULL,
        item_json       text NOT NULL,
        PRIMARY KEY (conversation_id, idx)
    );
    CREATE TABLE conversation_turns (
        conversation_id text NOT NULL,
        turn            integer NOT NULL,
        start_idx       integer NOT NULL,
        PRIMARY KEY (conversation_id, turn)
    );

    -- The context a run started with, kept once something replaces runs.context_json.
    CREATE TABLE run_start_context (
        execution_id text PRIMARY KEY,
        known        integer NOT NULL,
        context_json text
    );
    CREATE FUNCTION keep_start_context() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        INSERT INTO frontdesk.run_start_context (execution_id, known, context_json)
        VALUES (OLD.execution_id, 1, OLD.context_json)
        ON CONFLICT (execution_id) DO NOTHING;
        RETURN NEW;
    END
    $$;
    CREATE TRIGGER runs_start_context BEFORE UPDATE OF context_json ON runs
        FOR EACH ROW WHEN (NEW.context_json IS DISTINCT FROM OLD.context_json)
        EXECUTE FUNCTION keep_start_context();
    """,
    # 1 -> 2: a write's guards checked on the server, so its COMMIT rides in its pipeline.
    r"""
    -- A guard statement passes ok = true; false (or null) refuses the whole transaction,
    -- naming the refused statement by its number in the transaction, so the client can say
    -- which write was refused (a lost lease, a step already recorded, a run id taken).
    CREATE FUNCTION refuse_unless(ok boolean, statement integer) RETURNS boolean
    LANGUAGE plpgsql AS $$
    BEGIN
        IF ok IS NOT TRUE THEN
            RAISE EXCEPTION 'frontdesk guard refused the transaction'
                USING ERRCODE = 'FDG01', DETAIL = statement::text;
        END IF;
        RETURN true;
    END
    $$;
    """,
    # 2 -> 3: what the Temporal engine's activities keep (store/_tool_calls.py), shared by
    # every worker on every machine: the tool calls journal, by idempotency key, and
    # conversation item segments, by content.
    r"""
    CREATE TABLE tool_calls (
        idempotency_key text PRIMARY KEY,
        workflow_id     text NOT NULL,
        call_id         text NOT NULL,
        agent_name      text NOT NULL,
        tool_name       text NOT NULL,
        args_json       text NOT NULL,
        state           text NOT NULL CHECK (state IN ('started', 'done')),
        attempts        integer NOT NULL,
        output_json     text,
        context_type    text,
        context_json    text,
        started_at      double precision NOT NULL,
        finished_at     double precision,
        row_id          bigint GENERATED ALWAYS AS IDENTITY
    );
    CREATE INDEX tool_calls_workflow ON tool_calls (workflow_id, row_id);
    CREATE TABLE item_segments (
        ref        text PRIMARY KEY,
        parent     text,
        length     integer NOT NULL,
        items_json text NOT NULL
    );
    """,
]


def parsed_json(column: str) -> str:
    """SQL reading a JSON text ``column`` as ``json`` for its operators, which refuse a
    ``\\u0000`` anywhere in the document; it becomes ``\\u0001`` (the same length, so the
    text stays valid JSON), which changes no number and no key."""
    return f"replace({column}, E'\\\\u0000', E'\\\\u0001')::json"


_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")
_SEARCH_WORD = re.compile(r"[^\W_]+", re.UNICODE)
MAX_SEARCH_WORDS = 32
"""The most words of a search that count (the rest are ignored, as in the SQLite store)."""


def search_query(text: str) -> str | None:
    """The ``tsquery`` text (for ``to_tsquery('simple', ...)``) matching runs that hold every
    word of ``text``, the last one as a prefix, as the SQLite store's FTS5 query does; None
    when ``text`` has no word. Words are letters and digits only, so nothing in ``text`` is
    read as a query operator."""
    words = _SEARCH_WORD.findall(text)[:MAX_SEARCH_WORDS]
    if not words:
        return None
    return " & ".join([*words[:-1], f"{words[-1]}:*"])


@dataclass(frozen=True)
class Schema:
    """A PostgreSQL schema (namespace) and the migrations that build its tables."""

    name: str
    """The schema's name: ``frontdesk``, or an app's (``support``...)."""
    migrations: tuple[str, ...]
    """Scripts taking the schema from version N to N+1; they run with it on the search path."""

    def __post_init__(self) -> None:
        if not _NAME.fullmatch(self.name):
            raise ValueError(f"schema name {self.name!r} must be a lowercase SQL identifier")

    @property
    def version(self) -> int:
        """The version this code migrates the schema to."""
        return len(self.migrations)

    @property
    def lock_key(self) -> int:
        """The advisory lock key migrations of this schema take (a signed 64-bit number)."""
        digest = hashlib.blake2b(f"frontdesk.schema:{self.name}".encode(), digest_size=8)
        return int.from_bytes(digest.digest(), "big", signed=True)


FRONTDESK = Schema("frontdesk", tuple(MIGRATIONS))
"""frontdesk's own tables: runs, the journal, events, approvals and conversations."""
SCHEMA_VERSION = FRONTDESK.version
"""The version of the ``frontdesk`` schema this code reads and writes."""


def schema_version(conn: psycopg.Connection[Any], schema: Schema = FRONTDESK) -> int:
    """The schema's version in the connection's database; 0 when it was never created.

    Reads in the connection's current transaction (it does not commit or roll back).
    """
    table = f"{schema.name}.{VERSION_TABLE}"
    row = conn.execute("SELECT to_regclass(%s) IS NOT NULL", (table,)).fetchone()
    if not row or not row[0]:
        return 0
    query = sql.SQL("SELECT COALESCE(MAX(version), 0) FROM {}.{}").format(
        sql.Identifier(schema.name), sql.Identifier(VERSION_TABLE)
    )
    found = conn.execute(query).fetchone()
    return int(found[0]) if found else 0


def _too_new(schema: Schema, version: int, where: str) -> SchemaTooNew:
    return SchemaTooNew(
        f"the {schema.name!r} schema of {where} has version {version}, but this frontdesk "
        f"understands up to {schema.version}; upgrade frontdesk to open it (the database was "
        "left untouched)"
    )


def check_schema(
    conn: psycopg.Connection[Any], schema: Schema = FRONTDESK, *, where: str = "the database"
) -> int:
    """The schema's version, which must be this code's; changes nothing.

    :class:`SchemaTooNew` for a newer one, :class:`StoreError` for one that needs migrating.
    """
    try:
        version = schema_version(conn, schema)
    finally:
        conn.rollback()
    if version > schema.version:
        raise _too_new(schema, version, where)
    if version < schema.version:
        raise StoreError(
            f"the {schema.name!r} schema of {where} is at version {version} and needs "
            f"migrating to {schema.version}: run frontdesk db migrate"
        )
    return version


def migrate(
    conn: psycopg.Connection[Any], schema: Schema = FRONTDESK, *, where: str = "the database"
) -> int:
    """Bring the schema up to this code's version; returns the version this call found it
    at, under the lock (so of several processes migrating at once, one sees the old version
    and the others the new one).

    Safe when several processes migrate at once: each waits for the advisory lock, then
    re-reads the version and applies only what is still missing, all in one transaction (a
    failed migration leaves nothing of itself). :class:`SchemaTooNew` for a schema written by
    a newer frontdesk, which is left untouched. Commits on ``conn``.
    """
    conn.rollback()
    try:
        before = schema_version(conn, schema)
    finally:
        conn.rollback()
    if before > schema.version:
        raise _too_new(schema, before, where)
    if before == schema.version:
        return before
    ident = sql.Identifier(schema.name)
    with conn.transaction():
        # Wait for another process's migration however long it takes (not the store's lock
        # timeout): it is working, and this one needs its result.
        conn.execute("SET LOCAL lock_timeout = 0")
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (schema.lock_key,))
        conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(ident))
        conn.execute(
            sql.SQL(
                "CREATE TABLE IF NOT EXISTS {}.{} (version integer PRIMARY KEY, "
                "applied_at double precision NOT NULL "
                "DEFAULT extract(epoch FROM clock_timestamp()))"
            ).format(ident, sql.Identifier(VERSION_TABLE))
        )
        # Re-read under the lock: another process may have migrated meanwhile.
        current = schema_version(conn, schema)
        if current > schema.version:
            raise _too_new(schema, current, where)
        conn.execute(sql.SQL("SET LOCAL search_path = {}").format(ident))
        for target in range(current, schema.version):
            conn.execute(schema.migrations[target].encode())
            conn.execute(
                sql.SQL("INSERT INTO {}.{} (version) VALUES (%s)").format(
                    ident, sql.Identifier(VERSION_TABLE)
                ),
                (target + 1,),
            )
    return current


__all__ = [
    "DOCUMENT_FUNCTION",
    "FRONTDESK",
    "GUARD_FUNCTION",
    "GUARD_REFUSED",
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "VERSION_TABLE",
    "Schema",
    "check_schema",
    "migrate",
    "parsed_json",
    "schema_version",
    "search_query",
]
