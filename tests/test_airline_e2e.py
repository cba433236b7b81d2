"""The airline agents keyless on the rules model, in durable conversations: FAQ answers, the
seat booking routine, detours back to triage, refusals, restarts, crashes, concurrency and
compaction."""

from __future__ import annotations

import subprocess
import threading
from collections.abc import Iterator
from itertools import pairwise
from pathlib import Path

import pytest

import airlineflow
from frontdesk import AgentRuntime, EmptyMessage, MessageTooLong, StaleConversation
from frontdesk.apps.airline import (
    AGENTS,
    AirlineAgentContext,
    get_booking,
    init_agents,
    seat_map,
    triage_agent,
)
from frontdesk.conversations import Conversation
from frontdesk.models.rules import RULES_LABEL, rules_for

from conftest import (
    PYTHON,
    WAIT_SECONDS,
    Children,
    both_backends,
    child_env,
    sigkill,
    wait_for_marker,
)

DEMO = "LL0EZ6"
BAGS = (
    "You are allowed to bring one bag on the plane. "
    "It must be under 50 pounds and 22 inches x 14 inches x 9 inches."
)
WIFI = "We have free wifi on the plane, join Airline-Wifi"
ASK_CONFIRMATION = "Seat Booking Agent: I can change your seat. What is your confirmation number?"
ASK_SEAT = (
    "Seat Booking Agent: Thanks! I have your confirmation number LL0EZ6. "
    "Which seat would you like, for example 14C?"
)
BOOKING = ["I'd like to change my seat", DEMO, "14C"]


def booked(seat: str) -> list[str]:
    """The lines of a successful ``update_seat`` turn after the ``User:`` line."""
    return [
        "Seat Booking Agent: Calling a tool",
        f"Seat Booking Agent: Tool call output: Updated seat to {seat} for confirmation number "
        f"{DEMO}",
        f"Seat Booking Agent: Done! Your seat is now {seat} (confirmation number {DEMO}). "
        "Is there anything else I can help with?",
    ]


def faq(answer: str, *route: str) -> list[str]:
    """The lines of an FAQ answer reached through ``route`` (agents handed to, in order)."""
    hops = [f"Handed off from {a} to {b}" for a, b in pairwise(route)]
    return [
        *hops,
        "FAQ Agent: Calling a tool",
        f"FAQ Agent: Tool call output: {answer}",
        f"FAQ Agent: {answer}",
    ]


@pytest.fixture
def airline(home: Path, backend: str) -> Iterator[AgentRuntime]:
    """A keyless runtime on the offline rules model."""
    with AgentRuntime(home, model="rules", recover=False) as runtime:
        yield runtime


def open_chat(runtime: AgentRuntime, *messages: str) -> Conversation:
    """Open conversation ``c1`` with the airline's agents and send ``messages``."""
    conv = runtime.conversation("c1", agent=triage_agent, context=AirlineAgentContext())
    for message in messages:
        say(conv, message)
    return conv


def say(conv: Conversation, message: str) -> list[str]:
    """Send ``message`` as a client that saw the whole history; the new lines, unlabelled."""
    lines = conv.send(message, len(conv.history()))
    assert lines[0] == f"User: {message}"
    return [line.replace(f"\n{RULES_LABEL}", "") for line in lines[1:]]


def tool_calls(runtime: AgentRuntime, conv: Conversation) -> list[tuple[str, dict]]:
    """Every tool call of the conversation's turns, oldest first."""
    return [
        (e.tool_name or "", e.args or {})
        for run in reversed(conv.runs())
        for e in runtime.get(run.execution_id).events
        if e.type == "tool_call"
    ]


def seat_of(home: Path) -> str | None:
    booking = get_booking(DEMO, home)
    assert booking is not None
    return booking.seat


# --- keyless scenarios -----------------------------------------------------------------------


@both_backends
def test_faq_questions_go_to_the_faq_agent_and_its_lookup(
    backend: str, airline: AgentRuntime
) -> None:
    conv = open_chat(airline)

    assert say(conv, "What's the baggage allowance?") == faq(BAGS, "Triage Agent", "FAQ Agent")
    assert say(conv, "Is there wifi?") == faq(WIFI)
    assert conv.current_agent == "FAQ Agent"
    assert tool_calls(airline, conv) == [
        ("faq_lookup_tool", {"question": "What's the baggage allowance?"}),
        ("faq_lookup_tool", {"question": "Is there wifi?"}),
    ]
    assert conv.history()[-1].endswith(RULES_LABEL)


