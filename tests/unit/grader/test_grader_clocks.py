"""The partition grader's clocks: aligned watermark, idle topics, own clocks, timers, restarts."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

import pytest

from services.contract.schemas import load_contract
from services.core.engine_store import EngineStore
from services.core.events import Event, SourcePosition
from services.core.model import Transition
from services.exam_builder import ExamBuilder
from services.grader.grading import GradingEngine, PartitionGrader
from services.grader.record import PlatformRecord
from services.judge.default import default_judge
from services.rubrics import resolver

pytestmark = pytest.mark.unit

CONTRACT = load_contract()
STORE = EngineStore(resolver(), default_judge())


class Probe:
    """An engine that records the times it is evaluated at; its deadline is fixed."""

    def __init__(self, deadline: int | None) -> None:
        self.deadline = deadline
        self.clock = 0
        self.evaluations: list[int] = []

    def apply(self, event: Event) -> Sequence[Transition]:
        return []

    def evaluate(self, at_ms: int) -> Sequence[Transition]:
        if at_ms > self.clock:
            self.clock = at_ms
            self.evaluations.append(at_ms)
        return []

    def next_deadline_ms(self) -> int | None:
        return self.deadline if self.deadline is not None and self.deadline > self.clock else None


class ProbeStore:
    def __init__(self, deadline: int | None = None) -> None:
        self.deadline = deadline
        self.made: dict[str, Probe] = {}

    def new(self, platform_id: str) -> GradingEngine:
        probe = self.made[platform_id] = Probe(self.deadline)
        return probe

    def dump(self, engine: GradingEngine) -> bytes:
        return b"{}"

    def load(self, data: bytes) -> GradingEngine:
        return Probe(self.deadline)


def ev(pid: str, eid: str, ts: int) -> Event:
    return Event("tool.used", pid, eid, ts, {"tool": "trino"})


def test_a_topic_with_records_left_holds_the_watermark_and_an_idle_one_does_not() -> None:
    g = PartitionGrader(0, ProbeStore(), topics=("t1", "t2"))
    g.note_log_ends({"t1": 2, "t2": 1})
    g.handle(ev("a", "a1", 5_000), SourcePosition("t1", 0, 0))
    assert g.watermark_ms == 0  # t2 has a record left, not read yet
    g.handle(ev("a", "a2", 9_000), SourcePosition("t2", 0, 0))
    assert g.watermark_ms == 5_000  # t2 is idle now; t1 has one left, read up to 5 s
    g.handle(ev("a", "a3", 7_000), SourcePosition("t1", 0, 1))
    assert g.watermark_ms == 9_000  # both idle: the highest read


def test_a_topic_not_reported_yet_holds_the_clock_until_a_tick_says_it_is_idle() -> None:
    g = PartitionGrader(0, ProbeStore(), topics=("t1", "t2"))
    g.handle(ev("a", "a1", 5_000), SourcePosition("t1", 0, 0))
    g.handle(ev("a", "a2", 6_000), SourcePosition("t1", 0, 1))
    assert g.watermark_ms == 0
    g.note_log_ends({"t1": 2, "t2": 0})
    g.handle(ev("a", "a3", 7_000), SourcePosition("t1", 0, 2))
    assert g.watermark_ms == 7_000 and g.clock_of("a") == 7_000


def test_only_platforms_whose_deadline_passed_are_evaluated() -> None:
    store = ProbeStore(deadline=50_000)
    g = PartitionGrader(0, store, topics=("t",))
    for i in range(200):
        g.handle(ev(f"p{i}", f"e{i}", 10_000 + i), SourcePosition("t", 0, i))
    evaluated = sum(len(p.evaluations) for p in store.made.values())
    # each platform is evaluated at its own records only (its clock before and after)
    assert evaluated <= 2 * 200
    # a record past the deadline of every platform fires the heap, but a platform's own
    # clock still bounds it: nobody else's record evaluates it past its own time
    g.handle(ev("late", "late", 60_000), SourcePosition("t", 0, 200))
    assert all(p.clock < 50_000 for pid, p in store.made.items() if pid != "late")
    g.handle(ev("p7", "p7-again", 55_000), SourcePosition("t", 0, 201))
    assert store.made["p7"].clock == 55_000


def split(events: list[Event]) -> list[tuple[Event, SourcePosition]]:
    offsets: dict[str, int] = defaultdict(int)
    out = []
    for e in sorted(events, key=lambda e: (e.ts_ms, e.event_id)):
        topic = str(CONTRACT.schema(e.type).topic)
        out.append((e, SourcePosition(topic, 0, offsets[topic])))
        offsets[topic] += 1
    return out


def test_a_restart_restores_the_clocks_and_grades_the_rest_with_the_same_transition_ids() -> None:
    a = ExamBuilder("basecamp-alice").full()
    b = ExamBuilder("basecamp-bob", start_ms=a.start_ms + 90_000).full("trino", "slow_query")
    steps = split(a.events + b.events)
    topics = sorted({pos.topic for _, pos in steps})
    whole = PartitionGrader(0, STORE, clock_ms=lambda: 0, topics=topics)
    expected = [r.transition_id for e, pos in steps for r in whole.handle(e, pos).rows]

    first = PartitionGrader(0, STORE, clock_ms=lambda: 0, topics=topics)
    k = len(steps) // 2
    got = [r.transition_id for e, pos in steps[:k] for r in first.handle(e, pos).rows]
    written = first.flush(lambda r: True)
    table = {r.platform_id: PlatformRecord.decode(r.encode()) for r in written}
    second = PartitionGrader(0, STORE, clock_ms=lambda: 0, topics=topics)
    second.restore(table.values())
    assert second.watermark_ms == first.watermark_ms and second.highs == first.highs
    for pid in first.platforms:
        assert second.clock_of(pid) == first.clock_of(pid)
    got += [r.transition_id for e, pos in steps for r in second.handle(e, pos).rows]
    assert got == expected
    assert any(r.state in ("expired", "met") for r in whole._platforms["basecamp-bob"].pending)


def test_a_topic_never_met_or_only_dead_lettered_does_not_hold_the_clock() -> None:
    """The worker's live case: every record on one topic, a dead letter on another, the
    other topics empty; no tick needed for the partition's clock to follow its records."""
    g = PartitionGrader(0, ProbeStore())
    g.handle(ev("a", "a1", 5_000), SourcePosition("platform.observability", 0, 0))
    g.mark(SourcePosition("platform.flink", 0, 0))
    g.handle(ev("a", "a2", 11_000), SourcePosition("platform.observability", 0, 1))
    assert g.watermark_ms == 11_000 and g.clock_of("a") == 11_000
    # a tick that reports a topic with records left makes it hold from then on
    g.note_log_ends({"exam.control": 3})
    g.handle(ev("a", "a3", 12_000), SourcePosition("platform.observability", 0, 2))
    assert g.watermark_ms == 11_000


def test_a_dead_letter_last_on_its_topic_still_lets_the_boxes_close() -> None:
    """The topic becomes idle with a dead letter: the watermark moves there and a due box
    closes, instead of waiting for a record that never comes."""
    store = ProbeStore(deadline=1_500)
    grader = PartitionGrader(0, store)
    grader.note_log_ends({"a": 2, "b": 1})
    grader.handle(Event("tool.used", "p", "e1", 1_000, {}), SourcePosition("a", 0, 0))
    grader.handle(Event("tool.used", "p", "e2", 2_000, {}), SourcePosition("b", 0, 0))
    probe = store.made["p"]
    assert all(t < 1_500 for t in probe.evaluations), "topic a still holds the clock"
    grader.mark(SourcePosition("a", 0, 1))  # a's last record could not be decoded
    assert grader.watermark_ms == 2_000
    assert max(probe.evaluations) >= 1_500, "the box due at 1,500 closed at the dead letter"
