"""LISTEN/NOTIFY wakes waiters, on a real throw-away cluster; polling stays the fallback.

A notification sent in a transaction wakes the watches of its run (and those of any run) once
the transaction commits, never when it rolls back. The listener reconnects after its
connection is ended or the server restarts, waking everyone since anything may have changed,
and it closes at once. A stream of a run another process drives follows its events live.
"""

from __future__ import annotations

import asyncio
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from frontdesk import AgentRuntime, EventStream
from frontdesk.store.postgres._cluster import LocalPostgres
from frontdesk.store.postgres._connect import PostgresPool
from frontdesk.store.postgres._notify import (
    APPLICATION_NAME,
    APPROVAL_CHANNEL,
    CHANNELS,
    EVENT_CHANNEL,
    NEW_RUN_CHANNEL,
    RUN_CHANNEL,
    Listener,
    Notification,
    Watch,
    notify,
)
from parking import write_marker
from pgcluster import throwaway_cluster
from pgdb import fresh_database, superuser

from conftest import PYTHON, TESTS_DIR, WAIT_SECONDS, Children, child_env, wait_until


@pytest.fixture(scope="module")
def cluster() -> Iterator[LocalPostgres]:
    with throwaway_cluster() as started:
        yield started


@pytest.fixture
def db_url(cluster: LocalPostgres) -> Iterator[str]:
    with fresh_database(cluster) as url:
        yield url


@pytest.fixture
def pool(db_url: str) -> PostgresPool:
    # Never opened: the listener only takes its connection settings.
    return PostgresPool(db_url, search_path=None)


@pytest.fixture
def listener(pool: PostgresPool) -> Iterator[Listener]:
    with Listener(pool, health_interval=1.0) as started:
        assert started.wait_listening(WAIT_SECONDS)
        yield started


def send(db_url: str, channel: str, execution_id: str, *, commit: bool = True) -> None:
    with psycopg.connect(db_url) as conn:
        notify(conn, channel, execution_id)
        if commit:
            conn.commit()
        else:
            conn.rollback()


def listener_backends(cluster: LocalPostgres) -> list[int]:
    with superuser(cluster) as conn:
        return [
            int(r[0])
            for r in conn.execute(
                "SELECT pid FROM pg_stat_activity WHERE application_name = %s",
                (APPLICATION_NAME,),
            ).fetchall()
        ]


def quiet(watch: Watch) -> bool:
    """Whether the watch was not woken (without waiting)."""
    return not watch.wait(0)


def test_a_committed_notification_wakes_the_watches_of_its_run(
    db_url: str, listener: Listener
) -> None:
    mine = listener.watch(RUN_CHANNEL, "run_a")
    other = listener.watch(RUN_CHANNEL, "run_b")
    anyone = listener.watch(RUN_CHANNEL)
    elsewhere = listener.watch(APPROVAL_CHANNEL, "run_a")
    send(db_url, RUN_CHANNEL, "run_a")
    assert mine.wait(WAIT_SECONDS)
    assert anyone.wait(WAIT_SECONDS)
    # Notifications arrive in commit order: once a later one is in, the earlier is all there is.
    marker = listener.watch(NEW_RUN_CHANNEL, "marker")
    send(db_url, NEW_RUN_CHANNEL, "marker")
    assert marker.wait(WAIT_SECONDS)
    assert quiet(other) and quiet(elsewhere) and quiet(mine)


def test_a_rolled_back_notification_wakes_nobody(db_url: str, listener: Listener) -> None:
    watch = listener.watch(APPROVAL_CHANNEL, "run_a")
    send(db_url, APPROVAL_CHANNEL, "run_a", commit=False)
    marker = listener.watch(APPROVAL_CHANNEL, "marker")
    send(db_url, APPROVAL_CHANNEL, "marker")
    assert marker.wait(WAIT_SECONDS)
    assert quiet(watch)


def test_a_notification_between_two_waits_is_not_lost(db_url: str, listener: Listener) -> None:
    received: list[Notification] = []
    unsubscribe = listener.subscribe(received.append)
    with listener.watch(NEW_RUN_CHANNEL) as watch:
        send(db_url, NEW_RUN_CHANNEL, "run_x")
        wait_until(lambda: received, "the notification to arrive")
        assert watch.wait(WAIT_SECONDS)  # it came before this wait began
        assert quiet(watch)
    unsubscribe()
    assert received == [Notification(NEW_RUN_CHANNEL, "run_x")]