@both_backends
def test_seat_change_asks_confirmation_then_seat_then_updates(
    backend: str, airline: AgentRuntime, home: Path
) -> None:
    conv = open_chat(airline)

    assert say(conv, "I'd like to change my seat") == [
        "Handed off from Triage Agent to Seat Booking Agent",
        ASK_CONFIRMATION,
    ]
    assert say(conv, DEMO) == [ASK_SEAT]
    assert seat_of(home) == "18B" and conv.context == AirlineAgentContext()
    assert say(conv, "14C") == booked("14C")

    assert seat_of(home) == "14C"
    assert conv.context == AirlineAgentContext(
        passenger_name="Maya Patel",
        confirmation_number=DEMO,
        seat_number="14C",
        flight_number="FLT-123",
    )
    assert tool_calls(airline, conv) == [
        ("update_seat", {"confirmation_number": DEMO, "new_seat": "14C"})
    ]


@both_backends
def test_off_topic_question_mid_booking_goes_back_through_triage(
    backend: str, airline: AgentRuntime, home: Path
) -> None:
    conv = open_chat(airline, *BOOKING[:2])

    assert say(conv, "Is there wifi?") == faq(
        WIFI, "Seat Booking Agent", "Triage Agent", "FAQ Agent"
    )
    assert say(conv, "what's the baggage allowance") == faq(BAGS)
    # The confirmation number given before the detour is still known: no re-asking.
    assert say(conv, "14C") == [
        "Handed off from FAQ Agent to Triage Agent",
        "Handed off from Triage Agent to Seat Booking Agent",
        *booked("14C"),
    ]
    assert seat_of(home) == "14C" and conv.context.seat_number == "14C"


@both_backends
def test_faq_agent_hands_back_what_it_cannot_answer(backend: str, airline: AgentRuntime) -> None:
    conv = open_chat(airline)
    say(conv, "Is there wifi?")

    assert say(conv, "hello") == [
        "Handed off from FAQ Agent to Triage Agent",
        "Triage Agent: I'm the airline's assistant. I can answer questions about baggage, "
        "seats and wifi, or change your seat. How can I help?",
    ]
    say(conv, "Is there wifi?")
    assert say(conv, "I'd like to change my seat") == [
        "Handed off from FAQ Agent to Triage Agent",
        "Handed off from Triage Agent to Seat Booking Agent",
        ASK_CONFIRMATION,
    ]
    assert [name for name, _ in tool_calls(airline, conv)] == ["faq_lookup_tool"] * 2


@both_backends
@pytest.mark.parametrize(
    ("message", "agent"),
    [
        ("How many seats are on the plane?", "FAQ Agent"),
        ("Can I bring a bag to my seat?", "FAQ Agent"),
        ("Can I switch seats?", "Seat Booking Agent"),
        ("I want a window seat", "Seat Booking Agent"),
        ("My confirmation number is LL0EZ6", "Seat Booking Agent"),
        ("hello", "Triage Agent"),
    ],
)
def test_triage_routes_by_what_the_message_is_about(
    backend: str, airline: AgentRuntime, message: str, agent: str
) -> None:
    conv = open_chat(airline, message)

    assert conv.current_agent == agent


@both_backends
@pytest.mark.parametrize(
    ("seat", "why"),
    [
        ("12A", "Seat 12A on FLT-123 is already taken."),
        ("99Z", "Seat 99Z does not exist on FLT-123."),
    ],
)
def test_taken_or_missing_seat_is_refused_and_nothing_changes(
    backend: str, airline: AgentRuntime, home: Path, seat: str, why: str
) -> None:
    conv = open_chat(airline, *BOOKING[:2])

    lines = say(conv, seat)

    assert lines[0] == "Seat Booking Agent: Calling a tool"
    assert lines[1].startswith(f"Seat Booking Agent: Tool call output: {why}")
    assert lines[2].startswith(f"Seat Booking Agent: I couldn't change your seat: {why}")
    assert lines[2].endswith("Which seat would you like instead?")
    assert seat_of(home) == "18B" and conv.context == AirlineAgentContext()
    assert say(conv, "14C") == booked("14C")


