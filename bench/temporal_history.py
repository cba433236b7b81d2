"""How fast does a conversation's Temporal history grow? The plain plugin sample against
frontdesk's ``CustomerServiceWorkflow``.

Both run the same airline conversation, message for message, on the offline rules model: a
cycle of five messages (baggage, wifi, seats, a second bag, thanks) that goes through the
triage and FAQ agents, a handoff and the FAQ tool each time. The plain sample is the plugin's
seed-style workflow: ``Runner.run`` in the workflow, tools in the workflow, every model call
an activity of the plugin whose input is the whole conversation so far. frontdesk's workflow
sends each model call only the items added since the last one, with the rest by reference to
the worker's store, and runs the tool as an activity.

For each, the history bytes of the turn (the growth of the sizes ``handle.fetch_history()``
gives, summed over every run of the workflow, continue-as-new included) at turn 10 and at the
last turn, their ratio, and the total. Target: frontdesk's bytes per turn at turn 300 at most
1.2 times those at turn 10, while the plain sample's grow with the conversation. Prints
figures; asserts nothing.

    python bench/temporal_history.py                    # 300 turns, on a dev server of its own
    python bench/temporal_history.py --turns 50 --address localhost:7233
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from agents import RunConfig, Runner
from temporalio import workflow
from temporalio.client import Client, WorkflowHistory
from temporalio.worker import UnsandboxedWorkflowRunner

from frontdesk.apps.airline import AirlineAgentContext, init_agents
from frontdesk.apps.airline.workflow import (
    AGENTS,
    CustomerServiceWorkflow,
    ProcessUserMessageInput,
)
from frontdesk.engine._conversation import history_lines
from frontdesk.engine.temporal._client import connect
from frontdesk.engine.temporal._devserver import TemporalDevServer
from frontdesk.engine.temporal._plugin import frontdesk_plugin, frontdesk_worker

TASK_QUEUE = "bench-temporal-history"
MESSAGES = (
    "What's the baggage allowance?",
    "Is there wifi on the plane?",
    "How many seats are on the plane?",
    "Can I bring a second bag?",
    "thanks",
)
# Room for the plain sample's history: its model inputs alone pass Temporal's default limits.
DYNAMIC_CONFIG = {
    "limit.historySize.error": str(1024**3),
    "limit.historySize.warn": str(1024**3),
    "limit.historyCount.error": "1000000",
    "limit.historyCount.warn": "1000000",
    "limit.blobSize.error": str(64 * 1024**2),
    "limit.blobSize.warn": str(64 * 1024**2),
}


@workflow.defn
class PlainCustomerServiceWorkflow:
    """The plugin's sample, as seed 002 writes it: the whole conversation in every call."""

    @workflow.init
    def __init__(self, state: dict[str, Any] | None = None) -> None:
        starting_agent, self.agent_map = init_agents()
        state = state or {}
        self.current_agent = self.agent_map[state.get("current_agent_name", starting_agent.name)]
        self.context = AirlineAgentContext.model_validate(state.get("context", {}))
        self.printed_history: list[str] = list(state.get("printed_history", []))
        self.input_items: list[Any] = list(state.get("input_items", []))

    @workflow.run
    async def run(self, state: dict[str, Any] | None = None) -> None:
        await workflow.wait_condition(
            lambda: (
                workflow.info().is_continue_as_new_suggested() and workflow.all_handlers_finished()
            )
        )
        workflow.continue_as_new(
            {
                "current_agent_name": self.current_agent.name,
                "context": self.context.model_dump(),
                "printed_history": self.printed_history,
                "input_items": self.input_items,
            }
        )

    @workflow.query
    def get_chat_history(self) -> list[str]:
        return self.printed_history

    @workflow.update
    async def process_user_message(self, input: ProcessUserMessageInput) -> list[str]:
        length = len(self.printed_history)
        self.printed_history.append(f"User: {input.user_input}")
        self.input_items.append({"content": input.user_input, "role": "user"})
        result = await Runner.run(
            self.current_agent, self.input_items, context=self.context, run_config=RunConfig()
        )
        self.printed_history.extend(history_lines(result))
        self.input_items = result.to_input_list()
        self.current_agent = result.last_agent
        return self.printed_history[length:]


