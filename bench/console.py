"""Does the console stay fast with 100,000 runs? The runs page and ``GET /api/runs``.

A home is filled with real runs of the three apps' agents on the offline rules model (support
tickets that complete, wait for approval or escalate; airline conversation turns), and then
copied, row by row through the store's own triggers and indexes, until it holds ``--runs``
runs spread over a month. ``frontdesk serve``'s app runs on uvicorn in this process on a
loopback port; an HTTP client asks for the console's runs page and for ``GET /api/runs``: the
first page, a page 40 pages deep (by cursor), and each filter the console offers. Every
request is timed ``--repeat`` times; p50 and p99 are printed next to the same requests on an
empty store, with their ratio. Prints figures; asserts nothing.

    python bench/console.py                  # 100,000 runs
    python bench/console.py --runs 20000     # quicker
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import statistics
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import uvicorn

from frontdesk import AgentRuntime
from frontdesk._serving import listen, url_of
from frontdesk.apps.airline import AirlineAgentContext
from frontdesk.apps.airline import triage_agent as airline_triage
from frontdesk.apps.support import init_db
from frontdesk.apps.support import triage_agent as support_triage
from frontdesk.server import create_app
from frontdesk.store import store_path

TOKEN = "bench-console-token-0123456789"
TICKETS = [
    "I was charged $99 twice last month (invoice INV-8821). Can I get a refund?",
    "I cannot log in, please reset my password",
    "The API returns 500 errors in eu-west since this morning",
    "Please cancel my plan, it is too expensive",
    "I need a refund of $450 for invoice INV-9001",
]
MONTH = 30 * 86400.0


def seed(home: Path, seeds: int) -> None:
    """Real runs: support tickets of every kind and airline conversation turns."""
    init_db(home)
    with AgentRuntime(home, model="rules", recover=False) as runtime:
        for n in range(seeds):
            runtime.run(support_triage, TICKETS[n % len(TICKETS)])
            if n % 4 == 0:
                conversation = runtime.conversation(
                    f"bench-{n}", agent=airline_triage, context=AirlineAgentContext()
                )
                conversation.send("I'd like to change my seat", chat_length=0)


def multiply(home: Path, total: int) -> int:
    """Copy the seeded runs (new ids, times spread over a month) until there are ``total``."""
    # Straight into the SQLite file: bulk copies beneath the store's interface.
    store = sqlite3.connect(store_path(home), timeout=30, isolation_level=None)
    try:
        table = store.execute("PRAGMA table_info(runs)").fetchall()
        columns = [row[1] for row in table if row[1] != "execution_id"]
        seeded = store.execute("SELECT COUNT(*) FROM runs").fetchone()[0]
        copies = max(0, (total - seeded + seeded - 1) // seeded)
        now = time.time()
        names = ", ".join(columns)
        picked = ", ".join(
            f"{now:.3f} - (n * {seeded} + r.rowid) * {MONTH / total:.6f}"
            if c == "created_at"
            else f"r.{c}"
            for c in columns
        )
        batch = 10
        for start in range(1, copies + 1, batch):
            end = min(copies, start + batch - 1)
            store.execute(
                f"WITH RECURSIVE k(n) AS (SELECT {start} UNION ALL SELECT n + 1 FROM k "
                f"WHERE n < {end}) INSERT INTO runs (execution_id, {names}) "
                f"SELECT 'bench' || n || '_' || r.execution_id, {picked} "
                "FROM k, (SELECT rowid, * FROM runs WHERE execution_id NOT LIKE 'bench%') r"
            )
        return int(store.execute("SELECT COUNT(*) FROM runs").fetchone()[0])
    finally:
        store.close()


@contextmanager
def serving(home: Path) -> Iterator[str]:
    """The console's app for ``home`` on uvicorn, in a thread, on a free loopback port."""
    runtime = AgentRuntime(home, model="rules", recover=False)
    sock = listen("127.0.0.1", 0)
    server = uvicorn.Server(uvicorn.Config(create_app(runtime), log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.01)
    try:
        yield url_of(sock)
    finally:
        server.should_exit = True
        thread.join(30)
        sock.close()
        runtime.close()


def requests_for(client: httpx.Client) -> dict[str, str]:
    """The timed requests: pages and API calls with each filter, and a page deep by cursor."""
    cursor = None
    for _ in range(40):
        page = client.get("/api/runs", params={"cursor": cursor} if cursor else {}).json()
        cursor = page["next_cursor"]
        if cursor is None:
            break
    since = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(time.time() - 7 * 86400))
    until = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(time.time() - 6 * 86400))
    deep = f"&cursor={cursor}" if cursor else ""
    return {
        "runs page /": "/",
        "runs page, failures": "/?status=failed",
        "runs page, text 'refund'": "/?q=refund",
        "GET /api/runs": "/api/runs",
        "GET /api/runs, 40 pages deep": f"/api/runs?limit=50{deep}",
        "GET /api/runs?status=waiting_approval": "/api/runs?status=waiting_approval",
        "GET /api/runs?app=airline": "/api/runs?app=airline",
        "GET /api/runs?agent=billing_specialist": "/api/runs?agent=billing_specialist",
        "GET /api/runs?q=INV-9001": "/api/runs?q=INV-9001",
        "GET /api/runs?q=refund (a common word)": "/api/runs?q=refund",
        "GET /api/runs?since=..&until=.. (one day)": f"/api/runs?since={since}&until={until}",
    }


