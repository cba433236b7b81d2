"""Chaos, in the manner of DBOS's chaos suite: a hundred refund runs with approvals in flight
while ``frontdesk worker`` processes are SIGKILLed at random and the PostgreSQL server is
restarted twice (once as a crash). Afterwards every run has completed with the answer its
decision calls for, no effect happened twice for one logical call, and each run made exactly
the model calls of an uninterrupted run, apart from calls whose response was never committed
(each of them made by a process killed afterwards, or before a restart).

The randomness is seeded; the seed is printed, and ``CHAOS_SEED`` replays one. Chaos follows
the runs' progress (every so many model calls, a kill; at two points, a restart), never the
clock, so a slow machine sees the same kinds of interruptions as a fast one.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

import chaosflow
from frontdesk import AgentRuntime
from frontdesk.errors import FrontdeskError
from frontdesk.store.postgres._cluster import LocalPostgres
from pgcluster import throwaway_cluster
from pgdb import fresh_database

from conftest import PYTHON, TESTS_DIR, Children, child_env, sigkill, wait_for_marker, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.e2e]

RUNS = 100
"""Runs in flight during the chaos."""
WORKERS = 3
"""Worker processes alive at any time (a killed one is replaced at once)."""
REJECTED = 10
"""Runs whose refund is rejected rather than approved."""
DEADLINE = 240.0
"""Seconds the runs get to complete, chaos included (they need well under a minute)."""


@pytest.fixture
def cluster() -> Iterator[LocalPostgres]:
    """A cluster of the test's own: it is restarted under the runs."""
    with throwaway_cluster() as started:
        yield started