@both_backends
def test_the_conversation_remembers_the_booking_but_never_repeats_it(
    backend: str, airline: AgentRuntime, home: Path
) -> None:
    conv = open_chat(airline, *BOOKING)

    assert say(conv, "thanks") == [
        "Handed off from Seat Booking Agent to Triage Agent",
        "Triage Agent: You're welcome! Is there anything else I can help you with?",
    ]
    # A second change: the confirmation number comes from an earlier turn, the seat is asked
    # again (the old "14C" belongs to the finished booking) and nothing is announced twice.
    assert say(conv, "Can I switch to a different seat?") == [
        "Handed off from Triage Agent to Seat Booking Agent",
        ASK_SEAT,
    ]
    assert say(conv, "15D please") == booked("15D")
    assert seat_of(home) == "15D" and conv.context.seat_number == "15D"
    free = {s.seat for s in seat_map("FLT-123", home) if not s.occupied}
    assert {"14C", "18B"} <= free
    assert [args["new_seat"] for _, args in tool_calls(airline, conv)] == ["14C", "15D"]


@both_backends
def test_every_graph_init_agents_builds_carries_the_rules(
    backend: str, airline: AgentRuntime
) -> None:
    triage, agents = init_agents()

    assert agents.keys() == AGENTS.keys()
    for name, agent in agents.items():
        assert agent is not AGENTS[name] and rules_for(agent) is rules_for(AGENTS[name])
    result = airline.run(triage, "What's the baggage allowance?", context=AirlineAgentContext())
    assert result.status == "completed" and result.last_agent == "FAQ Agent"
    assert result.output == f"{BAGS}\n{RULES_LABEL}"


@both_backends
def test_every_turn_is_a_run_of_its_conversation_with_a_trace(
    backend: str, airline: AgentRuntime, home: Path
) -> None:
    conv = open_chat(airline, *BOOKING)

    turns = conv.runs()
    assert [r.input for r in reversed(turns)] == BOOKING
    assert all(r.status == "completed" and r.conversation_id == "c1" for r in turns)
    assert [r.execution_id for r in airline.runs(conversation_id="c1")] == [
        r.execution_id for r in turns
    ]
    shown = subprocess.run(
        [PYTHON, "-m", "frontdesk", "--home", str(home), "runs", "show", turns[0].execution_id],
        env=child_env(COLUMNS="250"), capture_output=True, text=True, timeout=WAIT_SECONDS,
    )  # fmt: skip
    assert shown.returncode == 0, shown.stderr
    assert "completed" in shown.stdout and "Seat Booking Agent" in shown.stdout
    assert 'update_seat({"confirmation_number": "LL0EZ6", "new_seat": "14C"})' in shown.stdout
    assert "Updated seat to 14C for confirmation number LL0EZ6" in shown.stdout


# --- validation and concurrency --------------------------------------------------------------


@both_backends
@pytest.mark.parametrize(
    ("message", "error", "text"),
    [("", EmptyMessage, "empty"), ("x" * 1001, MessageTooLong, "limit to 1000 characters")],
)
def test_bad_input_is_refused_and_the_booking_goes_on(
    backend: str, airline: AgentRuntime, message: str, error: type[Exception], text: str
) -> None:
    conv = open_chat(airline, BOOKING[0])
    before = conv.history()

    with pytest.raises(error, match=text):
        conv.send(message, len(before))

    assert conv.history() == before and len(conv.runs()) == 1
    assert say(conv, DEMO) == [ASK_SEAT]


@both_backends
def test_a_stale_client_is_refused_with_the_current_history(
    backend: str, airline: AgentRuntime
) -> None:
    conv = open_chat(airline, BOOKING[0])
    history = conv.history()

    with pytest.raises(StaleConversation) as info:
        conv.send(DEMO, 0)

    assert info.value.history == history
    assert conv.history() == history and conv.turns == 1


@both_backends
def test_concurrent_sends_from_threads_book_once(
    backend: str, airline: AgentRuntime, home: Path
) -> None:
    conv = open_chat(airline, *BOOKING[:2])
    length = len(conv.history())
    seats = ["14C", "15D", "16A", "17C", "19D"]
    barrier = threading.Barrier(len(seats))
    outcomes: dict[str, object] = {}

    def racer(seat: str) -> None:
        barrier.wait()
        try:
            outcomes[seat] = conv.send(seat, length)
        except StaleConversation as exc:
            outcomes[seat] = exc

    threads = [threading.Thread(target=racer, args=(seat,)) for seat in seats]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    winners = [seat for seat, outcome in outcomes.items() if isinstance(outcome, list)]
    assert len(outcomes) == len(seats) and len(winners) == 1
    assert seat_of(home) == winners[0] == conv.context.seat_number
    assert conv.history()[length] == f"User: {winners[0]}"
    assert len(conv.history()) == length + 4 and conv.turns == 3


