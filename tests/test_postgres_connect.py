"""Connecting to PostgreSQL: checked URLs, and a clear frontdesk error for every failure.

Against a real throw-away cluster: refused and silent addresses, wrong credentials, a missing
database, connections the server ends in the middle of a transaction or while it commits, a
server that stops and comes back, and one that takes connections and stops answering.
"""

from __future__ import annotations

import asyncio
import select
import socket
import threading
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest

from frontdesk.errors import (
    InvalidDatabaseURL,
    InvalidInput,
    StoreAuthFailed,
    StoreError,
    StoreLocked,
    StoreUnavailable,
)
from frontdesk.store import InsertRun
from frontdesk.store._commit import GroupCommitter
from frontdesk.store.postgres._cluster import LocalPostgres
from frontdesk.store.postgres._connect import (
    CommitUnknown,
    DatabaseURL,
    PostgresPool,
    hide_password,
    is_postgres_url,
    parse_url,
    translate,
)
from frontdesk.store.postgres._store import PostgresStore
from pgcluster import throwaway_cluster
from pgdb import fresh_database, superuser
from test_postgres_store import run_row

from conftest import WAIT_SECONDS, wait_until

SECRET = "s3cret-Pa55"


@pytest.fixture(scope="module")
def cluster() -> Iterator[LocalPostgres]:
    with throwaway_cluster() as started:
        yield started


@pytest.fixture
def db_url(cluster: LocalPostgres) -> Iterator[str]:
    with fresh_database(cluster) as url:
        yield url


@pytest.fixture
def pool(db_url: str) -> Iterator[PostgresPool]:
    with PostgresPool(db_url, pool_timeout=20, search_path=None) as opened:
        opened.transaction(lambda conn: conn.execute("CREATE TABLE t (n int)"))
        yield opened


def count(pool: PostgresPool) -> int:
    row = pool.transaction(lambda conn: conn.execute("SELECT count(*) FROM t").fetchone())
    assert row is not None
    return int(row[0])


def terminate(cluster: LocalPostgres, pid: int) -> None:
    with superuser(cluster) as conn:
        conn.execute("SELECT pg_terminate_backend(%s)", (pid,))


# -- URLs ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "says"),
    [
        (f"mysql://app:{SECRET}@db.example/app", "unknown database URL scheme 'mysql://'"),
        (f"sqlite://app:{SECRET}@/tmp/x.db", "unknown database URL scheme 'sqlite://'"),
        ("not a url at all", "is not a database URL"),
        ("", "is not a database URL"),
        (f"postgresql://app:{SECRET}@[::1/app", "malformed database URL"),
        (f"postgresql://app:{SECRET}@db.example:notaport/app", "port 'notaport'"),
        (f"postgresql://app:{SECRET}@db.example:99999/app", "port '99999'"),
        (f"postgresql://app:{SECRET}@db.example/app?colour=blue", "malformed database URL"),
    ],
)
def test_bad_urls_are_refused_before_anything_connects(url: str, says: str) -> None:
    with pytest.raises(InvalidDatabaseURL, match=says) as caught:
        parse_url(url)
    assert isinstance(caught.value, InvalidInput) and isinstance(caught.value, ValueError)
    assert SECRET not in str(caught.value)
    with pytest.raises(InvalidDatabaseURL):
        PostgresPool(url)


def test_a_good_url_is_parsed_and_shown_without_its_password() -> None:
    url = parse_url(f"postgresql://app:{SECRET}@db.example:6543/runs?sslmode=require")
    assert url.params["host"] == "db.example" and url.params["port"] == "6543"
    assert url.database == "runs"
    assert url.shown == "postgresql://app:***@db.example:6543/runs?sslmode=require"
    assert SECRET not in str(url) and SECRET not in repr(url)
    assert is_postgres_url("postgres://h/db") and is_postgres_url("POSTGRESQL://h/db")
    assert not is_postgres_url("sqlite:///x.db")
    assert isinstance(parse_url("postgres://localhost/db"), DatabaseURL)


