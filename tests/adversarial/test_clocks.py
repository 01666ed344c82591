"""Attacks on the grader's clocks and state: each must end with no grade changed.

* a record of another platform dated 2099 (platform B) must not close platform A's
  time boxes;
* a backlog read one topic at a time must not produce a transition the time-ordered
  stream does not produce;
* a platform without an exam sending 100,000 signals (some of 100 KB) must not grow its
  state record past the changelog's message limit;
* 4,000 diagnoses on one exam must be graded in linear time;
* an event id delivered again with another body must not grade twice nor replace the
  first: it is reported for the dead-letter topic (``conflicting_duplicate``).
"""

from __future__ import annotations

import random
import sys
from collections import defaultdict
from collections.abc import Callable

import pytest

from services.contract.jsonl import read_jsonl
from services.contract.schemas import load_contract
from services.core.engine import Engine, Limits
from services.core.engine_store import EngineStore
from services.core.events import Event, SourcePosition
from services.core.simple_judge import KeywordJudge
from services.exam_builder import ExamBuilder
from services.grader.grading import PartitionGrader, StepResult
from services.grader.rows import TransitionRow
from services.judge.default import default_judge
from services.rubrics import resolver
from services.stack.config import REPO_ROOT

pytestmark = [pytest.mark.adversarial, pytest.mark.unit]

CONTRACT = load_contract()
STORE = EngineStore(resolver(), default_judge())
TOPICS = sorted({str(CONTRACT.schema(t).topic) for t in CONTRACT.types})
YEAR_2099_MS = 4_070_908_800_000
#: the changelog's message limit (the broker's default)
MESSAGE_LIMIT = 1_000_000


def topic_of(ev: Event) -> str:
    return str(CONTRACT.schema(ev.type).topic)


class Feed:
    """A PartitionGrader fed record by record, each on its contract topic."""

    def __init__(self, store: EngineStore = STORE) -> None:
        self.grader = PartitionGrader(0, store, clock_ms=lambda: 0, topics=TOPICS)
        self.offsets: dict[str, int] = defaultdict(int)
        self.rows: list[TransitionRow] = []

    def __call__(self, ev: Event) -> StepResult:
        topic = topic_of(ev)
        result = self.grader.handle(ev, SourcePosition(topic, 0, self.offsets[topic]))
        self.offsets[topic] += 1
        self.rows += result.rows
        return result

    def idle(self) -> None:
        """The worker's tick after everything was read: every topic is at its end."""
        self.grader.note_log_ends({t: self.offsets[t] for t in TOPICS})

    def states(self, platform_id: str) -> dict[tuple[str, str], str]:
        latest: dict[tuple[str, str], tuple[int, str]] = {}
        for r in self.rows:
            if r.platform_id == platform_id:
                key = (r.exam_id, r.criterion_id)
                if key not in latest or r.seq > latest[key][0]:
                    latest[key] = (r.seq, r.state)
        return {k: v[1] for k, v in latest.items()}


def by_time(events: list[Event]) -> list[Event]:
    return sorted(events, key=lambda e: (e.ts_ms, e.event_id))


def changes(rows: list[TransitionRow], platform_id: str) -> list[tuple[str, str | None, str]]:
    return [
        (r.criterion_id, r.previous_state, r.state) for r in rows if r.platform_id == platform_id
    ]


def test_a_record_of_platform_b_dated_2099_changes_nothing_on_platform_a() -> None:
    a = ExamBuilder("basecamp-alice").full()
    events = by_time(a.events)
    mid = next(i for i, e in enumerate(events) if e.ts_ms > a.at(100))
    future = Event(
        "schema.registered",
        "basecamp-bob",
        "bob-2099",
        YEAR_2099_MS,
        {"subject": "cdc.public.orders-value"},
    )
    attacked, control = Feed(), Feed()
    for ev in events[:mid]:
        attacked(ev)
        control(ev)
    # every topic read to its end (live): the watermark as permissive as it gets
    attacked.idle()
    control.idle()
    result = attacked(future)
    assert not [r for r in result.rows if r.platform_id == "basecamp-alice"]
    assert attacked.grader.watermark_ms == YEAR_2099_MS  # the partition's clock moved...
    alice_latest = max(e.ts_ms for e in events[:mid])
    assert attacked.grader.clock_of("basecamp-alice") == alice_latest  # ...not alice's
    for ev in events[mid:]:
        attacked(ev)
        control(ev)
    assert changes(attacked.rows, "basecamp-alice") == changes(control.rows, "basecamp-alice")
    assert "unknown" not in attacked.states("basecamp-alice").values()


