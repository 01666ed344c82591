"""Crash and restart of the grading step and the sink's buffer, by property.

The worker's durability protocol, without Kafka or Iceberg: records are graded in order;
at each Iceberg commit the state is flushed (platform records, then the partition
marker, into the changelog) in one step with taking the batch, and the batch is written
only once that flush is acknowledged. A crash keeps the commits completed, the flushes
they waited for, and any prefix of the writes after them (a flush may be cut in the
middle); Kafka's committed offsets are not trusted (Faust may commit past state not yet
durable): the restarted worker restores from the changelog, re-offers the outbox and
resumes at the marker's positions, in any interleaving of the topics. Iceberg must end
with no duplicate and the same latest state per criterion as a run without a crash.

The engine here is a small stand-in with the properties the real core promises
(idempotent on event_id, final state independent of order); the real engine is driven
through the same protocol in the integration tests.
"""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from dataclasses import dataclass, field

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


@dataclass
class Iceberg:
    """The table as the sink sees it: rows, and the offsets of the latest snapshot."""

    rows: list[TransitionRow] = field(default_factory=list)
    offsets: dict[tuple[str, int], int] = field(default_factory=dict)


def fake_commit(
    s: IcebergSink,
    iceberg: Iceberg,
    grader: PartitionGrader | None = None,
    writes: list[PlatformRecord] | None = None,
) -> None:
    """The worker's commit: flush the state and take the batch in one step, then write
    (``sink.write``'s rule: rows below the table's offsets are dropped, offsets merged)."""
    if grader is not None and writes is not None:
        writes.extend(grader.flush(s.is_committed))
    batch = s.take()
    if batch is None:
        return
    rows = [r for r in batch.rows if r.source.offset >= iceberg.offsets.get((r.source.topic, 0), 0)]
    iceberg.rows.extend(rows)
    for tp, offset in batch.offsets.items():
        iceberg.offsets[tp] = max(iceberg.offsets.get(tp, 0), offset)
    s.finish(CommitResult(len(rows), 1, dict(iceberg.offsets), 0.0, 1))


def grade(grader: PartitionGrader, s: IcebergSink, step: Step) -> list[TransitionRow]:
    ev, pos = step
    result = grader.handle(ev, pos)
    for r in result.rows:
        s.offer(r)
    s.processed((pos.topic, 0), pos.offset + 1)
    return list(result.rows)


def table_of(writes: list[PlatformRecord]) -> dict[str, PlatformRecord]:
    """What a compacted changelog restores: the latest value per key."""
    table: dict[str, PlatformRecord] = {}
    for record in writes:
        table[record.platform_id] = record
    return table


def latest(rows: list[TransitionRow]) -> dict[tuple[str, str], str]:
    out: dict[tuple[str, str], tuple[int, str]] = {}
    for r in rows:
        key = (r.exam_id, r.criterion_id)
        if key not in out or r.seq > out[key][0]:
            out[key] = (r.seq, r.state)
    return {k: v[1] for k, v in out.items()}


def reference(steps: list[Step]) -> list[TransitionRow]:
    g, s, iceberg = PartitionGrader(0, CountingStore(), topics=TOPICS), sink(), Iceberg()
    for step in steps:
        grade(g, s, step)
    fake_commit(s, iceberg)
    return iceberg.rows


def interleave(steps: list[Step], rnd: random.Random) -> list[Step]:
    """Another order of the same records, keeping each topic's own order (as Kafka does)."""
    queues: dict[str, list[Step]] = {t: [s for s in steps if s[1].topic == t] for t in TOPICS}
    out: list[Step] = []
    while any(queues.values()):
        topic = rnd.choice([t for t in TOPICS if queues[t]])
        out.append(queues[topic].pop(0))
    return out


Crash = tuple[float, float, bool]


