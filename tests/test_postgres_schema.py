"""The PostgreSQL store's versioned schema, on a real throw-away cluster.

It carries every table, column and index of the SQLite store's schema, migrates once however
many processes start at once, refuses a schema newer than the code, and searches runs by
the words of their input and output.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from frontdesk.errors import SchemaTooNew, StoreError
from frontdesk.store._listing import app_of
from frontdesk.store.postgres._cluster import LocalPostgres
from frontdesk.store.postgres._connect import PostgresPool
from frontdesk.store.postgres._schema import (
    FRONTDESK,
    SCHEMA_VERSION,
    Schema,
    check_schema,
    migrate,
    schema_version,
    search_query,
)
from pgcluster import throwaway_cluster
from pgdb import fresh_database

from conftest import PYTHON, Children, child_env, wait_until

try:  # where the store seam keeps the SQLite schema
    from frontdesk.store.sqlite._schema import connect as sqlite_connect
except ImportError:  # before it
    from frontdesk.store._db import connect as sqlite_connect

# SQLite's full-text index and its shadow tables: PostgreSQL has a GIN index instead.
FTS_TABLES = {"runs_fts", "runs_fts_docs", "runs_fts_pending"}


@pytest.fixture(scope="module")
def cluster() -> Iterator[LocalPostgres]:
    with throwaway_cluster() as started:
        yield started


@pytest.fixture
def db_url(cluster: LocalPostgres) -> Iterator[str]:
    with fresh_database(cluster) as url:
        yield url


@pytest.fixture
def conn(db_url: str) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(db_url, connect_timeout=30) as opened:
        yield opened


def rows(conn: psycopg.Connection[Any], query: str, *params: Any) -> list[tuple[Any, ...]]:
    return conn.execute(query.encode(), params or None).fetchall()


def insert_run(conn: psycopg.Connection[Any], execution_id: str, **values: Any) -> None:
    row: dict[str, Any] = {
        "execution_id": execution_id,
        "agent_ref": "frontdesk.apps.support:triage_agent",
        "agent_name": "triage",
        "status": "running",
        "input": '"hello"',
        "created_at": 1.0,
        "updated_at": 1.0,
        **values,
    }
    columns = ", ".join(row)
    marks = ", ".join(["%s"] * len(row))
    conn.execute(
        f"INSERT INTO frontdesk.runs ({columns}) VALUES ({marks})".encode(), list(row.values())
    )


# -- creating and versioning ------------------------------------------------------------------


def test_migrating_creates_the_schema_once(conn: psycopg.Connection[Any]) -> None:
    assert schema_version(conn) == 0
    assert migrate(conn) == 0
    assert schema_version(conn) == SCHEMA_VERSION
    assert migrate(conn) == SCHEMA_VERSION  # nothing left to do
    assert rows(conn, "SELECT version FROM frontdesk.frontdesk_schema ORDER BY version") == [
        (v,) for v in range(1, SCHEMA_VERSION + 1)
    ]
    assert check_schema(conn) == SCHEMA_VERSION


def test_the_schema_has_every_table_column_and_index_of_the_sqlite_store(
    conn: psycopg.Connection[Any], tmp_path: Path
) -> None:
    migrate(conn)
    lite = sqlite_connect(tmp_path / "frontdesk.db")
    try:
        tables = [
            name
            for (name,) in lite.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name"
            )
            if name not in FTS_TABLES and not name.startswith("runs_fts_")
        ]
        expected = {
            table: {
                (name, bool(notnull) or bool(pk))
                for _cid, name, _type, notnull, _default, pk, *_ in lite.execute(
                    f"PRAGMA table_xinfo({table})"
                )
            }
            for table in tables
        }
        lite_indexes = {
            name
            for (name,) in lite.execute(
                "SELECT name FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL"
            )
        }
        lite_triggers = {
            name
            for (name,) in lite.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")
            if not name.startswith("runs_fts_")
        }
    finally:
        lite.close()
    found: dict[str, set[tuple[str, bool]]] = {}
    for table, column, nullable in rows(
        conn,
        "SELECT table_name, column_name, is_nullable FROM information_schema.columns "
        "WHERE table_schema = 'frontdesk' AND table_name <> 'frontdesk_schema' "
        "AND column_name <> 'row_id'",
    ):
        found.setdefault(table, set()).add((column, nullable == "NO"))
    # A generated column is nullable in SQLite's eyes and in PostgreSQL's alike.
    assert found == expected
    pg_indexes = {
        name
        for (name,) in rows(conn, "SELECT indexname FROM pg_indexes WHERE schemaname = 'frontdesk'")
    }
    assert lite_indexes <= pg_indexes, lite_indexes - pg_indexes
    assert "runs_search" in pg_indexes
    pg_triggers = {
        name
        for (name,) in rows(
            conn,
            "SELECT tgname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = 'frontdesk' AND NOT t.tgisinternal",
        )
    }
    assert lite_triggers == pg_triggers


def test_a_fresh_database_must_be_migrated_and_checking_creates_nothing(
    conn: psycopg.Connection[Any],
) -> None:
    with pytest.raises(StoreError, match=r"needs migrating to .*frontdesk db migrate"):
        check_schema(conn, where="the test database")
    assert rows(conn, "SELECT 1 FROM pg_namespace WHERE nspname = 'frontdesk'") == []


def test_a_schema_newer_than_the_code_is_refused_and_left_untouched(
    conn: psycopg.Connection[Any],
) -> None:
    migrate(conn)
    newer = SCHEMA_VERSION + 1
    with conn.transaction():
        conn.execute("INSERT INTO frontdesk.frontdesk_schema (version) VALUES (%s)", (newer,))
        conn.execute("CREATE TABLE frontdesk.from_the_future (x int)")
    with pytest.raises(
        SchemaTooNew, match=f"has version {newer}.*understands up to {SCHEMA_VERSION}"
    ):
        migrate(conn)
    with pytest.raises(SchemaTooNew, match="upgrade frontdesk"):
        check_schema(conn)
    assert schema_version(conn) == newer
    assert rows(conn, "SELECT to_regclass('frontdesk.from_the_future') IS NOT NULL") == [(True,)]


def test_a_schema_newer_than_the_code_is_refused_through_a_pool(db_url: str) -> None:
    with PostgresPool(db_url) as pool:
        pool.transaction(migrate)
        pool.transaction(
            lambda c: c.execute(
                "INSERT INTO frontdesk.frontdesk_schema (version) VALUES (%s)",
                (SCHEMA_VERSION + 5,),
            )
        )
        with pytest.raises(SchemaTooNew):
            pool.transaction(check_schema)


MIGRATE_CHILD = """
import os, sys, time
from pathlib import Path
import psycopg
from frontdesk.store.postgres._schema import migrate
go = Path(sys.argv[1])
url = os.environ["TEST_PG_URL"]
with psycopg.connect(url, connect_timeout=60, application_name="migrating") as conn:
    while not go.exists():
        time.sleep(0.005)
    print(migrate(conn))
