"""The airline ``CustomerServiceWorkflow`` of seed 002 on a real Temporal dev server.

Workers run in the test's event loop (or in child processes, for the crash takeover and the
chat client) on the offline rules model; every model call, tool and handoff hook is an
activity, and the airline's seat database is the real SQLite file under the test's home.
"""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from temporalio import workflow
from temporalio.api.enums.v1 import EventType
from temporalio.api.sdk.v1 import WorkflowMetadata
from temporalio.client import (
    Client,
    WorkflowHandle,
    WorkflowHistory,
    WorkflowUpdateFailedError,
)
from temporalio.exceptions import ApplicationError
from temporalio.worker import Replayer, UnsandboxedWorkflowRunner
from temporalio.workflow import NondeterminismError

from frontdesk.apps.airline import AirlineAgentContext, get_booking
from frontdesk.apps.airline.workflow import (
    AGENTS,
    STALE,
    TASK_QUEUE,
    CustomerServiceWorkflow,
    CustomerServiceWorkflowState,
    ProcessUserMessageInput,
)
from frontdesk.cli._airline import PROMPT
from frontdesk.cli._airline import STALE as RELOADING
from frontdesk.engine._types import idempotency_key
from frontdesk.engine.temporal._chat import TemporalConversation
from frontdesk.engine.temporal._client import (
    InvalidTemporalAddress,
    InvalidWorkflowId,
    TemporalUnreachable,
    check_workflow_id,
    connect,
    parse_address,
)
from frontdesk.engine.temporal._devserver import TemporalDevServer
from frontdesk.engine.temporal._plugin import frontdesk_plugin, frontdesk_worker
from frontdesk.engine.temporal._store import WorkerStore
from frontdesk.engine.temporal._workflow_agents import ItemChain
from frontdesk.errors import StaleConversation
from frontdesk.models.rules import RULES_LABEL
from temporalserver import dev_server
from test_chat_cli import Session

from conftest import (
    PYTHON,
    TESTS_DIR,
    WAIT_SECONDS,
    Children,
    child_env,
    sigkill,
    wait_for_marker,
)

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

MAX_ID_LENGTH = 64
"""This server's limit on workflow ids (``limit.maxIDLength``), below Temporal's default."""
HISTORY_FILE = TESTS_DIR / "data" / "airline_history.json"
DONE_14C = "Seat Booking Agent: Done! Your seat is now 14C (confirmation number LL0EZ6)."
WIFI = "FAQ Agent: We have free wifi on the plane, join Airline-Wifi"


@pytest.fixture(scope="module")
def server() -> Iterator[TemporalDevServer]:
    with dev_server({"limit.maxIDLength": str(MAX_ID_LENGTH)}) as started:
        yield started


@asynccontextmanager
async def airline_worker(server: TemporalDevServer, home: Path) -> AsyncIterator[Client]:
    """A client, with a worker for the airline workflow running until the block ends."""
    client = await connect(server.address, plugins=[frontdesk_plugin(AGENTS, model="rules")])
    worker = frontdesk_worker(
        client,
        AGENTS,
        task_queue=TASK_QUEUE,
        workflows=[CustomerServiceWorkflow],
        home=home,
        model="rules",
    )
    async with worker:
        yield client


async def start(
    client: Client, workflow_id: str, state: CustomerServiceWorkflowState | None = None
) -> WorkflowHandle[Any, Any]:
    args = [state] if state is not None else []
    await client.start_workflow(
        CustomerServiceWorkflow.run, args=args, id=workflow_id, task_queue=TASK_QUEUE
    )
    # Without a run id: updates and queries follow the workflow across continue-as-new.
    return client.get_workflow_handle(workflow_id)


async def say(handle: WorkflowHandle[Any, Any], text: str, chat_length: int) -> list[str]:
    lines: list[str] = await handle.execute_update(
        CustomerServiceWorkflow.process_user_message,
        ProcessUserMessageInput(user_input=text, chat_length=chat_length),
    )
    return lines


async def converse(handle: WorkflowHandle[Any, Any], *messages: str) -> list[str]:
    history: list[str] = await handle.query(CustomerServiceWorkflow.get_chat_history)
    for message in messages:
        history += await say(handle, message, len(history))
    return history


