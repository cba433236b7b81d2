"""Bounded conversation memory: what a turn sends the model, cut between turns, with a
summary written once; the full history stays stored."""

from __future__ import annotations

import json
import sqlite3
import subprocess
from pathlib import Path
from typing import Any

import pytest
from agents.testing import ScriptedModel

import convflow
import memflow
from frontdesk import AgentRuntime, Budget, BudgetExceeded, Conversation, InvalidInput, Memory
from frontdesk._budget import BudgetPlan
from frontdesk._summarizer import summary_run_id
from frontdesk.apps.airline import AirlineAgentContext, triage_agent
from frontdesk.engine._conversation import runner_input
from frontdesk.store import RunRow, store_path

from conftest import PYTHON, WAIT_SECONDS, Children, child_env, sigkill, sql_rows, wait_for_marker

SCRIPT = [
    "hello",
    "what time is it",
    "I want to change my seat",
    "14c please",
    "thanks",
    "seat 2a",
    "and the weather",
    "bye",
]


def open_conv(runtime: AgentRuntime, memory: Memory | None, conversation_id: str = "m1"):
    return runtime.conversation(
        conversation_id, agent=memflow.desk, context=convflow.SeatContext(), memory=memory
    )


def recorded(*models: Any) -> int:
    return sum(len(m.calls) for m in models)


def calls_since(mark: dict[str, int]) -> list[list[dict[str, Any]]]:
    """Inputs of the model calls made since ``mark`` (see :func:`marks`), in call order per
    model: Desk's, then Seats'."""
    found: list[list[dict[str, Any]]] = []
    for agent in (memflow.desk, memflow.seats):
        model: ScriptedModel = agent.model  # type: ignore[assignment]
        found += [memflow.plain(c.input) for c in model.calls[mark[agent.name] :]]
    return found


def marks() -> dict[str, int]:
    return {a.name: len(a.model.calls) for a in (memflow.desk, memflow.seats)}  # type: ignore[union-attr]


def user_texts(items: list[dict[str, Any]]) -> list[str]:
    return [str(i["content"]) for i in items if i.get("role") == "user"]


def turn_ref(runtime: AgentRuntime, conv: Conversation, turn: int | None = None) -> RunRow:
    """The run of the conversation's latest turn (or of ``turn``)."""
    rows = sql_rows(
        runtime.home,
        "SELECT execution_id FROM runs WHERE conversation_id = ? AND turn = COALESCE(?, turn) "
        "ORDER BY turn DESC LIMIT 1",
        (conv.conversation_id, turn),
    )
    return runtime.store.require_run(rows[0][0])


def test_each_turn_sends_only_the_last_turns_and_history_keeps_everything(
    runtime: AgentRuntime, home: Path
) -> None:
    conv = open_conv(runtime, Memory(last_turns=2))
    for k, message in enumerate(SCRIPT):
        mark = marks()
        conv.send(message, len(conv.history()))
        inputs = calls_since(mark)
        assert inputs, message
        first = min(inputs, key=len)  # the turn's first model call: its window and message
        assert user_texts(first) == SCRIPT[max(k - 2, 0) : k + 1]
        assert first[0]["role"] == "user"  # cut at the start of a turn
        assert first == runner_input(runtime.store, turn_ref(runtime, conv))
    # Everything is stored and shown: the same lines as without a policy.
    with AgentRuntime(home / "unbounded", recover=False) as plain_runtime:
        unbounded = open_conv(plain_runtime, None)
        for message in SCRIPT:
            unbounded.send(message, len(unbounded.history()))
        assert conv.history() == unbounded.history()
        assert len(conv.stored_items()) == len(unbounded.stored_items())
        assert len(unbounded.input_items()) == len(unbounded.stored_items())
    assert user_texts(conv.stored_items()) == SCRIPT
    assert user_texts(conv.input_items()) == SCRIPT[-2:]
    assert conv.memory == Memory(2) and conv.turns == len(SCRIPT)
    assert conv.compactions == 0