# --- restarts, crashes and compaction --------------------------------------------------------


@both_backends
@pytest.mark.e2e
@pytest.mark.slow
def test_each_turn_in_a_new_chat_process(backend: str, home: Path) -> None:
    for message in BOOKING:
        chat = subprocess.run(
            [PYTHON, "-m", "frontdesk", "--home", str(home), "chat", "airline",
             "--conversation-id", "c1"],
            input=f"{message}\n", env=child_env(), capture_output=True, text=True, timeout=WAIT_SECONDS,
        )  # fmt: skip
        assert chat.returncode == 0, chat.stderr
    with AgentRuntime(home, model="rules", recover=False) as runtime:
        conv = open_chat(runtime)
        assert [line for line in conv.history() if line.startswith("User:")] == [
            f"User: {m}" for m in BOOKING
        ]
        assert conv.history()[-1] == f"{booked('14C')[-1]}\n{RULES_LABEL}"
        assert conv.context.seat_number == "14C" and conv.context.flight_number == "FLT-123"
        assert conv.turns == 3 and len(conv.runs()) == 3
    assert seat_of(home) == "14C"


@both_backends
@pytest.mark.e2e
@pytest.mark.slow
def test_sigkill_after_the_seat_changed_completes_the_turn_once(
    backend: str, home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, children: Children
) -> None:
    flow_dir = tmp_path / "flow"
    flow_dir.mkdir()
    monkeypatch.setenv("AIRLINEFLOW_DIR", str(flow_dir))
    with AgentRuntime(home, recover=False) as runtime:
        conv = runtime.conversation("c1", agent=airlineflow.triage, context=AirlineAgentContext())
        say(conv, "I'd like to change my seat")
        say(conv, DEMO)
        before = conv.history()

    child = children.popen(
        [PYTHON, "-m", "airlineflow", str(home), "c1", "14C"],
        env=child_env(AIRLINEFLOW_DIR=str(flow_dir), AIRLINEFLOW_PARK="1"),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert wait_for_marker(flow_dir / "parked", child) == "Seat Booking Agent"
    assert seat_of(home) == "14C"  # the tool ran; the turn is not complete
    sigkill(child)

    with AgentRuntime(home, recover=False) as runtime:
        conv = runtime.conversation("c1")
        history = conv.history()
        assert history[: len(before)] == before
        assert [line.replace(f"\n{RULES_LABEL}", "") for line in history[len(before) :]] == [
            "User: 14C",
            *booked("14C"),
        ]
        assert conv.pending_run is None and conv.turns == 3 and len(conv.runs()) == 3
        assert conv.context.seat_number == "14C" and conv.context.flight_number == "FLT-123"
        assert say(conv, "thanks")[-1].startswith("Triage Agent: You're welcome!")
    effects = (flow_dir / "effects.log").read_text().splitlines()
    assert effects == ['update_seat {"confirmation_number":"LL0EZ6","new_seat":"14C"}']
    assert seat_of(home) == "14C"


LONG_SCRIPT = [
    "What's the baggage allowance?",
    "I'd like to change my seat",
    DEMO,
    "Is there wifi?",
    "12A",
    "14C",
    "thanks",
    "how many seats are on the plane?",
    "Can I switch to a different seat?",
    "99Z",
    "15D",
    "hello",
] * 2


@pytest.mark.slow
def test_compaction_keeps_the_airline_conversation_identical(home: Path) -> None:
    outcomes = {}
    for every in (0, 2):
        with AgentRuntime(
            home / f"every{every}", model="rules", recover=False, compact_every=every
        ) as runtime:
            conv = open_chat(runtime)
            for message in LONG_SCRIPT:
                conv.send(message, len(conv.history()))
            outcomes[every] = (conv.history(), conv.context, conv.input_items(), conv.compactions)
            assert seat_of(home / f"every{every}") == "15D"
    plain, compacted = outcomes[0], outcomes[2]
    assert compacted[:3] == plain[:3]
    assert plain[3] == 0 and compacted[3] == len(LONG_SCRIPT) // 2
    assert plain[1].seat_number == "15D"