def events(history: WorkflowHistory, event_type: int) -> list[Any]:
    return [event for event in history.events if event.event_type == event_type]


def scheduled(history: WorkflowHistory, activity: str) -> list[Any]:
    return [
        event.activity_task_scheduled_event_attributes
        for event in events(history, EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED)
        if event.activity_task_scheduled_event_attributes.activity_type.name == activity
    ]


def reason(failed: WorkflowUpdateFailedError) -> str:
    """Why the workflow refused or failed an update."""
    cause = failed.cause
    return cause.message if isinstance(cause, ApplicationError) else str(cause)


def payload(value: Any) -> Any:
    """A JSON payload's data (the first of a ``Payloads``)."""
    return json.loads(value.payloads[0].data)


# Updates and queries --------------------------------------------------------------------------


async def test_messages_are_updates_and_the_history_is_a_query(
    server: TemporalDevServer, home: Path
) -> None:
    async with airline_worker(server, home) as client:
        handle = await start(client, "updates-and-query")
        first = await say(handle, "What's the baggage allowance?", 0)
        second = await say(handle, "Is there wifi?", len(first))
        history = await handle.query(CustomerServiceWorkflow.get_chat_history)
        metadata = await handle.query("__temporal_workflow_metadata", result_type=WorkflowMetadata)

    assert first[:3] == [
        "User: What's the baggage allowance?",
        "Handed off from Triage Agent to FAQ Agent",
        "FAQ Agent: Calling a tool",
    ]
    assert first[-1].startswith("FAQ Agent: You are allowed to bring one bag on the plane.")
    assert first[-1].endswith(RULES_LABEL)
    assert second[0] == "User: Is there wifi?" and second[-1].startswith(WIFI)
    assert history == first + second
    assert metadata.current_details.startswith(
        "Current agent: FAQ Agent\nLast message: User: Is there wifi?\nLast reply: " + WIFI
    )


async def test_each_bad_message_is_refused_and_nothing_is_recorded(
    server: TemporalDevServer, home: Path
) -> None:
    async with airline_worker(server, home) as client:
        handle = await start(client, "validation")
        history = await converse(handle, "Is there wifi?")
        refusals = []
        for text, length in [("", len(history)), ("   ", len(history)),
                             ("x" * 1001, len(history)), ("Hello", len(history) - 1),
                             ("Hello", len(history) + 3)]:  # fmt: skip
            with pytest.raises(WorkflowUpdateFailedError) as failed:
                await say(handle, text, length)
            refusals.append(reason(failed.value))
        with pytest.raises(WorkflowUpdateFailedError) as missing:
            await handle.execute_update("process_user_message", {"user_input": "Hello"})
        after = await handle.query(CustomerServiceWorkflow.get_chat_history)
        recorded = await handle.fetch_history()

    assert refusals[:2] == ["Cannot process empty user input."] * 2
    assert refusals[2] == "User input exceeds maximum length of 1000 characters."
    assert refusals[3:] == [STALE, STALE]
    assert "chat_length" in reason(missing.value) and "Field required" in reason(missing.value)
    assert after == history
    accepted = events(recorded, EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED)
    assert len(accepted) == 1  # only the wifi question: refusals leave no trace


async def test_a_turn_that_fails_keeps_nothing_and_the_message_can_be_sent_again(
    server: TemporalDevServer, home: Path
) -> None:
    client = await connect(server.address, plugins=[frontdesk_plugin(AGENTS)])
    no_model = frontdesk_worker(  # no OpenAI key and no FRONTDESK_MODEL: no model at all
        client, AGENTS, task_queue=TASK_QUEUE, workflows=[CustomerServiceWorkflow], home=home
    )
    async with no_model:
        handle = await start(client, "failed-turn")
        with pytest.raises(WorkflowUpdateFailedError) as failed:
            await say(handle, "Is there wifi?", 0)
        after_failure = await handle.query(CustomerServiceWorkflow.get_chat_history)
    async with airline_worker(server, home):
        answered = await say(handle, "Is there wifi?", 0)

    assert "the message could not be answered" in reason(failed.value)
    assert after_failure == []
    assert answered[0] == "User: Is there wifi?" and answered[-1].startswith(WIFI)


