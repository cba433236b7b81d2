"""Hostile and malformed input through the Python API: text that is not whole characters,
oversized input item lists, absurd limits, and a conversation turn that outlasts its timeout.
Each gets a clear error, and nothing is stored."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

import pytest
from agents import Agent
from agents.testing import ModelStep, ScriptedModel, assistant_message

from frontdesk import AgentRuntime, InvalidInput, MessageTooLong
from frontdesk.errors import TurnTimedOut

from conftest import sql_rows

HALF_EMOJI = "Thanks \ud83d"
"""An emoji cut in half by a web front end: a lone surrogate."""
NOT_UTF8 = b"caf\xe9 au lait".decode("utf-8", "surrogateescape")
"""Latin-1 bytes read as UTF-8 with ``surrogateescape``."""


def echo_agent() -> Agent[None]:
    return Agent(name="echo", model=ScriptedModel([[assistant_message("hi")]]))


def user(text: str) -> dict[str, Any]:
    return {"role": "user", "content": text}


def assert_nothing_stored(runtime: AgentRuntime) -> None:
    assert runtime.runs() == []
    assert sql_rows(runtime.home, "SELECT count(*) FROM runs")[0][0] == 0


@pytest.mark.parametrize("text", [HALF_EMOJI, NOT_UTF8], ids=["half-emoji", "not-utf8"])
def test_text_that_is_not_whole_characters_is_refused(runtime: AgentRuntime, text: str) -> None:
    for message in (text, [user(text)], [{"role": "user", "content": [{"text": text}]}]):
        for call in (runtime.run, runtime.start):
            with pytest.raises(InvalidInput, match="lone surrogate"):
                call(echo_agent(), message)
    with pytest.raises(InvalidInput, match="lone surrogate"):
        runtime.run(echo_agent(), [{text: "a key that is not text"}])
    assert_nothing_stored(runtime)
    assert runtime.run(echo_agent(), "Thanks \U0001f600").status == "completed"


def test_ids_and_decisions_that_are_not_whole_characters_are_refused(
    runtime: AgentRuntime,
) -> None:
    done = runtime.run(echo_agent(), "hello")
    calls = [
        lambda: runtime.get(HALF_EMOJI),
        lambda: runtime.handle(HALF_EMOJI),
        lambda: runtime.cancel(HALF_EMOJI),
        lambda: runtime.retry(HALF_EMOJI),
        lambda: runtime.approve(HALF_EMOJI),
        lambda: runtime.approve(done.execution_id, by=HALF_EMOJI),
        lambda: runtime.approve(done.execution_id, note=NOT_UTF8),
        lambda: runtime.reject(done.execution_id, reason=HALF_EMOJI),
        lambda: runtime.runs(agent=HALF_EMOJI),
        lambda: runtime.approvals(execution_id=NOT_UTF8),
    ]
    for call in calls:
        with pytest.raises(InvalidInput, match="lone surrogate"):
            call()
    assert [r.execution_id for r in runtime.runs()] == [done.execution_id]


def test_input_items_obey_the_message_limit(home: Path) -> None:
    with AgentRuntime(home, recover=False, max_message_chars=100) as runtime:
        with pytest.raises(MessageTooLong, match="the limit is 100"):
            runtime.run(echo_agent(), [user("x" * 101)])
        with pytest.raises(MessageTooLong):
            runtime.run(echo_agent(), [user("x" * 40), user("y" * 40), user("z" * 40)])
        assert_nothing_stored(runtime)
        # Keys count too: each item is 15 characters ("role", "user", "content") plus its text.
        assert runtime.run(echo_agent(), [user("x" * 35), user("y" * 35)]).status == "completed"


def test_input_items_obey_the_default_limits(runtime: AgentRuntime) -> None:
    with pytest.raises(MessageTooLong):
        runtime.run(echo_agent(), [user("x" * 5_000_000)])
    with pytest.raises(InvalidInput, match="100000 items; the limit is 200"):
        runtime.run(echo_agent(), [user("x")] * 100_000)
    nested: Any = "deep"
    for _ in range(100):
        nested = [nested]
    with pytest.raises(InvalidInput, match="nest more than"):
        runtime.run(echo_agent(), [user("hi"), {"role": "user", "content": nested}])
    assert_nothing_stored(runtime)
    assert runtime.run(echo_agent(), [user("hi")] * 200).status == "completed"


def test_the_item_limit_is_configurable(home: Path) -> None:
    with AgentRuntime(home, recover=False, max_input_items=3) as runtime:
        with pytest.raises(InvalidInput, match="4 items; the limit is 3"):
            runtime.run(echo_agent(), [user("a")] * 4)
        assert runtime.run(echo_agent(), [user("a")] * 3).status == "completed"


def test_history_limits_beyond_sqlite_are_clamped_and_negative_ones_refused(
    runtime: AgentRuntime,
) -> None:
    done = runtime.run(echo_agent(), "hello")
    assert [r.execution_id for r in runtime.runs(limit=10**30)] == [done.execution_id]
    for kwargs in ({"limit": -5}, {"limit": "ten"}, {"limit": 2.5}, {"cursor": "not-a-cursor"}):
        with pytest.raises(InvalidInput):
            runtime.runs(**kwargs)


def conversation_agent(reply: str = "Desk here") -> Agent[None]:
    return Agent(name="desk", model=ScriptedModel([[assistant_message(reply)]] * 5))


def test_conversation_ids_and_messages_must_be_whole_characters(runtime: AgentRuntime) -> None:
    for conversation_id in (HALF_EMOJI, NOT_UTF8):
        with pytest.raises(InvalidInput, match="lone surrogate"):
            runtime.conversation(conversation_id, agent=conversation_agent())
    assert sql_rows(runtime.home, "SELECT count(*) FROM conversations")[0][0] == 0
    conv = runtime.conversation("c-1", agent=conversation_agent())
    for message in (HALF_EMOJI, NOT_UTF8):
        with pytest.raises(InvalidInput, match="lone surrogate"):
            conv.send(message, 0)
    assert conv.history() == [] and conv.turns == 0
    assert_nothing_stored(runtime)
    assert conv.send("Thanks \U0001f600", 0) == ["User: Thanks \U0001f600", "desk: Desk here"]


def test_a_turn_over_its_timeout_says_it_goes_on_and_how_to_read_it(
    runtime: AgentRuntime,
) -> None:
    release = threading.Event()

    async def slow(_call: Any) -> Any:
        await asyncio.to_thread(release.wait, 120)
        return [assistant_message("sorry for the wait")]

    agent = Agent(name="slow", model=ScriptedModel([ModelStep.respond(slow)]))
    conv = runtime.conversation("c-slow", agent=agent, turn_timeout=0.2)
    try:
        with pytest.raises(TurnTimedOut) as info:
            conv.send("hello", 0)
    finally:
        release.set()
    error = info.value
    assert isinstance(error, TimeoutError)
    message = str(error)
    assert "goes on in the background" in message
    assert f"runtime.handle({error.execution_id!r}).wait()" in message
    assert f"frontdesk runs show {error.execution_id}" in message
    result = runtime.handle(error.execution_id).wait(timeout=60)
    assert result.status == "completed" and result.output == "sorry for the wait"
    assert conv.history() == ["User: hello", "slow: sorry for the wait"]
