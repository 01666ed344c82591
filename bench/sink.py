"""Rows per second the Iceberg sink lands alone, the row-by-row path beside the columnar one.

    .venv/bin/python bench/sink.py [--rows 200000] [--commit-rows 16000] [--runs 3] [--quick]

The same transition rows (32 criteria per exam ending, as an exam.ended closes them) go
through the sink as the worker drives it: ``offer`` and ``processed`` per record, ``take``
and ``write`` (one Iceberg snapshot with its source offsets) every ``--commit-rows`` rows
(16,000: one second of a burst of 500 exam endings per second), then ``finish``. Two paths,
alternating in each run, on the local stack's catalog:

* row by row (the former path): the id hashed where each stage reads it, a dict per row
  through ``pa.Table.from_pylist``, every row checked against the table's offsets;
* columnar (now): the id computed once per row, Arrow built column by column, rows checked
  only for partitions another writer moved.

Printed: median rows/s of each over ``--runs`` runs, and where a commit's time goes
(Arrow conversion against the rest of ``write``: Parquet, manifests, catalog). The
namespace is the bench's own and is dropped at the end.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import time
import uuid
from collections.abc import Sequence

import pyarrow as pa

from services.core.events import SourcePosition
from services.grader.offsets import CommittedOffsets
from services.grader.row_table import to_arrow, to_arrow_by_row
from services.grader.rows import Evidence, TransitionRow, transition_id_of
from services.grader.sink import IcebergSink, SinkConfig
from services.stack.catalog import load_catalog
from services.stack.config import StackConfig

CRITERIA = 32
PARTITIONS = 6


def rows_of(n: int) -> list[TransitionRow]:
    """``n`` rows shaped as an exam.ended makes them: 32 criteria per ending record."""
    now = int(time.time() * 1000)
    rows: list[TransitionRow] = []
    for i in range(n):
        exam, criterion = divmod(i, CRITERIA)
        partition = exam % PARTITIONS
        offset = exam // PARTITIONS
        pid = f"bench-{exam:06d}"
        rows.append(
            TransitionRow(
                exam_id=f"exam-{pid}",
                candidate_id=pid,
                platform_id=pid,
                rubric_id="y3-final",
                rubric_version="1",
                part=criterion % 4 or None,
                criterion_id=f"p{criterion % 3 + 1}.criterion_{criterion:02d}",
                state="expired",
                previous_state="pending",
                score=0.0,
                max_score=2.0,
                reason="Part 1 never opened (no part.started part=1) before the exam ended.",
                event_ts_ms=now,
                graded_at_ms=now,
                source=SourcePosition("exam.control", partition, offset),
                seq=criterion + 1,
                evidence=(Evidence(f"{pid}-end", "exam.control", partition, offset),),
            )
        )
    return rows


class RowByRowSink(IcebergSink):
    """The former per-row costs: the id hashed at each read, each row checked at write."""

    def offer(self, row: TransitionRow) -> bool:
        transition_id_of(row)
        return super().offer(row)

    def _not_covered(
        self, rows: tuple[TransitionRow, ...], current: CommittedOffsets
    ) -> Sequence[TransitionRow]:
        return [
            r
            for r in rows
            if r.source.offset >= current.next_offset((r.source.topic, r.source.partition))
        ]


def timed(convert: object) -> tuple[list[float], object]:
    spent: list[float] = []

    def wrapper(rows: Sequence[TransitionRow], schema: pa.Schema) -> pa.Table:
        t0 = time.perf_counter()
        out = convert(rows, schema)  # type: ignore[operator]
        spent.append(time.perf_counter() - t0)
        return out

    return spent, wrapper


def land(sink: IcebergSink, rows: list[TransitionRow], commit_rows: int) -> tuple[float, int]:
    """Offer every row with its record's next offset, committing every ``commit_rows``;
    returns seconds and commits."""
    commits = 0
    start = time.perf_counter()
    for lo in range(0, len(rows), commit_rows):
        for row in rows[lo : lo + commit_rows]:
            sink.offer(row)
            sink.processed((row.source.topic, row.source.partition), row.source.offset + 1)
        batch = sink.take()
        assert batch is not None
        sink.finish(sink.write(batch))
        commits += 1
    return time.perf_counter() - start, commits


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=200_000)
    ap.add_argument("--commit-rows", type=int, default=16_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="64,000 rows")
    args = ap.parse_args()
    n = 64_000 if args.quick else args.rows

    config = StackConfig.from_env()
    catalog = load_catalog(config)
    namespace = f"bench_sink_{uuid.uuid4().hex[:8]}"
    catalog.create_namespace(namespace)
    results: dict[str, list[float]] = {"row by row": [], "columnar": []}
    arrow_s: dict[str, list[float]] = {"row by row": [], "columnar": []}
    write_s: dict[str, list[float]] = {"row by row": [], "columnar": []}
    try:
        t0 = time.perf_counter()
        rows = rows_of(n)
        print(f"{n:,} rows made in {time.perf_counter() - t0:.1f} s", flush=True)
        for run in range(args.runs):
            for name, cls, convert in (
                ("row by row", RowByRowSink, to_arrow_by_row),
                ("columnar", IcebergSink, to_arrow),
            ):
                spent, wrapper = timed(convert)
                ident = f"{namespace}.t_{run}_{name.replace(' ', '_')}"
                sink = cls(catalog, SinkConfig(identifier=ident), arrow=wrapper)  # type: ignore[arg-type]
                sink.open()
                seconds, commits = land(sink, rows, args.commit_rows)
                results[name].append(n / seconds)
                arrow_s[name].append(sum(spent) / commits)
                write_s[name].append(seconds / commits)
                print(
                    f"run {run + 1} {name:<10}: {n / seconds:>9,.0f} rows/s "
                    f"({commits} commits, {seconds / commits:.2f} s each, "
                    f"Arrow {sum(spent) / commits:.3f} s)",
                    flush=True,
                )
        load = os.getloadavg()
        print()
        print(f"sink alone, {n:,} rows, {args.commit_rows:,} rows per commit, {args.runs} runs")
        print(f"load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}")
        print(f"{'path':<12} {'rows/s (median)':>16} {'s per commit':>13} {'of which Arrow':>15}")
        for name in results:
            print(
                f"{name:<12} {statistics.median(results[name]):>16,.0f} "
                f"{statistics.median(write_s[name]):>13.3f} "
                f"{statistics.median(arrow_s[name]):>15.3f}"
            )
        ratio = statistics.median(results["columnar"]) / statistics.median(results["row by row"])
        print(f"columnar / row by row: {ratio:.2f}x")
    finally:
        for identifier in catalog.list_tables(namespace):
            with contextlib.suppress(Exception):
                catalog.purge_table(identifier)
        with contextlib.suppress(Exception):
            catalog.drop_namespace(namespace)


if __name__ == "__main__":
    main()