def test_the_item_chain_sends_only_what_the_store_lacks() -> None:
    chain = ItemChain()
    first = [{"role": "user", "content": "hi"}]
    parent, new, ref = chain.split(first)
    assert (parent, new) == (None, first)
    chain.stored(first, ref)
    second = [*first, {"role": "assistant", "content": "hello"}, {"role": "user", "content": "?"}]
    parent, new, ref2 = chain.split(second)
    assert (parent, new) == (ref, second[1:])
    chain.stored(second, ref2)
    assert chain.stored_prefix(second) == (3, ref2)
    # A conversation that went another way after the first item: only that item is shared.
    other = [*first, {"role": "user", "content": "else"}]
    assert chain.stored_prefix(other) == (1, ref)
    assert chain.split(other)[:2] == (ref, other[1:])
    assert chain.stored_prefix([{"role": "user", "content": "bye"}]) == (0, None)


# Continue-as-new ------------------------------------------------------------------------------


async def test_it_continues_as_new_after_the_threshold_and_keeps_the_conversation(
    server: TemporalDevServer, home: Path
) -> None:
    async with airline_worker(server, home) as client:
        handle = await start(
            client, "continue-as-new", CustomerServiceWorkflowState(max_updates_per_run=2)
        )
        first_run = (await handle.describe()).run_id
        history = await converse(
            handle, "Is there wifi?", "I'd like to change my seat", "LL0EZ6", "14C", "thanks"
        )
        queried = await handle.query(CustomerServiceWorkflow.get_chat_history)
        runs = [first_run]
        while True:
            run = client.get_workflow_handle("continue-as-new", run_id=runs[-1])
            last = (await run.fetch_history()).events[-1]
            if last.event_type != EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW:
                break
            attributes = last.workflow_execution_continued_as_new_event_attributes
            runs.append(attributes.new_execution_run_id)
        third = client.get_workflow_handle("continue-as-new", run_id=runs[2])
        third_run = await third.fetch_history()

    assert len(runs) == 3  # 5 messages, 2 per run
    assert queried == history
    assert DONE_14C in "\n".join(history)  # the confirmation number crossed a continue-as-new
    assert history[-1].startswith("Triage Agent: You're welcome!")
    started = third_run.events[0].workflow_execution_started_event_attributes
    state = payload(started.input)
    assert state["current_agent_name"] == "Seat Booking Agent"
    assert state["context"]["seat_number"] == "14C"  # update_seat's change, applied
    assert state["context"]["flight_number"] == "FLT-123"
    assert state["printed_history"] == history[: len(state["printed_history"])]
    # The new run's first model call sends only the new message: the rest is a reference.
    model_calls = scheduled(third_run, "frontdesk_model")
    call = payload(model_calls[0].input)
    assert call["parent"] == state["items_ref"] is not None
    new_items = state["input_items"][state["items_ref_len"] :]
    assert call["items"] == [*new_items, {"content": "thanks", "role": "user"}]


# Tools and handoff hooks as activities --------------------------------------------------------


async def test_a_seat_change_runs_update_seat_once_as_an_activity(
    server: TemporalDevServer, home: Path
) -> None:
    known = CustomerServiceWorkflowState(context=AirlineAgentContext(confirmation_number="LL0EZ6"))
    async with airline_worker(server, home) as client:
        handle = await start(client, "seat-change", known)
        history = await converse(handle, "I'd like to change my seat", "LL0EZ6", "14C")
        recorded = await handle.fetch_history()

    assert DONE_14C in "\n".join(history)
    booking = get_booking("LL0EZ6", home)
    assert booking is not None and booking.seat == "14C"
    # The handoff hook ran as an activity and read the booking's real flight.
    hooks = events(recorded, EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED)
    outputs = [payload(e.activity_task_completed_event_attributes.result) for e in hooks]
    handoffs = [o for o in outputs if isinstance(o, dict) and "agent_name" in o]
    assert handoffs[0]["agent_name"] == "Seat Booking Agent"
    assert json.loads(handoffs[0]["context_json"])["flight_number"] == "FLT-123"
    # update_seat: one activity, one run of the tool, keyed by workflow id and call id.
    tool_calls = [payload(s.input) for s in scheduled(recorded, "frontdesk_tool")]
    assert [c["tool_name"] for c in tool_calls] == ["update_seat"]
    journal = WorkerStore(home).tool_calls("seat-change")
    assert len(journal) == 1
    record = journal[0]
    assert (record.tool_name, record.state, record.attempts) == ("update_seat", "done", 1)
    assert record.call_id == tool_calls[0]["call_id"]
    assert record.idempotency_key == idempotency_key("seat-change", record.call_id)
    assert record.output == "Updated seat to 14C for confirmation number LL0EZ6"