async def test_an_async_watch_wakes_without_blocking_the_loop(
    db_url: str, listener: Listener
) -> None:
    watch = listener.watch(RUN_CHANNEL, "run_async")
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0.01)

    ticker = asyncio.create_task(tick())
    sender = threading.Thread(target=send, args=(db_url, RUN_CHANNEL, "run_async"))
    sender.start()
    try:
        assert await watch.wait_async(WAIT_SECONDS)
    finally:
        ticker.cancel()
        await asyncio.to_thread(sender.join)
    assert ticks >= 1
    assert not await watch.wait_async(0.01)  # nothing more: the timeout is the poll


def test_the_listener_reconnects_after_its_connection_is_ended(
    cluster: LocalPostgres, db_url: str, listener: Listener
) -> None:
    watch = listener.watch(RUN_CHANNEL, "run_a")
    (pid,) = listener_backends(cluster)
    with superuser(cluster) as conn:
        conn.execute("SELECT pg_terminate_backend(%s)", (pid,))
    # Reconnecting wakes every watch: what happened meanwhile was not heard.
    assert watch.wait(WAIT_SECONDS)
    wait_until(lambda: listener.connections == 2 and listener.listening, "a new connection")
    send(db_url, RUN_CHANNEL, "run_a")
    assert watch.wait(WAIT_SECONDS)


def test_the_listener_comes_back_after_a_server_restart(
    cluster: LocalPostgres, db_url: str, listener: Listener
) -> None:
    watch = listener.watch(APPROVAL_CHANNEL, "run_a")
    cluster.restart()
    wait_until(lambda: listener.connections >= 2 and listener.listening, "the listener back")
    watch.wait(0)  # the wake-up of the reconnection
    send(db_url, APPROVAL_CHANNEL, "run_a")
    assert watch.wait(WAIT_SECONDS)


def test_waiters_poll_while_nobody_listens(refused_url: str) -> None:
    port = refused_url.rsplit(":", 1)[1]
    pool = PostgresPool(f"postgresql://app:pw@127.0.0.1:{port}/app")
    with Listener(pool, reconnect_delays=(0.05,)) as listener:
        watch = listener.watch(RUN_CHANNEL, "run_a")
        assert not listener.listening
        assert not watch.wait(0.05)  # the poll interval passes; the caller re-reads the store
        assert not listener.listening


def test_close_ends_the_thread_and_the_connection(
    cluster: LocalPostgres, pool: PostgresPool
) -> None:
    listener = Listener(pool, health_interval=WAIT_SECONDS).start()
    assert listener.wait_listening(WAIT_SECONDS)
    assert len(listener_backends(cluster)) == 1
    listener.close()  # at once, though its health check is minutes away
    assert not listener.running
    wait_until(lambda: listener_backends(cluster) == [], "the listener's connection to go")
    listener.close()  # twice is fine


def test_a_watch_must_name_a_channel_it_listens_on(pool: PostgresPool) -> None:
    listener = Listener(pool, channels=[RUN_CHANNEL])
    with pytest.raises(ValueError, match="does not listen on 'frontdesk_new_run'"):
        listener.watch(NEW_RUN_CHANNEL)
    listener.close()
    assert set(CHANNELS) == {RUN_CHANNEL, APPROVAL_CHANNEL, NEW_RUN_CHANNEL, EVENT_CHANNEL}


def test_a_stream_follows_a_run_another_process_drives_live(
    db_url: str, home: Path, tmp_path: Path, children: Children, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The other process's run waits for this stream to see its tool's result before it can
    end; the stream polls once an hour, so only notifications can bring that result."""
    monkeypatch.setenv("FRONTDESK_DATABASE_URL", db_url)
    flow_dir = tmp_path / "flow"
    flow_dir.mkdir()
    with AgentRuntime(home, recover=False) as runtime:
        driver = children.popen(
            [PYTHON, str(TESTS_DIR / "chaosflow.py"), "stepped"],
            env=child_env(CHAOS_DIR=str(flow_dir)), stderr=subprocess.PIPE,
        )  # fmt: skip

        def stored() -> bool:
            assert driver.poll() is None, driver.communicate()[1]
            return runtime.store.get_run("stepped") is not None

        wait_until(stored, "the other process to store its run")
        stream = EventStream(runtime.handle("stepped"), poll=3600)
        seen: list[str] = []

        def follow() -> None:
            for event in stream:
                seen.append(event.type)
                if event.type == "tool_result":
                    write_marker(flow_dir / "go", "go")

        thread = threading.Thread(target=follow, daemon=True)
        thread.start()
        thread.join(WAIT_SECONDS)
        assert not thread.is_alive(), f"the stream saw {seen} and waits still"
        assert "tool_result" in seen and seen[-1] == "done", seen
        assert driver.wait(WAIT_SECONDS) == 0
