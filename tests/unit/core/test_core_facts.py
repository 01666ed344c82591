"""Facts: the incremental fold equals the literal definition for any order, with duplicates."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.core.context import ExamContext, Window
from services.core.events import Event
from services.core.facts.base import FactSpec
from services.core.facts.counters import CounterGrowthSpec, RunningTotalSpec
from services.core.facts.keyed import TopKSpec
from services.core.facts.lineage import TraceCorrelationSpec
from services.core.heartbeats import Coverage
from services.core.reference import LiteralCoverage
from services.core.where import Cond

pytestmark = pytest.mark.unit

CTX = ExamContext(
    exam_id="e",
    platform_id="p",
    start_ms=0,
    windows={"1": Window("1", 1000, "a", 50_000, 50_000)},
    anchors={"part:1": 1000},
)


def fold_shuffled(spec: FactSpec, events: list[Event], seed: int) -> object:
    rng = random.Random(seed)
    stream = events + rng.sample(events, len(events) // 2)
    rng.shuffle(stream)
    fact = spec.make()
    for ev in stream:
        if ev.type in spec.event_types:
            fact.fold(ev, CTX)
    return fact.dump()


def ev(i: int, t: str, ts: int, **data: object) -> Event:
    return Event(t, "p", f"e{i}", ts, data)


@settings(max_examples=200, deadline=None)
@given(
    obs=st.lists(
        st.tuples(
            st.integers(0, 60_000),
            st.sampled_from(["a", "b"]),
            st.integers(0, 3),
            st.integers(0, 10**6),
        )
    ),
    seed=st.integers(),
)
def test_counter_growth(obs: list[tuple[int, str, int, int]], seed: int) -> None:
    spec = CounterGrowthSpec("cdc.offsets", "topic", "partition", "high_watermark", "1")
    events = [
        ev(i, "cdc.offsets", ts, topic=t, partition=p, high_watermark=v)
        for i, (ts, t, p, v) in enumerate(obs)
    ]
    assert fold_shuffled(spec, events, seed) == spec.scan(events, CTX).dump()


@settings(max_examples=300, deadline=None)
@given(
    commits=st.lists(
        st.tuples(
            st.integers(0, 60_000), st.integers(0, 12), st.sampled_from(["append", "replace"])
        )
    ),
    threshold=st.integers(1, 120),
    seed=st.integers(),
)
def test_running_total(commits: list[tuple[int, int, str]], threshold: int, seed: int) -> None:
    """A snapshot id names one commit: every report of it carries the same amount."""
    spec = RunningTotalSpec(
        "iceberg.commit",
        "table",
        "snapshot_id",
        "summary",
        "added-records",
        ("append",),
        threshold,
        "1",
    )
    events = [
        ev(
            i,
            "iceberg.commit",
            ts,
            table="t",
            snapshot_id=snap,
            operation=op,
            summary={"added-records": str(snap * 7 % 41 - 5)},
        )
        for i, (ts, snap, op) in enumerate(commits)
    ]
    got = fold_shuffled(spec, events, seed)
    assert got == spec.scan(events, CTX).dump()


@settings(max_examples=200, deadline=None)
@given(
    cps=st.lists(
        st.tuples(
            st.integers(0, 1000), st.sampled_from(["j1", "j2"]), st.integers(0, 9), st.booleans()
        )
    ),
    seed=st.integers(),
)
def test_k_earliest_checkpoints(cps: list[tuple[int, str, int, bool]], seed: int) -> None:
    spec = TopKSpec(
        "flink.checkpoint", (Cond("status", "equals", "COMPLETED"),), "job_id", "checkpoint_id", 3
    )
    events = [
        ev(
            i,
            "flink.checkpoint",
            ts,
            job_id=j,
            checkpoint_id=c,
            status="COMPLETED" if ok else "FAILED",
        )
        for i, (ts, j, c, ok) in enumerate(cps)
    ]
    assert fold_shuffled(spec, events, seed) == spec.scan(events, CTX).dump()


@settings(max_examples=200, deadline=None)
@given(
    seen=st.lists(
        st.tuples(
            st.integers(0, 1000),
            st.sampled_from(["trace", "log", "metric"]),
            st.sampled_from("abcd"),
        )
    ),
    seed=st.integers(),
)
def test_trace_correlation(seen: list[tuple[int, str, str]], seed: int) -> None:
    spec = TraceCorrelationSpec()
    events = [ev(i, "pillar.seen", ts, pillar=p, trace_id=t) for i, (ts, p, t) in enumerate(seen)]
    assert fold_shuffled(spec, events, seed) == spec.scan(events, CTX).dump()


def test_running_total_crossing_and_duplicates_by_snapshot() -> None:
    spec = RunningTotalSpec(
        "iceberg.commit", "table", "snapshot_id", "summary", "added-records", ("append",), 100, "1"
    )
    f = spec.make()

    def mk(i: int, ts: int, snap: int, n: int) -> Event:
        return ev(
            i,
            "iceberg.commit",
            ts,
            table="t",
            snapshot_id=snap,
            operation="append",
            summary={"added-records": str(n)},
        )

    assert f.fold(mk(1, 2000, 1, 60), CTX)
    assert f.fold(mk(2, 3000, 2, 60), CTX)
    assert f.runs["t"].crossing is not None and f.runs["t"].crossing[1] == "e2"
    assert not f.fold(mk(3, 3500, 2, 60), CTX)  # the same snapshot again: nothing changes
    assert not f.fold(mk(4, 4000, 3, 60), CTX)  # after the crossing: irrelevant
    assert f.fold(mk(5, 1500, 4, 50), CTX)  # a late, earlier commit moves the crossing earlier
    assert f.runs["t"].crossing[1] == "e1" and f.runs["t"].total == 110  # 50 + 60: e2 is cut
    assert not f.fold(mk(6, 900, 5, 500), CTX)  # before the part started


@settings(max_examples=300, deadline=None)
@given(
    beats=st.lists(st.tuples(st.integers(0, 2000), st.booleans(), st.sampled_from(["a", "b"]))),
    at=st.integers(0, 2200),
    seed=st.integers(),
)
def test_coverage_equals_the_definition(
    beats: list[tuple[int, bool, str]], at: int, seed: int
) -> None:
    events = [
        ev(i, "collector.heartbeat", ts, collector=c, healthy=ok, error=None if ok else "boom")
        for i, (ts, ok, c) in enumerate(beats)
    ]
    rng = random.Random(seed)
    stream = events + rng.sample(events, len(events) // 2)
    rng.shuffle(stream)
    cov = Coverage(90)
    for e in stream:
        cov.fold(e)
    literal = LiteralCoverage(events, 90)
    for name in ("a", "b", "c"):
        assert cov.blind_at(name, at) == literal.blind_at(name, at)


def test_coverage_merges_a_steady_heartbeat_into_one_interval() -> None:
    cov = Coverage(90_000)
    for i in range(100):
        cov.fold(
            ev(i, "collector.heartbeat", i * 30_000, collector="flink", healthy=True, error=None)
        )
    assert cov.intervals["flink"] == [[0, 99 * 30_000 + 90_000]]
    assert cov.blind_at("flink", 50 * 30_000) is None
    assert "silent" in (cov.blind_at("flink", 99 * 30_000 + 90_001) or "")
    assert "no healthy heartbeat" in (cov.blind_at("dbt", 1000) or "")