# Crash takeover -------------------------------------------------------------------------------


def start_worker(
    children: Children, server: TemporalDevServer, home: Path, ready: Path, *park: Path
) -> subprocess.Popen[bytes]:
    log = (home.parent / f"{ready.stem}.log").open("wb")
    proc = children.popen(
        [PYTHON, str(TESTS_DIR / "temporalflow.py"), server.address, str(ready), *map(str, park)],
        env=child_env(FRONTDESK_HOME=str(home)), stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    log.close()
    wait_for_marker(ready, proc)
    return proc


async def test_a_second_worker_completes_the_turn_of_a_killed_one(
    server: TemporalDevServer, home: Path, children: Children
) -> None:
    first = start_worker(children, server, home, home / "first.ready", home / "parked")
    client = await connect(server.address, plugins=[frontdesk_plugin()])
    handle = await start(client, "crash-takeover")
    history = await converse(handle, "I'd like to change my seat", "LL0EZ6")
    answer = asyncio.create_task(say(handle, "14C", len(history)))
    await asyncio.to_thread(wait_for_marker, home / "parked", first)
    sigkill(first)  # update_seat has run; its answer was being written

    await asyncio.to_thread(start_worker, children, server, home, home / "second.ready")
    lines = await asyncio.wait_for(answer, WAIT_SECONDS)
    recorded = await handle.fetch_history()

    assert lines[:3] == [
        "User: 14C",
        "Seat Booking Agent: Calling a tool",
        "Seat Booking Agent: Tool call output: Updated seat to 14C for confirmation number LL0EZ6",
    ]
    assert lines[3].startswith(DONE_14C)
    assert len(scheduled(recorded, "frontdesk_tool")) == 1
    started = [
        e.activity_task_started_event_attributes.attempt
        for e in events(recorded, EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED)
    ]
    assert max(started) >= 2  # the parked model call, retried on the second worker
    journal = WorkerStore(home).tool_calls("crash-takeover")
    assert [(r.tool_name, r.state, r.attempts) for r in journal] == [("update_seat", "done", 1)]
    booking = get_booking("LL0EZ6", home)
    assert booking is not None and booking.seat == "14C"


# Replay ---------------------------------------------------------------------------------------


def recorded_history() -> WorkflowHistory:
    data = json.loads(HISTORY_FILE.read_text())
    return WorkflowHistory.from_json("recorded-airline-conversation", data)


@workflow.defn(name="CustomerServiceWorkflow")
class ChangedCustomerServiceWorkflow(CustomerServiceWorkflow):
    """The same workflow, but a message first waits on a timer."""

    @workflow.init
    def __init__(self, state: CustomerServiceWorkflowState | None = None) -> None:
        super().__init__(state)

    @workflow.run
    async def run(self, state: CustomerServiceWorkflowState | None = None) -> None:
        await super().run(state)

    @workflow.query
    def get_chat_history(self) -> list[str]:
        return super().get_chat_history()

    @workflow.update
    async def process_user_message(self, input: ProcessUserMessageInput) -> list[str]:
        await workflow.sleep(0.01)  # a timer the recorded history never saw
        return await super().process_user_message(input)


async def test_a_recorded_history_replays_without_nondeterminism() -> None:
    replayer = Replayer(workflows=[CustomerServiceWorkflow], plugins=[frontdesk_plugin()])
    result = await replayer.replay_workflow(recorded_history())
    assert result.replay_failure is None


async def test_a_change_to_the_command_sequence_fails_the_replay() -> None:
    replayer = Replayer(
        workflows=[ChangedCustomerServiceWorkflow],
        plugins=[frontdesk_plugin()],
        workflow_runner=UnsandboxedWorkflowRunner(),
    )
    with pytest.raises(NondeterminismError):
        await replayer.replay_workflow(recorded_history())


# Bad input ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "address", ["", "localhost", "http://localhost:7233", "localhost:0", "localhost:70000",
                "local host:7233", ":7233", "localhost:７２３３"],
)  # fmt: skip
def test_an_address_that_does_not_parse_is_refused(address: str) -> None:
    with pytest.raises(InvalidTemporalAddress, match="HOST:PORT"):
        parse_address(address)


