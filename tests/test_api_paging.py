"""Listings page by cursor, never by offset: ``runtime.runs_page``, ``approvals_page`` and
``conversations`` on a real store, every filter the console offers, and the query plans that
show each filter is served by an index (no scan of the runs table, no sort of every match)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from frontdesk import AgentRuntime, InvalidInput
from frontdesk.apps.airline import AirlineAgentContext
from frontdesk.apps.airline import triage_agent as airline_triage
from frontdesk.apps.support import init_db
from frontdesk.apps.support import triage_agent as support_triage
from frontdesk.store import RunFilter
from frontdesk.store.sqlite._listing import fts_query, runs_query

from conftest import sql_execute, sql_rows

REFUND = "I was charged $99 twice (invoice INV-8821). Refund please?"
LOGIN = "I cannot log in, please reset my password"
CANCEL = "Please cancel my plan"


@pytest.fixture
def rules(home: Path) -> AgentRuntime:
    init_db(home)
    with AgentRuntime(home, model="rules", recover=False) as runtime:
        yield runtime


def test_runs_page_by_cursor_covers_every_run_once_newest_first(rules: AgentRuntime) -> None:
    ids = [rules.run(support_triage, msg).execution_id for msg in [LOGIN, CANCEL] * 6]
    pages, cursor = [], None
    while True:
        page = rules.runs_page(limit=5, cursor=cursor)
        pages.append([r.execution_id for r in page.items])
        cursor = page.next_cursor
        if cursor is None:
            break
    assert [len(p) for p in pages] == [5, 5, 2]
    assert [i for p in pages for i in p] == list(reversed(ids))
    # A run started meanwhile does not shift later pages (it is newer than the cursor).
    first = rules.runs_page(limit=5)
    rules.run(support_triage, LOGIN)
    after = rules.runs_page(limit=5, cursor=first.next_cursor)
    assert [r.execution_id for r in after.items] == pages[1]
    # The old offset listing agrees.
    assert [r.execution_id for r in rules.runs(limit=100)][1:] == list(reversed(ids))


def test_every_filter_of_the_console(rules: AgentRuntime) -> None:
    refund = rules.run(support_triage, REFUND)
    login = rules.run(support_triage, LOGIN)
    middle = time.time()
    cancel = rules.run(support_triage, CANCEL)
    conversation = rules.conversation("c-1", agent=airline_triage, context=AirlineAgentContext())
    conversation.send("I'd like to change my seat", chat_length=0)

    def ids(**filters: object) -> set[str]:
        return {r.execution_id for r in rules.runs_page(**filters).items}  # type: ignore[arg-type]

    assert ids(status="waiting_approval") == {refund.execution_id}
    assert ids(app="support") == {refund.execution_id, login.execution_id, cancel.execution_id}
    (turn,) = ids(app="airline")
    assert rules.get(turn).conversation_id == "c-1"
    assert ids(agent="billing_specialist") == {refund.execution_id}  # the last agent
    assert ids(agent="support_triage") == {
        refund.execution_id,
        login.execution_id,
        cancel.execution_id,
    }  # the starting agent
    assert ids(q="INV-8821") == {refund.execution_id}
    assert ids(q="passw") == {login.execution_id}  # the last word as a prefix
    assert ids(q="confirmation number") == {turn}  # words of the output
    assert ids(q='" OR * NEAR(') == set()  # operators are words, never FTS syntax
    assert ids(since=middle) == {cancel.execution_id, turn}
    assert ids(until=middle) == {refund.execution_id, login.execution_id}
    assert ids(app="support", since=middle, q="cancel") == {cancel.execution_id}
    assert ids(conversation_id="c-1") == {turn}


def test_the_agent_filter_pages_too(rules: AgentRuntime) -> None:
    for _ in range(4):
        rules.run(support_triage, LOGIN)
        rules.run(support_triage, CANCEL)
    seen: list[str] = []
    cursor = None
    for _ in range(10):
        page = rules.runs_page(agent="technical_specialist", limit=3, cursor=cursor)
        seen += [r.execution_id for r in page.items]
        cursor = page.next_cursor
        if cursor is None:
            break
    assert len(seen) == len(set(seen)) == 4
    assert all(rules.get(i).last_agent == "technical_specialist" for i in seen)


def test_text_search_sees_outputs_written_after_the_run_started(rules: AgentRuntime) -> None:
    result = rules.run(support_triage, LOGIN)
    word = next(w for w in str(result.output).split() if w.isalpha() and len(w) > 6)
    assert word.lower() not in LOGIN.lower()
    assert result.execution_id in {r.execution_id for r in rules.runs_page(q=word).items}


def test_approvals_page_oldest_first_by_cursor(rules: AgentRuntime) -> None:
    waiting = []
    for _ in range(5):
        init_db(rules.home, reset=True)
        waiting.append(rules.run(support_triage, REFUND).execution_id)
    page = rules.approvals_page(limit=2)
    order = [a.execution_id for a in page.items]
    while page.next_cursor is not None:
        page = rules.approvals_page(limit=2, cursor=page.next_cursor)
        order += [a.execution_id for a in page.items]
    assert order == waiting
    # The list form reads the same pages: a limit, then on from a page's cursor.
    assert [a.execution_id for a in rules.approvals(limit=3)] == waiting[:3]
    rest = rules.approvals(cursor=rules.approvals_page(limit=3).next_cursor)
    assert [a.execution_id for a in rest] == waiting[3:]
    newest = rules.runs(limit=2)
    assert [r.execution_id for r in newest] == waiting[::-1][:2]
    after = rules.runs(cursor=rules.runs_page(limit=2).next_cursor, limit=10**9)
    assert [r.execution_id for r in after] == waiting[::-1][2:]
    rules.approve(waiting[0], by="alice")
    assert [a.execution_id for a in rules.approvals_page().items] == waiting[1:]
    decided = rules.approvals_page("approved", newest_first=True)
    assert [(a.execution_id, a.decided_by) for a in decided.items] == [(waiting[0], "alice")]


def test_conversations_page_with_totals(rules: AgentRuntime) -> None:
    for n in range(3):
        conversation = rules.conversation(
            f"c-{n}", agent=airline_triage, context=AirlineAgentContext()
        )
        conversation.send("I'd like to change my seat", chat_length=0)
    first = rules.conversations(limit=2)
    second = rules.conversations(limit=2, cursor=first.next_cursor)
    assert second.next_cursor is None
    listed = [c.conversation_id for c in first.items + second.items]
    assert listed == ["c-2", "c-1", "c-0"]  # most recently active first
    for row in first.items + second.items:
        assert row.turns == 1 and row.total_tokens > 0 and row.requests >= 1
        assert sum(i + o for i, o in row.models.values()) == row.input_tokens + row.output_tokens


def test_bad_cursors_and_limits_are_refused(rules: AgentRuntime) -> None:
    for cursor in ("nope", "W10", "WyJhIiwxXQ", "!!!"):
        with pytest.raises(InvalidInput, match="cursor"):
            rules.runs_page(cursor=cursor)
        with pytest.raises(InvalidInput, match="cursor"):
            rules.approvals_page(cursor=cursor)
    for limit in (0, -1, 501):
        with pytest.raises(InvalidInput, match="limit"):
            rules.runs_page(limit=limit)


def test_every_filter_is_served_by_an_index(rules: AgentRuntime) -> None:
    rules.run(support_triage, LOGIN)
    cursor = rules.runs_page(limit=1).next_cursor
    for filters in [
        {},
        {"status": "failed"},
        {"app": "support"},
        {"agent": "billing_specialist"},
        {"since": 1.0, "until": 2e9},
        {"conversation_id": "c-1"},
        {"status": "completed", "cursor": cursor},
        {"q": "refund"},
    ]:
        where = {k: v for k, v in filters.items() if k != "cursor"}
        query = runs_query(RunFilter(**where), limit=51, cursor=filters.get("cursor"))  # type: ignore[arg-type]
        assert query is not None
        steps = [
            str(row[3]) for row in sql_rows(rules.home, "EXPLAIN QUERY PLAN " + query[0], query[1])
        ]
        plan = " | ".join(steps)
        assert "USING INDEX" in plan or "USING COVERING INDEX" in plan, (filters, plan)
        assert "SCAN runs" not in steps, (filters, plan)  # never the whole table unordered
        # A conversation's turns are found by its (conversation_id, turn) index and are few.
        # Every other filter, text included, walks an index in created_at order and stops at
        # the page's end.
        if "conversation_id" not in filters:
            assert "TEMP B-TREE FOR ORDER BY" not in plan.split("UNION")[0], (filters, plan)


def test_fts_query_quotes_every_word() -> None:
    assert fts_query("INV-8821 refund") == '"INV" "8821" "refund"*'
    assert fts_query('say "hi" OR NEAR') == '"say" "hi" "OR" "NEAR"*'
    assert fts_query("  ?! ") is None


def test_the_text_index_follows_runs_that_change_after_a_search(rules: AgentRuntime) -> None:
    def pending() -> int:
        return int(sql_rows(rules.home, "SELECT COUNT(*) FROM runs_fts_pending")[0][0])

    waiting = rules.run(support_triage, REFUND)
    assert pending() >= 1  # writing a run only queued it
    assert {r.execution_id for r in rules.runs_page(q="INV-8821").items} == {waiting.execution_id}
    assert pending() == 0
    # Approved, the run completes with an output: the index takes the new text, drops none.
    rules.approve(waiting.execution_id, by="alice")
    done = rules.handle(waiting.execution_id).result(timeout=60)
    assert "RF-" in str(done.output)
    assert [r.execution_id for r in rules.runs_page(q="RF").items] == [waiting.execution_id]
    assert [r.execution_id for r in rules.runs_page(q="INV-8821").items] == [waiting.execution_id]
    # The full-text index agrees with the runs it indexes, row for row.
    sql_execute(rules.home, "INSERT INTO runs_fts (runs_fts, rank) VALUES ('integrity-check', 1)")
