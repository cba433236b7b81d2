"""Does a long conversation get slower or heavier per turn? A 500-turn airline conversation.

The airline agents run on the offline rules model in one durable conversation that cycles
through FAQ questions and seat changes between two free seats. For each turn the bench records
the time ``send`` takes, the bytes the turn added to the SQLite store (pages in use, after a
WAL checkpoint) and the size of the model input the turn sent (items, and characters of their
JSON), then compares an early window (turns 6-15) with the last ten turns (the median time
and the mean of the other figures over each window): with the runtime's default compaction,
with compaction off, and with a memory policy of the last ``--memory`` turns, without and
with a summary. Prints figures; asserts nothing.

    python bench/conversation.py               # 500 turns, memory of the last 10 turns
    python bench/conversation.py --turns 100   # quicker
    python bench/conversation.py --memory 4    # a shorter window
"""

from __future__ import annotations

import argparse
import inspect
import itertools
import json
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from frontdesk import AgentRuntime, Memory
from frontdesk.apps.airline import AirlineAgentContext, triage_agent
from frontdesk.engine._conversation import resolve_turn_input
from frontdesk.store import store_path

EARLY = (6, 15)
"""The early window of turns (1-based, inclusive)."""
WINDOW = 10
"""How many of the last turns make the late window."""
DEFAULT_COMPACTION: int = inspect.signature(AgentRuntime).parameters["compact_every"].default
TARGET_RATIO = 1.3
"""With a memory policy, the late turns may cost at most this many times the early ones."""


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
    """Time ``send`` took, per turn."""
    cpu_seconds: list[float]
    """CPU time the process spent (all its threads) while ``send`` ran, per turn: what other
    processes on the machine change least."""
    added_bytes: list[int]
    """Bytes the turn added to the store."""
    sent_items: list[int]
    """Items of the model input the turn sent: its window (or everything) and the message."""
    sent_chars: list[int]
    """Characters of that input's JSON."""
    compactions: int
    """Compactions of the stored items."""
    store_bytes: int
    """Bytes of the store at the end."""
    stored_items: int
    """Input items stored at the end: every item of the conversation."""


def used_bytes(conn: sqlite3.Connection) -> int:
    """Bytes of the pages the store uses, after moving the WAL into the database file."""
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    page_size = conn.execute("PRAGMA page_size").fetchone()[0]
    pages = conn.execute("PRAGMA page_count").fetchone()[0]
    free = conn.execute("PRAGMA freelist_count").fetchone()[0]
    return int((pages - free) * page_size)


def converse(home: Path, turns: int, compact_every: int, memory: Memory | None = None) -> Trace:
    """Run ``turns`` turns in a fresh home; time each one and measure what it stored and what
    it sent the model."""
    trace = Trace([], [], [], [], [], 0, 0, 0)
    with AgentRuntime(home, model="rules", recover=False, compact_every=compact_every) as rt:
        conv = rt.conversation(
            "bench", agent=triage_agent, context=AirlineAgentContext(), memory=memory
        )
        conn = sqlite3.connect(store_path(home))
        before = used_bytes(conn)
        seen = 0
        for message in itertools.islice(script(), turns):
            start, cpu_start = time.perf_counter(), time.process_time()
            seen += len(conv.send(message, seen))
            trace.seconds.append(time.perf_counter() - start)
            trace.cpu_seconds.append(time.process_time() - cpu_start)
            after = used_bytes(conn)
            trace.added_bytes.append(after - before)
            before = after
            ref = conn.execute(
                "SELECT input FROM runs WHERE conversation_id = 'bench' AND status = 'completed' "
                "ORDER BY turn DESC LIMIT 1"
            ).fetchone()[0]
            sent = resolve_turn_input(rt.store, json.loads(ref))
            trace.sent_items.append(len(sent))
            trace.sent_chars.append(len(json.dumps(sent)))
        trace.compactions, trace.store_bytes = conv.compactions, before
        trace.stored_items = len(conv.stored_items())
        conn.close()
    return trace


def window_median(values: list[float], first: int, last: int) -> float:
    """Median of turns ``first``..``last`` (1-based, inclusive): a turn that another process
    on the machine slowed down does not move it."""
    return statistics.median(values[first - 1 : last])


def window_mean(values: list[float] | list[int], first: int, last: int) -> float:
    """Mean of turns ``first``..``last`` (1-based, inclusive)."""
    return statistics.fmean(values[first - 1 : last])


def _ratio(late: float, early: float) -> str:
    return f"{late / early:.2f}" if early else "-"


