"""The airline app: its data (on either store backend), tools, handoff hook and agent graph."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from agents import Agent, RunConfig, RunContextWrapper, Runner
from agents.testing import ModelCall, ModelStep, ScriptedModel, assistant_message, function_call

from frontdesk._home import active_home
from frontdesk.apps import airline
from frontdesk.apps.airline import (
    AirlineAgentContext,
    Booking,
    get_booking,
    init_agents,
    init_db,
    on_seat_booking_handoff,
    seat_map,
)
from frontdesk.apps.airline import _db as airline_db
from frontdesk.testing import call_tool

from conftest import WAIT_SECONDS, Children, both_backends

DEMO = "LL0EZ6"
DEMO_FLIGHT = "FLT-123"
DEMO_SEAT = "18B"
NO_TRACING = RunConfig(tracing_disabled=True)


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The active home of the test, on the home's SQLite files unless the ``backend`` fixture
    (which comes after this one) exports a PostgreSQL database."""
    monkeypatch.delenv("FRONTDESK_DATABASE_URL", raising=False)
    with active_home(tmp_path):
        yield tmp_path


def occupied(flight_number: str) -> list[str]:
    return [s.seat for s in seat_map(flight_number) if s.occupied]


def assert_moved_to_14c(context: AirlineAgentContext) -> None:
    """The demo booking is in 14C, and the context says so."""
    assert context == AirlineAgentContext(
        passenger_name="Maya Patel",
        confirmation_number=DEMO,
        seat_number="14C",
        flight_number=DEMO_FLIGHT,
    )
    assert get_booking(DEMO) == Booking(DEMO, "Maya Patel", DEMO_FLIGHT, "14C")


def count_rows(home: Path, table: str) -> int:
    """Rows of ``table``, read through the app's database layer (the home's airline.db, or the
    airline schema of the PostgreSQL store)."""
    with airline_db.DATABASE.connect(home) as conn:
        return int(conn.execute(f"SELECT count(*) FROM {table}").one()[0])


# --- database -------------------------------------------------------------------------------


@both_backends
def test_init_db_seeds_the_fixtures_in_the_home(backend: str, home: Path) -> None:
    where = init_db(home)

    if backend == "sqlite":
        assert where == home / "airline.db"
    else:
        assert str(where).startswith("schema airline of postgresql://")
        assert not (home / "airline.db").exists()
    assert count_rows(home, "flights") == 4
    assert count_rows(home, "seats") == 4 * 120
    assert count_rows(home, "bookings") == 15
    assert get_booking(DEMO, home) == Booking(DEMO, "Maya Patel", DEMO_FLIGHT, DEMO_SEAT)


@both_backends
@pytest.mark.parametrize("flight_number", ["FLT-123", "FLT-238", "FLT-471", "FLT-802"])
def test_every_seat_map_matches_the_faq(backend: str, home: Path, flight_number: str) -> None:
    seats = seat_map(flight_number)

    assert len(seats) == 120
    assert sum(s.cabin == "business" for s in seats) == 22
    assert sum(s.cabin == "economy" for s in seats) == 98
    assert {s.row for s in seats if s.exit_row} == {4, 16}
    assert {s.row for s in seats if s.economy_plus} == {5, 6, 7, 8}
    assert all(s.cabin == "economy" for s in seats if s.economy_plus)
    assert {s.letter for s in seats} == set("ABCDEF")


@both_backends
def test_demo_flight_has_a_free_and_a_taken_seat(backend: str, home: Path) -> None:
    seats = {s.seat: s for s in seat_map(DEMO_FLIGHT)}

    assert not seats["14C"].occupied
    assert seats["12A"].occupied
    assert seats[DEMO_SEAT].occupied
    assert seat_map("FLT-000") == []


def test_first_use_creates_the_db_in_the_active_home(home: Path) -> None:
    assert get_booking(DEMO) is not None
    assert (home / "airline.db").is_file()


def test_first_use_falls_back_to_frontdesk_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FRONTDESK_HOME", str(tmp_path / "env-home"))

    assert get_booking(DEMO) is not None
    assert (tmp_path / "env-home" / "airline.db").is_file()


@both_backends
async def test_init_db_keeps_changes_and_reset_restores_the_fixtures(
    backend: str, home: Path
) -> None:
    await call_tool(
        airline.update_seat,
        {"confirmation_number": DEMO, "new_seat": "14C"},
        context=AirlineAgentContext(),
    )

    init_db()
    assert get_booking(DEMO) == Booking(DEMO, "Maya Patel", DEMO_FLIGHT, "14C")

    init_db(reset=True)
    assert get_booking(DEMO) == Booking(DEMO, "Maya Patel", DEMO_FLIGHT, DEMO_SEAT)
    assert count_rows(home, "bookings") == 15


RACER = """
import sys
from frontdesk.apps.airline import get_booking
from frontdesk.apps.airline._db import DATABASE
print("ready", flush=True)
sys.stdin.read()
seeded = DATABASE.seed_once(sys.argv[1])
print(seeded, get_booking("LL0EZ6", sys.argv[1]).seat)
"""