def test_passwords_are_hidden_wherever_they_are() -> None:
    assert (
        hide_password(f"postgresql://app:{SECRET}@h1:5432,h2:5433/db?password={SECRET}&x=1")
        == "postgresql://app:***@h1:5432,h2:5433/db?password=***&x=1"
    )
    assert hide_password("postgresql://app@h/db") == "postgresql://app@h/db"
    assert hide_password("postgresql://h/db") == "postgresql://h/db"


# -- failing to connect ------------------------------------------------------------------------


def test_a_refused_connection_is_store_unavailable(refused_url: str) -> None:
    port = refused_url.rsplit(":", 1)[1]
    url = f"postgresql://app:{SECRET}@127.0.0.1:{port}/app"
    pool = PostgresPool(url, connect_timeout=5, pool_timeout=5)
    with pytest.raises(StoreUnavailable, match="refused the connection") as caught:
        pool.open()
    assert not isinstance(caught.value, psycopg.Error)
    assert SECRET not in str(caught.value) and "app:***@" in str(caught.value)
    assert pool.closed


def test_an_address_that_never_answers_is_store_unavailable_after_the_timeout() -> None:
    # A socket that listens but never accepts: the handshake completes, nobody ever answers.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        port = silent.getsockname()[1]
        pool = PostgresPool(f"postgresql://app:{SECRET}@127.0.0.1:{port}/app", connect_timeout=2)
        with pytest.raises(StoreUnavailable, match="did not answer") as caught:
            pool.open()
    assert SECRET not in str(caught.value)


def test_wrong_credentials_are_store_auth_failed(cluster: LocalPostgres) -> None:
    wrong = cluster.url.replace(cluster.password, SECRET)
    with pytest.raises(StoreAuthFailed, match="refused the credentials of user 'frontdesk'") as e:
        PostgresPool(wrong).open()
    assert SECRET not in str(e.value) and "password authentication failed" in str(e.value)
    nobody = cluster.url.replace("frontdesk:", "nobody:", 1)
    with pytest.raises(StoreAuthFailed, match="'nobody'"):
        PostgresPool(nobody).open()


def test_a_missing_database_says_so(cluster: LocalPostgres) -> None:
    url = cluster.url.rsplit("/", 1)[0] + "/no_such_db"
    with pytest.raises(StoreError, match='database "no_such_db" does not exist') as caught:
        PostgresPool(url).open()
    assert "createdb no_such_db" in str(caught.value)
    assert not isinstance(caught.value, StoreUnavailable | StoreAuthFailed)


# -- losing the connection -------------------------------------------------------------------


def test_a_connection_lost_before_commit_is_retried_once(
    cluster: LocalPostgres, pool: PostgresPool
) -> None:
    attempts: list[int] = []

    def work(conn: psycopg.Connection[Any]) -> str:
        attempts.append(conn.info.backend_pid)
        conn.execute("INSERT INTO t VALUES (1)")
        if len(attempts) == 1:
            terminate(cluster, conn.info.backend_pid)
            conn.execute("SELECT 1")  # the server ended this connection: nothing committed
        return "done"

    assert pool.transaction(work) == "done"
    assert len(attempts) == 2 and attempts[0] != attempts[1]
    assert count(pool) == 1


def test_a_connection_lost_twice_is_store_unavailable_and_nothing_is_written(
    cluster: LocalPostgres, pool: PostgresPool
) -> None:
    attempts = 0

    def work(conn: psycopg.Connection[Any]) -> None:
        nonlocal attempts
        attempts += 1
        conn.execute("INSERT INTO t VALUES (1)")
        terminate(cluster, conn.info.backend_pid)
        conn.execute("SELECT 1")

    with pytest.raises(StoreUnavailable, match="was lost") as caught:
        pool.transaction(work)
    assert not isinstance(caught.value, CommitUnknown)
    assert attempts == 2
    assert count(pool) == 0