def _row(label: str, early: float, late: float) -> None:
    print(f"  {label:>22} {early:>12.1f} {late:>14.1f} {_ratio(late, early):>7}")


def report(
    name: str, trace: Trace, turns: int, early: tuple[int, int] = EARLY
) -> tuple[float, float, float, float]:
    """Print one configuration's figures, ``early`` turns against the last ones; return its
    late per-turn time and storage, and the ratios of its late to its early time and CPU time
    per turn."""
    late = (max(turns - WINDOW + 1, 1), turns)
    ms_early, ms_late = (window_median(trace.seconds, *w) * 1000 for w in (early, late))
    kb_early, kb_late = (window_mean(trace.added_bytes, *w) / 1024 for w in (early, late))
    print(
        f"\n{name}: {trace.compactions} compactions, store {trace.store_bytes / 1e6:.2f} MB, "
        f"{trace.stored_items} input items stored at the end"
    )
    spans = [f"turns {first}-{last}" for first, last in (early, late)]
    print(f"  {'':>22} {spans[0]:>12} {spans[1]:>14} {'ratio':>7}")
    _row("time per turn (ms)", ms_early, ms_late)  # the median of each window
    cpu_early, cpu_late = (window_mean(trace.cpu_seconds, *w) * 1000 for w in (early, late))
    _row("CPU per turn (ms)", cpu_early, cpu_late)
    _row("storage per turn (KB)", kb_early, kb_late)
    _row("model input (items)", *(window_mean(trace.sent_items, *w) for w in (early, late)))
    _row("model input (KB)", *(window_mean(trace.sent_chars, *w) / 1024 for w in (early, late)))
    print(
        f"  {'at turn 10 / turn ' + str(turns):>22} {trace.sent_items[9]:>12} items "
        f"{trace.sent_items[-1]:>7} items, at most {max(trace.sent_items)}"
    )
    print(f"  {'total time (s)':>22} {sum(trace.seconds):>12.1f}")
    return ms_late, kb_late, ms_late / ms_early, cpu_late / cpu_early


def main() -> None:
    """Run both configurations and print their figures and ratios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=500, help="turns per conversation")
    parser.add_argument(
        "--memory", type=int, default=10, help="turns the memory policy keeps (0: skip it)"
    )
    args = parser.parse_args()
    turns = max(args.turns, EARLY[1])
    print(f"{turns}-turn airline conversation on the rules model, one process, SQLite on disk")
    configs: list[tuple[str, int, Memory | None]] = [
        (f"default compaction (every {DEFAULT_COMPACTION} turns)", DEFAULT_COMPACTION, None),
        ("compaction off", 0, None),
    ]
    if args.memory > 0:
        configs += [
            (f"memory of the last {args.memory} turns", DEFAULT_COMPACTION, Memory(args.memory)),
            (
                f"memory of the last {args.memory} turns and a summary",
                DEFAULT_COMPACTION,
                Memory(args.memory, summarize=True),
            ),
        ]
    late: dict[str, tuple[float, float, float, float]] = {}
    with tempfile.TemporaryDirectory(prefix="frontdesk-bench-") as tmp:
        converse(Path(tmp) / "warm-up", EARLY[1], 0, Memory(2, summarize=True))  # not measured
        for index, (name, every, memory) in enumerate(configs):
            trace = converse(Path(tmp) / f"config{index}", turns, every, memory)
            late[name] = report(name, trace, turns)
            if memory is not None and memory.summarize and turns >= memory.last_turns + WINDOW:
                # Summaries start once a turn drops out of the window: compare from there too.
                steady = (memory.last_turns + 2, memory.last_turns + WINDOW + 1)
                late[f"{name}, from turn {steady[0]}"] = report(
                    f"{name}, from turn {steady[0]} (a summary every turn)", trace, turns, steady
                )
    (on_time, on_bytes, *_), (off_time, off_bytes, *_) = list(late.values())[:2]
    print(f"\nlast {WINDOW} turns, compaction off / default compaction:")
    print(f"  time per turn {_ratio(off_time, on_time)}x")
    print(f"  storage per turn {_ratio(off_bytes, on_bytes)}x")
    print(f"\nlast {WINDOW} turns / early turns (target <= {TARGET_RATIO}x):")
    for name, (_, _, ratio, cpu_ratio) in list(late.items())[2:]:
        verdicts = [
            f"{what} {value:.2f}x ({'met' if value <= TARGET_RATIO else 'missed'})"
            for what, value in (("time", ratio), ("CPU", cpu_ratio))
        ]
        print(f"  {name}: {', '.join(verdicts)}")


if __name__ == "__main__":
    main()
