"""Simulation of a cohort on a worker group: how far behind live grading falls, and for how long.

    .venv/bin/python bench/scale.py [--exams 10000] [--workers 4] [--worker-rate 6860]
                                    [--steady 0.5] [--burst-rate 50000] [--burst-seconds 60]
                                    [--kill-at 900] [--idle-freshness-p99 2.4]

A fluid model, second by second, of what ``docs/deployment.md`` sizes on paper. Exams are
spread over the input topics' partitions by a hash of their platform id (the key), and
the partitions over the workers as Faust's assignor does (as evenly as counts allow, so
6 partitions on 4 workers are 2, 2, 1, 1). Each worker grades at most ``--worker-rate``
events/s (what ``bench/service.py`` measured for one worker on one core), shared among
its partitions by their backlog; each partition is a FIFO queue. The load is a steady
``--steady`` events/s per exam, plus a burst of ``--burst-rate`` events/s for
``--burst-seconds`` (every collector flushing at once); then one worker is killed, its
partitions wait the group's session timeout, a restore from the changelog, and move to
the others.

Printed: each worker's steady load, the backlog's peak, how long each disturbance takes
to drain, and the delay an event waits in the queue (exact for FIFO queues), p50 / p99 /
max over all events, with the freshness that makes (delay plus the idle freshness p99
measured by ``bench/service.py``).
"""

from __future__ import annotations

import argparse
import bisect
import itertools
import zlib
from dataclasses import dataclass


@dataclass(frozen=True)
class Scenario:
    exams: int
    workers: int
    partitions: int
    worker_rate: float
    steady: float
    burst_rate: float
    burst_at: int
    burst_seconds: int
    kill_at: int | None
    session_timeout_s: int
    restore_s: int
    duration: int


def spread(exams: int, partitions: int) -> list[int]:
    """Exams per partition: a hash of each platform id, as a keyed producer spreads them."""
    counts = [0] * partitions
    for i in range(exams):
        counts[zlib.crc32(f"basecamp-{i:05d}".encode()) % partitions] += 1
    return counts


def assign(partitions: list[int], workers: list[int]) -> dict[int, list[int]]:
    """Partitions over workers as evenly as counts allow (round robin)."""
    out: dict[int, list[int]] = {w: [] for w in workers}
    for p, w in zip(partitions, itertools.cycle(workers), strict=False):
        out[w].append(p)
    return out


def simulate(s: Scenario) -> dict[str, object]:
    share = [c / s.exams for c in spread(s.exams, s.partitions)]
    owners = assign(list(range(s.partitions)), list(range(s.workers)))
    backlog = [0.0] * s.partitions
    arrived = [[0.0] for _ in range(s.partitions)]  # cumulative, per second
    served = [[0.0] for _ in range(s.partitions)]
    busy = {w: 0.0 for w in owners}
    steady_busy: dict[int, float] = {}
    peak_backlog = 0.0
    dead: int | None = None
    orphans: list[int] = []
    for t in range(s.duration):
        if s.kill_at is not None and t == s.kill_at:
            dead = max(owners, key=lambda w: len(owners[w]))
            orphans = owners.pop(dead)
        if orphans and s.kill_at is not None and t == s.kill_at + s.session_timeout_s + s.restore_s:
            for p in orphans:  # to the workers with fewest partitions
                min(owners.values(), key=len).append(p)
            orphans = []
        rate = s.exams * s.steady
        if s.burst_at <= t < s.burst_at + s.burst_seconds:
            rate = s.burst_rate
        for p in range(s.partitions):
            backlog[p] += rate * share[p]
            arrived[p].append(arrived[p][-1] + rate * share[p])
        done = [0.0] * s.partitions
        for w, parts in owners.items():
            want = sum(backlog[p] for p in parts)
            if want <= 0:
                continue
            cap = min(s.worker_rate, want)
            for p in parts:
                done[p] = cap * backlog[p] / want
            busy[w] += cap / s.worker_rate
            if t == s.burst_at - 1:
                steady_busy[w] = cap / s.worker_rate
        for p in range(s.partitions):
            backlog[p] -= done[p]
            served[p].append(served[p][-1] + done[p])
        peak_backlog = max(peak_backlog, sum(backlog))
    return {
        "share": share,
        "steady_busy": steady_busy,
        "peak_backlog": peak_backlog,
        "delays": delays(arrived, served),
        "drained": drained_after(arrived, served, s),
    }


def delays(arrived: list[list[float]], served: list[list[float]]) -> list[tuple[int, float, float]]:
    """(second, delay in s, events) for each partition-second: how long until the queue has
    served everything that arrived by then (FIFO)."""
    out: list[tuple[int, float, float]] = []
    for a, sv in zip(arrived, served, strict=True):
        for t in range(1, len(a)):
            n = a[t] - a[t - 1]
            if n <= 0:
                continue
            # first second s with everything that arrived by t served (the fluid queue)
            s = bisect.bisect_left(sv, a[t] - 1e-6, lo=t)
            out.append((t, float(s - t) if s < len(sv) else float("inf"), n))
    return out