class Chaos:
    """The processes of the test, what was done to them, and the markers in the model log."""

    def __init__(self, children: Children, flow_dir: Path, home: Path) -> None:
        self.children = children
        self.flow_dir = flow_dir
        self.home = home
        self.workers: list[subprocess.Popen[Any]] = []
        self.spawned = 0
        self.kills = 0
        self.restarts = 0
        self.exited = 0
        self.logs: dict[int, Path] = {}

    def env(self) -> dict[str, str]:
        return child_env(CHAOS_DIR=str(self.flow_dir))

    def spawn_worker(self) -> None:
        self.spawned += 1
        path = self.flow_dir / f"worker-{self.spawned}.log"
        log = path.open("wb")
        proc = self.children.popen(
            [PYTHON, "-m", "frontdesk", "--home", str(self.home), "worker", "--agents", "chaosflow:triage", "--poll", "0.2"],
            env=self.env(), stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        log.close()
        self.logs[proc.pid] = path
        self.workers.append(proc)

    def start_runs(self, first: int, count: int) -> subprocess.Popen[Any]:
        marker = self.flow_dir / "started"
        marker.unlink(missing_ok=True)
        proc = self.children.popen(
            [PYTHON, str(TESTS_DIR / "chaosflow.py"), str(first), str(count)],
            env=self.env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )  # fmt: skip
        wait_for_marker(marker, proc)
        return proc

    def kill(self, proc: subprocess.Popen[Any]) -> None:
        """SIGKILL a driver; the marker follows its last possible line in the log."""
        sigkill(proc)
        self.kills += 1
        chaosflow.log_call({"killed": proc.pid})

    def supervise(self) -> None:
        """Replace a worker that exited by itself, as a supervisor would: one started while
        the server was down says so and exits."""
        for proc in [p for p in self.workers if p.poll() is not None]:
            said = self.logs[proc.pid].read_text(errors="replace").strip().splitlines()
            assert proc.returncode == 1 and said, (proc.returncode, said)
            assert said[-1].startswith("error: ") and "PostgreSQL database" in said[-1], said
            self.workers.remove(proc)
            self.exited += 1
            self.spawn_worker()

    def kill_a_worker(self, rng: random.Random) -> None:
        self.supervise()
        victim = rng.choice(self.workers)
        self.workers.remove(victim)
        self.kill(victim)
        self.spawn_worker()

    def restart(self, cluster: LocalPostgres, mode: str) -> None:
        """Stop the server (``immediate`` is a crash) and start it again, between two markers:
        a call the outage cut off is logged before one of them, and made again after it."""
        chaosflow.log_call({"restarting": mode})
        cluster.stop(mode=mode)
        cluster.start()
        self.restarts += 1
        chaosflow.log_call({"restarted": mode})

    def log(self) -> list[dict[str, Any]]:
        path = self.flow_dir / "models.log"
        return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []

    def worker_logs(self) -> str:
        tails = []
        for path in sorted(self.flow_dir.glob("worker-*.log")):
            lines = path.read_text(errors="replace").splitlines()[-5:]
            tails.append(f"--- {path.name}\n" + "\n".join(lines))
        return "\n".join(tails)


def statuses(runtime: AgentRuntime) -> Counter[str]:
    return Counter(runtime.store.window_statuses(None, None))


def decide_pending(runtime: AgentRuntime, rejected: set[str]) -> None:
    """Decide every pending approval as the plan says (through the store: the runs resume on
    the workers, never in this process)."""
    for request in runtime.store.approvals(status="pending"):
        reject = request.execution_id in rejected
        try:
            runtime.store.decide(
                request.approval_id,
                approved=not reject,
                by="chaos",
                note=None,
                reason="not a duplicate charge" if reject else None,
                now=time.time(),
            )
        except FrontdeskError:
            pass  # the server is restarting, or the decision committed before the loss


def committed_nonces(runtime: AgentRuntime, execution_id: str) -> list[str]:
    """The response ids of the run's journaled model calls."""
    return [
        json.loads(step.data_json or "{}").get("response_id")
        for step in runtime.get(execution_id).steps
        if step.kind == "model"
    ]


def test_runs_survive_killed_workers_and_restarted_servers(
    cluster: LocalPostgres,
    home: Path,
    tmp_path: Path,
    children: Children,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seed = int(os.environ.get("CHAOS_SEED") or random.randrange(2**32))
    print(f"chaos seed: {seed} (CHAOS_SEED={seed} replays it)")
    rng = random.Random(seed)
    flow_dir = tmp_path / "flow"
    flow_dir.mkdir()
    database = fresh_database(cluster)
    url = database.__enter__()
    try:
        monkeypatch.setenv("FRONTDESK_DATABASE_URL", url)
        monkeypatch.setenv("CHAOS_DIR", str(flow_dir))
        with psycopg.connect(url, autocommit=True) as conn:
            for statement in chaosflow.TABLES:
                conn.execute(statement)
        run(rng, cluster, url, home, flow_dir, children)
    finally:
        children.close()
        database.__exit__(None, None, None)


def run(
    rng: random.Random,
    cluster: LocalPostgres,
    url: str,
    home: Path,
    flow_dir: Path,
    children: Children,
) -> None:
    chaos = Chaos(children, flow_dir, home)
    ids = [chaosflow.execution_id(n) for n in range(RUNS + 1)]
    baseline = ids[RUNS]
    rejected = set(rng.sample(ids[:RUNS], REJECTED))
    with AgentRuntime(home, recover=False) as observer:
        for _ in range(WORKERS):
            chaos.spawn_worker()

        # An uninterrupted run first: how many model calls the flow makes.
        # Its starter drives it to the approval, and is killed only once idle there.
        starter = chaos.start_runs(RUNS, 1)

        def paused() -> bool:
            return observer.store.require_run(baseline).status == "waiting_approval"

        wait_until(paused, "the uninterrupted run to ask for approval")
        chaos.kill(starter)
        chaos.kills -= 1

        def baseline_done() -> bool:
            decide_pending(observer, rejected)
            return observer.store.require_run(baseline).status == "completed"

        wait_until(baseline_done, "the uninterrupted run", explain=chaos.worker_logs)
        calls = len([e for e in chaos.log() if "nonce" in e])
        assert calls == chaosflow.CALLS_PER_RUN == len(committed_nonces(observer, baseline))

        # The chaos: a hundred runs, started by a process killed as soon as they are stored.
        chaos.kill(chaos.start_runs(0, RUNS))
        restart_at = sorted([calls + rng.randint(RUNS, 2 * RUNS), calls + rng.randint(5 * RUNS // 2, 3 * RUNS)])  # fmt: skip
        modes = ["fast", "immediate"]
        rng.shuffle(modes)
        next_kill = calls + rng.randint(8, 20)
        seen = Counter[str]()

        def explain() -> str:
            return f"statuses {dict(seen)}; kills {chaos.kills}; restarts {chaos.restarts}\n{chaos.worker_logs()}"  # fmt: skip

        def step() -> bool:
            nonlocal next_kill
            logged = sum(1 for e in chaos.log() if "nonce" in e)
            if restart_at and logged >= restart_at[0]:
                restart_at.pop(0)
                chaos.restart(cluster, modes.pop())
            chaos.supervise()
            if logged >= next_kill:
                chaos.kill_a_worker(rng)
                next_kill = logged + rng.randint(8, 20)
            try:
                decide_pending(observer, rejected)
                seen.clear()
                seen.update(statuses(observer))
            except FrontdeskError:
                return False
            for status in ("failed", "cancelled", "budget_exceeded"):
                assert not seen[status], explain()
            return seen["completed"] == RUNS + 1 and not restart_at

        wait_until(step, "every run to complete through the chaos", DEADLINE, explain)
        print(
            f"kills: {chaos.kills}, restarts: {chaos.restarts}, workers spawned: "
            f"{chaos.spawned}, of which {chaos.exited} exited by themselves"
        )
        assert chaos.restarts == 2 and chaos.kills >= 5

        # Every run ended with the answer its decision calls for.
        for n, execution_id in enumerate(ids):
            result = observer.get(execution_id)
            verdict = "rejected" if execution_id in rejected else "refunded"
            assert result.status == "completed" and result.output == f"INV-{n} {verdict}", result

        check_effects(url, ids, rejected)
        check_model_calls(observer, chaos.log(), ids, calls)


def check_effects(url: str, ids: list[str], rejected: set[str]) -> None:
    """Once per logical call: one idempotency key per invoice and kind, one effect per key."""
    with psycopg.connect(url) as conn:
        effects = conn.execute("SELECT invoice, kind, key FROM chaos_effects").fetchall()
        keys = conn.execute(
            "SELECT invoice, kind, count(DISTINCT key), count(*) FROM chaos_attempts GROUP BY 1, 2"
        ).fetchall()
    per_call = Counter((invoice, kind) for invoice, kind, _ in effects)
    expected = Counter({(f"INV-{n}", "lookup"): 1 for n in range(len(ids))})
    expected.update({(f"INV-{n}", "refund"): 1 for n, eid in enumerate(ids) if eid not in rejected})
    assert per_call == expected
    assert all(distinct == 1 for _, _, distinct, _ in keys), keys
    retried = sum(1 for *_, attempts in keys if attempts > 1)
    print(f"effects: {len(effects)}, each once; tool calls run again after a kill: {retried}")


def check_model_calls(
    observer: AgentRuntime, log: list[dict[str, Any]], ids: list[str], calls: int
) -> None:
    """Each run's committed model calls are those of an uninterrupted run; every other call
    was cut off: between it and the run's next call, its process was killed or the server
    restarted."""
    by_invoice: dict[str, list[tuple[int, dict[str, Any]]]] = defaultdict(list)
    kills: dict[int, int] = {}
    restarts: list[int] = []
    for line, entry in enumerate(log):
        if "nonce" in entry:
            by_invoice[entry["invoice"]].append((line, entry))
        elif "killed" in entry:
            kills[entry["killed"]] = line
        else:
            restarts.append(line)
    repeated = 0
    for n, execution_id in enumerate(ids):
        committed = committed_nonces(observer, execution_id)
        assert len(committed) == calls, (execution_id, committed)
        made = by_invoice[f"INV-{n}"]
        nonces = {entry["nonce"]: entry for _, entry in made}
        assert sorted(nonces[c]["call"] for c in committed) == list(range(calls))
        for i, (line, entry) in enumerate(made):
            if entry["nonce"] in committed:
                continue
            repeated += 1
            following = made[i + 1][0] if i + 1 < len(made) else len(log)
            killed = line < kills.get(entry["pid"], -1) < following
            restarted = any(line < r < following for r in restarts)
            assert killed or restarted, f"{execution_id}: {entry} was made again, uncut"
    moved = sum(1 for made in by_invoice.values() if len({e["pid"] for _, e in made}) > 1)
    print(
        f"model calls: {calls} committed per run; {repeated} cut off and made again; "
        f"{moved} runs called the model from more than one process"
    )
