"""Benchmark of the worker's grading step (PartitionGrader.handle) beside the engine alone.

    .venv/bin/python bench/partition.py [--records 100000] [--platforms 20] [--runs 3]

A generated partition: ``--platforms`` load exams (``load_exam``) of about
``--records / --platforms`` records each, merged in event-time order, each record on
its contract topic with its own offset. Prints, as the median of ``--runs`` runs (CPU
time of the process; the machine is shared):

* µs/record through ``PartitionGrader.handle`` (engine included);
* µs/record of the engines alone (``Engine.apply`` of every record on its platform's
  engine, nothing else);
* the difference: what the grading step costs beyond the engine's own apply.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import time
from collections import defaultdict

from services.contract.schemas import load_contract
from services.core.engine_store import EngineStore
from services.core.events import Event, SourcePosition
from services.grader.grading import PartitionGrader
from services.offline.load import load_exam


def stream(records: int, platforms: int) -> list[tuple[Event, SourcePosition]]:
    contract = load_contract()
    events: list[Event] = []
    for i in range(platforms):
        events += load_exam(max(1, records // platforms), seed=i, platform_id=f"load-{i:03d}")
    events.sort(key=lambda e: (e.ts_ms, e.event_id))
    offsets: dict[str, int] = defaultdict(int)
    out = []
    for ev in events:
        topic = str(contract.schema(ev.type).topic)
        out.append((ev, SourcePosition(topic, 0, offsets[topic])))
        offsets[topic] += 1
    return out


def run_grader(steps: list[tuple[Event, SourcePosition]], store: EngineStore) -> float:
    grader = PartitionGrader(0, store, clock_ms=lambda: 0)
    note = getattr(grader, "note_log_ends", None)
    if note is not None:  # the worker's tick: every topic read to its end is idle
        ends: dict[str, int] = defaultdict(int)
        for _, pos in steps:
            ends[pos.topic] = pos.offset + 1
        note(dict(ends))
    gc.collect()
    t0 = time.process_time()
    for ev, pos in steps:
        grader.handle(ev, pos)
    return time.process_time() - t0


def run_engines(steps: list[tuple[Event, SourcePosition]], store: EngineStore) -> float:
    engines = {}
    gc.collect()
    t0 = time.process_time()
    for ev, _ in steps:
        engine = engines.get(ev.platform_id)
        if engine is None:
            engine = engines[ev.platform_id] = store.new(ev.platform_id)
        engine.apply(ev)
    return time.process_time() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--records", type=int, default=100_000)
    ap.add_argument("--platforms", type=int, default=20)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    steps = stream(args.records, args.platforms)
    store = EngineStore()
    n = len(steps)
    graded = statistics.median(run_grader(steps, store) for _ in range(args.runs))
    alone = statistics.median(run_engines(steps, store) for _ in range(args.runs))
    print(f"{n} records, {args.platforms} platforms, median of {args.runs} runs (CPU time)")
    print(f"PartitionGrader.handle: {graded / n * 1e6:8.1f} µs/record")
    print(f"engines alone (apply):  {alone / n * 1e6:8.1f} µs/record")
    print(f"grading step beyond the engine: {(graded - alone) / n * 1e6:8.1f} µs/record")


if __name__ == "__main__":
    main()
