"""The cohort simulation behind docs/deployment.md's sizing (bench/scale.py)."""

from __future__ import annotations

import dataclasses
import importlib.util
import sys

import pytest

from services.stack.config import REPO_ROOT

# bench/ holds scripts, not a package: load the script as a module
_spec = importlib.util.spec_from_file_location("bench_scale", REPO_ROOT / "bench" / "scale.py")
assert _spec is not None and _spec.loader is not None
scale = importlib.util.module_from_spec(_spec)
sys.modules["bench_scale"] = scale  # dataclasses look their module up
_spec.loader.exec_module(scale)
Scenario, assign, percentile, simulate, spread = (
    scale.Scenario,
    scale.assign,
    scale.percentile,
    scale.simulate,
    scale.spread,
)

pytestmark = pytest.mark.unit

BASE = Scenario(
    exams=10_000,
    workers=4,
    partitions=6,
    worker_rate=6_860,
    steady=0.5,
    burst_rate=50_000,
    burst_at=300,
    burst_seconds=60,
    kill_at=None,
    session_timeout_s=60,
    restore_s=5,
    duration=1_200,
)


def worst(result: dict[str, object], lo: int, hi: int) -> float:
    delays = result["delays"]
    assert isinstance(delays, list)
    return max((d for t, d, _n in delays if lo <= t < hi), default=0.0)


def test_six_partitions_on_four_workers_are_two_two_one_one() -> None:
    assert sorted(len(p) for p in assign(list(range(6)), [0, 1, 2, 3]).values()) == [1, 1, 2, 2]
    counts = spread(10_000, 6)
    assert sum(counts) == 10_000 and min(counts) > 1_500


def test_a_load_under_every_workers_rate_never_queues() -> None:
    r = simulate(dataclasses.replace(BASE, burst_rate=5_000))
    assert r["peak_backlog"] == 0.0
    delays = r["delays"]
    assert isinstance(delays, list) and percentile(delays, 1.0) == 0.0


def test_a_burst_queues_and_a_faster_worker_drains_it_sooner() -> None:
    slow = simulate(BASE)
    fast = simulate(dataclasses.replace(BASE, worker_rate=2 * BASE.worker_rate))
    assert isinstance(slow["peak_backlog"], float) and slow["peak_backlog"] > 0
    assert isinstance(fast["peak_backlog"], float) and fast["peak_backlog"] < slow["peak_backlog"]
    ended = "the burst ended"
    assert slow["drained"][ended] > fast["drained"][ended] > 0  # type: ignore[index]
    # the busiest worker has a third of the load: 16,667 events/s in, 6,860 out
    assert worst(slow, 300, 360) > 60


def test_a_lost_worker_delays_its_partitions_by_the_session_timeout_and_restore() -> None:
    r = simulate(dataclasses.replace(BASE, burst_rate=5_000, kill_at=600))
    assert 60 <= worst(r, 600, 665) <= 66
    assert worst(r, 0, 600) == 0.0
