"""Benchmark of the worker's grading step (PartitionGrader.handle) beside the engine alone.

    .venv/bin/python bench/partition.py [--records 100000] [--platforms 20] [--runs 3]
        [--old-grader FILE]   # e.g. `git show <rev>:services/grader/grading.py > FILE`

A generated partition: ``--platforms`` load exams (``load_exam``) of about
``--records / --platforms`` records each, merged in event-time order, each record on
its contract topic with its own offset. Prints, as the median of ``--runs`` runs (wall time of the grader,
CPU time of the engines alone; the machine is shared):

* µs/record through ``PartitionGrader.handle`` (engine included);
* µs/record of the engines alone (``Engine.apply`` of every record on its platform's
  engine, then ``Engine.evaluate`` at the platform's latest event time, nothing else);
* the grading step beyond the engine: handle's time less the time spent inside the
  engine's own calls (apply, evaluate, next_deadline_ms), timed around each call;
* the grading step alone: handle with engines that do nothing (CPU time, the
  steadiest figure on a shared machine);
* with ``--old-grader``, the same figures for another PartitionGrader module (an
  earlier version of services/grader/grading.py) in the same run.
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import statistics
import sys
import time
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from services.contract.schemas import load_contract
from services.core.engine_store import EngineStore
from services.core.events import Event, SourcePosition
from services.core.model import Transition
from services.grader.grading import PartitionGrader
from services.judge.default import default_judge
from services.offline.load import load_exam
from services.rubrics import resolver


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


class Timed:
    """An engine whose calls are timed (the time inside the engine, not the grader's)."""

    spent = 0.0

    def __init__(self, engine: Any) -> None:
        self.engine = engine

    @property
    def conflict(self) -> bool:
        return bool(getattr(self.engine, "conflict", False))

    def apply(self, event: Event) -> Sequence[Transition]:
        t0 = time.perf_counter()
        out = self.engine.apply(event)
        Timed.spent += time.perf_counter() - t0
        return out

    def evaluate(self, at_ms: int) -> Sequence[Transition]:
        t0 = time.perf_counter()
        out = self.engine.evaluate(at_ms)
        Timed.spent += time.perf_counter() - t0
        return out

    def next_deadline_ms(self) -> int | None:
        t0 = time.perf_counter()
        out = self.engine.next_deadline_ms()
        Timed.spent += time.perf_counter() - t0
        return out


class TimedStore:
    def __init__(self, store: EngineStore) -> None:
        self.store = store

    def new(self, platform_id: str) -> Timed:
        return Timed(self.store.new(platform_id))

    def dump(self, engine: Timed) -> bytes:
        return self.store.dump(engine.engine)

    def load(self, data: bytes) -> Timed:
        return Timed(self.store.load(data))


def run_grader(
    steps: list[tuple[Event, SourcePosition]], store: EngineStore, grader_cls: Any
) -> tuple[float, float]:
    """(seconds of the whole run, of it inside the engines): wall time (perf_counter),
    cheap enough to take around every engine call; the machine is shared, so compare
    figures of one run."""
    grader = grader_cls(0, TimedStore(store), clock_ms=lambda: 0)
    note = getattr(grader, "note_log_ends", None)
    if note is not None:  # the worker's tick: every topic read to its end is idle
        ends: dict[str, int] = defaultdict(int)
        for _, pos in steps:
            ends[pos.topic] = pos.offset + 1
        note(dict(ends))
    gc.collect()
    Timed.spent = 0.0
    t0 = time.perf_counter()
    for ev, pos in steps:
        grader.handle(ev, pos)
    return time.perf_counter() - t0, Timed.spent


class Noop:
    """An engine that does nothing: what is left is the grading step's own cost."""

    conflict = False

    def apply(self, event: Event) -> Sequence[Transition]:
        return ()

    def evaluate(self, at_ms: int) -> Sequence[Transition]:
        return ()

    def next_deadline_ms(self) -> int | None:
        return None


class NoopStore:
    def new(self, platform_id: str) -> Noop:
        return Noop()

    def dump(self, engine: Noop) -> bytes:
        return b""

    def load(self, data: bytes) -> Noop:
        return Noop()


def run_noop(steps: list[tuple[Event, SourcePosition]], grader_cls: Any) -> float:
    """CPU seconds of handle over the stream with engines that do nothing."""
    grader = grader_cls(0, NoopStore(), clock_ms=lambda: 0)
    note = getattr(grader, "note_log_ends", None)
    if note is not None:
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
    """The engines' own work: apply each record, then evaluate its platform at the
    platform's latest event time (the time boxes close as in the grader)."""
    engines = {}
    latest: dict[str, int] = {}
    gc.collect()
    t0 = time.process_time()
    for ev, _ in steps:
        pid = ev.platform_id
        engine = engines.get(pid)
        if engine is None:
            engine = engines[pid] = store.new(pid)
        engine.apply(ev)
        if ev.ts_ms > latest.get(pid, 0):
            latest[pid] = ev.ts_ms
            engine.evaluate(ev.ts_ms)
    return time.process_time() - t0


def load_grader(path: str) -> Any:
    spec = importlib.util.spec_from_file_location("old_grading", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["old_grading"] = module
    spec.loader.exec_module(module)
    return module.PartitionGrader


def report(name: str, runs: list[tuple[float, float]], n: int) -> None:
    total = statistics.median(r[0] for r in runs)
    step = statistics.median(r[0] - r[1] for r in runs)
    print(
        f"{name}: handle {total / n * 1e6:6.1f} µs/record, grading step beyond the engine "
        f"{step / n * 1e6:5.1f} µs/record"
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--records", type=int, default=100_000)
    ap.add_argument("--platforms", type=int, default=20)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--old-grader", default=None)
    args = ap.parse_args()
    steps = stream(args.records, args.platforms)
    store = EngineStore(resolver(), default_judge())
    n = len(steps)
    print(f"{n} records, {args.platforms} platforms, median of {args.runs} runs (CPU time)")
    graders = [("PartitionGrader", PartitionGrader)]
    if args.old_grader:
        graders.append(("old PartitionGrader", load_grader(args.old_grader)))
    results = {name: [] for name, _ in graders}
    for _ in range(args.runs):  # alternate, so both see the same load of the machine
        for name, cls in graders:
            results[name].append(run_grader(steps, store, cls))
    for name, _ in graders:
        report(name, results[name], n)
    for name, cls in graders:
        noop = statistics.median(run_noop(steps, cls) for _ in range(max(3, args.runs)))
        print(f"{name} with engines that do nothing: {noop / n * 1e6:6.1f} µs/record (CPU)")
    alone = statistics.median(run_engines(steps, store) for _ in range(args.runs))
    print(
        f"engines alone (apply, evaluate at the platform's time): {alone / n * 1e6:6.1f} µs/record"
    )


if __name__ == "__main__":
    main()