def test_a_tool_call_and_its_output_are_never_split(runtime: AgentRuntime) -> None:
    conv = open_conv(runtime, Memory(last_turns=1))
    mark = marks()
    for message in SCRIPT:
        conv.send(message)
    inputs = calls_since(mark)
    assert any(i.get("type") == "function_call" for items in inputs for i in items)
    for items in inputs:
        calls = [i["call_id"] for i in items if i.get("type") == "function_call"]
        outputs = [i["call_id"] for i in items if i.get("type") == "function_call_output"]
        assert calls == outputs, items
        assert len(set(calls)) == len(calls)
    # Turn 5 ("thanks") sees turn 4 whole: its handoff, the seat tool's call and output.
    window = runner_input(runtime.store, turn_ref(runtime, conv, 5))
    assert user_texts(window) == ["14c please", "thanks"]
    assert [i.get("name") for i in window if i.get("type") == "function_call"] == ["set_seat"]


def test_a_summary_is_written_once_per_dropped_turn_and_sent_first(
    runtime: AgentRuntime, home: Path
) -> None:
    conv = open_conv(runtime, Memory(last_turns=2, summarize=memflow.summariser))
    summariser: ScriptedModel = memflow.summariser.model  # type: ignore[assignment]
    before = len(summariser.calls)
    for message in SCRIPT[:5]:
        conv.send(message)
    # Turns 1 and 2 dropped out of the window before turns 4 and 5: one summary run each.
    assert len(summariser.calls) - before == 2
    assert conv.summary == "customer said hello; customer said what time is it"
    for first, last in ((1, 1), (2, 2)):
        run = runtime.get(summary_run_id("m1", first, last))
        assert run.status == "completed"
    mark = marks()
    conv.send(SCRIPT[5])
    sent = min(calls_since(mark), key=len)
    assert sent[0]["role"] == "system"
    assert sent[0]["content"].startswith("Summary of the conversation before the messages")
    assert sent[0]["content"].endswith(conv.summary or "?")
    assert "customer said I want to change my seat" in sent[0]["content"]
    assert user_texts(sent) == SCRIPT[3:6]
    # Reopened in another runtime, the stored summary is reused, not written again.
    calls = len(summariser.calls)
    with AgentRuntime(home, recover=False) as again:
        reopened = again.conversation("m1")
        assert reopened.memory == Memory(2, summarize=memflow.summariser)
        assert reopened.summary == conv.summary
        assert reopened.input_items()[0] == sent[0]
    assert len(summariser.calls) == calls


def test_the_rules_model_writes_a_bounded_deterministic_summary(tmp_path: Path) -> None:
    summaries = []
    for name in ("a", "b"):
        with AgentRuntime(tmp_path / name, model="rules", recover=False) as runtime:
            conv = runtime.conversation(
                "air",
                agent=triage_agent,
                context=AirlineAgentContext(),
                memory=Memory(last_turns=2, summarize=True),
            )
            for message in ["What's the baggage allowance?", "Is there wifi?"] * 4:
                conv.send(message)
            summaries.append(conv.summary)
            window = runner_input(runtime.store, turn_ref(runtime, conv))
            assert window[0]["role"] == "system" and window[0]["content"].endswith(conv.summary)
            assert len(user_texts(window)) == 3
    assert summaries[0] == summaries[1]
    assert summaries[0] is not None
    assert summaries[0].startswith("Turns 1-5 in a digest by the offline rules model: 5 customer")
    assert '"faq_lookup_tool": 5' in summaries[0]