def test_addresses_that_parse() -> None:
    assert parse_address(" localhost:7233 ") == "localhost:7233"
    assert parse_address("[::1]:7233") == "[::1]:7233"
    assert parse_address("temporal.example.com:443") == "temporal.example.com:443"


async def test_an_unreachable_server_is_a_clear_error_not_a_hang() -> None:
    with socket.socket() as refused:
        refused.bind(("127.0.0.1", 0))  # bound, never listening: connections are refused
        with pytest.raises(TemporalUnreachable, match="cannot reach the Temporal server"):
            await connect(f"127.0.0.1:{refused.getsockname()[1]}")
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()  # accepts connections, never answers
        with pytest.raises(TemporalUnreachable, match="did not answer within"):
            await connect(f"127.0.0.1:{silent.getsockname()[1]}", connect_timeout=2)


@pytest.mark.parametrize(
    ("conversation_id", "why"),
    [("", "empty"), ("  ", "empty"), ("a\tb", "control character"),
     ("line\nbreak", "control character"), ("x\x00", "control character"),
     ("x" * 1001, "at most 1000")],
)  # fmt: skip
def test_a_conversation_id_that_cannot_name_a_workflow_is_refused(
    conversation_id: str, why: str
) -> None:
    with pytest.raises(InvalidWorkflowId, match=why):
        check_workflow_id(conversation_id)


def test_an_id_longer_than_the_server_accepts_is_refused_and_nothing_starts(
    server: TemporalDevServer, home: Path
) -> None:
    too_long = "c" * (MAX_ID_LENGTH + 1)
    conversation = TemporalConversation(
        too_long,
        workflow="CustomerServiceWorkflow",
        message_type=ProcessUserMessageInput,
        task_queue=TASK_QUEUE,
        address=server.address,
        plugins=[frontdesk_plugin()],
    )
    with conversation, pytest.raises(InvalidWorkflowId, match="more than this Temporal server"):
        conversation.open()

    async def count() -> int:
        client = await connect(server.address)
        return (await client.count_workflows(f'WorkflowId = "{too_long}"')).count

    assert asyncio.run(count()) == 0


