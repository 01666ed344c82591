"""Benchmark of the grading engine, beside a naive grader in the same run.

    .venv/bin/python bench/engine.py [--signals 1000000] [--runs 3] [--naive-events 20000]

Prints, each as the median of ``--runs`` runs on one core:

* events/s through the engine on a generated exam of ``--signals`` platform signals
  (``load_exam``: offsets, checkpoints, commits, queries, a heartbeat per collector
  every 30 s, ...), event by event (``Engine.apply``) and in batches of 4,096
  (``Engine.apply_many``, what a stream worker does);
* the bytes of that exam's state (``platform_to_bytes``, the value a Faust table keeps);
* the naive grader (``NaiveGrader``: the whole history re-graded on every event, the
  check-script approach) on a ``--naive-events`` exam, beside the engine on the same
  exam, and the ratio. The naive grader's cost grows with the history, so by default
  its mean cost per event is measured by re-grading at ``--naive-samples`` evenly spaced
  history lengths (an unbiased estimate of the full run); ``--naive-full`` re-grades
  after every one of the events instead (slow: minutes);
* the time to replay a JSON Lines recording of the big exam (written to a temp file):
  read, parse, grade, as ``proctor replay`` does.

Rates are on the process's CPU time (the machine is shared); the replay also prints
its wall time.
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import orjson

from services.core.engine import Engine
from services.core.events import Event, event_to_json_obj
from services.core.reference import NaiveGrader, grade_history
from services.core.state_codec import platform_to_bytes
from services.judge.default import default_judge
from services.offline.replay import replay_file
from services.offline.scenarios import load_exam
from services.rubrics import resolver

PLATFORM = "basecamp-load"


def median_rate(n: int, runs: int, once: Callable[[], None]) -> tuple[float, list[float]]:
    """Median events/s over ``runs`` runs, on the process's CPU time.

    CPU time, not wall time: the machine is shared (other builds, JVMs), and what this
    measures is the cost of grading on one core, not how much of the core we got.
    """
    rates = []
    for _ in range(runs):
        gc.collect()
        t = time.process_time()
        once()
        rates.append(n / (time.process_time() - t))
    return statistics.median(rates), rates


def engine_per_event(events: list[Event]) -> Callable[[], None]:
    def run() -> None:
        engine = Engine(resolver(), default_judge())
        apply = engine.apply
        for ev in events:
            apply(ev)

    return run


def engine_batched(events: list[Event], batch: int = 4096) -> Callable[[], None]:
    def run() -> None:
        engine = Engine(resolver(), default_judge())
        for i in range(0, len(events), batch):
            engine.apply_many(events[i : i + batch])

    return run


def naive_rate(events: list[Event], samples: int, full: bool) -> float:
    """Events per second of the naive grader over the whole exam."""
    naive = NaiveGrader(resolver(), default_judge())
    if full:
        t = time.process_time()
        for ev in events:
            naive.apply(ev)
        return len(events) / (time.process_time() - t)
    points = sorted({max(1, round(len(events) * (i + 0.5) / samples)) for i in range(samples)})
    costs = []
    for k in points:
        naive.history = events[: k - 1]
        t = time.process_time()
        naive.apply(events[k - 1])  # the k-th event: re-grade a history of k events
        costs.append(time.process_time() - t)
    return 1.0 / statistics.mean(costs)


def fmt(rate: float) -> str:
    return f"{rate:,.0f} events/s"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--signals", type=int, default=1_000_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--naive-events", type=int, default=20_000)
    ap.add_argument("--naive-samples", type=int, default=200)
    ap.add_argument("--naive-full", action="store_true")
    args = ap.parse_args()

    load = os.getloadavg()[0]
    print(
        f"python {sys.version.split()[0]}, one process, CPU time; medians of {args.runs} runs; load average {load:.1f}"
    )
    t = time.perf_counter()
    big = load_exam(args.signals)
    print(
        f"generated an exam of {len(big):,} events ({args.signals:,} load signals) in {time.perf_counter() - t:.1f} s"
    )

    per_event, runs1 = median_rate(len(big), args.runs, engine_per_event(big))
    batched, runs2 = median_rate(len(big), args.runs, engine_batched(big))
    print(
        f"engine, event by event (apply):      {fmt(per_event)}   runs: {', '.join(fmt(r) for r in runs1)}"
    )
    print(
        f"engine, batches of 4,096 (apply_many): {fmt(batched)}   runs: {', '.join(fmt(r) for r in runs2)}"
    )

    engine = Engine(resolver(), default_judge())
    engine.apply_many(big)
    engine.evaluate(max(e.ts_ms for e in big))
    state = platform_to_bytes(engine, PLATFORM)
    result = engine.results()[0]
    print(
        f"state of the whole exam: {len(state):,} bytes (orjson); graded {result.total_pct:g}%, passed={result.passed}"
    )

    small = load_exam(args.naive_events)
    eng_small, _ = median_rate(len(small), args.runs, engine_per_event(small))
    t = time.perf_counter()
    naive = naive_rate(small, args.naive_samples, args.naive_full)
    how = "every event" if args.naive_full else f"mean of {args.naive_samples} history lengths"
    print(
        f"naive grader on a {len(small):,}-event exam ({how}): {fmt(naive)} "
        f"[{time.perf_counter() - t:.0f} s]; engine on the same exam: {fmt(eng_small)}; "
        f"ratio {eng_small / naive:,.0f}x (per event), {batched / naive:,.0f}x (batched, big exam)"
    )
    check = Engine(resolver(), default_judge())
    for ev in small:
        check.apply(ev)
    at = max(e.ts_ms for e in small)
    check.evaluate(at)
    same = check.results() == grade_history(small, resolver(), default_judge(), at_ms=at)
    print(f"engine result == naive grader's on that exam: {same}")

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "exam.jsonl"
        with path.open("wb") as f:
            for ev in big:
                f.write(orjson.dumps(event_to_json_obj(ev)) + b"\n")
        del engine, big
        gc.collect()
        size = path.stat().st_size
        cpu, wall = [], []
        for _ in range(args.runs):
            gc.collect()
            t, w = time.process_time(), time.perf_counter()
            replayed = replay_file(path, resolver(), default_judge())
            cpu.append(time.process_time() - t)
            wall.append(time.perf_counter() - w)
        print(
            f"replay of a {size / 1e6:.0f} MB recording ({replayed.events:,} events), read+parse+grade: "
            f"{statistics.median(cpu):.2f} s CPU median ({', '.join(f'{x:.2f}' for x in cpu)}); "
            f"wall {statistics.median(wall):.2f} s"
        )


if __name__ == "__main__":
    main()
