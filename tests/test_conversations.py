"""Durable multi-turn conversations: persistence across processes, crashes, validation,
concurrency and compaction; each on SQLite and on PostgreSQL (children share the database)."""

from __future__ import annotations

import json
import subprocess
import threading
from pathlib import Path

import pytest

import convflow
from frontdesk import AgentRuntime, EmptyMessage, MessageTooLong, StaleConversation

from conftest import (
    PYTHON,
    WAIT_SECONDS,
    Children,
    both_backends,
    child_env,
    sigkill,
    store_rows,
    wait_for_marker,
)

pytestmark = both_backends

SCRIPT = ["hello", "I want to change my seat", "14c please", "what time is it", "seat 2a", "thanks"]


def send_in_child(
    children: Children,
    home: Path,
    conversation_id: str,
    message: str,
    chat_length: int | None = None,
    **env: str,
) -> subprocess.Popen[str]:
    args = [PYTHON, "-m", "convflow", str(home), conversation_id, message]
    if chat_length is not None:
        args.append(str(chat_length))
    return children.popen(
        args, env=child_env(**env), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def open_conv(runtime: AgentRuntime, conversation_id: str = "c1"):
    return runtime.conversation(
        conversation_id, agent=convflow.desk, context=convflow.SeatContext()
    )


def test_lines_follow_the_history_format_and_state_persists(runtime: AgentRuntime) -> None:
    conv = open_conv(runtime)
    assert conv.send("hello", 0) == ["User: hello", "Desk: Desk here, you said: hello"]
    assert conv.send("I want to change my seat", 2) == [
        "User: I want to change my seat",
        "Handed off from Desk to Seats",
        "Seats: Which seat would you like?",
    ]
    assert conv.current_agent == "Seats"
    assert conv.send("14c please", 5) == [
        "User: 14c please",
        "Seats: Calling a tool",
        "Seats: Tool call output: Seat 14C booked",
        "Seats: Done: Seat 14C booked.",
    ]
    assert conv.context == convflow.SeatContext(seat="14C", changes=1)
    assert len(conv.history()) == 9 and conv.turns == 3
    turns = conv.runs()
    assert len(turns) == 3 and {r.conversation_id for r in turns} == {"c1"}
    assert [r.input for r in turns] == ["14c please", "I want to change my seat", "hello"]
    assert all(r.status == "completed" for r in turns)
    assert [e.type for e in runtime.get(turns[0].execution_id).events][-1] == "done"


def test_reopened_in_new_processes_between_turns(
    home: Path, backend: str, children: Children
) -> None:
    expected: list[str] = []
    with AgentRuntime(home, recover=False) as reference:
        conv = open_conv(reference, "reference")
        for message in SCRIPT:
            expected += conv.send(message)
    for message in SCRIPT:
        proc = send_in_child(children, home, "c1", message)
        _out, err = proc.communicate(timeout=WAIT_SECONDS)
        assert proc.returncode == 0, err
    with AgentRuntime(home, recover=False) as runtime:
        conv = runtime.conversation("c1")
        assert conv.history() == expected
        assert conv.context == convflow.SeatContext(seat="2A", changes=2)


def test_sigkill_mid_turn_is_completed_exactly_once_on_reopen(
    home: Path,
    backend: str,
    tmp_path: Path,
    children: Children,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    flow_dir = tmp_path / "flow"
    flow_dir.mkdir()
    monkeypatch.setenv("CONVFLOW_DIR", str(flow_dir))
    with AgentRuntime(home, recover=False) as runtime:
        conv = open_conv(runtime)
        conv.send("I want to change my seat")
    proc = send_in_child(children, home, "c1", "14c please", CRASH_AT="in_tool")
    assert wait_for_marker(flow_dir / "parked", proc) == "in_tool"
    sigkill(proc)
    with AgentRuntime(home, recover=False) as runtime:
        conv = runtime.conversation("c1")
        history = conv.history()
        assert history[3:] == [
            "User: 14c please",
            "Seats: Calling a tool",
            "Seats: Tool call output: Seat 14C booked",
            "Seats: Done: Seat 14C booked.",
        ]
        assert conv.pending_run is None and conv.turns == 2
        assert conv.context == convflow.SeatContext(seat="14C", changes=1)
        # The interrupted tool ran again with the same key; a keyed external API applies it once.
        keys = [line.split()[0] for line in (flow_dir / "effects.log").read_text().splitlines()]
        assert len(keys) == 2 and len(set(keys)) == 1
        assert conv.send("thanks", len(history))[0] == "User: thanks"
        assert len(conv.history()) == len(history) + 3
        assert len(set(conv.history())) >= 8  # no duplicated turn


@pytest.mark.parametrize(
    ("message", "error", "text"),
    [
        ("", EmptyMessage, "empty"),
        ("   ", EmptyMessage, "empty"),
        ("x" * 1001, MessageTooLong, "limit to 1000 characters"),
    ],
)
def test_bad_input_is_refused_and_nothing_is_stored(
    runtime: AgentRuntime, message: str, error: type, text: str
) -> None:
    conv = open_conv(runtime)
    conv.send("hello")
    with pytest.raises(error, match=text):
        conv.send(message, 2)
    assert conv.history() == ["User: hello", "Desk: Desk here, you said: hello"]
    assert len(conv.runs()) == 1
    assert conv.send("x" * 1000, 2)[0].startswith("User: xxx")


def test_stale_chat_length_raises_with_the_current_history(runtime: AgentRuntime) -> None:
    conv = open_conv(runtime)
    conv.send("hello", 0)
    with pytest.raises(StaleConversation) as info:
        conv.send("again", 0)
    assert info.value.history == ["User: hello", "Desk: Desk here, you said: hello"]
    assert isinstance(info.value, ValueError)
    assert len(conv.history()) == 2 and len(conv.runs()) == 1


def test_concurrent_sends_from_threads_one_wins(runtime: AgentRuntime) -> None:
    conv = open_conv(runtime)
    conv.send("hello", 0)
    barrier = threading.Barrier(6)
    outcomes: list[object] = []

    def racer(i: int) -> None:
        barrier.wait()
        try:
            outcomes.append(conv.send(f"message {i}", 2))
        except StaleConversation as exc:
            outcomes.append(exc)

    threads = [threading.Thread(target=racer, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    winners = [o for o in outcomes if isinstance(o, list)]
    assert len(winners) == 1 and len(outcomes) == 6
    history = conv.history()
    assert len(history) == 4 and history[2] == winners[0][0]


def test_concurrent_sends_from_processes_one_wins(
    home: Path, backend: str, children: Children
) -> None:
    with AgentRuntime(home, recover=False) as runtime:
        open_conv(runtime).send("hello", 0)
    procs = [send_in_child(children, home, "c1", f"from process {i}", 2) for i in range(3)]
    outputs = [p.communicate(timeout=WAIT_SECONDS) for p in procs]
    assert all(p.returncode == 0 for p in procs), [o[1] for o in outputs]
    winners = [out for out, _ in outputs if out.startswith("User:")]
    assert len(winners) == 1
    assert sum(out.startswith("STALE") for out, _ in outputs) == 2
    with AgentRuntime(home, recover=False) as runtime:
        history = runtime.conversation("c1").history()
    assert len(history) == 4 and history[2] == winners[0].splitlines()[0]


def test_compaction_keeps_answers_identical_and_storage_bounded(home: Path, backend: str) -> None:
    script = SCRIPT * 4
    histories = {}
    inputs = []
    for every in (0, 3):
        with AgentRuntime(home, recover=False, compact_every=every) as runtime:
            conv = open_conv(runtime, f"every{every}")
            for message in script:
                conv.send(message, len(conv.history()))
            histories[every] = (conv.history(), conv.input_items(), conv.context, conv.compactions)
            inputs += [
                json.loads(runtime.store.require_run(r.execution_id).input) for r in conv.runs()
            ]
            [(logged,)] = store_rows(
                home,
                "SELECT COUNT(*) FROM conversation_items WHERE conversation_id = ?",
                (f"every{every}",),
            )
    plain, compacted = histories[0], histories[3]
    assert compacted[0] == plain[0]
    assert compacted[1] == plain[1]
    assert compacted[2] == plain[2]
    assert plain[3] == 0 and compacted[3] == len(script) // 3
    assert logged < len(plain[1]) / 2  # most items live in the compacted snapshot
    assert len(inputs) == 2 * len(script)
    assert all(set(i) == {"base_len", "message"} for i in inputs)
