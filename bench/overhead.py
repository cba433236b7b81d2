"""How much does durability cost? frontdesk against plain ``agents.Runner.run``.

The flow: triage agent -> handoff -> specialist -> one tool -> final answer, on a model that
answers from the conversation with no latency. Both sides run in this one process, one after
the other, so the ratio compares like with like. Prints figures; asserts nothing.

    python bench/overhead.py                 # sequential runs/s and 1,000 concurrent runs
    python bench/overhead.py --runs 500 --concurrent 1000 --latency 0.1
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import statistics
import tempfile
import time
from typing import Any

from agents import Agent, RunConfig, Runner, function_tool
from agents.items import ModelResponse
from agents.models.interface import Model
from agents.testing import assistant_message, function_call
from agents.usage import Usage

from frontdesk import AgentRuntime


class FlowModel(Model):
    """Answers from the conversation so far: handoff, then the tool, then the answer."""

    def __init__(self, latency: float = 0.0) -> None:
        self.latency = latency

    async def get_response(
        self, system_instructions: Any, input: Any, *args: Any, **kwargs: Any
    ) -> ModelResponse:
        if self.latency:
            await asyncio.sleep(self.latency)
        items = input if isinstance(input, list) else []
        types = [i.get("type") if isinstance(i, dict) else getattr(i, "type", None) for i in items]
        outputs = types.count("function_call_output")
        if outputs == 0:
            out = [function_call("transfer_to_specialist", {}, call_id="h1")]
        elif outputs == 1:
            out = [function_call("lookup", {"ticket": "T-1"}, call_id="c1")]
        else:
            out = [assistant_message("Resolved: ticket T-1 is closed.")]
        return ModelResponse(
            output=out,
            usage=Usage(requests=1, input_tokens=20, output_tokens=5, total_tokens=25),
            response_id=None,
        )

    def stream_response(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError


@function_tool
def lookup(ticket: str) -> dict[str, str]:
    """Look up a ticket."""
    return {"ticket": ticket, "status": "closed"}


def build(latency: float) -> Agent[Any]:
    model = FlowModel(latency)
    specialist = Agent(name="specialist", model=model, tools=[lookup])
    return Agent(name="triage", model=model, handoffs=[specialist])


PLAIN = RunConfig(tracing_disabled=True)


async def plain_sequential(agent: Agent[Any], n: int) -> float:
    gc.collect()  # neither side pays for the other's garbage
    start = time.perf_counter()
    for _ in range(n):
        result = await Runner.run(agent, "my ticket T-1", run_config=PLAIN)
        assert result.final_output
    return time.perf_counter() - start


async def frontdesk_sequential(runtime: AgentRuntime, agent: Agent[Any], n: int) -> float:
    gc.collect()
    start = time.perf_counter()
    for _ in range(n):
        result = await runtime.run_async(agent, "my ticket T-1")
        assert result.status == "completed", result.error
    return time.perf_counter() - start


async def plain_concurrent(agent: Agent[Any], n: int) -> float:
    start = time.perf_counter()
    await asyncio.gather(*(Runner.run(agent, "my ticket T-1", run_config=PLAIN) for _ in range(n)))
    return time.perf_counter() - start


async def frontdesk_concurrent(runtime: AgentRuntime, agent: Agent[Any], n: int) -> float:
    start = time.perf_counter()
    results = await asyncio.gather(*(runtime.run_async(agent, "my ticket T-1") for _ in range(n)))
    assert all(r.status == "completed" for r in results)
    return time.perf_counter() - start


def best_of(values: list[float]) -> float:
    return min(values)


async def paired(runtime: AgentRuntime, agent: Agent[Any], n: int) -> tuple[float, float]:
    """Median seconds per run of each, alternating one plain and one frontdesk run so that
    background load and drift hit both sides alike."""
    plain, durable = [], []
    for _ in range(n):
        start = time.perf_counter()
        await Runner.run(agent, "my ticket T-1", run_config=PLAIN)
        plain.append(time.perf_counter() - start)
        start = time.perf_counter()
        result = await runtime.run_async(agent, "my ticket T-1")
        durable.append(time.perf_counter() - start)
        assert result.status == "completed", result.error
    return statistics.median(plain), statistics.median(durable)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=300, help="sequential runs per trial")
    parser.add_argument("--trials", type=int, default=3)
    parser.add_argument("--concurrent", type=int, default=1000)
    parser.add_argument("--latency", type=float, default=0.1, help="simulated model latency (s)")
    args = parser.parse_args()

    agent = build(0.0)
    with tempfile.TemporaryDirectory() as home, AgentRuntime(home, recover=False) as runtime:
        # Warm up both paths (imports, pydantic schemas, SQLite pages, the WAL).
        await plain_sequential(agent, 200)
        await frontdesk_sequential(runtime, agent, 200)
        plain_t, fd_t = [], []
        for _ in range(args.trials):
            plain_t.append(await plain_sequential(agent, args.runs))
            fd_t.append(await frontdesk_sequential(runtime, agent, args.runs))
        plain_rps = args.runs / best_of(plain_t)
        fd_rps = args.runs / best_of(fd_t)
        steps = len(runtime.get(runtime.runs(limit=1)[0].execution_id).steps)
        print(f"sequential, zero-latency model, {args.runs} runs x {args.trials} trials (best):")
        print(f"  plain Runner.run : {plain_rps:8.1f} runs/s  ({1000 / plain_rps:.2f} ms/run)")
        print(
            f"  frontdesk        : {fd_rps:8.1f} runs/s  ({1000 / fd_rps:.2f} ms/run), {steps} durable steps/run"
        )
        print(f"  ratio            : {plain_rps / fd_rps:.2f}x plain time per run (target <= 1.3x)")
        print(
            f"  per-trial ratios : {', '.join(f'{f / p:.2f}' for p, f in zip(plain_t, fd_t, strict=True))}"
            f" (median {statistics.median(f / p for p, f in zip(plain_t, fd_t, strict=True)):.2f})"
        )
        pairs = args.runs * args.trials
        plain_med, fd_med = await paired(runtime, agent, pairs)
        print(
            f"  paired medians   : plain {plain_med * 1000:.2f} ms, frontdesk {fd_med * 1000:.2f} ms"
            f" per run: {fd_med / plain_med:.2f}x ({pairs} alternating pairs)"
        )

    slow = build(args.latency)
    with tempfile.TemporaryDirectory() as home, AgentRuntime(home, recover=False) as runtime:
        plain_wall = await plain_concurrent(slow, args.concurrent)
        fd_wall = await frontdesk_concurrent(runtime, slow, args.concurrent)
        print(
            f"\n{args.concurrent} concurrent runs, model latency {args.latency * 1000:.0f} ms (3 model calls/run):"
        )
        print(f"  plain Runner.run : {plain_wall:6.2f} s wall")
        print(f"  frontdesk        : {fd_wall:6.2f} s wall")
        print(f"  ratio            : {fd_wall / plain_wall:.2f}x (target <= 1.5x)")


if __name__ == "__main__":
    asyncio.run(main())
