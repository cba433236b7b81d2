"""How much does durability cost? frontdesk's ``run`` and ``run_async`` against plain
``agents.Runner.run``.

The flow: triage agent -> handoff -> specialist -> one tool -> final answer (3 model calls,
1 tool, 1 handoff), on a model that answers from the conversation with no latency. All three
run in this one process, from plain synchronous code, in rotating order (plain, ``run_async``,
``run``; then ``run_async``, ``run``, plain; ...), so that background load and drift hit each
alike. ``run_async`` and plain ``Runner.run`` are awaited on the same event loop; ``run`` is
called as a synchronous caller calls it. Reported: each path's median time per run, its ratio
to plain, and the fixed durable cost per run (the median of the paired differences); and, as a
view of runs no other process interrupted, the fastest decile of each. Prints figures; asserts
nothing.

    python bench/overhead.py                         # 2,000 triples, then 1,000 concurrent runs
    python bench/overhead.py --pairs 5000 --concurrent 0
    python bench/overhead.py --profile run           # cProfile of 500 runs on this thread
    python bench/overhead.py --store postgres        # the same on a throw-away local server
    python bench/overhead.py --store postgres --database-url postgresql://...
    python bench/overhead.py --engine temporal       # on Temporal: bench/temporal_overhead.py

With ``--store postgres`` the durable paths store their runs in PostgreSQL: on the database of
``--database-url`` if given, else on a throw-away server this bench starts from the machine's
PostgreSQL binaries (as ``frontdesk postgres dev`` does) and deletes afterwards. It also prints
how long a one-row commit takes on that server (a round trip and a WAL flush): each of a run's
four commits pays at least that, and on a shared disk it varies more than anything frontdesk does.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import os
import pstats
import shutil
import socket
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from agents import Agent, RunConfig, Runner, function_tool
from agents.items import ModelResponse
from agents.models.interface import Model
from agents.testing import assistant_message, function_call
from agents.usage import Usage

from frontdesk import AgentRuntime

MESSAGE = "my ticket T-1"


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


def paths(
    runtime: AgentRuntime, agent: Agent[Any], loop: asyncio.AbstractEventLoop
) -> dict[str, Callable[[], None]]:
    """One run of each path, called from synchronous code."""

    def plain() -> None:
        result = loop.run_until_complete(Runner.run(agent, MESSAGE, run_config=PLAIN))
        assert result.final_output

    def run_async() -> None:
        result = loop.run_until_complete(runtime.run_async(agent, MESSAGE))
        assert result.status == "completed", result.error

    def run() -> None:
        result = runtime.run(agent, MESSAGE)
        assert result.status == "completed", result.error

    return {"plain": plain, "run_async": run_async, "run": run}


def rotating(calls: dict[str, Callable[[], None]], n: int) -> dict[str, list[float]]:
    """Seconds per run of each path over ``n`` rounds, each round calling every path once,
    starting from the next path each round."""
    names = list(calls)
    times: dict[str, list[float]] = {name: [] for name in names}
    gc.collect()
    for i in range(n):
        for name in names[i % len(names) :] + names[: i % len(names)]:
            start = time.perf_counter()
            calls[name]()
            times[name].append(time.perf_counter() - start)
    return times


def report(times: dict[str, list[float]], steps: int, target: float) -> None:
    plain = times["plain"]
    plain_med = statistics.median(plain)
    plain_p10 = statistics.quantiles(plain, n=10)[0]
    rounds = len(plain)
    print(
        f"sequential, zero-latency model, 3 model calls + 1 tool + 1 handoff "
        f"({steps} durable steps/run), {rounds} rounds:"
    )
    print(
        f"  plain Runner.run   : {plain_med * 1000:6.3f} ms/run (median; "
        f"fastest decile {plain_p10 * 1000:.3f})"
    )
    for name in ("run_async", "run"):
        med = statistics.median(times[name])
        p10 = statistics.quantiles(times[name], n=10)[0]
        fixed = statistics.median(d - p for d, p in zip(times[name], plain, strict=True))
        print(
            f"  frontdesk {name:<9}: {med * 1000:6.3f} ms/run, {med / plain_med:.2f}x plain "
            f"(target <= {target}x), fixed durable cost {fixed * 1000:.3f} ms/run (target <= 0.4 ms); "
            f"fastest decile {p10 * 1000:.3f} ms, {p10 / plain_p10:.2f}x"
        )
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"  load average       : {load:.2f} on {os.cpu_count()} cores at the end")


def profile(calls: dict[str, Callable[[], None]], which: str, n: int) -> None:
    """cProfile ``n`` runs of one path; both frontdesk paths drive their runs on this
    thread, so this thread's profile holds all of their work."""
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(n):
        calls[which]()
    profiler.disable()
    pstats.Stats(profiler).sort_stats("tottime").print_stats(40)