def ordered_history(events: list[Event]) -> tuple[set[tuple[str, ...]], dict[tuple[str, str], str]]:
    """The transitions of the time-ordered stream: one engine per platform, each event
    applied in time order and time moved to the highest event time seen."""
    engines: dict[str, Engine] = {}
    seen: set[tuple[str, ...]] = set()
    final: dict[tuple[str, str], str] = {}
    watermark = 0
    for ev in by_time(events):
        engine = engines.setdefault(ev.platform_id, STORE.new(ev.platform_id))
        watermark = max(watermark, ev.ts_ms)
        for t in [*engine.apply(ev), *engine.evaluate(watermark)]:
            seen.add((t.exam_id, t.criterion_id, str(t.previous_state), t.state))
            final[(t.exam_id, t.criterion_id)] = t.state
    return seen, final


def backlog(events: list[Event], order: Callable[[dict[str, list[Event]]], list[Event]]) -> Feed:
    """The whole recording published at once, then read in ``order`` (each topic in its
    own order): the worker's tick knows every topic's log end from the start."""
    queues: dict[str, list[Event]] = defaultdict(list)
    for ev in events:  # published in time order, as `proctor publish` does
        queues[topic_of(ev)].append(ev)
    feed = Feed()
    feed.grader.note_log_ends({t: len(queues.get(t, [])) for t in TOPICS})
    for ev in order(queues):
        feed(ev)
    return feed


def one_topic_at_a_time(reverse: bool) -> Callable[[dict[str, list[Event]]], list[Event]]:
    def order(queues: dict[str, list[Event]]) -> list[Event]:
        return [ev for t in sorted(queues, reverse=reverse) for ev in queues[t]]

    return order


def shuffled(seed: int) -> Callable[[dict[str, list[Event]]], list[Event]]:
    def order(queues: dict[str, list[Event]]) -> list[Event]:
        rnd = random.Random(seed)
        left = {t: list(q) for t, q in queues.items()}
        out = []
        while any(left.values()):
            t = rnd.choice(sorted(k for k, q in left.items() if q))
            out.append(left[t].pop(0))
        return out

    return order


RECORDINGS = ["clean_pass", "collector_blind", "p1_fail_zero_manual_apply"]


@pytest.mark.parametrize("name", RECORDINGS)
def test_a_backlog_read_in_any_interleaving_makes_no_transition_the_ordered_stream_does_not(
    name: str,
) -> None:
    events = by_time(read_jsonl(REPO_ROOT / "tests" / "scenarios" / f"{name}.jsonl"))
    history, final = ordered_history(events)
    for order in (one_topic_at_a_time(False), one_topic_at_a_time(True), shuffled(1), shuffled(2)):
        feed = backlog(events, order)
        made = {(r.exam_id, r.criterion_id, str(r.previous_state), r.state) for r in feed.rows}
        assert made <= history, f"transitions the ordered stream never made: {made - history}"
        got = {}
        for pid in {e.platform_id for e in events}:
            got.update(feed.states(pid))
        assert {k: v for k, v in got.items() if v != "pending"} == {
            k: v for k, v in final.items() if v != "pending"
        }


#: the worker's budget for one platform's state (PROCTOR_STATE_MAX_BYTES), in the test
BUDGET = 256 * 1024


def test_100000_signals_of_a_platform_without_an_exam_keep_its_record_under_the_limit() -> None:
    feed = Feed(EngineStore(resolver(), default_judge(), limits=Limits.within(BUDGET)))
    pid = "basecamp-noisy"
    big = "x" * 100_000
    for i in range(100_000):
        if i % 7 == 0:
            ev = Event(
                "collector.heartbeat",
                pid,
                f"hb-{i}",
                1_800_000_000_000 + i * 1000,
                {"collector": "flink", "source": "s" * 2000, "position": str(i), "healthy": True},
            )
        else:
            data = {"tool": "trino", "action": "view", "target": big if i % 500 == 0 else "t"}
            ev = Event("tool.used", pid, f"sig-{i}", 1_800_000_000_000 + i * 1000, data)
        feed(ev)
        if i % 25_000 == 24_999:
            (record, _marker) = feed.grader.flush(lambda r: False)
            size = len(record.encode())
            assert size < BUDGET < MESSAGE_LIMIT, size
    engine = feed.grader._platforms[pid].engine
    assert isinstance(engine, Engine)
    assert engine.audit.dropped > 0  # the oldest were dropped, and counted
    assert engine.platforms[pid].unbound_size <= Limits.within(BUDGET).held_bytes
    held = engine.platforms[pid].unbound.values()
    # the newest are kept; heartbeats only with what coverage reads
    assert max(e.ts_ms for e in held) == 1_800_000_000_000 + 99_999 * 1000
    assert all("source" not in e.data for e in held if e.type == "collector.heartbeat")


