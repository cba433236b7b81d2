"""PostgresStore against a real throw-away cluster: every typed write, its guards, the reads
and pages, read-check-write sections raced from several threads, notifications between two
stores, and frontdesk's errors for a server that is wrong or gone.

The store interface (``frontdesk.store._base``) arrives with the store seam; until then this
module is skipped.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import psycopg
import pytest

pytest.importorskip("frontdesk.store._base", reason="the store interface is not merged yet")

from frontdesk import AgentRuntime
from frontdesk.errors import (
    ApprovalAlreadyDecided,
    InvalidInput,
    RunNotFound,
    SchemaTooNew,
    StaleConversation,
    StoreAuthFailed,
    StoreError,
    StoreUnavailable,
)
from frontdesk.store import (
    AppendEvent,
    ApprovalRecord,
    CreateConversation,
    Fence,
    ForkSeed,
    InsertRun,
    JournalRow,
    LeaseLost,
    RecordStep,
    RecordTurn,
    RequestApproval,
    RunAlreadyExists,
    RunFilter,
    RunRow,
    SettleRun,
    StepAlreadyRecorded,
    StoredEvent,
    read_pages,
)
from frontdesk.store.postgres._cluster import LocalPostgres
from frontdesk.store.postgres._schema import SCHEMA_VERSION
from frontdesk.store.postgres._store import PostgresStore
from pgcluster import throwaway_cluster
from pgdb import fresh_database

from conftest import WAIT_SECONDS, wait_until


@pytest.fixture(scope="module")
def cluster() -> Iterator[LocalPostgres]:
    with throwaway_cluster() as started:
        yield started


@pytest.fixture
def db_url(cluster: LocalPostgres) -> Iterator[str]:
    with fresh_database(cluster) as url:
        yield url


@pytest.fixture
def store(db_url: str) -> Iterator[PostgresStore]:
    opened = PostgresStore(db_url, pool_timeout=20)
    try:
        yield opened
    finally:
        opened.close()


def run_row(execution_id: str, **values: Any) -> RunRow:
    base: dict[str, Any] = {
        "execution_id": execution_id,
        "agent_ref": "frontdesk.apps.support:triage_agent",
        "agent_name": "triage",
        "status": "running",
        "input": json.dumps(f"help with {execution_id}"),
        "context_type": None,
        "context_json": None,
        "output_json": None,
        "last_agent": None,
        "error": None,
        "note": None,
        "model_label": None,
        "requests": 0,
        "input_tokens": 0,
        "output_tokens": 0,
        "total_tokens": 0,
        "created_at": 1000.0,
        "started_at": None,
        "finished_at": None,
        "updated_at": 1000.0,
        "lease_owner": None,
        "lease_expires": None,
        "cancel_requested": 0,
        "attempt": 1,
        "conversation_id": None,
        "turn": None,
        "model_override": None,
        "lease_epoch": 0,
        "budget_json": None,
    }
    base.update(values)
    return RunRow(**base)


def step(
    key: str, ordinal: int, *, state: str = "done", data: Any = None, **values: Any
) -> JournalRow:
    fields: dict[str, Any] = {
        "key": key,
        "kind": key.split(":", 1)[0],
        "state": state,
        "agent": "triage",
        "name": None,
        "args_json": None,
        "data_json": None if data is None else json.dumps(data),
        "context_json": None,
        "attempts": 1,
        "started_at": 1000.0 + ordinal,
        "finished_at": 1000.0 + ordinal if state == "done" else None,
        "ordinal": ordinal,
    }
    fields.update(values)
    return JournalRow(**fields)


def event(execution_id: str, key: str, type_: str = "agent_start", **data: Any) -> AppendEvent:
    return AppendEvent(execution_id, key, type_, "triage", json.dumps(data), 1000.0)


def approval(
    execution_id: str, approval_id: str, call: str = "c1", **values: Any
) -> ApprovalRecord:
    fields: dict[str, Any] = {
        "approval_id": approval_id,
        "execution_id": execution_id,
        "call_key": f"model:1:{call}",
        "call_id": call,
        "agent": "billing",
        "tool_name": "refund",
        "args": {"amount": 10},
        "status": "pending",
        "requested_at": 1000.0,
        "decided_at": None,
        "decided_by": None,
        "note": None,
        "reason": None,
        "args_schema": {"type": "object", "properties": {"amount": {"type": "number"}}},
    }
    fields.update(values)
    return ApprovalRecord(**fields)


def claimed(store: PostgresStore, execution_id: str, owner: str = "w1") -> int:
    epoch = store.claim(execution_id, owner, 2000.0, 1000.0, steal_from=None)
    assert epoch is not None
    return epoch


# -- opening -----------------------------------------------------------------------------------


def test_a_store_migrates_and_describes_itself(db_url: str, cluster: LocalPostgres) -> None:
    store = PostgresStore(db_url)
    try:
        info = store.info()
        assert (info.backend, info.schema_version, info.code_version) == (
            "postgresql",
            SCHEMA_VERSION,
            SCHEMA_VERSION,
        )
        assert cluster.password not in info.url and ":***@" in info.url
        assert store.migrate() == (SCHEMA_VERSION, SCHEMA_VERSION)
        assert store.get_run("nope") is None
        with pytest.raises(RunNotFound):
            store.require_run("nope")
    finally:
        store.close()


def test_an_unmigrated_database_is_described_and_refused(db_url: str) -> None:
    store = PostgresStore(db_url, migrate=False, listen=False)
    try:
        assert store.info().schema_version == 0 and store.info().needs_migration
        with pytest.raises(StoreError, match="frontdesk db migrate"):
            store.get_run("r1")
        assert store.migrate() == (0, SCHEMA_VERSION)
        assert store.get_run("r1") is None
    finally:
        store.close()


def test_a_newer_schema_is_refused_at_open(db_url: str) -> None:
    PostgresStore(db_url, listen=False).close()
    with psycopg.connect(db_url) as conn:
        conn.execute("INSERT INTO frontdesk.frontdesk_schema (version) VALUES (%s)", (99,))
    with pytest.raises(SchemaTooNew, match="has version 99"):
        PostgresStore(db_url)


def test_bad_credentials_and_a_stopped_server_are_frontdesk_errors(
    cluster: LocalPostgres, db_url: str
) -> None:
    with pytest.raises(StoreAuthFailed):
        PostgresStore(db_url.replace(cluster.password, "wrong"))
    store = PostgresStore(db_url, pool_timeout=3)
    try:
        store.write([InsertRun(run_row("r1"))])
        cluster.stop()
        try:
            with pytest.raises(StoreUnavailable) as caught:
                store.get_run("r1")
            assert not isinstance(caught.value, psycopg.Error)
        finally:
            cluster.start()
        row = wait_until(lambda: _reachable(store, "r1"), "the store to be back")
        assert row.execution_id == "r1"  # nothing was lost
    finally:
        store.close()


def _reachable(store: PostgresStore, execution_id: str) -> RunRow | None:
    try:
        return store.get_run(execution_id)
    except StoreUnavailable:
        return None


# -- runs, leases and guards -----------------------------------------------------------------------


def test_a_run_is_stored_exactly_and_once(store: PostgresStore) -> None:
    row = run_row(
        "r1", context_type="app:Ctx", context_json='{"a": 1}', budget_json='{"max": 5}',
        model_label="m", model_override="m", conversation_id="c1", turn=2, created_at=12.5,
    )  # fmt: skip
    store.write([InsertRun(row), event("r1", "start")])
    assert store.get_run("r1") == row
    with pytest.raises(RunAlreadyExists):
        store.write([event("r1", "second"), InsertRun(replace(row, agent_name="other"))])
    assert store.get_run("r1") == row
    assert store.event_keys("r1") == {"start"}  # nothing of the refused transaction
    assert store.run_ids("r") == ["r1"] and store.run_ids("r1_") == []


def test_claims_fence_and_release(store: PostgresStore) -> None:
    store.write([InsertRun(run_row("r1"))])
    assert store.claimable_runs(1000.0) == [store.get_run("r1")]
    epoch = claimed(store, "r1")
    assert store.claim("r1", "w2", 2000.0, 1500.0, steal_from=None) is None  # held
    assert store.running_leases() == [("r1", "w1", 2000.0)]
    store.write([Fence("r1", "w1", epoch), event("r1", "a")])
    # Another process takes over once the lease expired: the first driver's writes bounce.
    later = store.claim("r1", "w2", 4000.0, 3000.0, steal_from=None)
    assert later == epoch + 1
    with pytest.raises(LeaseLost, match="taken over"):
        store.write(
            [Fence("r1", "w1", epoch), event("r1", "b"), SettleRun("r1", {"status": "completed"})]
        )
    assert store.event_keys("r1") == {"a"} and store.require_run("r1").status == "running"
    assert store.claim("r1", "w3", 4000.0, 3000.0, steal_from="w2") == later + 1  # a dead owner


def test_an_ended_run_keeps_its_outcome(store: PostgresStore) -> None:
    store.write([InsertRun(run_row("r1"))])
    store.write(
        [SettleRun("r1", {"status": "completed", "output_json": '"done"', "finished_at": 5.0})]
    )
    store.write([SettleRun("r1", {"status": "failed", "error": "late"})])
    row = store.require_run("r1")
    assert (row.status, row.output_json, row.error) == ("completed", '"done"', None)


def test_a_done_step_is_never_replaced(store: PostgresStore) -> None:
    store.write([InsertRun(run_row("r1"))])
    store.write([RecordStep("r1", step("tool:1:c1", 1, state="started"))])
    store.write([RecordStep("r1", step("tool:1:c1", 1, data={"s": "first"}, attempts=2))])
    with pytest.raises(StepAlreadyRecorded):
        store.write(
            [event("r1", "x"), RecordStep("r1", step("tool:1:c1", 1, data={"s": "second"}))]
        )
    (row,) = store.journal("r1")
    assert (row.state, row.attempts, json.loads(row.data_json or "null")) == (
        "done",
        2,
        {"s": "first"},
    )
    assert store.event_keys("r1") == set()


def test_writers_racing_on_one_run_number_its_events_one_after_the_other(
    store: PostgresStore,
) -> None:
    store.write([InsertRun(run_row("r1"))])
    errors: list[BaseException] = []

    def append(writer: int) -> None:
        try:
            for n in range(15):
                store.write([event("r1", f"{writer}:{n}"), event("r1", f"{writer}:{n}b")])
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=append, args=(w,)) for w in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    seqs = [e.seq for e in store.events("r1")]
    assert seqs == list(range(1, 4 * 15 * 2 + 1))
    assert store.last_event_seq("r1") == 120


def test_events_are_completed_from_the_journal_and_the_run(store: PostgresStore) -> None:
    store.write([InsertRun(run_row("r1"))])
    store.write(
        [
            RecordStep("r1", step("tool:1:c1", 1, data={"s": "refunded"})),
            AppendEvent("r1", "tool_result:1:c1", "tool_result", "billing",
                        json.dumps({"tool_name": "refund", "call_id": "c1"}), 1001.0, ref="tool:1:c1"),
            SettleRun("r1", {"status": "completed", "output_json": json.dumps("All sorted.")}),
            AppendEvent("r1", "done", "done", "billing", json.dumps({}), 1002.0),
        ]
    )  # fmt: skip
    result, done = store.events("r1")
    assert result.result == "refunded"
    assert done.output == "All sorted."
    assert [e.seq for e in store.events("r1", after=1)] == [2]
    assert len(store.events("r1", limit=1)) == 1
    assert [e.ref for e in store.stored_events("r1")] == ["tool:1:c1", None]


# -- approvals -----------------------------------------------------------------------------------------


def test_an_approval_is_decided_once_however_many_race(store: PostgresStore) -> None:
    store.write([InsertRun(run_row("r1", status="waiting_approval"))])
    store.write([RequestApproval(approval("r1", "apv_1"))])
    store.write([RequestApproval(approval("r1", "apv_again"))])  # the same call: kept as it was
    assert [a.approval_id for a in store.approvals(execution_id="r1")] == ["apv_1"]
    outcomes: list[Any] = []

    def decide(who: str) -> None:
        try:
            outcomes.append(
                store.decide("apv_1", approved=True, by=who, note=None, reason=None, now=1100.0)
            )
        except ApprovalAlreadyDecided as exc:
            outcomes.append(exc)

    threads = [threading.Thread(target=decide, args=(f"op{n}",)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    decided = [o for o in outcomes if isinstance(o, tuple)]
    assert len(decided) == 1 and len(outcomes) == 6
    record, runnable = decided[0]
    assert record.status == "approved" and runnable
    assert store.require_run("r1").status == "running"
    assert [e.type for e in store.events("r1")] == ["approval_decided"]


def test_approvals_page_by_cursor_and_expire_at_their_deadline(store: PostgresStore) -> None:
    store.write([InsertRun(run_row("r1", status="waiting_approval"))])
    store.write(
        [
            RequestApproval(approval("r1", f"apv_{n}", call=f"c{n}", requested_at=1000.0 + n // 2,
                                     deadline=1500.0 if n == 3 else None,
                                     on_timeout="reject" if n == 3 else None))
            for n in range(7)
        ]
    )  # fmt: skip
    pages = read_pages(lambda size, cursor: store.approvals_page(limit=size, cursor=cursor), 100)
    assert [a.approval_id for a in pages] == [f"apv_{n}" for n in range(7)]
    first = store.approvals_page(limit=3, newest_first=True)
    second = store.approvals_page(limit=3, newest_first=True, cursor=first.next_cursor)
    assert [a.approval_id for a in first.items + second.items] == [
        f"apv_{n}" for n in (6, 5, 4, 3, 2, 1)
    ]
    with pytest.raises(InvalidInput):
        store.approvals_page(cursor="garbage!")
    assert store.due_approvals(1400.0) == []
    (due,) = store.due_approvals(1600.0)
    expired = store.expire(due.approval_id, 1600.0)
    assert expired is not None and expired[0].decided_by == "system:timeout"
    assert store.expire(due.approval_id, 1600.0) is None


def test_cancelling_a_run_cancels_its_pending_approvals(store: PostgresStore) -> None:
    store.write([InsertRun(run_row("r1", status="waiting_approval"))])
    store.write([RequestApproval(approval("r1", "apv_1"))])
    store.cancel_run("r1", 1200.0)
    assert store.require_run("r1").status == "cancelled"
    assert store.approvals(execution_id="r1")[0].status == "cancelled"
    assert [e.type for e in store.events("r1")] == ["error"]


# -- listings ------------------------------------------------------------------------------------------


def test_runs_page_filters_and_pages_by_cursor(store: PostgresStore) -> None:
    store.write(
        [
            InsertRun(run_row(f"r{n}", created_at=1000.0 + n // 2, status="completed" if n % 2 else "running",
                              agent_ref="frontdesk.apps.support:triage" if n < 4 else "mypkg:desk",
                              last_agent="billing" if n == 5 else None,
                              input=json.dumps(f"order {n} needs a refund" if n in (2, 6) else "hi"),
                              conversation_id="c1" if n == 1 else None))
            for n in range(8)
        ]
    )  # fmt: skip
    every = read_pages(lambda size, cursor: store.runs_page(limit=size, cursor=cursor), 100)
    assert [r.execution_id for r in every] == [f"r{n}" for n in range(7, -1, -1)]
    paged: list[str] = []
    cursor = None
    while True:
        page = store.runs_page(limit=3, cursor=cursor)
        paged += [r.execution_id for r in page.items]
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert paged == [r.execution_id for r in every]

    def ids(**where: Any) -> list[str]:
        return [r.execution_id for r in store.runs_page(RunFilter(**where), limit=100).items]

    assert ids(status="completed") == ["r7", "r5", "r3", "r1"]
    assert ids(app="support") == ["r3", "r2", "r1", "r0"] and ids(app="mypkg") == [
        "r7",
        "r6",
        "r5",
        "r4",
    ]
    assert ids(agent="billing") == ["r5"] and len(ids(agent="triage")) == 8
    assert (
        ids(q="refund") == ["r6", "r2"]
        and ids(q="order 6") == ["r6"]
        and ids(q="ord") == ["r6", "r2"]
    )
    assert ids(q="!!") == []
    assert ids(since=1002.0, until=1003.0) == ["r5", "r4"]
    assert ids(conversation_id="c1") == ["r1"]
    with pytest.raises(InvalidInput):
        store.runs_page(limit=0)


# -- conversations, forks and usage -----------------------------------------------------------


def test_a_conversation_turn_is_claimed_once_and_recorded(store: PostgresStore) -> None:
    store.write([CreateConversation("c1", "app:agent", "triage", None, None, 1000.0)])
    claim = store.claim_turn("c1", 0, "r1", 1001.0)
    assert (claim.turn, claim.base_len) == (1, 0)
    with pytest.raises(StaleConversation, match="another message"):
        store.claim_turn("c1", 0, "r2", 1001.0)
    store.write(
        [
            RecordTurn("c1", "r1", turn=1, start=0, first_line=0, lines=["user: hi", "agent: hello"],
                       first_item=0, items_json=['{"role": "user"}', '{"role": "assistant"}'],
                       current_agent="billing", context_json='{"n": 1}', at=1002.0)
        ]
    )  # fmt: skip
    state = store.conversation("c1")
    assert state is not None
    assert (state.turns, state.history_len, state.pending_run, state.current_agent) == (
        1,
        2,
        None,
        "billing",
    )
    assert store.conversation_lines("c1") == ["user: hi", "agent: hello"]
    assert store.conversation_lines("c1", 1) == ["agent: hello"]
    assert store.conversation_items("c1") == [{"role": "user"}, {"role": "assistant"}]
    assert store.conversation_item_range("c1", 1, 2) == [{"role": "assistant"}]
    assert store.turn_start("c1", 3) == 0
    assert store.claim_turn("c1", 2, "r2", 1003.0).base_len == 2
    (row,) = store.conversations_page().items
    assert row.conversation_id == "c1" and row.pending_run == "r2"


def test_a_fork_copies_its_parent_and_both_know_their_lineage(store: PostgresStore) -> None:
    store.write([InsertRun(run_row("p1", context_json='{"n": 0}'))])
    store.write(
        [
            RecordStep("p1", step("model:1", 1, data={"output": []})),
            RequestApproval(approval("p1", "apv_p", status="pending")),
            event("p1", "k1", "message"),
        ]
    )
    store.write([SettleRun("p1", {"status": "completed", "context_json": '{"n": 2}'})])
    assert store.start_context("p1") == (True, '{"n": 0}')
    seed = ForkSeed(
        row=run_row("f1", created_at=2000.0),
        parent_id="p1",
        fork_step=2,
        steps=store.journal("p1"),
        approvals=store.approvals(execution_id="p1"),
        events=[StoredEvent(*astuple) for astuple in [(1, "k1", "message", "triage", "{}", None)]],
    )
    store.insert_fork(seed)
    assert len(store.journal("f1")) == 1 and len(store.approvals(execution_id="f1")) == 1
    lineage = store.lineage("f1")
    assert lineage.parent is not None and lineage.parent.execution_id == "p1"
    assert [f.execution_id for f in store.lineage("p1").forks] == ["f1"]
    with pytest.raises(RunAlreadyExists):
        store.insert_fork(seed)


def test_usage_is_read_from_the_model_calls(store: PostgresStore) -> None:
    store.write([InsertRun(run_row("r1", conversation_id="c1", created_at=86400.0 * 3))])
    usage = {"input_tokens": 10, "output_tokens": 5, "total_tokens": 15}
    store.write(
        [
            RecordStep("r1", step("model:1", 1, name="gpt-x", data={"usage": usage, "text": "\u0000"})),
            RecordStep("r1", step("model:2", 2, name="gpt-x", data={"usage": usage})),
            RecordStep("r1", step("tool:2:c1", 3, data={"s": "ok"})),
        ]
    )  # fmt: skip
    (row,) = store.run_usage(["r1"])
    assert (row.day, row.model, row.calls, row.input_tokens, row.total_tokens) == (
        "1970-01-04", "gpt-x", 2, 20, 30,
    )  # fmt: skip
    assert store.conversation_usage("c1") == [row]
    assert store.window_usage(0.0, None) == [row] and store.window_usage(None, 1.0) == []
    assert store.window_statuses(None, None) == {"running": 1}


# -- notifications ---------------------------------------------------------------------------------


def test_another_store_hears_a_settled_run_without_polling(
    db_url: str, store: PostgresStore
) -> None:
    other = PostgresStore(db_url)
    try:
        assert other.listener is not None and other.listener.wait_listening(WAIT_SECONDS)
        store.write([InsertRun(run_row("r1"))])

        def settled() -> str | None:
            row = other.get_run("r1")
            return row.status if row is not None and row.status == "completed" else None

        ready = threading.Event()

        def wait() -> None:
            ready.set()
            # The poll interval is the whole wait: only a notification can wake it in time.
            found.append(other.changes.wait_for(settled, WAIT_SECONDS, poll=WAIT_SECONDS))

        found: list[str | None] = []
        waiter = threading.Thread(target=wait)
        waiter.start()
        ready.wait()
        wait_until(lambda: other.changes.waiters, "the waiter to block")
        store.write([SettleRun("r1", {"status": "completed"})])
        waiter.join()
        assert found == ["completed"]
    finally:
        other.close()


def test_a_restarted_server_costs_writes_and_sections_a_retry(
    cluster: LocalPostgres, store: PostgresStore
) -> None:
    store.write([InsertRun(run_row("r1", status="waiting_approval"))])
    store.write([RequestApproval(approval("r1", "apv_1"))])
    cluster.restart()  # every pooled connection is cut
    store.write([event("r1", "after")])  # a write runs again on a fresh connection
    cluster.restart()
    record, runnable = store.decide(
        "apv_1", approved=False, by="op", note=None, reason="no", now=5.0
    )
    assert record.status == "rejected" and runnable
    assert [e.key for e in store.stored_events("r1")] == ["after", "approval_decided:model:1:c1"]


def test_a_run_whose_server_stops_mid_run_resumes_once_it_is_back(
    cluster: LocalPostgres,
    db_url: str,
    home: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The driver's commit finds the server gone: the driver stops, the run stays in the
    store, and once the server is back the runtime's recovery finishes it."""
    import chaosflow

    monkeypatch.setenv("FRONTDESK_DATABASE_URL", db_url)
    monkeypatch.setenv("CHAOS_DIR", str(tmp_path))
    caplog.set_level(logging.WARNING, logger="frontdesk")
    with AgentRuntime(home, poll_interval=0.2, lease_ttl=3) as runtime:
        handle = runtime.start(chaosflow.stepped, "go on", execution_id="stepped")

        def at_second_call() -> bool:
            return any(e.type == "tool_result" for e in runtime.events("stepped"))

        wait_until(at_second_call, "the run to reach its second model call")
        cluster.stop()
        try:
            (tmp_path / "go").write_text("go")  # the model answers; its commit cannot land

            def stopped() -> bool:
                return any("its driver stops" in r.getMessage() for r in caplog.records)

            wait_until(stopped, "the driver to stop on the store's error")
        finally:
            cluster.start()
        result = handle.result(timeout=WAIT_SECONDS)
    assert result.status == "completed" and result.output == "done"
    models = [s for s in result.steps if s.kind == "model"]
    assert len(models) == 2