class ChainSize:
    """The history bytes of a workflow over all its runs (closed runs are measured once)."""

    def __init__(self, client: Client, workflow_id: str) -> None:
        self.client = client
        self.workflow_id = workflow_id
        self.closed: dict[str, tuple[int, str]] = {}
        """run id -> (its history bytes, the run it continued)"""
        self.runs = 0

    async def bytes(self) -> int:
        history = await self.client.get_workflow_handle(self.workflow_id).fetch_history()
        total, runs, previous = _size(history.events), 1, _continued(history)
        while previous:
            if previous not in self.closed:
                older = await self.client.get_workflow_handle(
                    self.workflow_id, run_id=previous
                ).fetch_history()
                self.closed[previous] = (_size(older.events), _continued(older))
            size, previous = self.closed[previous]
            total, runs = total + size, runs + 1
        self.runs = runs
        return total


def _continued(history: WorkflowHistory) -> str:
    return str(
        history.events[0].workflow_execution_started_event_attributes.continued_execution_run_id
    )


def _size(events: Any) -> int:
    return sum(event.ByteSize() for event in events)


async def converse(
    client: Client, workflow_run: Any, workflow_id: str, turns: int
) -> dict[str, Any]:
    """Run the conversation; the bytes of turn 10 and of the last turn, and the total."""
    handle = await client.start_workflow(workflow_run, id=workflow_id, task_queue=TASK_QUEUE)
    size = ChainSize(client, workflow_id)
    marks = {9, 10, turns - 1, turns}
    at: dict[int, int] = {}
    history: list[str] = []
    started = time.perf_counter()
    for turn in range(1, turns + 1):
        message = MESSAGES[(turn - 1) % len(MESSAGES)]
        new = await handle.execute_update(
            "process_user_message",
            ProcessUserMessageInput(user_input=message, chat_length=len(history)),
            result_type=list[str],
        )
        history.extend(new)
        if turn in marks:
            at[turn] = await size.bytes()
    total = await size.bytes()
    return {
        "turn_10": at[10] - at[9],
        "turn_last": at[turns] - at[turns - 1],
        "total": total,
        "runs": size.runs,
        "seconds": time.perf_counter() - started,
    }


async def bench(address: str, turns: int) -> None:
    plugin = frontdesk_plugin(AGENTS, model="rules")
    client = await connect(address, plugins=[plugin])
    worker = frontdesk_worker(
        client,
        AGENTS,
        task_queue=TASK_QUEUE,
        workflows=[PlainCustomerServiceWorkflow, CustomerServiceWorkflow],
        model="rules",
        workflow_runner=UnsandboxedWorkflowRunner(),
        max_cached_workflows=10,
    )
    suffix = str(int(time.time()))
    results = {}
    async with worker:
        results["plain plugin sample"] = await converse(
            client, PlainCustomerServiceWorkflow.run, f"bench-plain-{suffix}", turns
        )
        results["frontdesk"] = await converse(
            client, CustomerServiceWorkflow.run, f"bench-frontdesk-{suffix}", turns
        )
    print(f"{turns} turns of the airline conversation (rules model), history bytes per turn:")
    print(
        f"{'':22} {'turn 10':>10} {f'turn {turns}':>10} {'ratio':>7} {'total':>13} "
        f"{'runs':>5} {'seconds':>8}"
    )
    for name, r in results.items():
        ratio = r["turn_last"] / r["turn_10"]
        print(
            f"{name:22} {r['turn_10']:>10,} {r['turn_last']:>10,} {ratio:>7.2f} "
            f"{r['total']:>13,} {r['runs']:>5} {r['seconds']:>8.1f}"
        )
    ratio = results["frontdesk"]["turn_last"] / results["frontdesk"]["turn_10"]
    verdict = "met" if ratio <= 1.2 else "missed"
    print(f"target (frontdesk turn {turns} <= 1.2 x turn 10): {verdict} ({ratio:.2f})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--turns", type=int, default=300)
    parser.add_argument("--address", help="a Temporal server to use (default: start one)")
    args = parser.parse_args()
    if args.turns < 11:
        parser.error("--turns must be at least 11")
    with tempfile.TemporaryDirectory(prefix="frontdesk-bench-") as root:
        os.environ["FRONTDESK_HOME"] = str(Path(root) / "home")
        if args.address:
            asyncio.run(bench(args.address, args.turns))
            return
        with TemporalDevServer(
            Path(root) / "temporal", port=_free_port(), ui_port=None, dynamic_config=DYNAMIC_CONFIG
        ) as server:
            asyncio.run(bench(server.address, args.turns))


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


if __name__ == "__main__":
    main()