def life(
    steps: list[Step],
    writes: list[PlatformRecord],
    iceberg: Iceberg,
    commits: set[int],
    crash: Crash | None,
    reorder: random.Random | None,
) -> None:
    """One run of the worker: restore from the durable changelog, grade from the
    markers' positions, commit at the given steps; then finish or crash. A crash keeps
    the writes of completed commits and a prefix of those after them (``cut``); with
    ``mid_commit`` it comes inside a commit whose flush has begun."""
    g, s = PartitionGrader(0, CountingStore(), topics=TOPICS), sink()
    s.finish(CommitResult(0, 1, dict(iceberg.offsets), 0.0, 1))  # what open() reads
    for row in g.restore(table_of(writes).values()):
        s.offer(row)
    for topic, offset in g.positions.items():
        s.processed((topic, 0), offset)
    rest = [st for st in steps if st[1].offset >= (g.resume_at(st[1].topic) or 0)]
    if reorder is not None:
        rest = interleave(rest, reorder)
    k = len(rest) if crash is None else round(crash[0] * len(rest))
    for i, step in enumerate(rest[:k]):
        if i in commits:
            fake_commit(s, iceberg, g, writes)
        grade(g, s, step)
    if crash is None:
        assert g.held_rows == 0, "an outbox row was held back and never released"
        fake_commit(s, iceberg, g, writes)
        return
    durable = len(writes)
    _, cut, mid_commit = crash
    if mid_commit:
        writes.extend(g.flush(s.is_committed))
    del writes[durable + round(cut * (len(writes) - durable)) :]


@settings(max_examples=300, deadline=None)
@given(
    n=st.integers(4, 40),
    seed=st.integers(0, 10_000),
    crashes=st.lists(st.tuples(st.floats(0, 1), st.floats(0, 1), st.booleans()), max_size=3),
    commits=st.sets(st.integers(0, 39), max_size=8),
    reorder=st.booleans(),
)
def test_crashes_anywhere_then_restarts_give_no_duplicate_and_the_same_final_states(
    n: int, seed: int, crashes: list[Crash], commits: set[int], reorder: bool
) -> None:
    steps = make_steps(n, seed)
    expected = reference(steps)
    writes: list[PlatformRecord] = []
    iceberg = Iceberg()
    rnd = random.Random(seed)
    for number, crash in enumerate([*crashes, None]):
        again = reorder and number > 0  # a restart may read the topics in another order
        life(steps, writes, iceberg, commits, crash, rnd if again else None)

    ids = [r.transition_id for r in iceberg.rows]
    assert len(ids) == len(set(ids)), "a transition landed twice"
    assert latest(iceberg.rows) == latest(expected)
    if not reorder:
        assert sorted(ids) == sorted(r.transition_id for r in expected)


def test_a_platform_written_after_the_surviving_marker_releases_its_rows_with_their_record() -> (
    None
):
    """The crash cut a flush after a's record, before the marker: a is ahead of the
    marker; its row from step 1 re-enters the sink only when step 1 is read again."""
    steps = [
        (Event("tool.used", "a", f"a{i}", 1000 + i), SourcePosition("exam.control", 0, i))
        for i in range(2)
    ]
    g1, s1 = PartitionGrader(0, CountingStore(), topics=TOPICS), sink()
    grade(g1, s1, steps[0])
    first = g1.flush(s1.is_committed)
    assert [r.platform_id for r in first][-1].startswith("\x00partition:")
    grade(g1, s1, steps[1])
    second = g1.flush(s1.is_committed)
    table = table_of(list(first) + list(second[:-1]))  # the second marker was lost

    g2 = PartitionGrader(0, CountingStore(), topics=TOPICS)
    assert g2.restore(table.values()) == []
    assert g2.resume_at("exam.control") == 1 and g2.held_rows == 1
    again = g2.handle(*steps[1])
    assert [(r.criterion_id, r.state, r.source.offset) for r in again.rows] == [
        ("c.count", "met", 1)
    ]
    assert g2.held_rows == 0


