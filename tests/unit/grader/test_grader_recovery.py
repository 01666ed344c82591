"""Crash and restart of the grading step and the sink's buffer, by property.

The worker's durability protocol, without Kafka or Iceberg: records are graded in order;
every step writes platform records (the changelog); the sink commits batches with offsets
only after the changelog of everything in the batch is durable (the worker flushes the
producer first); Kafka commits offsets only of records whose changelog is durable. A
crash keeps a prefix of the changelog and of the Iceberg commits; the restarted worker
restores from the changelog, re-offers the outbox, and re-reads from Kafka's offsets, in
any interleaving of the topics. Iceberg must end with no duplicate and the same latest
state per criterion as a run without a crash.

The engine here is a small stand-in with the properties the real core promises
(idempotent on event_id, final state independent of order); the real engine is driven
through the same protocol in the integration tests.
"""

from __future__ import annotations

import json
import random
from collections.abc import Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.core.events import Event, SourcePosition
from services.core.model import Transition
from services.grader.grading import EngineStore, GradingEngine, PartitionGrader
from services.grader.record import PlatformRecord
from services.grader.rows import TransitionRow
from services.grader.sink import CommitResult, IcebergSink, SinkConfig

pytestmark = pytest.mark.unit

TOPICS = ("exam.control", "platform.flink")


class CountingEngine:
    """c.count: met once two distinct events were seen; c.tick: met once the watermark
    is 5 s past the first event. Idempotent on event_id; final state order-free."""

    def __init__(
        self,
        platform_id: str,
        seen: set[str] | None = None,
        first: int | None = None,
        states: dict[str, str] | None = None,
    ) -> None:
        self.platform_id = platform_id
        self.seen = seen or set()
        self.first = first
        self.states = states or {"c.count": "pending", "c.tick": "pending"}

    def _set(self, cid: str, state: str, ts: int, evidence: tuple[str, ...]) -> list[Transition]:
        prev = self.states[cid]
        if prev == state:
            return []
        self.states[cid] = state
        return [
            Transition(
                "exam-" + self.platform_id,
                "cand",
                self.platform_id,
                "y3-final",
                "1",
                "1",
                cid,
                state,
                prev,
                1.0 if state == "met" else 0.0,
                1.0,  # type: ignore[arg-type]
                f"{cid} is {state}",
                evidence,
                ts,
            )
        ]

    def apply(self, event: Event) -> Sequence[Transition]:
        if event.event_id in self.seen:
            return []
        self.seen.add(event.event_id)
        self.first = event.ts_ms if self.first is None else min(self.first, event.ts_ms)
        if len(self.seen) >= 2:
            return self._set("c.count", "met", event.ts_ms, (event.event_id,))
        return []

    def evaluate(self, at_ms: int) -> Sequence[Transition]:
        if self.first is not None and at_ms >= self.first + 5000:
            return self._set("c.tick", "met", self.first + 5000, ())
        return []


class CountingStore(EngineStore):
    def new(self, platform_id: str) -> GradingEngine:
        return CountingEngine(platform_id)

    def dump(self, engine: GradingEngine) -> bytes:
        assert isinstance(engine, CountingEngine)
        return json.dumps(
            [engine.platform_id, sorted(engine.seen), engine.first, engine.states]
        ).encode()

    def load(self, data: bytes) -> GradingEngine:
        pid, seen, first, states = json.loads(data)
        return CountingEngine(pid, set(seen), first, states)


Step = tuple[Event, SourcePosition]


def make_steps(n: int, seed: int) -> list[Step]:
    rnd = random.Random(seed)
    offsets = dict.fromkeys(TOPICS, 0)
    steps = []
    for i in range(n):
        topic = rnd.choice(TOPICS)
        pid = rnd.choice(["a", "b", "c"])
        ev = Event("tool.used", pid, f"e{i}", 1_000_000 + i * 700 + rnd.randint(0, 2000))
        steps.append((ev, SourcePosition(topic, 0, offsets[topic])))
        offsets[topic] += 1
    return steps


def sink() -> IcebergSink:
    # Only the buffer and offset logic is used here; write() is stood in for below.
    return IcebergSink(catalog=None, config=SinkConfig(commit_rows=10**9))  # type: ignore[arg-type]


def fake_commit(s: IcebergSink, iceberg: list[TransitionRow]) -> None:
    batch = s.take()
    if batch is None:
        return
    committed = s.committed
    rows = [r for r in batch.rows if r.source.offset >= committed.next_offset((r.source.topic, 0))]
    iceberg.extend(rows)
    s.finish(CommitResult(len(rows), 1, batch.offsets, 0.0, 1))


def grade(grader: PartitionGrader, s: IcebergSink, step: Step) -> list[PlatformRecord]:
    ev, pos = step
    result = grader.handle(ev, pos, s.is_committed)
    for r in result.rows:
        s.offer(r)
    s.processed((pos.topic, 0), pos.offset + 1)
    return list(result.records)


def latest(rows: list[TransitionRow]) -> dict[tuple[str, str], str]:
    out: dict[tuple[str, str], tuple[int, str]] = {}
    for r in rows:
        key = (r.exam_id, r.criterion_id)
        if key not in out or r.seq > out[key][0]:
            out[key] = (r.seq, r.state)
    return {k: v[1] for k, v in out.items()}


def reference(steps: list[Step]) -> list[TransitionRow]:
    g, s, iceberg = PartitionGrader(0, CountingStore()), sink(), []
    for step in steps:
        grade(g, s, step)
    fake_commit(s, iceberg)
    return iceberg