def measure(
    url: str, repeat: int, paths: dict[str, str] | None = None
) -> tuple[dict[str, str], dict[str, list[float]]]:
    """The requests and their milliseconds, ``repeat`` times each, after a warm-up."""
    headers = {"Authorization": f"Bearer {TOKEN}"}
    with httpx.Client(base_url=url, headers=headers, timeout=60) as client:
        paths = paths or requests_for(client)
        timings: dict[str, list[float]] = {}
        for label, path in paths.items():
            for _ in range(3):
                assert client.get(path).status_code == 200, path
            samples = []
            for _ in range(repeat):
                started = time.perf_counter()
                answer = client.get(path)
                samples.append((time.perf_counter() - started) * 1000)
                assert answer.status_code == 200, (path, answer.text[:200])
            timings[label] = samples
        return paths, timings


def p(samples: list[float], q: float) -> float:
    """The ``q`` quantile (0-1) of the samples."""
    if len(samples) == 1:
        return samples[0]
    return statistics.quantiles(samples, n=100, method="inclusive")[round(q * 100) - 1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=100_000, help="runs in the full store")
    parser.add_argument("--seeds", type=int, default=120, help="real runs to copy from")
    parser.add_argument("--repeat", type=int, default=100, help="timed requests of each kind")
    args = parser.parse_args()
    os.environ["FRONTDESK_API_TOKEN"] = TOKEN
    with tempfile.TemporaryDirectory(prefix="fd-bench-console-") as tmp:
        full, empty = Path(tmp) / "full", Path(tmp) / "empty"
        started = time.perf_counter()
        seed(full, args.seeds)
        count = multiply(full, args.runs)
        print(f"store: {count:,} runs ({time.perf_counter() - started:.0f}s to build)")
        empty.mkdir()
        with serving(full) as url:
            paths, loaded = measure(url, args.repeat)
        with serving(empty) as url:
            # The same requests; a cursor from the full store simply finds nothing here.
            _, base = measure(url, args.repeat, paths)
    print(f"{args.repeat} requests each, milliseconds (target: p50 < 100, p99 < 250)")
    print(f"{'request':44} {'p50':>7} {'p99':>7}   {'empty p50':>9} {'p99':>6}   ratio p50/p99")
    for label in paths:
        full_p50, full_p99 = p(loaded[label], 0.5), p(loaded[label], 0.99)
        base_p50, base_p99 = p(base[label], 0.5), p(base[label], 0.99)
        print(
            f"{label:44} {full_p50:7.1f} {full_p99:7.1f}   {base_p50:9.1f} {base_p99:6.1f}"
            f"   {full_p50 / base_p50:5.2f}x / {full_p99 / base_p99:.2f}x"
        )


if __name__ == "__main__":
    main()