def drained_after(
    arrived: list[list[float]], served: list[list[float]], s: Scenario
) -> dict[str, float]:
    def back(t: int) -> float:
        return sum(a[t] - sv[t] for a, sv in zip(arrived, served, strict=True))

    def first_clear(start: int) -> float:
        base = s.exams * s.steady * 1.01 + 1  # a second's arrivals: nothing queued beyond
        for t in range(start, s.duration):
            if back(t) <= base:
                return float(t - start)
        return float("inf")

    out = {"the burst ended": first_clear(s.burst_at + s.burst_seconds)}
    if s.kill_at is not None:
        moved = s.kill_at + s.session_timeout_s + s.restore_s
        out["the lost worker's partitions moved"] = first_clear(moved)
    return out


def percentile(weighted: list[tuple[int, float, float]], q: float) -> float:
    items = sorted((d, n) for _t, d, n in weighted)
    total = sum(n for _d, n in items)
    acc = 0.0
    for d, n in items:
        acc += n
        if acc >= q * total:
            return d
    return items[-1][0]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--exams", type=int, default=10_000)
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--partitions", type=int, default=6, help="input topics' partitions")
    ap.add_argument(
        "--worker-rate", type=float, default=6_860, help="events/s of one worker (bench/service.py)"
    )
    ap.add_argument("--steady", type=float, default=0.5, help="events/s per exam")
    ap.add_argument("--burst-rate", type=float, default=50_000, help="events/s during a burst")
    ap.add_argument("--burst-at", type=int, default=300)
    ap.add_argument("--burst-seconds", type=int, default=60)
    ap.add_argument("--kill-at", type=int, default=900, help="a worker dies (-1: none)")
    ap.add_argument("--session-timeout", type=int, default=60, help="s until the group notices")
    ap.add_argument("--restore", type=int, default=5, help="s to read a partition's changelog")
    ap.add_argument("--duration", type=int, default=1800)
    ap.add_argument(
        "--idle-freshness-p99", type=float, default=2.4, help="s, bench/service.py with no backlog"
    )
    a = ap.parse_args()
    s = Scenario(
        a.exams,
        a.workers,
        a.partitions,
        a.worker_rate,
        a.steady,
        a.burst_rate,
        a.burst_at,
        a.burst_seconds,
        None if a.kill_at < 0 else a.kill_at,
        a.session_timeout,
        a.restore,
        a.duration,
    )
    r = simulate(s)
    share = r["share"]
    assert isinstance(share, list)
    owners = assign(list(range(s.partitions)), list(range(s.workers)))
    steady = s.exams * s.steady
    print(
        f"{s.exams:,} exams, {steady:,.0f} events/s steady, on {s.workers} workers of "
        f"{s.worker_rate:,.0f} events/s ({s.workers * s.worker_rate:,.0f} in all), "
        f"{s.partitions} partitions"
    )
    spread_txt = ", ".join(f"{100 * x:.1f}%" for x in share)
    print(f"  exams per partition (share of the load): {spread_txt}")
    steady_busy = r["steady_busy"]
    assert isinstance(steady_busy, dict)
    for w, parts in owners.items():
        print(
            f"  worker {w}: partitions {parts}, steady load {100 * steady_busy.get(w, 0.0):.0f}% "
            f"of its rate"
        )
    print(f"  burst: {s.burst_rate:,.0f} events/s for {s.burst_seconds} s at t={s.burst_at} s")
    if s.kill_at is not None:
        print(
            f"  worker loss at t={s.kill_at} s: its partitions wait {s.session_timeout_s} s "
            f"(session timeout) + {s.restore_s} s (restore), then move"
        )
    drained = r["drained"]
    assert isinstance(drained, dict)
    for what, secs in drained.items():
        print(f"  backlog drained {secs:.0f} s after {what}")
    print(f"  peak backlog: {r['peak_backlog']:,.0f} events")
    d = r["delays"]
    assert isinstance(d, list)
    p50, p99, worst = percentile(d, 0.5), percentile(d, 0.99), max(x for _t, x, _n in d)
    f = a.idle_freshness_p99
    windows = {"steady (before the burst)": (0, s.burst_at)}
    windows["arriving during the burst"] = (s.burst_at, s.burst_at + s.burst_seconds)
    if s.kill_at is not None:
        windows["arriving while a worker is lost"] = (
            s.kill_at,
            s.kill_at + s.session_timeout_s + s.restore_s,
        )
    for what, (lo, hi) in windows.items():
        inside = [x for t, x, _n in d if lo <= t < hi]
        print(f"  worst queue delay of events {what}: {max(inside, default=0.0):.0f} s")
    print(f"  queue delay p50 / p99 / max: {p50:.0f} / {p99:.0f} / {worst:.0f} s")
    print(
        f"  freshness (delay + {f} s idle p99) p50 / p99 / max: "
        f"{p50 + f:.1f} / {p99 + f:.1f} / {worst + f:.1f} s"
    )


if __name__ == "__main__":
    main()