def send_in_child(
    children: Children, home: Path, message: str, **env: str
) -> subprocess.Popen[str]:
    return children.popen(
        [PYTHON, "-m", "memflow", str(home), "m1", message],
        env=child_env(**env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_a_turn_killed_mid_way_sends_the_same_input_when_recovered(
    home: Path, tmp_path: Path, children: Children, monkeypatch: pytest.MonkeyPatch
) -> None:
    flow_dir = tmp_path / "flow"
    flow_dir.mkdir()
    monkeypatch.setenv("CONVFLOW_DIR", str(flow_dir))
    with AgentRuntime(home, recover=False) as runtime:
        conv = open_conv(runtime, Memory(last_turns=2, summarize=memflow.summariser))
        for message in ["hello", "what time is it", "thanks", "I want to change my seat"]:
            conv.send(message)
    summaries = flow_dir / "summaries.log"
    assert len(summaries.read_text().splitlines()) == 1  # turn 1, before turn 4
    (flow_dir / "inputs.jsonl").unlink()
    # The child opens the conversation without a policy: the stored one applies.
    proc = send_in_child(children, home, "14c please", CRASH_AT="in_tool")
    assert wait_for_marker(flow_dir / "parked", proc) == "in_tool"
    sigkill(proc)
    written = summaries.read_text().splitlines()
    assert len(written) == 2  # turn 2, before turn 5 was claimed
    sent_before = [
        json.loads(line) for line in (flow_dir / "inputs.jsonl").read_text().splitlines()
    ]
    assert len(sent_before) == 1  # Seats, already there, called the tool; then the kill
    with AgentRuntime(home, recover=False) as runtime:
        conv = runtime.conversation("m1")
        assert conv.history()[-1] == "Seats: Done: Seat 14C booked."
        assert conv.pending_run is None and conv.turns == 5
        ref = turn_ref(runtime, conv)
        assert runner_input(runtime.store, ref) == sent_before[0]
    sent_after = [json.loads(line) for line in (flow_dir / "inputs.jsonl").read_text().splitlines()]
    # The recovered turn replays the journaled call and goes on from the same input.
    assert len(sent_after) == 2
    assert sent_after[1][: len(sent_before[0])] == sent_before[0]
    assert sent_before[0][0]["role"] == "system"
    assert user_texts(sent_before[0]) == ["thanks", "I want to change my seat", "14c please"]
    assert summaries.read_text().splitlines() == written  # the summary was not written again


@pytest.mark.parametrize(
    ("memory", "text"),
    [
        (5, "memory must be a frontdesk.Memory"),
        ({"last_turns": 3}, "memory must be a frontdesk.Memory"),
    ],
)
def test_a_bad_memory_is_refused_and_nothing_is_stored(
    runtime: AgentRuntime, memory: Any, text: str
) -> None:
    with pytest.raises(InvalidInput, match=text):
        open_conv(runtime, memory)
    assert sql_rows(runtime.home, "SELECT COUNT(*) FROM conversations")[0][0] == 0
    conv = open_conv(runtime, Memory(3))
    with pytest.raises(InvalidInput, match=text):
        open_conv(runtime, memory)
    assert conv.memory == Memory(3)


@pytest.mark.parametrize(
    ("kwargs", "text"),
    [
        ({"last_turns": 0}, "at least 1, got 0"),
        ({"last_turns": -2}, "at least 1, got -2"),
        ({"last_turns": 2.5}, "whole number, got 2.5"),
        ({"last_turns": True}, "whole number, got True"),
        ({"last_turns": "3"}, "whole number, got '3'"),
        ({"last_turns": 3, "summarize": "yes"}, "True, False or an agents.Agent, got str"),
    ],
)
def test_bad_memory_values_are_refused(kwargs: dict[str, Any], text: str) -> None:
    with pytest.raises(InvalidInput, match=text):
        Memory(**kwargs)


def test_turns_stored_before_memory_existed_are_found_from_their_runs(home: Path) -> None:
    with AgentRuntime(home, recover=False) as runtime:
        conv = open_conv(runtime, None)
        for message in SCRIPT[:5]:
            conv.send(message)
        starts = sql_rows(
            runtime.home, "SELECT turn, start_idx FROM conversation_turns ORDER BY turn"
        )
    # Back to the schema before memory: the migration rebuilds the turns from the runs.
    conn = sqlite3.connect(store_path(home))
    conn.executescript(
        "DROP TABLE conversation_turns; ALTER TABLE conversations DROP COLUMN memory_json;"
        "ALTER TABLE conversations DROP COLUMN summary_json; PRAGMA user_version = 11;"
    )
    conn.close()
    with AgentRuntime(home, recover=False) as runtime:
        assert (
            sql_rows(runtime.home, "SELECT turn, start_idx FROM conversation_turns ORDER BY turn")
            == starts
        )
        conv = open_conv(runtime, Memory(1))
        mark = marks()
        conv.send(SCRIPT[5])
        assert user_texts(min(calls_since(mark), key=len)) == SCRIPT[4:6]
    assert [s for _, s in starts] == sorted(s for _, s in starts) and len(starts) == 5


def chat(home: Path, *options: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    args = [PYTHON, "-m", "frontdesk", "--home", str(home), "chat", "airline"]
    return subprocess.run(
        [*args, "--conversation-id", "c1", *options],
        input=stdin,
        env=child_env(),
        capture_output=True,
        text=True,
        timeout=WAIT_SECONDS,
    )


def test_chat_airline_takes_a_memory_policy(home: Path) -> None:
    for bad, error in ((["--memory", "0"], "--memory"), (["--summarize"], "--summarize")):
        refused = chat(home, *bad, stdin="Is there wifi?\n")
        assert refused.returncode == 2 and error in refused.stderr
    assert not store_path(home).exists()  # refused before anything was opened
    messages = ["What's the baggage allowance?", "Is there wifi?"] * 2
    done = chat(home, "--memory", "1", "--summarize", stdin="".join(f"{m}\n" for m in messages))
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
    with AgentRuntime(home, recover=False) as runtime:
        conv = runtime.conversation("c1")
        assert conv.memory == Memory(1, summarize=True) and conv.turns == 4
        window = runner_input(runtime.store, turn_ref(runtime, conv))
        assert window[0]["role"] == "system" and user_texts(window) == messages[2:]
        assert conv.summary is not None and conv.summary.startswith("Turns 1-2 in a digest")


def test_summaries_are_held_to_and_count_toward_the_conversations_budget(
    runtime: AgentRuntime,
) -> None:
    """A summariser run spends for its conversation: it is held to the conversation's budget
    with what the turns before it spent, and what it spends counts toward the turns after."""

    def calls(conversation_id: str, summaries: bool = True) -> int:
        rows = runtime.store.conversation_usage(conversation_id)
        return sum(r.calls for r in rows if summaries or not r.execution_id.startswith("summary"))

    def open_budgeted(conversation_id: str, max_model_calls: int) -> Conversation:
        return runtime.conversation(
            conversation_id,
            agent=memflow.desk,
            context=convflow.SeatContext(),
            memory=Memory(last_turns=2, summarize=memflow.summariser),
            budget=Budget(max_model_calls=max_model_calls),
        )

    conv = open_budgeted("mb", 1_000)
    for message in SCRIPT[:3]:
        conv.send(message)
    first_three = calls("mb")
    conv.send(SCRIPT[3])  # turn 1 leaves the window: its summary is written first
    summary = runtime.get(summary_run_id("mb", 1, 1))
    assert summary.status == "completed"
    assert summary.budget == Budget(max_model_calls=1_000)
    stored = runtime.store.require_run(summary.execution_id).budget_json
    assert BudgetPlan.from_json(stored or "").before.model_calls == first_three
    assert calls("mb") == calls("mb", summaries=False) + 1
    # A budget the four turns alone would just fit stops the fourth turn: the summary spent.
    other = open_budgeted("mb2", calls("mb", summaries=False))
    for message in SCRIPT[:3]:
        other.send(message)
    with pytest.raises(BudgetExceeded):
        other.send(SCRIPT[3])
    assert other.turns == 3
