"""Does a long conversation get slower or heavier per turn? A 500-turn airline conversation.

The airline agents run on the offline rules model in one durable conversation that cycles
through FAQ questions and seat changes between two free seats. For each turn the bench records
the time ``send`` takes and the bytes the turn added to the SQLite store (pages in use, after a
WAL checkpoint), then compares an early window (turns 6-15) with the last ten turns, with the
runtime's default compaction and with compaction off. Prints figures; asserts nothing.

    python bench/conversation.py               # 500 turns
    python bench/conversation.py --turns 100   # quicker
"""

from __future__ import annotations

import argparse
import inspect
import itertools
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from frontdesk import AgentRuntime
from frontdesk.apps.airline import AirlineAgentContext, triage_agent
from frontdesk.store import store_path

EARLY = (6, 15)
"""The early window of turns (1-based, inclusive)."""
WINDOW = 10
"""How many of the last turns make the late window."""
DEFAULT_COMPACTION: int = inspect.signature(AgentRuntime).parameters["compact_every"].default


def script() -> Iterator[str]:
    """The customer's messages: FAQ questions, then a seat change, alternating two free seats."""
    for seat in itertools.cycle(["14C", "15D"]):
        yield "What's the baggage allowance?"
        yield "I'd like to change my seat"
        yield "LL0EZ6"
        yield seat
        yield "Is there wifi?"
        yield "How many seats are on the plane?"


@dataclass
class Trace:
    """Per-turn figures of one conversation."""

    seconds: list[float]
    added_bytes: list[int]
    compactions: int
    store_bytes: int
    input_items: int
    """Items the agents see on the next turn: the whole conversation, compacted or not."""


def used_bytes(conn: sqlite3.Connection) -> int:
    """Bytes of the pages the store uses, after moving the WAL into the database file."""
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    page_size = conn.execute("PRAGMA page_size").fetchone()[0]
    pages = conn.execute("PRAGMA page_count").fetchone()[0]
    free = conn.execute("PRAGMA freelist_count").fetchone()[0]
    return int((pages - free) * page_size)


def converse(home: Path, turns: int, compact_every: int) -> Trace:
    """Run ``turns`` turns in a fresh home; time each one and measure what it stored."""
    seconds: list[float] = []
    added: list[int] = []
    with AgentRuntime(home, model="rules", recover=False, compact_every=compact_every) as rt:
        conv = rt.conversation("bench", agent=triage_agent, context=AirlineAgentContext())
        conn = sqlite3.connect(store_path(home))
        before = used_bytes(conn)
        seen = 0
        for message in itertools.islice(script(), turns):
            start = time.perf_counter()
            seen += len(conv.send(message, seen))
            seconds.append(time.perf_counter() - start)
            after = used_bytes(conn)
            added.append(after - before)
            before = after
        trace = Trace(seconds, added, conv.compactions, before, len(conv.input_items()))
        conn.close()
    return trace


def window_mean(values: list[float] | list[int], first: int, last: int) -> float:
    """Mean of turns ``first``..``last`` (1-based, inclusive)."""
    return statistics.fmean(values[first - 1 : last])


def _ratio(late: float, early: float) -> str:
    return f"{late / early:.2f}" if early else "-"


def _row(label: str, early: float, late: float) -> None:
    print(f"  {label:>22} {early:>12.1f} {late:>14.1f} {_ratio(late, early):>7}")


def report(name: str, trace: Trace, turns: int) -> tuple[float, float]:
    """Print one configuration's figures; return its late per-turn time and storage."""
    late = (max(turns - WINDOW + 1, 1), turns)
    ms_early, ms_late = (window_mean(trace.seconds, *w) * 1000 for w in (EARLY, late))
    kb_early, kb_late = (window_mean(trace.added_bytes, *w) / 1024 for w in (EARLY, late))
    print(
        f"\n{name}: {trace.compactions} compactions, store {trace.store_bytes / 1e6:.2f} MB, "
        f"{trace.input_items} input items at the end"
    )
    spans = [f"turns {first}-{last}" for first, last in (EARLY, late)]
    print(f"  {'':>22} {spans[0]:>12} {spans[1]:>14} {'ratio':>7}")
    _row("time per turn (ms)", ms_early, ms_late)
    _row("storage per turn (KB)", kb_early, kb_late)
    print(f"  {'total time (s)':>22} {sum(trace.seconds):>12.1f}")
    return ms_late, kb_late


def main() -> None:
    """Run both configurations and print their figures and ratios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=500, help="turns per conversation")
    args = parser.parse_args()
    turns = max(args.turns, EARLY[1])
    print(f"{turns}-turn airline conversation on the rules model, one process, SQLite on disk")
    late: dict[str, tuple[float, float]] = {}
    with tempfile.TemporaryDirectory(prefix="frontdesk-bench-") as tmp:
        converse(Path(tmp) / "warm-up", EARLY[1], 0)  # imports and caches, not measured
        for name, every in (
            (f"default compaction (every {DEFAULT_COMPACTION} turns)", DEFAULT_COMPACTION),
            ("compaction off", 0),
        ):
            trace = converse(Path(tmp) / f"every{every}", turns, every)
            late[name] = report(name, trace, turns)
    (on_time, on_bytes), (off_time, off_bytes) = late.values()
    print(f"\nlast {WINDOW} turns, compaction off / default compaction:")
    print(f"  time per turn {_ratio(off_time, on_time)}x")
    print(f"  storage per turn {_ratio(off_bytes, on_bytes)}x")


if __name__ == "__main__":
    main()