"""


def test_four_processes_migrating_at_once_end_with_one_schema(
    db_url: str, children: Children, tmp_path: Path
) -> None:
    go = tmp_path / "go"
    procs = [
        children.popen(
            [PYTHON, "-c", MIGRATE_CHILD, str(go)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=child_env(TEST_PG_URL=db_url),
        )
        for _ in range(4)
    ]

    def connected() -> bool:
        if any(p.poll() is not None for p in procs):
            return True  # one of them failed: its error is reported below
        with psycopg.connect(db_url, autocommit=True) as watcher:
            waiting = rows(
                watcher,
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'migrating'",
            )
        return bool(waiting[0][0] == 4)

    # All four hold a connection before any of them starts migrating.
    wait_until(connected, "the four processes to connect")
    go.write_text("go")
    found = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        found.append(int(out.strip()))
    # Exactly one of them found the database empty and migrated it; the others found it done.
    assert sorted(found) == [0] + [SCHEMA_VERSION] * 3
    with psycopg.connect(db_url) as conn:
        assert schema_version(conn) == SCHEMA_VERSION
        versions = rows(conn, "SELECT version FROM frontdesk.frontdesk_schema ORDER BY version")
        assert versions == [(v,) for v in range(1, SCHEMA_VERSION + 1)]


def test_an_app_schema_is_versioned_apart(conn: psycopg.Connection[Any]) -> None:
    support = Schema("support", ("CREATE TABLE customers (id text PRIMARY KEY)",))
    migrate(conn)
    assert migrate(conn, support) == 0
    assert schema_version(conn, support) == 1 and schema_version(conn, FRONTDESK) == SCHEMA_VERSION
    assert rows(conn, "SELECT to_regclass('support.customers') IS NOT NULL") == [(True,)]
    assert support.lock_key != FRONTDESK.lock_key
    with pytest.raises(ValueError, match="lowercase SQL identifier"):
        Schema("Support; DROP", ())


# -- what the schema does -------------------------------------------------------------------


@pytest.mark.parametrize(
    "agent_ref",
    [
        "frontdesk.apps.support:triage_agent",
        "frontdesk.apps.disputes.agents:intake",
        "frontdesk.apps.airline",
        "mypkg.agents:desk",
        "mypkg:desk",
        "registered-name",
        "frontdesk.testing:agent",
    ],
)
def test_the_app_column_is_the_app_of_the_agent_reference(
    conn: psycopg.Connection[Any], agent_ref: str
) -> None:
    migrate(conn)
    insert_run(conn, "r1", agent_ref=agent_ref)
    assert rows(conn, "SELECT app FROM frontdesk.runs") == [(app_of(agent_ref),)]


def test_a_run_keeps_the_context_it_started_with(conn: psycopg.Connection[Any]) -> None:
    migrate(conn)
    insert_run(conn, "r1", context_json='{"step": 0}')
    conn.execute("UPDATE frontdesk.runs SET status = 'completed'")  # context unchanged
    assert rows(conn, "SELECT * FROM frontdesk.run_start_context") == []
    conn.execute("""UPDATE frontdesk.runs SET context_json = '{"step": 1}'""")
    conn.execute("""UPDATE frontdesk.runs SET context_json = '{"step": 2}'""")
    assert rows(conn, "SELECT * FROM frontdesk.run_start_context") == [("r1", 1, '{"step": 0}')]


def search(conn: psycopg.Connection[Any], text: str) -> list[str]:
    query = search_query(text)
    assert query is not None
    return [
        r[0]
        for r in rows(
            conn,
            "SELECT execution_id FROM frontdesk.runs WHERE "
            "frontdesk.run_document(input, output_json) @@ to_tsquery('simple', %s) "
            "ORDER BY execution_id",
            query,
        )
    ]


def test_runs_are_found_by_every_word_of_their_input_and_output(
    conn: psycopg.Connection[Any],
) -> None:
    migrate(conn)
    insert_run(conn, "r1", input='"Refund order-123 for alice@example.com please"')
    insert_run(conn, "r2", input='"Where is my parcel?"', output_json='"It left the depot_7."')
    insert_run(conn, "r3", input='"Refund the café bill"')
    conn.commit()
    assert search(conn, "refund") == ["r1", "r3"]
    assert search(conn, "REFUND alice") == ["r1"]
    assert search(conn, "alice@example") == ["r1"]  # an address is found by its words
    assert search(conn, "order 123") == ["r1"]
    assert search(conn, "parcel depot") == ["r2"]  # input and output together
    assert search(conn, "depo") == ["r2"]  # the last word is a prefix
    assert search(conn, "café") == ["r3"]
    assert search(conn, "refund parcel") == []
    assert search(conn, "it's a & | ! (trap") == []  # operators are only words here
    assert search_query("  ... !! ") is None


def test_a_search_walks_the_gin_index(conn: psycopg.Connection[Any]) -> None:
    migrate(conn)
    for n in range(50):
        insert_run(conn, f"r{n}", input=f'"message number {n}"')
    conn.execute("ANALYZE frontdesk.runs")
    conn.execute("SET enable_seqscan = off")
    plan = "\n".join(
        r[0]
        for r in rows(
            conn,
            "EXPLAIN SELECT execution_id FROM frontdesk.runs WHERE "
            "frontdesk.run_document(input, output_json) @@ to_tsquery('simple', %s)",
            search_query("number 7"),
        )
    )
    assert "runs_search" in plan, plan


def test_the_search_index_is_not_touched_by_lease_renewals(conn: psycopg.Connection[Any]) -> None:
    migrate(conn)
    insert_run(conn, "r1", input='"hello there"')
    conn.commit()
    for expires in range(20):
        conn.execute(
            "UPDATE frontdesk.runs SET lease_expires = %s, requests = requests + 1", (expires,)
        )
        conn.commit()

    # Updates that change no indexed column are HOT updates: no index gets a new entry.
    def counted() -> list[tuple[Any, ...]] | None:
        conn.execute("SELECT pg_stat_force_next_flush()")
        conn.commit()
        conn.execute("SELECT pg_stat_clear_snapshot()")
        found = rows(
            conn,
            "SELECT n_tup_upd, n_tup_hot_upd FROM pg_stat_user_tables "
            "WHERE schemaname = 'frontdesk' AND relname = 'runs'",
        )
        conn.commit()
        return found if found and found[0][0] >= 20 else None

    assert wait_until(counted, "the statistics to count the updates") == [(20, 20)]
