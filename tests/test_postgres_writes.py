"""How the PostgreSQL store sends a write: the whole transaction as one query, its values bound
by the client, its statements prepared once per connection, its guards checked by the server.
Each case runs twice: written by ``Store.write``, which waits for the answer, and sent from an
event loop (``Store.send``, the answer read when the loop sees it arrive), as a run driven
alone on its loop commits. Against a real throw-away server."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from dataclasses import replace

import pytest

from frontdesk.store import InsertRun, RecordStep, RunAlreadyExists, StepAlreadyRecorded, Write
from frontdesk.store._commit import GroupCommitter
from frontdesk.store.postgres._cluster import LocalPostgres
from frontdesk.store.postgres._store import PostgresStore
from pgdb import fresh_database
from test_postgres_store import event, run_row, step


@pytest.fixture
def db_url(pg_cluster: LocalPostgres) -> Iterator[str]:
    with fresh_database(pg_cluster) as url:
        yield url


@pytest.fixture
def store(db_url: str) -> Iterator[PostgresStore]:
    opened = PostgresStore(db_url, min_size=1, max_size=1, pool_timeout=20)
    try:
        yield opened
    finally:
        opened.close()


Apply = Callable[[list[Write]], None]


@pytest.fixture(params=["waited", "sent"])
def write(request: pytest.FixtureRequest, store: PostgresStore) -> Apply:
    """Applies writes to ``store`` one of the two ways a driver commits."""
    if request.param == "waited":
        return store.write
    # A write is sent from the loop only on a connection that has its statements prepared:
    # the first of each kind, written the waiting way, prepares them on the one connection.
    store.write(
        [InsertRun(run_row("warm-up")), RecordStep("warm-up", step("s", 1)), event("warm-up", "e")]
    )
    committer = GroupCommitter(store)

    def sent(writes: list[Write]) -> None:
        asyncio.run(committer.commit(writes))

    return sent


AWKWARD = "it's 100% done; -- not a comment\\ %s %(x)s $1 \u00e9\U0001f600 \\u0000 'quoted'"


def test_values_bound_by_the_client_come_back_exactly(store: PostgresStore, write: Apply) -> None:
    row = run_row(
        "r'1%s",
        input=json.dumps(AWKWARD),
        context_json=json.dumps({"k": AWKWARD}),
        note=AWKWARD,
        created_at=1234.5678901234567,
        updated_at=1e-300,
        lease_expires=float("inf"),
        input_tokens=2**62,
    )
    write([InsertRun(row), event("r'1%s", "k%s'")])
    assert store.get_run("r'1%s") == row
    assert store.event_keys("r'1%s") == {"k%s'"}


def test_the_refused_write_of_several_is_named_and_nothing_lands(
    store: PostgresStore, write: Apply
) -> None:
    write([InsertRun(run_row("r1"))])
    write([RecordStep("r1", step("model:1", 1))])
    with pytest.raises(RunAlreadyExists, match="r1"):
        write([InsertRun(run_row("r2")), event("r2", "a"), InsertRun(run_row("r1"))])
    with pytest.raises(StepAlreadyRecorded, match="model:1"):
        write(
            [
                RecordStep("r1", step("model:2", 2)),
                RecordStep("r1", replace(step("model:1", 1), attempts=5)),
                event("r1", "b"),
            ]
        )
    assert store.get_run("r2") is None
    assert [s.key for s in store.journal("r1")] == ["model:1"]
    assert store.journal("r1")[0].attempts == 1


def test_statements_the_connection_lost_are_prepared_again(
    store: PostgresStore, write: Apply
) -> None:
    # psycopg deallocates every statement prepared on a connection when it rolls back a
    # transaction there, once it prepared statements of its own (a read run five times).
    write([InsertRun(run_row("r1"))])  # prepares the insert on the one connection

    class Refused(Exception):
        pass

    for _ in range(6):
        assert store.get_run("r1") is not None
    with pytest.raises(Refused), store.transaction() as tx:
        assert tx.run_status("r1") == "running"
        raise Refused
    write([InsertRun(run_row("r2")), event("r2", "a")])
    assert store.get_run("r2") == run_row("r2")
    assert store.event_keys("r2") == {"a"}
