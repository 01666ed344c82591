"""The batch pipeline (pipeline.py) without Faust: decode, admit, grade, publish, offer.

A record the codec cannot decode and a record the admission refuses both become dead
letters (with the refusal's class and reason), are acknowledged by the broker before
their position moves, and move the partition on without grading anything. Grading runs
in the pipeline's one worker thread, in the records' order.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, ClassVar

import pytest
from opentelemetry.trace import NoOpTracer

from services.contract.admission import RecordFacts, Refusal
from services.contract.dlq import DeadLetter, RawRecord
from services.core.events import Event
from services.core.model import Transition
from services.errors import RecordDecodeError
from services.grader.assignment import Assignments
from services.grader.grading import GradingEngine
from services.grader.pipeline import BatchPipeline, LogEnds
from services.grader.rewind import RewindPolicy
from services.grader.rows import TransitionRow
from services.grader.telemetry import Metrics

pytestmark = pytest.mark.unit

TOPIC = "platform.flink"
TS_MS = 1_795_000_000_000


class Engine:
    """One change per event; notes the thread it ran in."""

    threads: ClassVar[set[str]] = set()
    applied: ClassVar[list[str]] = []

    def __init__(self, pid: str) -> None:
        self.pid = pid

    def apply(self, event: Event) -> Sequence[Transition]:
        Engine.threads.add(threading.current_thread().name)
        #: an id the engine saw before with another body: it keeps the first, grades nothing
        self.conflict = event.event_id.startswith("dup")
        if self.conflict:
            return []
        Engine.applied.append(event.event_id)
        return [
            Transition(
                f"exam-{self.pid}",
                "cand",
                self.pid,
                "y3-final",
                "1",
                "1",
                f"c.{event.event_id}",
                "met",
                "pending",
                1.0,
                1.0,
                "seen",
                (event.event_id,),
                event.ts_ms,
            )
        ]

    def evaluate(self, at_ms: int) -> Sequence[Transition]:
        return []


class Engines:
    def new(self, platform_id: str) -> GradingEngine:
        return Engine(platform_id)

    def dump(self, engine: GradingEngine) -> bytes:
        return b"{}"

    def load(self, data: bytes) -> GradingEngine:
        raise AssertionError("nothing is restored here")


class Codec:
    """Values are ``platform/event_id``; ``bad`` is not a record."""

    def needs_registry(self, value: bytes | None) -> bool:
        return False

    def decode(self, value: bytes | None, topic: str, partition: int, offset: int) -> Event:
        if not value or value.startswith(b"bad"):
            raise RecordDecodeError("not avro at all", "corrupt_bytes")
        pid, eid = value.decode().split("/")
        return Event("tool.used", pid, eid, TS_MS + offset, {})

    def encode(self, event: Event) -> bytes:
        return json.dumps([event.type, event.event_id]).encode()

    def encode_datum(self, event_type: str, datum: dict[str, Any]) -> bytes:
        return json.dumps([event_type, datum["event_id"]]).encode()

    def topic_for(self, event_type: str) -> str:
        return "grading.dlq"


class Refuser:
    """Refuses every event of platform ``evil``; keeps the facts it was shown."""

    def __init__(self) -> None:
        self.facts: list[RecordFacts] = []

    def admit(self, event: Event, facts: RecordFacts) -> Refusal | None:
        self.facts.append(facts)
        if event.platform_id == "evil":
            return Refusal("forbidden", "platform evil may not send tool.used")
        return None


class Sink:
    def __init__(self) -> None:
        self.rows: list[TransitionRow] = []
        self.offsets: dict[tuple[str, int], int] = {}

    def offer(self, row: TransitionRow) -> bool:
        self.rows.append(row)
        return True

    def processed(self, tp: tuple[str, int], next_offset: int) -> None:
        self.offsets[tp] = max(self.offsets.get(tp, 0), next_offset)


class Outbox:
    def __init__(self) -> None:
        self.dead: list[tuple[bytes | None, bytes]] = []
        self.states: list[bytes] = []

    async def dead_letter(self, key: bytes | None, value: bytes) -> None:
        self.dead.append((key, value))

    async def state(self, key: bytes, value: bytes) -> None:
        self.states.append(key)


class Rig:
    def __init__(self, log_ends: LogEnds | None = None) -> None:
        Engine.threads.clear()
        Engine.applied.clear()
        self.assignments = Assignments(Engines(), lambda: [])
        self.assignments.assigned({0, 1})
        self.assignments.recovered.set()
        self.rewind = RewindPolicy()
        self.sink = Sink()
        self.outbox = Outbox()
        self.admission = Refuser()
        self.metrics = Metrics()
        self.thread = ThreadPoolExecutor(1, thread_name_prefix="grading")
        self.pipeline = BatchPipeline(
            Codec(),  # type: ignore[arg-type]
            self.admission,
            self.assignments,
            self.rewind,
            self.sink,
            self.outbox,
            self.metrics,
            self.thread,
            NoOpTracer(),
            log_ends=log_ends,
        )

    def run(self, records: list[RawRecord]) -> None:
        asyncio.run(self.pipeline.run(records))

    def outcome(self, outcome: str) -> float:
        value: Any = self.metrics.records.labels(TOPIC, outcome)._value.get()
        return float(value)


def rec(offset: int, value: bytes, partition: int = 0, key: bytes = b"k") -> RawRecord:
    return RawRecord(TOPIC, partition, offset, key, value, (("h", b"v"),), TS_MS + 5)


def test_records_are_graded_in_order_in_the_grading_thread() -> None:
    rig = Rig()
    rig.run([rec(0, b"p1/e0"), rec(1, b"p2/e1"), rec(2, b"p1/e2")])
    assert Engine.applied == ["e0", "e1", "e2"]
    assert len(Engine.threads) == 1 and next(iter(Engine.threads)).startswith("grading")
    assert [r.criterion_id for r in rig.sink.rows] == ["c.e0", "c.e1", "c.e2"]
    assert rig.sink.offsets == {(TOPIC, 0): 3}
    assert len(rig.outbox.states) == 3 and rig.outbox.dead == []
    assert rig.assignments.graders[0].positions == {TOPIC: 3}
    assert rig.outcome("graded") == 3


def test_a_refused_record_is_a_dead_letter_and_moves_the_partition_on() -> None:
    rig = Rig()
    rig.run([rec(0, b"p1/e0"), rec(1, b"evil/e1", key=b"evil"), rec(2, b"p1/e2")])
    assert Engine.applied == ["e0", "e2"], "the refused record grades nothing"
    ((key, value),) = rig.outbox.dead
    assert key == b"evil"
    assert json.loads(value) == ["grading.dead_letter", json.loads(value)[1]]
    assert rig.assignments.graders[0].positions == {TOPIC: 3}, "its position is marked"
    assert rig.sink.offsets == {(TOPIC, 0): 3}
    assert rig.outcome("dead_letter") == 1 and rig.outcome("graded") == 2
    assert rig.metrics.dead_letters.labels(TOPIC, "forbidden")._value.get() == 1
    facts = rig.admission.facts[1]
    assert (facts.topic, facts.partition, facts.offset, facts.key) == (TOPIC, 0, 1, b"evil")
    assert facts.value == b"evil/e1" and list(facts.headers) == [("h", b"v")]
    assert facts.broker_ts_ms == TS_MS + 5


def test_the_dead_letter_of_a_refusal_carries_its_class_and_reason(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rig = Rig()
    seen: list[DeadLetter] = []
    import services.grader.pipeline as pipeline

    real = pipeline.dead_letter_record
    monkeypatch.setattr(
        pipeline, "dead_letter_record", lambda d, c: (seen.append(d), real(d, c))[1]
    )
    rig.run([rec(0, b"evil/e0"), rec(1, b"bad bytes")])
    assert [(d.error_class, d.source_offset) for d in seen] == [
        ("forbidden", 0),
        ("corrupt_bytes", 1),
    ]
    assert seen[0].reason == "platform evil may not send tool.used"
    assert seen[0].raw_value == b"evil/e0" and seen[0].source_timestamp_ms == TS_MS + 5
    assert rig.assignments.graders[0].positions == {TOPIC: 2}
    assert Engine.applied == []


def test_a_conflicting_duplicate_is_a_dead_letter_sent_before_its_position_moves() -> None:
    rig = Rig()
    rig.run([rec(0, b"p1/e0"), rec(1, b"p1/dup-e0"), rec(2, b"p1/e2")])
    assert Engine.applied == ["e0", "e2"], "the conflicting record grades nothing"
    ((key, value),) = rig.outbox.dead
    assert key == b"k"
    assert json.loads(value)[0] == "grading.dead_letter"
    assert rig.metrics.dead_letters.labels(TOPIC, "conflicting_duplicate")._value.get() == 1
    assert rig.assignments.graders[0].positions == {TOPIC: 3}
    assert rig.sink.offsets == {(TOPIC, 0): 3}
    assert rig.outcome("dead_letter") == 1 and rig.outcome("graded") == 2
    assert [r.criterion_id for r in rig.sink.rows] == ["c.e0", "c.e2"]


def test_a_dead_letter_already_in_the_state_is_not_sent_again() -> None:
    rig = Rig()
    rig.run([rec(0, b"bad")])
    assert len(rig.outbox.dead) == 1
    rig.run([rec(0, b"bad"), rec(1, b"p1/e1")])  # read again after a seek back
    assert len(rig.outbox.dead) == 1
    assert rig.outcome("replayed") == 1 and rig.outcome("graded") == 1


def test_a_record_past_the_position_is_not_graded_and_opens_a_gap() -> None:
    rig = Rig()
    rig.run([rec(0, b"p1/e0")])
    rig.run([rec(5, b"p1/e5"), rec(6, b"p1/e6")])
    assert Engine.applied == ["e0"]
    assert rig.rewind.open_gaps() == {(TOPIC, 0): 1}
    assert rig.outcome("out_of_order") == 2
    rig.run([rec(1, b"p1/e1")])
    assert rig.rewind.open_gaps() == {}, "the record at the position closes the gap"


def test_records_of_partitions_not_owned_are_left_to_their_owner() -> None:
    rig = Rig()
    rig.run([rec(0, b"p1/e0", partition=4)])
    assert Engine.applied == [] and rig.sink.offsets == {}
    assert rig.outcome("not_owned") == 1


def test_a_partition_revoked_while_the_batch_waited_is_not_graded() -> None:
    rig = Rig()

    async def scenario() -> None:
        await rig.assignments.lock.acquire()  # a revocation holds the graders
        task = asyncio.ensure_future(rig.pipeline.run([rec(0, b"p1/e0")]))
        for _ in range(10):
            await asyncio.sleep(0)
        rig.assignments.drop({0})
        rig.assignments.lock.release()
        await task

    asyncio.run(scenario())
    assert Engine.applied == [] and rig.sink.rows == [] and rig.sink.offsets == {}
    assert rig.outcome("not_owned") == 1


COLLECTORS = "platform.collectors"


def test_a_new_grader_gets_every_topics_log_end_before_its_first_record() -> None:
    """A topic not fetched yet (here the collectors') holds the partition's clock from
    the first record on: the broker's log ends are read before the grader grades."""
    asked: list[int] = []

    async def ends(partition: int) -> dict[str, int]:
        asked.append(partition)
        return {TOPIC: 3, COLLECTORS: 5}

    rig = Rig(log_ends=ends)
    rig.run([rec(0, b"p1/e0"), rec(1, b"p1/e1")])
    grader = rig.assignments.graders[0]
    assert grader.highs == {TOPIC: TS_MS + 1, COLLECTORS: 0}
    assert grader.watermark_ms == 0, "the unread collectors topic holds the clock"
    rig.run([rec(2, b"p1/e2"), rec(0, b"p2/e0", partition=1)])
    assert asked == [0, 1], "once per new grader"
    assert Engine.applied == ["e0", "e1", "e2", "e0"]


def test_without_the_log_ends_a_topic_not_fetched_yet_does_not_hold_the_clock() -> None:
    """The control of the test above: the same records, no log ends."""
    rig = Rig()
    rig.run([rec(0, b"p1/e0"), rec(1, b"p1/e1")])
    assert rig.assignments.graders[0].watermark_ms == TS_MS + 1


def test_log_ends_that_cannot_be_read_are_retried_then_left_to_the_tick(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import services.grader.pipeline as pipeline

    monkeypatch.setattr(pipeline, "RETRY_S", 0.0)
    calls: list[int] = []

    async def flaky(partition: int) -> dict[str, int]:
        calls.append(partition)
        if len(calls) < 2:
            raise ConnectionError("broker away")
        return {TOPIC: 1, COLLECTORS: 5}

    rig = Rig(log_ends=flaky)
    rig.run([rec(0, b"p1/e0")])
    assert calls == [0, 0]
    assert rig.assignments.graders[0].watermark_ms == 0

    async def down(partition: int) -> dict[str, int]:
        calls.append(partition)
        raise ConnectionError("broker away")

    calls.clear()
    rig = Rig(log_ends=down)
    rig.run([rec(0, b"p1/e0")])
    assert calls == [0] * pipeline.LOG_END_ATTEMPTS
    assert Engine.applied == ["e0"], "graded without them"