def test_a_connection_lost_while_committing_is_not_retried(pool: PostgresPool) -> None:
    # A deferred trigger ends the server process inside COMMIT: the client cannot know
    # whether the transaction committed, so it must not run it again.
    def arm(conn: psycopg.Connection[Any]) -> None:
        conn.execute(
            "CREATE FUNCTION die() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
            "PERFORM pg_terminate_backend(pg_backend_pid()); RETURN NULL; END $$"
        )
        conn.execute(
            "CREATE CONSTRAINT TRIGGER die_at_commit AFTER INSERT ON t "
            "DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION die()"
        )

    pool.transaction(arm)
    attempts = 0

    def work(conn: psycopg.Connection[Any]) -> None:
        nonlocal attempts
        attempts += 1
        conn.execute("INSERT INTO t VALUES (1)")

    with pytest.raises(CommitUnknown, match="while a transaction committed") as caught:
        pool.transaction(work)
    assert isinstance(caught.value, StoreUnavailable)
    assert attempts == 1
    assert count(pool) == 0  # here the server died before the commit was durable


def test_an_error_of_the_work_itself_rolls_back_and_propagates(pool: PostgresPool) -> None:
    class Refused(Exception):
        pass

    def work(conn: psycopg.Connection[Any]) -> None:
        conn.execute("INSERT INTO t VALUES (1)")
        raise Refused("no")

    with pytest.raises(Refused):
        pool.transaction(work)
    assert count(pool) == 0


def test_a_bad_statement_is_a_store_error_not_a_psycopg_one(pool: PostgresPool) -> None:
    with pytest.raises(StoreError, match="no_such_table") as caught:
        pool.transaction(lambda conn: conn.execute("SELECT * FROM no_such_table"))
    assert not isinstance(caught.value, psycopg.Error)
    assert count(pool) == 0  # the pool still works


def test_a_restarted_server_costs_a_retry_and_nothing_else(
    cluster: LocalPostgres, pool: PostgresPool
) -> None:
    pool.transaction(lambda conn: conn.execute("INSERT INTO t VALUES (1)"))
    cluster.restart()  # every pooled connection is cut
    pool.transaction(lambda conn: conn.execute("INSERT INTO t VALUES (2)"))
    assert count(pool) == 2


def test_a_stopped_server_is_store_unavailable_until_it_is_back(
    cluster: LocalPostgres, db_url: str
) -> None:
    with PostgresPool(db_url, pool_timeout=3, reconnect_timeout=3, search_path=None) as pool:
        pool.transaction(lambda conn: conn.execute("CREATE TABLE t (n int)"))
        cluster.stop()
        try:
            with pytest.raises(StoreUnavailable) as caught:
                pool.transaction(lambda conn: conn.execute("INSERT INTO t VALUES (1)"))
            assert "refused the connection" in str(caught.value)
        finally:
            cluster.start()

        def written() -> bool:
            try:
                pool.transaction(lambda conn: conn.execute("INSERT INTO t VALUES (1)"))
            except StoreUnavailable:
                return False
            return True

        wait_until(written, "the pool to work again once the server is back")
        assert count(pool) == 1


def test_a_closed_pool_refuses_work(db_url: str) -> None:
    pool = PostgresPool(db_url).open()
    pool.close()
    with pytest.raises(StoreError, match="is closed"):
        pool.transaction(lambda conn: conn.execute("SELECT 1"))


# -- sessions: a transaction the caller drives ----------------------------------------------------


def test_a_session_commits_what_its_block_did_or_nothing(pool: PostgresPool) -> None:
    with pool.session() as conn:
        conn.execute("INSERT INTO t VALUES (1)")
    with pytest.raises(ZeroDivisionError), pool.session() as conn:
        conn.execute("INSERT INTO t VALUES (2)")
        _ = 1 / 0
    assert count(pool) == 1
    with pytest.raises(StoreError, match="no_such_table"), pool.session() as conn:
        conn.execute("INSERT INTO no_such_table VALUES (1)")
    assert count(pool) == 1


def test_a_session_begins_on_a_live_connection_after_a_restart(
    cluster: LocalPostgres, db_url: str
) -> None:
    for autocommit in (False, True):
        with PostgresPool(db_url, search_path=None, autocommit=autocommit) as pool:
            pool.transaction(lambda conn: conn.execute("CREATE TABLE IF NOT EXISTS t (n int)"))
            cluster.restart()  # the pooled connection is dead; nothing was begun on it yet
            with pool.session() as conn:
                if autocommit:
                    assert conn.info.transaction_status == psycopg.pq.TransactionStatus.INTRANS
                conn.execute("INSERT INTO t VALUES (1)")
            assert count(pool) == (2 if autocommit else 1)