async def concurrent(agent: Agent[Any], runtime: AgentRuntime, n: int) -> tuple[float, float]:
    start = time.perf_counter()
    await asyncio.gather(*(Runner.run(agent, MESSAGE, run_config=PLAIN) for _ in range(n)))
    plain_wall = time.perf_counter() - start
    start = time.perf_counter()
    results = await asyncio.gather(*(runtime.run_async(agent, MESSAGE) for _ in range(n)))
    assert all(r.status == "completed" for r in results)
    return plain_wall, time.perf_counter() - start


@contextmanager
def databases(store: str, given: str | None) -> Iterator[Callable[[str], str | None]]:
    """A function giving the database URL of each phase of the bench (None: SQLite in the
    phase's home); with PostgreSQL and no URL given, a throw-away local server."""
    if store == "sqlite":
        yield lambda name: None
        return
    if given:
        yield lambda name: given
        return
    import psycopg
    from psycopg import sql

    from frontdesk.store.postgres import LocalPostgres

    root = Path(tempfile.mkdtemp(prefix="frontdesk-bench-pg-"))
    root.chmod(0o755)  # the postgres user runs the server when this runs as root
    cluster = LocalPostgres(root / "cluster", port=free_port())
    cluster.start()
    try:

        def database(name: str) -> str:
            with psycopg.connect(cluster.url, autocommit=True) as conn:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            return cluster.url.rsplit("/", 1)[0] + f"/{name}"

        yield database
    finally:
        cluster.stop(mode="immediate")
        shutil.rmtree(root, ignore_errors=True)


def commit_latency(url: str, n: int = 300) -> float:
    """Seconds a one-row INSERT takes to commit on the database of ``url`` (the median of
    ``n``): a round trip and a flush of the server's WAL, the floor under each of a run's
    commits. On a disk shared with other work it moves by a factor of ten."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS flush_probe (n integer)")
        times = []
        for i in range(n):
            start = time.perf_counter()
            conn.execute("INSERT INTO flush_probe VALUES (%s)", (i,))
            times.append(time.perf_counter() - start)
        conn.execute("DROP TABLE flush_probe")
    return statistics.median(times)


def free_port() -> int:
    """A loopback port that was free a moment ago."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def main() -> None:
    engine = argparse.ArgumentParser(add_help=False)
    engine.add_argument("--engine", choices=["local", "temporal"], default="local")
    chosen, rest = engine.parse_known_args()
    if chosen.engine == "temporal":  # its own flags: see bench/temporal_overhead.py
        from temporal_overhead import main as temporal_main

        temporal_main(rest)
        return
    parser = argparse.ArgumentParser(description=__doc__, parents=[engine])
    parser.add_argument(
        "--pairs", type=int, default=2000, help="timed rounds of the 3 paths (0 to skip)"
    )
    parser.add_argument("--warmup", type=int, default=300, help="untimed rounds first")
    parser.add_argument("--concurrent", type=int, default=1000, help="0 to skip")
    parser.add_argument("--latency", type=float, default=0.1, help="simulated model latency (s)")
    parser.add_argument("--profile", choices=["plain", "run", "run_async"])
    parser.add_argument("--store", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--database-url", help="with --store postgres: use this database")
    args = parser.parse_args()
    with databases(args.store, args.database_url) as database:
        bench(args, database)


def bench(args: argparse.Namespace, database: Callable[[str], str | None]) -> None:
    print(f"store: {args.store}")
    agent = build(0.0)
    loop = asyncio.new_event_loop()
    with (
        tempfile.TemporaryDirectory() as home,
        AgentRuntime(home, recover=False, database_url=database("bench_sequential")) as runtime,
    ):
        calls = paths(runtime, agent, loop)
        # Warm up every path (imports, pydantic schemas, SQLite pages, the WAL).
        rotating(calls, args.warmup)
        if args.profile:
            profile(calls, args.profile, 500)
            return
        if args.pairs:
            times = rotating(calls, args.pairs)
            steps = len(runtime.get(runtime.runs(limit=1)[0].execution_id).steps)
            report(times, steps, 1.2 if args.store == "sqlite" else 1.6)
    loop.close()
    url = database("bench_flush")
    if url is not None and args.pairs:
        print(
            f"  one-row commit     : {commit_latency(url) * 1000:.3f} ms (median of 300) on this server"
        )

    if args.concurrent:
        slow = build(args.latency)
        with (
            tempfile.TemporaryDirectory() as home,
            AgentRuntime(home, recover=False, database_url=database("bench_concurrent")) as runtime,
        ):
            plain_wall, fd_wall = asyncio.run(concurrent(slow, runtime, args.concurrent))
        print(
            f"\n{args.concurrent} concurrent runs, model latency {args.latency * 1000:.0f} ms "
            "(3 model calls/run):"
        )
        print(f"  plain Runner.run : {plain_wall:6.2f} s wall")
        print(f"  frontdesk        : {fd_wall:6.2f} s wall")
        print(f"  ratio            : {fd_wall / plain_wall:.2f}x (target <= 1.5x)")


if __name__ == "__main__":
    main()
