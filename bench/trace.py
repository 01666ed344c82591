"""What carrying a record's trace onto its rows costs the worker, each part beside what
it replaced, in the same run (in process, no broker).

    .venv/bin/python bench/trace.py [--signals 40000] [--platforms 50] [--runs 3]

Prints, each the median of ``--runs`` runs on one core (CPU time of the process):

* reading the trace id from a record's headers (``telemetry.trace_id_of``: the
  worker's per-record read), beside the W3C propagator's parse of the same header;
* the partition grader over the same recording with each record's trace handed to its
  rows, beside the same without (the grader's step, µs per record);
* the sink's Arrow table of 16,000 rows with the two trace columns, beside the table
  without them (µs per row).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable

from opentelemetry import trace
from opentelemetry.propagate import extract

from services.contract.schemas import PLATFORM_PARTITIONS
from services.core.engine_store import EngineStore
from services.core.events import Event, SourcePosition
from services.grader.grading import PartitionGrader
from services.grader.row_table import TRACE_COLUMNS, TRANSITIONS_SCHEMA, to_arrow
from services.grader.rows import NO_TRACE, Trace, TransitionRow
from services.grader.telemetry import trace_id_of
from services.judge.default import default_judge
from services.offline.scenarios import load_exam
from services.rubrics import resolver


def cpu(fn: Callable[[], object]) -> float:
    start = time.process_time()
    fn()
    return time.process_time() - start


def headers_of(n: int) -> list[tuple[tuple[str, bytes], ...]]:
    """Headers as a published signal carries them: type, MAC, key id, traceparent."""
    out = []
    for _ in range(n):
        tp = f"00-{os.urandom(16).hex()}-{os.urandom(8).hex()}-01".encode()
        out.append(
            (
                ("proctor.type", b"tool.used"),
                ("proctor.mac", os.urandom(32)),
                ("proctor.key", b"k1"),
                ("traceparent", tp),
            )
        )
    return out


def grade(events: list[Event], traced: bool) -> float:
    """µs of CPU per record through fresh partition graders."""
    store = EngineStore(resolver(), default_judge())
    graders = {p: PartitionGrader(p, store) for p in range(PLATFORM_PARTITIONS)}
    traces: list[Trace] = [
        (os.urandom(16).hex(), None) if traced else NO_TRACE for _ in range(len(events))
    ]
    offsets: dict[int, int] = {}
    places = []
    for e in events:
        p = hash(e.platform_id) % PLATFORM_PARTITIONS
        offsets[p] = offsets.get(p, -1) + 1
        places.append((p, SourcePosition("platform.bench", p, offsets[p])))

    def run() -> None:
        for e, (p, pos), t in zip(events, places, traces, strict=True):
            graders[p].handle(e, pos, t)

    return 1e6 * cpu(run) / len(events)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--signals", type=int, default=40_000)
    ap.add_argument("--platforms", type=int, default=50)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--core", type=int, default=1)
    args = ap.parse_args()
    os.sched_setaffinity(0, {args.core})
    load = os.getloadavg()
    per = max(1, args.signals // args.platforms)
    events: list[Event] = []
    for p in range(args.platforms):
        events.extend(load_exam(per, seed=p, platform_id=f"basecamp-b{p:03d}"))
    events.sort(key=lambda e: e.ts_ms)
    headers = headers_of(100_000)

    def ours() -> None:
        for h in headers:
            trace_id_of(h)

    def propagator() -> None:
        for h in headers:
            ctx = extract({"traceparent": h[3][1].decode("latin-1")})
            format(trace.get_current_span(ctx).get_span_context().trace_id, "032x")

    results: dict[str, list[float]] = {k: [] for k in ("ours", "prop", "g0", "g1", "a0", "a1")}
    rows: list[TransitionRow] = []
    store = EngineStore(resolver(), default_judge())
    g = PartitionGrader(0, store)
    for i, e in enumerate(events):
        rows += g.handle(e, SourcePosition("t", 0, i), (os.urandom(16).hex(), None)).rows
        if len(rows) >= 16_000:
            break
    rows = (rows * (16_000 // max(1, len(rows)) + 1))[:16_000]
    with_trace = TRANSITIONS_SCHEMA.as_arrow()
    without = with_trace.remove(with_trace.get_field_index("grade_span_id")).remove(
        with_trace.get_field_index("trace_id")
    )
    assert not set(TRACE_COLUMNS) & set(without.names)
    for _ in range(args.runs):
        results["ours"].append(1e6 * cpu(ours) / len(headers))
        results["prop"].append(1e6 * cpu(propagator) / len(headers))
        results["g0"].append(grade(events, traced=False))
        results["g1"].append(grade(events, traced=True))
        results["a0"].append(1e6 * cpu(lambda: to_arrow(rows, without)) / len(rows))
        results["a1"].append(1e6 * cpu(lambda: to_arrow(rows, with_trace)) / len(rows))
    med = {k: statistics.median(v) for k, v in results.items()}
    after = os.getloadavg()
    print(
        f"{len(events):,} records of {args.platforms} exams; {len(rows):,} rows; runs {args.runs}"
    )
    print(f"load average before {load[0]:.1f}, after {after[0]:.1f} ({after[1]:.1f} over 5 min)")
    print("| part | before | with the trace | µs added |")
    print("|---|---:|---:|---:|")
    print(
        f"| trace id of a record (µs) | propagator {med['prop']:.2f} | {med['ours']:.2f} "
        f"| {med['ours']:.2f} |"
    )
    print(
        f"| grader step, µs/record | {med['g0']:.1f} | {med['g1']:.1f} | "
        f"{med['g1'] - med['g0']:+.1f} |"
    )
    print(
        f"| Arrow table, µs/row | {med['a0']:.2f} | {med['a1']:.2f} | "
        f"{med['a1'] - med['a0']:+.2f} |"
    )
    print("runs:", {k: [round(x, 2) for x in v] for k, v in results.items()})


if __name__ == "__main__":
    main()