def test_a_session_lost_while_committing_is_commit_unknown(pool: PostgresPool) -> None:
    pool.transaction(
        lambda conn: conn.execute(
            "CREATE FUNCTION die() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
            "PERFORM pg_terminate_backend(pg_backend_pid()); RETURN NULL; END $$"
        )
    )
    pool.transaction(
        lambda conn: conn.execute(
            "CREATE CONSTRAINT TRIGGER die_at_commit AFTER INSERT ON t "
            "DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION die()"
        )
    )
    with pytest.raises(CommitUnknown), pool.session() as conn:
        conn.execute("INSERT INTO t VALUES (1)")
    assert count(pool) == 0


def test_a_lock_held_too_long_is_store_locked(db_url: str) -> None:
    with PostgresPool(db_url, search_path=None, lock_timeout=0.2) as pool:
        pool.transaction(lambda conn: conn.execute("CREATE TABLE t (n int PRIMARY KEY)"))
        pool.transaction(lambda conn: conn.execute("INSERT INTO t VALUES (1)"))
        with psycopg.connect(db_url) as holder:
            holder.execute("SELECT * FROM t FOR UPDATE")  # held until this block ends
            with pytest.raises(StoreLocked, match="try again"):
                pool.transaction(lambda conn: conn.execute("UPDATE t SET n = 2"))
        pool.transaction(lambda conn: conn.execute("UPDATE t SET n = 2"))


# -- a server that takes connections and stops answering ------------------------------------------


class FreezingProxy:
    """A loopback TCP proxy to the cluster that can freeze: it keeps every connection open
    and stops passing anything on, as a hung server or a silent network path does."""

    def __init__(self, port: int) -> None:
        self.upstream = port
        self.frozen = threading.Event()
        self.closing = threading.Event()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.sockets: list[socket.socket] = [self.listener]
        self.threads = [threading.Thread(target=self._accept, daemon=True)]
        self.threads[0].start()

    def _accept(self) -> None:
        while not self.closing.is_set():
            ready, _, _ = select.select([self.listener], [], [], 0.05)
            if not ready:
                continue
            client, _ = self.listener.accept()
            server = socket.create_connection(("127.0.0.1", self.upstream))
            self.sockets += [client, server]
            for src, dst in ((client, server), (server, client)):
                pump = threading.Thread(target=self._pump, args=(src, dst), daemon=True)
                self.threads.append(pump)
                pump.start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        while not self.closing.is_set():
            if self.frozen.is_set():
                self.closing.wait(0.05)
                continue
            ready, _, _ = select.select([src], [], [], 0.05)
            if not ready or self.frozen.is_set():  # frozen while the data was on its way
                continue
            try:
                data = src.recv(65536)
                if not data:
                    dst.shutdown(socket.SHUT_WR)
                    return
                dst.sendall(data)
            except OSError:
                return

    def url(self, cluster_url: str) -> str:
        return cluster_url.replace(f":{self.upstream}/", f":{self.port}/")

    def close(self) -> None:
        self.closing.set()
        for thread in self.threads:
            thread.join()
        for sock in self.sockets:
            sock.close()


@pytest.fixture
def proxy(cluster: LocalPostgres) -> Iterator[FreezingProxy]:
    started = FreezingProxy(cluster.port)
    try:
        yield started
    finally:
        started.close()


def bounded(call: Callable[[], Any]) -> BaseException:
    """What ``call`` raised, failing the test if it was still waiting after a generous
    deadline (it must give up by itself long before)."""
    caught: list[BaseException] = []

    def target() -> None:
        try:
            call()
        except BaseException as exc:
            caught.append(exc)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(WAIT_SECONDS)
    assert not thread.is_alive(), "the call still waits for a server that never answers"
    assert caught, "the call returned although the server never answered"
    return caught[0]