def interleave(steps: list[Step], rnd: random.Random) -> list[Step]:
    """Another order of the same records, keeping each topic's own order (as Kafka does)."""
    queues: dict[str, list[Step]] = {t: [s for s in steps if s[1].topic == t] for t in TOPICS}
    out: list[Step] = []
    while any(queues.values()):
        topic = rnd.choice([t for t in TOPICS if queues[t]])
        out.append(queues[topic].pop(0))
    return out


@settings(max_examples=200, deadline=None)
@given(
    n=st.integers(4, 40),
    seed=st.integers(0, 10_000),
    cut=st.tuples(st.floats(0, 1), st.floats(0, 1), st.floats(0, 1), st.floats(0, 1)),
    reorder=st.booleans(),
)
def test_crash_anywhere_then_restart_gives_no_duplicate_and_the_same_final_states(
    n: int, seed: int, cut: tuple[float, float, float, float], reorder: bool
) -> None:
    steps = make_steps(n, seed)
    expected = reference(steps)

    # Crash after k steps; changelog durable up to j <= k; an Iceberg commit at s <= j
    # (the worker flushes the changelog before committing); Kafka offsets at c <= j.
    k = round(cut[0] * n)
    j = round(cut[1] * k)
    s_at = round(cut[2] * j)
    c = round(cut[3] * j)
    g1, s1 = PartitionGrader(0, CountingStore()), sink()
    changelog: list[PlatformRecord] = []
    iceberg: list[TransitionRow] = []
    for i, step in enumerate(steps[:k]):
        if i == s_at:
            fake_commit(s1, iceberg)
        written = grade(g1, s1, step)
        if i < j:  # the changelog writes of steps j.. were lost in the crash
            changelog.extend(written)
    table: dict[str, PlatformRecord] = {}
    for record in changelog:
        table[record.platform_id] = record

    # Restart: restore, re-offer the outbox, re-read from Kafka's offsets.
    g2, s2 = PartitionGrader(0, CountingStore()), sink()
    s2.finish(CommitResult(0, 1, dict(s1.committed.offsets), 0.0, 1))  # what open() reads
    for row in g2.restore(table.values()):
        s2.offer(row)
    for topic, offset in g2.positions.items():
        s2.processed((topic, 0), offset)
    rest = steps[c:]
    for step in interleave(rest, random.Random(seed)) if reorder else rest:
        grade(g2, s2, step)
    fake_commit(s2, iceberg)

    ids = [r.transition_id for r in iceberg]
    assert len(ids) == len(set(ids)), "a transition landed twice"
    assert latest(iceberg) == latest(expected)
    if not reorder:
        assert sorted(ids) == sorted(r.transition_id for r in expected)


def test_records_already_in_the_restored_state_are_not_graded_again() -> None:
    steps = make_steps(6, 1)
    g1, s1 = PartitionGrader(0, CountingStore()), sink()
    table: dict[str, PlatformRecord] = {}
    for step in steps:
        for rec in grade(g1, s1, step):
            table[rec.platform_id] = rec
    g2 = PartitionGrader(0, CountingStore())
    g2.restore(table.values())
    replayed = [g2.handle(ev, pos, lambda r: False) for ev, pos in steps]
    assert all(r.replayed and not r.rows and not r.records for r in replayed)


def test_evaluation_follows_the_watermark_not_the_wall_clock() -> None:
    g, s = PartitionGrader(0, CountingStore(), clock_ms=lambda: 0), sink()
    a0 = Event("tool.used", "a", "a0", 10_000)
    b0 = Event("tool.used", "b", "b0", 14_999)
    b1 = Event("tool.used", "b", "b1", 15_000)
    grade(g, s, (a0, SourcePosition("exam.control", 0, 0)))
    r1 = g.handle(b0, SourcePosition("exam.control", 0, 1), s.is_committed)
    assert [r.criterion_id for r in r1.rows] == []
    # b's record moves the partition's watermark to 15 s: a's 5 s tick closes, b counts 2.
    r2 = g.handle(b1, SourcePosition("exam.control", 0, 2), s.is_committed)
    assert sorted((r.platform_id, r.criterion_id, r.state) for r in r2.rows) == [
        ("a", "c.tick", "met"),
        ("b", "c.count", "met"),
    ]
    tick = next(r for r in r2.rows if r.criterion_id == "c.tick")
    assert tick.event_ts_ms == 15_000 and tick.source.offset == 2
    assert {rec.platform_id for rec in r2.records} == {"a", "b"}


def test_outbox_is_trimmed_of_rows_the_sink_committed() -> None:
    g, s = PartitionGrader(0, CountingStore()), sink()
    steps = [
        (Event("tool.used", "a", f"a{i}", 1000 + i), SourcePosition("exam.control", 0, i))
        for i in range(3)
    ]
    rec = grade(g, s, steps[0]) + grade(g, s, steps[1])
    assert rec[-1].pending and rec[-1].pending[0].criterion_id == "c.count"
    fake_commit(s, [])
    after = grade(g, s, steps[2])
    assert after[0].pending == ()


def test_dead_letter_marker_moves_positions_so_a_restart_skips_it() -> None:
    g = PartitionGrader(0, CountingStore())
    marker = g.mark(SourcePosition("platform.flink", 0, 4)).records[0]
    g2 = PartitionGrader(0, CountingStore())
    g2.restore([marker])
    assert g2.positions == {"platform.flink": 5} and g2.platforms == []
    assert g2.mark(SourcePosition("platform.flink", 0, 4)).replayed
