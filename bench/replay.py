"""Benchmark of ``proctor replay`` on a large recording: read, validate, grade.

    .venv/bin/python bench/replay.py [--signals 1000000] [--runs 3] [--file PATH]

Writes the generated load exam (``load_exam``) as JSON Lines to a temp file (or to/from
``--file``, reused when it exists), then replays it ``--runs`` times the way the CLI does
and prints the median CPU and wall time. The project's target: a 1M-signal recording
replayed in at most 5 s.
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import orjson

from services.core.events import event_to_json_obj
from services.judge.default import default_judge
from services.offline.replay import replay_file
from services.offline.scenarios import load_exam
from services.rubrics import resolver


def write_recording(path: Path, signals: int) -> None:
    with path.open("wb") as f:
        for ev in load_exam(signals):
            f.write(orjson.dumps(event_to_json_obj(ev)) + b"\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--signals", type=int, default=1_000_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--file", type=Path, help="recording to write once and reuse")
    args = ap.parse_args()
    print(
        f"python {sys.version.split()[0]}; medians of {args.runs} runs; "
        f"load average {os.getloadavg()[0]:.1f}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        path = args.file or Path(tmp) / "exam.jsonl"
        if not path.exists():
            write_recording(path, args.signals)
        cpu, wall = [], []
        for _ in range(args.runs):
            gc.collect()
            t, w = time.process_time(), time.perf_counter()
            replayed = replay_file(path, resolver(), default_judge())
            cpu.append(time.process_time() - t)
            wall.append(time.perf_counter() - w)
        print(
            f"replay of a {path.stat().st_size / 1e6:.0f} MB recording ({replayed.events:,} events): "
            f"{statistics.median(cpu):.2f} s CPU median ({', '.join(f'{x:.2f}' for x in cpu)}); "
            f"wall {statistics.median(wall):.2f} s ({', '.join(f'{x:.2f}' for x in wall)})"
        )


if __name__ == "__main__":
    main()