def test_a_server_that_stops_answering_is_store_unavailable_not_a_hang(
    db_url: str, proxy: FreezingProxy
) -> None:
    url = proxy.url(db_url)
    with PostgresPool(url, search_path=None, answer_timeout=2) as pool:
        pool.transaction(lambda conn: conn.execute("CREATE TABLE t (n int)"))
        proxy.frozen.set()
        error = bounded(lambda: pool.transaction(lambda c: c.execute("INSERT INTO t VALUES (1)")))
        assert isinstance(error, StoreUnavailable) and not isinstance(error, CommitUnknown)
        assert "did not answer" in str(error) and "stopped answering" in str(error)
        assert SECRET not in str(error) and "answer timeout" in str(error)
        proxy.frozen.clear()

        def works() -> bool:
            try:
                return count(pool) == 0  # the insert never reached the server
            except StoreUnavailable:
                return False

        wait_until(works, "the pool to work again once the server answers")


def test_a_commit_the_server_never_answers_is_commit_unknown(
    db_url: str, proxy: FreezingProxy
) -> None:
    url = proxy.url(db_url)
    with PostgresPool(url, search_path=None, answer_timeout=2) as pool:
        pool.transaction(lambda conn: conn.execute("CREATE TABLE t (n int)"))

        def insert_then_freeze(conn: psycopg.Connection[Any]) -> None:
            conn.execute("INSERT INTO t VALUES (1)")
            proxy.frozen.set()

        error = bounded(lambda: pool.transaction(insert_then_freeze))
        assert isinstance(error, CommitUnknown), error


def test_a_store_opened_on_a_server_that_accepts_and_never_answers_fails_in_time(
    db_url: str, proxy: FreezingProxy
) -> None:
    proxy.frozen.set()  # connections are accepted; nothing ever comes back
    error = bounded(lambda: PostgresStore(proxy.url(db_url), connect_timeout=2))
    assert isinstance(error, StoreUnavailable) and "did not answer" in str(error), error


def test_a_store_whose_server_stops_answering_says_so(db_url: str, proxy: FreezingProxy) -> None:
    store = PostgresStore(proxy.url(db_url), answer_timeout=2)
    try:
        assert store.get_run("nothing") is None
        proxy.frozen.set()
        error = bounded(lambda: store.get_run("nothing"))
        assert isinstance(error, StoreUnavailable) and "did not answer" in str(error), error
    finally:
        proxy.frozen.clear()
        store.close()


def test_a_commit_sent_from_a_loop_the_server_never_answers_gives_up_in_time(
    db_url: str, proxy: FreezingProxy
) -> None:
    # One connection, so the statements prepared by the first commit serve the second: it is
    # sent at once, and its answer waited for by the loop's reader, which must give up.
    store = PostgresStore(proxy.url(db_url), min_size=1, max_size=1, answer_timeout=2)
    committer = GroupCommitter(store)
    ticks = 0

    async def commit_while_ticking(execution_id: str) -> None:
        nonlocal ticks

        async def tick() -> None:
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0.01)

        ticker = asyncio.ensure_future(tick())
        try:
            await committer.commit([InsertRun(run_row(execution_id))])
        finally:
            ticker.cancel()

    try:
        asyncio.run(commit_while_ticking("r1"))
        proxy.frozen.set()
        ticks = 0
        error = bounded(lambda: asyncio.run(commit_while_ticking("r2")))
        assert isinstance(error, StoreUnavailable) and "did not answer" in str(error), error
        assert ticks > 10  # the loop went on while it waited: nothing blocked it
    finally:
        proxy.frozen.clear()
        committer.close()
        store.close()


def test_a_server_starting_up_is_store_unavailable_saying_so() -> None:
    url = parse_url(f"postgresql://app:{SECRET}@127.0.0.1:5/app")
    starting = psycopg.OperationalError(
        'connection failed: connection to server at "127.0.0.1", port 5 failed: '
        "FATAL:  the database system is starting up"
    )
    error = translate(starting, url, doing="opening the store")
    assert isinstance(error, StoreUnavailable)
    assert "is starting up" in str(error) and "try again in a moment" in str(error)