def profiled_calls(run: Callable[[], object]) -> int:
    """Python function calls made by ``run`` (an operation count, not a time)."""
    calls = 0

    def count(frame: object, event: str, arg: object) -> None:
        nonlocal calls
        if event == "call":
            calls += 1

    sys.setprofile(count)
    try:
        run()
    finally:
        sys.setprofile(None)
    return calls


def diagnoses_exam(n: int) -> list[Event]:
    b = ExamBuilder("basecamp-alice")
    b.start()
    b.control("part.started", 170, part=2)
    b.control("fault.injected", 180, fault_id="fault-1", layer="flink", kind="oom", target="job")
    for i in range(n - 1):
        b.control(
            "diagnosis.submitted",
            181 + i * 0.01,
            fault_id="fault-1",
            layer="superset",
            kind="stale",
            summary=f"guess {i}",
        )
    b.control(
        "diagnosis.submitted",
        181 + n * 0.01,
        fault_id="fault-1",
        layer="flink",
        kind="oom",
        summary="right",
    )
    return b.events


def grade_diagnoses(n: int) -> tuple[int, str]:
    engine = Engine(resolver(), KeywordJudge(), limits=Limits(submission_bytes=10**9))
    events = diagnoses_exam(n)
    calls = profiled_calls(lambda: [engine.apply(ev) for ev in events])
    state = {c.criterion_id: c.state for r in engine.results() for c in r.criteria}
    return calls, state["p2.root_cause"]


def test_4000_diagnoses_on_one_exam_are_graded_in_linear_time() -> None:
    small, state_small = grade_diagnoses(1_000)
    large, state_large = grade_diagnoses(4_000)
    # linear: 4x the diagnoses, about 4x the work (quadratic would be about 16x)
    assert large < small * 5, (small, large)
    # the rubric's reading is kept: a wrong first answer, a later right one: partial
    assert state_small == state_large == "partial"


def test_a_duplicate_event_id_with_another_body_is_reported_and_the_first_kept() -> None:
    b = ExamBuilder("basecamp-alice").full()
    events = by_time(b.events)
    feed = Feed()
    for ev in events:
        assert not feed(ev).conflict
    before = feed.states("basecamp-alice")
    diag = next(e for e in events if e.type == "diagnosis.submitted")
    other = Event(
        diag.type, diag.platform_id, diag.event_id, diag.ts_ms, {**diag.data, "layer": "superset"}
    )
    exact = feed(diag)
    assert not exact.conflict and not exact.rows  # a redelivery: harmless
    forged = feed(other)
    assert forged.conflict and not forged.rows
    signal = next(e for e in reversed(events) if e.type == "trino.query")
    changed = Event(
        signal.type,
        signal.platform_id,
        signal.event_id,
        signal.ts_ms,
        {**signal.data, "user": "mallory"},
    )
    result = feed(changed)
    assert result.conflict and not result.rows
    assert feed.states("basecamp-alice") == before
    engine = feed.grader._platforms["basecamp-alice"].engine
    assert isinstance(engine, Engine) and engine.audit.conflicts == 2


def test_a_held_signal_delivered_again_with_another_body_is_reported() -> None:
    engine = STORE.new("basecamp-zed")
    first = Event("tool.used", "basecamp-zed", "z-1", 1_800_000_000_000, {"tool": "trino"})
    assert engine.apply(first) == [] and not engine.conflict
    engine.apply(first)
    assert not engine.conflict
    engine.apply(Event("tool.used", "basecamp-zed", "z-1", 1_800_000_000_000, {"tool": "grafana"}))
    assert engine.conflict
    assert engine.platforms["basecamp-zed"].unbound["z-1"].data["tool"] == "trino"
