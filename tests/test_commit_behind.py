"""Steps committed without waiting never let an effect run ahead of them.

A run does not wait for every step's own commit: a model's response that asks for a tool, or
answers, rides with the commit of what follows (the tool's start, the outcome); on a store
whose writes go to a server a tool's result, or a response that only hands off, is sent and
the run goes on while it travels (``DurableRun.commit(wait=False)``). Every commit that waits
(a tool starting, an approval asked, the run's end), and the next model call, first waits for
those. These tests look from outside, through a second store on the same database: when a
tool runs, what came before it is stored; when a response cannot be stored (another driver
took the run), the tool it asked for never runs. Both run on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from agents import Agent, function_tool
from agents.items import ModelResponse
from agents.models.interface import Model
from agents.testing import assistant_message, function_call
from agents.usage import Usage

from frontdesk import AgentRuntime
from frontdesk.store import Store, open_store

from conftest import both_backends

pytestmark = [both_backends]


def outside(home: Path) -> Store:
    """A second store on the test's database, as another process would open it."""
    return open_store(os.environ.get("FRONTDESK_DATABASE_URL"), home=home)


def response(*output: Any) -> ModelResponse:
    return ModelResponse(
        output=list(output),
        usage=Usage(requests=1, input_tokens=10, output_tokens=5, total_tokens=15),
        response_id=None,
    )


class Script(Model):
    """Answers by the number of tool results so far; ``before`` runs before call ``k``'s
    answer is returned."""

    def __init__(self, answers: list[Any], before: dict[int, Any] | None = None) -> None:
        self.answers = answers
        self.before = before or {}
        self.calls = 0

    async def get_response(self, *args: Any, **kwargs: Any) -> ModelResponse:
        self.calls += 1
        hook = self.before.get(self.calls)
        if hook is not None:
            hook()
        return response(self.answers[self.calls - 1])

    def stream_response(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError


def test_a_tool_runs_only_after_the_responses_before_it_are_stored(
    home: Path, backend: str
) -> None:
    seen: list[list[tuple[str, str]]] = []
    store = outside(home)

    @function_tool
    def lookup(ticket: str) -> str:
        """Look a ticket up."""
        run = store.runs_page(limit=1).items[0]
        seen.append([(row.key, row.state) for row in store.journal(run.execution_id)])
        return f"{ticket} is open"

    model = Script(
        [
            function_call("lookup", {"ticket": "T-1"}, call_id="c1"),
            function_call("lookup", {"ticket": "T-2"}, call_id="c2"),
            assistant_message("Both are open."),
        ]
    )
    agent = Agent(name="desk", model=model, tools=[lookup])
    try:
        with AgentRuntime(home, recover=False) as runtime:
            result = runtime.run(agent, "look up T-1 and T-2")
            assert result.status == "completed", result.error
            steps = [(s.key, s.state) for s in runtime.get(result.execution_id).steps]
    finally:
        store.close()
    # Each tool saw, from outside, every response and result before it, and its own start.
    assert seen[0] == [("model:1", "done"), ("tool:1:c1", "started")]
    assert seen[1] == [
        ("model:1", "done"),
        ("tool:1:c1", "done"),
        ("model:2", "done"),
        ("tool:2:c2", "started"),
    ]
    assert steps == [*seen[1][:3], ("tool:2:c2", "done"), ("model:3", "done")]


def test_a_refused_response_stops_the_run_before_its_tool(home: Path, backend: str) -> None:
    refunds: list[str] = []
    store = outside(home)

    @function_tool
    def lookup(order: str) -> str:
        """Look an order up."""
        return f"{order}: paid"

    @function_tool
    def refund(order: str) -> str:
        """Refund an order."""
        refunds.append(order)
        return "refunded"

    def take_over() -> None:
        # Another owner takes the lease (as after this driver's lease expired) and cancels the
        # run: the response about to be returned can no longer be stored by this driver.
        run = store.runs_page(limit=1).items[0]
        far = time.time() + 10**6
        assert store.claim(run.execution_id, "someone-else", far + 60, far, steal_from=None)
        store.cancel_run(run.execution_id, time.time())

    model = Script(
        [
            function_call("lookup", {"order": "O-1"}, call_id="c1"),
            function_call("refund", {"order": "O-1"}, call_id="c2"),
            assistant_message("Refunded."),
        ],
        before={2: take_over},
    )
    agent = Agent(name="desk", model=model, tools=[lookup, refund])
    try:
        with AgentRuntime(home, recover=False) as runtime:
            row = runtime.run(agent, "refund O-1")
            steps = [(s.key, s.state) for s in runtime.get(row.execution_id).steps]
    finally:
        store.close()
    assert refunds == []
    assert row.status == "cancelled"  # as the other owner left it; this driver stopped
    assert steps == [("model:1", "done"), ("tool:1:c1", "done")]
    assert model.calls == 2