@both_backends
@pytest.mark.slow
def test_processes_racing_to_first_use_seed_once(
    backend: str, home: Path, children: Children
) -> None:
    racers = [
        children.popen(
            [sys.executable, "-c", RACER, str(home)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    for racer in racers:
        assert racer.stdout is not None
        assert racer.stdout.readline() == "ready\n"
    # Every racer has imported the app; releasing them together makes them seed at once.
    for racer in racers:
        assert racer.stdin is not None
        racer.stdin.close()
    outputs = [racer.stdout.read() for racer in racers if racer.stdout is not None]
    for racer in racers:
        racer.wait(WAIT_SECONDS)

    assert [racer.returncode for racer in racers] == [0, 0, 0, 0]
    # Exactly one racer seeded; the others waited for it and found the data.
    assert sorted(outputs) == [f"False {DEMO_SEAT}\n"] * 3 + [f"True {DEMO_SEAT}\n"]
    assert count_rows(home, "bookings") == 15
    assert count_rows(home, "seats") == 4 * 120
    assert (home / "airline.db").exists() == (backend == "sqlite")


# --- FAQ ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("question", "answer"),
    [
        (
            "How much baggage can I bring?",
            "You are allowed to bring one bag on the plane. "
            "It must be under 50 pounds and 22 inches x 14 inches x 9 inches.",
        ),
        (
            "How many seats are on the plane?",
            "There are 120 seats on the plane. "
            "There are 22 business class seats and 98 economy seats. "
            "Exit rows are rows 4 and 16. "
            "Rows 5-8 are Economy Plus, with extra legroom.",
        ),
        ("Is there WiFi?", "We have free wifi on the plane, join Airline-Wifi"),
        ("Can I bring my cat?", "I'm sorry, I don't know the answer to that question."),
    ],
)
async def test_faq_answers(question: str, answer: str) -> None:
    assert (
        await call_tool(
            airline.faq_lookup_tool, {"question": question}, context=AirlineAgentContext()
        )
        == answer
    )


# --- update_seat ----------------------------------------------------------------------------


@both_backends
async def test_update_seat_moves_the_booking_and_fills_the_context(
    backend: str, home: Path
) -> None:
    context = AirlineAgentContext()

    result = await call_tool(
        airline.update_seat,
        {"confirmation_number": " ll0ez6 ", "new_seat": " 14c "},
        context=context,
    )

    assert result == f"Updated seat to 14C for confirmation number {DEMO}"
    assert_moved_to_14c(context)
    assert "14C" in occupied(DEMO_FLIGHT)
    assert DEMO_SEAT not in occupied(DEMO_FLIGHT)


@both_backends
async def test_update_seat_retried_gives_the_same_result(backend: str, home: Path) -> None:
    first = await call_tool(
        airline.update_seat,
        {"confirmation_number": DEMO, "new_seat": "14C"},
        context=AirlineAgentContext(),
    )
    context = AirlineAgentContext()

    again = await call_tool(
        airline.update_seat, {"confirmation_number": DEMO, "new_seat": "14C"}, context=context
    )

    assert again == first
    assert context.seat_number == "14C"


@both_backends
async def test_update_seat_gives_a_seat_to_a_booking_without_one(backend: str, home: Path) -> None:
    context = AirlineAgentContext()

    await call_tool(
        airline.update_seat, {"confirmation_number": "M9C1XF", "new_seat": "9A"}, context=context
    )

    assert get_booking("M9C1XF") == Booking("M9C1XF", "Lukas Schneider", DEMO_FLIGHT, "9A")
    assert context.seat_number == "9A"


@both_backends
@pytest.mark.parametrize(
    ("confirmation_number", "new_seat", "expected"),
    [
        (
            DEMO,
            "12A",
            "Seat 12A on FLT-123 is already taken. "
            "Free seats nearby: 11A, 13A, 12C, 11B, 13B. The seat was not changed.",
        ),
        (DEMO, "4B", "Seat 4B does not exist on FLT-123. Free seats nearby: 4A, 4C"),
        (DEMO, "22A", "Seat 22A does not exist on FLT-123. Free seats nearby: 21A"),
        (DEMO, "window", "'window' is not a seat number"),
        (DEMO, "0C", "'0C' is not a seat number"),
        ("ZZZ999", "14C", "There is no booking with confirmation number ZZZ999."),
    ],
)
async def test_update_seat_refusals_change_nothing(
    backend: str, home: Path, confirmation_number: str, new_seat: str, expected: str
) -> None:
    context = AirlineAgentContext(passenger_name="Maya Patel", flight_number=DEMO_FLIGHT)
    before_context = context.model_copy()
    before_seats = seat_map(DEMO_FLIGHT)

    result = await call_tool(
        airline.update_seat,
        {"confirmation_number": confirmation_number, "new_seat": new_seat},
        context=context,
    )

    assert result.startswith(expected)
    assert result.endswith("The seat was not changed.")
    assert context == before_context
    assert seat_map(DEMO_FLIGHT) == before_seats
    assert get_booking(DEMO) == Booking(DEMO, "Maya Patel", DEMO_FLIGHT, DEMO_SEAT)


# --- handoff hook ---------------------------------------------------------------------------


@both_backends
async def test_seat_booking_handoff_sets_the_real_flight(backend: str, home: Path) -> None:
    context = AirlineAgentContext(confirmation_number="T6WA3L")

    await on_seat_booking_handoff(RunContextWrapper(context))

    assert context.flight_number == "FLT-238"
    assert context.passenger_name == "Grace Kim"


@both_backends
@pytest.mark.parametrize("confirmation_number", [None, "ZZZ999"])
async def test_seat_booking_handoff_invents_no_flight(
    backend: str, home: Path, confirmation_number: str | None
) -> None:
    context = AirlineAgentContext(confirmation_number=confirmation_number)

    await on_seat_booking_handoff(RunContextWrapper(context))

    assert context.flight_number is None


# --- agents ---------------------------------------------------------------------------------


def test_module_agents_are_one_graph() -> None:
    assert dict(airline.AGENTS) == {
        "FAQ Agent": airline.faq_agent,
        "Seat Booking Agent": airline.seat_booking_agent,
        "Triage Agent": airline.triage_agent,
    }
    assert airline.faq_agent.handoffs == [airline.triage_agent]
    assert airline.seat_booking_agent.handoffs == [airline.triage_agent]


def test_init_agents_builds_a_fresh_graph() -> None:
    triage, agents = init_agents()

    assert triage is agents["Triage Agent"]
    assert triage is not airline.triage_agent
    assert agents["FAQ Agent"] in triage.handoffs
    assert agents["FAQ Agent"].handoffs == [triage]
    assert agents["Seat Booking Agent"].handoffs == [triage]
    assert [t.name for t in agents["FAQ Agent"].tools] == ["faq_lookup_tool"]
    assert [t.name for t in agents["Seat Booking Agent"].tools] == ["update_seat"]


def script(
    agents: dict[str, Agent[AirlineAgentContext]], steps: dict[str, list[Any]]
) -> list[ScriptedModel]:
    """Give each named agent a model that plays ``steps[name]``."""
    models = []
    for name, agent_steps in steps.items():
        agents[name].model = model = ScriptedModel(agent_steps)
        models.append(model)
    return models


@both_backends
async def test_triage_hands_off_to_seat_booking_which_updates_the_seat(
    backend: str, home: Path
) -> None:
    triage, agents = init_agents()
    context = AirlineAgentContext(confirmation_number=DEMO)
    seen_at_handoff: list[AirlineAgentContext] = []

    def ask_for_seat(call: ModelCall) -> list[Any]:
        seen_at_handoff.append(context.model_copy())
        return [assistant_message("Which seat would you like?")]

    update = {"confirmation_number": DEMO, "new_seat": "14C"}
    models = script(
        agents,
        {
            "Triage Agent": [[function_call("transfer_to_seat_booking_agent", {}, call_id="h1")]],
            "Seat Booking Agent": [
                ModelStep.respond(ask_for_seat),
                [function_call("update_seat", update, call_id="u1")],
                [assistant_message("Done: you are now in 14C.")],
            ],
        },
    )

    first = await Runner.run(
        triage, "I want to change my seat", context=context, run_config=NO_TRACING
    )
    assert first.last_agent.name == "Seat Booking Agent"
    assert seen_at_handoff[0].flight_number == DEMO_FLIGHT

    second = await Runner.run(
        first.last_agent,
        [*first.to_input_list(), {"role": "user", "content": "14C please"}],
        context=context,
        run_config=NO_TRACING,
    )

    assert second.last_agent.name == "Seat Booking Agent"
    assert second.final_output == "Done: you are now in 14C."
    assert_moved_to_14c(context)
    for model in models:
        model.assert_complete()


async def test_faq_answers_then_hands_back_to_triage(home: Path) -> None:
    triage, agents = init_agents()
    context = AirlineAgentContext()
    models = script(
        agents,
        {
            "Triage Agent": [
                [function_call("transfer_to_faq_agent", {}, call_id="h1")],
                [assistant_message("Let me find someone who can help with pets.")],
            ],
            "FAQ Agent": [
                [
                    function_call(
                        "faq_lookup_tool", {"question": "Can I bring my cat?"}, call_id="f1"
                    )
                ],
                [function_call("transfer_to_triage_agent", {}, call_id="h2")],
            ],
        },
    )

    result = await Runner.run(triage, "Can I bring my cat?", context=context, run_config=NO_TRACING)

    assert result.last_agent.name == "Triage Agent"
    tool_outputs = [
        item.output for item in result.new_items if item.type == "tool_call_output_item"
    ]
    assert "I'm sorry, I don't know the answer to that question." in tool_outputs
    assert context == AirlineAgentContext()
    for model in models:
        model.assert_complete()