def test_records_already_in_the_restored_state_are_not_graded_again() -> None:
    steps = make_steps(6, 1)
    g1, s1 = PartitionGrader(0, CountingStore(), topics=TOPICS), sink()
    for step in steps:
        grade(g1, s1, step)
    table = table_of(list(g1.flush(s1.is_committed)))
    g2 = PartitionGrader(0, CountingStore(), topics=TOPICS)
    g2.restore(table.values())
    replayed = [g2.handle(ev, pos) for ev, pos in steps]
    assert all(r.replayed and not r.rows for r in replayed)
    assert g2.unflushed == 0


def test_evaluation_follows_each_platforms_own_clock_not_the_wall_clock() -> None:
    """b's records move the partition's watermark to 15 s, but a's tick waits for a's
    own clock (here a's heartbeat at 15 s): another platform never closes a's boxes."""
    g, s = PartitionGrader(0, CountingStore(), clock_ms=lambda: 0), sink()
    a0 = Event("tool.used", "a", "a0", 10_000)
    b0 = Event("tool.used", "b", "b0", 14_999)
    b1 = Event("tool.used", "b", "b1", 15_000)
    a1 = Event("collector.heartbeat", "a", "a1", 15_000)
    grade(g, s, (a0, SourcePosition("exam.control", 0, 0)))
    r1 = g.handle(b0, SourcePosition("exam.control", 0, 1))
    assert [r.criterion_id for r in r1.rows] == []
    r2 = g.handle(b1, SourcePosition("exam.control", 0, 2))
    assert sorted((r.platform_id, r.criterion_id, r.state) for r in r2.rows) == [
        ("b", "c.count", "met"),
    ]
    assert g.watermark_ms == 15_000 and g.clock_of("a") == 10_000
    r3 = g.handle(a1, SourcePosition("exam.control", 0, 3))
    assert sorted((r.platform_id, r.criterion_id, r.state) for r in r3.rows) == [
        ("a", "c.count", "met"),
        ("a", "c.tick", "met"),
    ]
    tick = next(r for r in r3.rows if r.criterion_id == "c.tick")
    assert tick.event_ts_ms == 15_000 and tick.source.offset == 3
    written = g.flush(s.is_committed)
    assert [rec.platform_id for rec in written[:-1]] == ["a", "b"]
    assert [rec.latest_ms for rec in written[:-1]] == [15_000, 15_000]
    marker = written[-1]
    assert marker.positions == {"exam.control": 4} and marker.watermark_ms == 15_000
    assert marker.highs == {"exam.control": 15_000}


def test_outbox_is_trimmed_of_rows_the_sink_committed() -> None:
    g, s = PartitionGrader(0, CountingStore(), topics=TOPICS), sink()
    steps = [
        (Event("tool.used", "a", f"a{i}", 1000 + i), SourcePosition("exam.control", 0, i))
        for i in range(3)
    ]
    grade(g, s, steps[0])
    grade(g, s, steps[1])
    before = g.flush(s.is_committed)
    assert before[0].pending and before[0].pending[0].criterion_id == "c.count"
    fake_commit(s, Iceberg())
    grade(g, s, steps[2])
    after = g.flush(s.is_committed)
    assert after[0].platform_id == "a" and after[0].pending == ()


def test_dead_letter_marker_moves_positions_so_a_restart_skips_it() -> None:
    g = PartitionGrader(0, CountingStore(), topics=TOPICS)
    assert not g.mark(SourcePosition("platform.flink", 0, 4)).rows
    (marker,) = g.flush(lambda r: False)
    g2 = PartitionGrader(0, CountingStore(), topics=TOPICS)
    g2.restore([marker])
    assert g2.positions == {"platform.flink": 5} and g2.platforms == []
    assert g2.mark(SourcePosition("platform.flink", 0, 4)).replayed