def test_without_the_temporal_extra_the_import_error_names_it() -> None:
    blocked = (
        "import sys; sys.modules['temporalio'] = None\n"
        "try:\n"
        "    import frontdesk.apps.airline.workflow\n"
        "except ImportError as exc:\n"
        "    print(exc)\n"
    )
    done = subprocess.run(
        [PYTHON, "-c", blocked], env=child_env(), capture_output=True, text=True,
        timeout=WAIT_SECONDS,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "pip install 'frontdesk[temporal]'" in done.stdout


# The chat client ------------------------------------------------------------------------------


def chat(server: TemporalDevServer, home: Path, *messages: str, cid: str) -> str:
    done = subprocess.run(
        [PYTHON, "-m", "frontdesk", "--home", str(home), "chat", "airline",
         "--conversation-id", cid, "--engine", "temporal", "--address", server.address],
        input="".join(f"{m}\n" for m in messages), env=child_env(), capture_output=True,
        text=True, timeout=WAIT_SECONDS,
    )  # fmt: skip
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
    return done.stdout


def test_the_chat_client_on_temporal_through_a_pipe(
    server: TemporalDevServer, home: Path, children: Children
) -> None:
    start_worker(children, server, home, home / "chat.ready")

    out = chat(server, home, "What's the baggage allowance?", "", "I'd like to change my seat",
               cid="chat-1")  # fmt: skip
    assert out.count(PROMPT) == 4 and "User:" not in out
    assert "Handed off from Triage Agent to FAQ Agent\nFAQ Agent: Calling a tool\n" in out
    assert "** Message not sent: the message is empty" in out
    assert "Seat Booking Agent: I can change your seat. What is your confirmation number?" in out

    # Reopened: the history first, then the conversation goes on where it was.
    again = chat(server, home, "LL0EZ6", cid="chat-1")
    assert again.startswith("User: What's the baggage allowance?\n")
    assert "Seat Booking Agent: Thanks! I have your confirmation number LL0EZ6." in again

    # A message sent from elsewhere meanwhile: this client reloads, then may send.
    proc = children.popen(
        [PYTHON, "-m", "frontdesk", "--home", str(home), "chat", "airline",
         "--conversation-id", "chat-1", "--engine", "temporal", "--address", server.address],
        env=child_env(), stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    assert proc.stdin is not None and proc.stdout is not None
    client = Session(proc.pid, proc.stdout.fileno(), proc.stdin.fileno())
    client.expect(PROMPT)
    chat(server, home, "Is there wifi?", cid="chat-1")
    client.type("14C\n")
    reloaded = client.expect(PROMPT)
    proc.stdin.close()
    assert client.finish() == 0 and "Traceback" not in client.output
    missed = reloaded.partition(RELOADING + "\n")[2]
    assert missed.startswith("User: Is there wifi?\n") and WIFI in missed


def test_the_chat_client_refuses_bad_options_before_connecting(home: Path) -> None:
    def run(*options: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [PYTHON, "-m", "frontdesk", "--home", str(home), "chat", "airline", *options],
            env=child_env(), capture_output=True, text=True, timeout=WAIT_SECONDS,
            stdin=subprocess.DEVNULL,
        )  # fmt: skip

    bad_address = run("--conversation-id", "c", "--engine", "temporal", "--address", "nowhere")
    assert bad_address.returncode == 2 and "HOST:PORT" in bad_address.stderr
    bad_id = run("--conversation-id", "a\x01b", "--engine", "temporal", "--address", "h:1")
    assert bad_id.returncode == 2 and "control character" in bad_id.stderr
    bad_engine = run("--conversation-id", "c", "--engine", "kafka")
    assert bad_engine.returncode == 2 and "unknown engine 'kafka'" in bad_engine.stderr


def test_the_worker_refuses_bad_options_and_an_unreachable_server(
    home: Path, refused_url: str
) -> None:
    def worker(*options: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [PYTHON, "-m", "frontdesk", "--home", str(home), "worker", *options],
            env=child_env(), capture_output=True, text=True, timeout=WAIT_SECONDS,
            stdin=subprocess.DEVNULL,
        )  # fmt: skip

    refused = refused_url.removeprefix("http://")
    cases = [
        (("--engine", "temporal"), 2, "needs --app"),
        (("--engine", "temporal", "--app", "hotel"), 2, "no app 'hotel' runs on Temporal"),
        (("--engine", "temporal", "--app", "airline", "--address", "x:y"), 2, "HOST:PORT"),
        (("--engine", "kafka"), 2, "unknown engine 'kafka'"),
        (("--app", "airline"), 2, "--app needs --engine temporal"),
        (("--engine", "temporal", "--app", "airline", "--address", refused), 1, "cannot reach"),
    ]
    for options, code, message in cases:
        done = worker(*options)
        assert (done.returncode, message in done.stderr) == (code, True), (options, done.stderr)
        assert "Traceback" not in done.stderr


def test_a_stale_send_raises_with_the_current_history(
    server: TemporalDevServer, home: Path, children: Children
) -> None:
    start_worker(children, server, home, home / "stale.ready")
    with TemporalConversation(
        "stale-1",
        workflow="CustomerServiceWorkflow",
        message_type=ProcessUserMessageInput,
        task_queue=TASK_QUEUE,
        address=server.address,
        plugins=[frontdesk_plugin()],
    ) as conversation:
        assert conversation.open() == []
        lines = conversation.send("Is there wifi?", 0)
        with pytest.raises(StaleConversation) as stale:
            conversation.send("Is there wifi?", 0)
    assert stale.value.history == lines
