"""The partition grader's rooms alone: its clock (positions, highs, log ends, aligned
watermark), its deadline timers and its book of platforms."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from services.core.events import Event, SourcePosition
from services.core.model import Transition
from services.grader.platforms import PlatformBook
from services.grader.record import PlatformRecord
from services.grader.rows import TransitionRow
from services.grader.timers import DeadlineTimers
from services.grader.watermark import NO_TIME, PartitionClock

pytestmark = pytest.mark.unit


# --- clock ---------------------------------------------------------------------------
def test_the_watermark_is_the_slowest_topic_with_records_left() -> None:
    clock = PartitionClock(["a", "b"])
    assert clock.read("a", 0, 5_000) and clock.aligned() == NO_TIME  # b holds it
    assert clock.read("b", 0, 3_000) and clock.aligned() == 3_000
    clock.note_log_ends({"a": 1, "b": 5})  # a is read to its end: idle
    assert clock.aligned() == 3_000
    clock.note_log_ends({"a": 1, "b": 1})  # both idle: the highest read counts
    assert clock.aligned() == 5_000
    assert clock.positions == {"a": 1, "b": 1}


def test_a_record_below_the_watermark_asks_for_no_recompute() -> None:
    clock = PartitionClock()
    clock.read("a", 0, 5_000)
    clock.watermark_ms = clock.aligned()
    assert clock.read("a", 1, 4_000) is False  # older than the topic's high: nothing moves
    assert clock.highs == {"a": 5_000}


def test_new_log_ends_force_one_recompute_and_a_skip_moves_the_position() -> None:
    clock = PartitionClock()
    clock.read("a", 0, 5_000)
    clock.watermark_ms = 5_000
    clock.note_log_ends({"a": 9})
    assert clock.read("a", 1, 4_000) is True  # the ends changed since the last look
    assert clock.read("a", 2, 4_000) is False
    clock.skip("a", 7)
    assert clock.positions["a"] == 8


def test_restore_keeps_the_higher_high_and_meets_every_positioned_topic() -> None:
    clock = PartitionClock(["a"])
    clock.restore({"a": 4, "b": 2}, {"a": 7_000}, 6_000)
    assert clock.highs == {"a": 7_000, "b": NO_TIME} and clock.watermark_ms == 6_000
    assert clock.read("a", 4, 1_000) is True  # a restore is a change of ends


# --- timers --------------------------------------------------------------------------
def test_only_due_platforms_fire_in_deadline_order_and_leave_the_queue() -> None:
    timers = DeadlineTimers()
    timers.schedule("late", 300)
    timers.schedule("early", 100)
    timers.schedule("none", None)
    assert len(timers) == 2 and not timers.due(99) and timers.due(100)
    assert list(timers.pop_due(200)) == [(100, "early")]
    assert len(timers) == 1 and not timers.due(200)


def test_a_rescheduled_platform_fires_once_at_its_new_deadline() -> None:
    timers = DeadlineTimers()
    timers.schedule("p", 100)
    timers.schedule("p", 500)  # the entry at 100 is superseded
    timers.schedule("p", 500)  # the same deadline again: no second entry
    assert timers.due(100)  # the stale entry surfaces...
    assert list(timers.pop_due(100)) == []  # ...and is skipped
    assert list(timers.pop_due(1_000)) == [(500, "p")]
    assert list(timers.pop_due(10_000)) == []


def test_a_platform_scheduled_while_firing_is_seen_if_due() -> None:
    timers = DeadlineTimers()
    timers.schedule("p", 100)
    seen = []
    for deadline, pid in timers.pop_due(1_000):
        seen.append((deadline, pid))
        if deadline == 100:
            timers.schedule("q", 200)
            timers.schedule("p", 2_000)
    assert seen == [(100, "p"), (200, "q")] and len(timers) == 1


# --- book ----------------------------------------------------------------------------
class _Engine:
    def __init__(self, name: str) -> None:
        self.name = name

    def apply(self, event: Event) -> Sequence[Transition]:
        return ()

    def evaluate(self, at_ms: int) -> Sequence[Transition]:
        return ()


class _Store:
    def new(self, platform_id: str) -> _Engine:
        return _Engine(platform_id)

    def dump(self, engine: _Engine) -> bytes:
        return engine.name.encode()

    def load(self, data: bytes) -> _Engine:
        return _Engine(data.decode())


#: the store as the book sees it (its engines are this module's stand-ins)
STORE: Any = _Store()


def transition(pid: str, state: str) -> Transition:
    return Transition(
        exam_id="x1", candidate_id="c1", platform_id=pid, rubric_id="r", rubric_version="1",
        part="1", criterion_id="p1.c", state=state, previous_state=None, score=0.0,
        max_score=1.0, reason="", evidence=("e1",), event_ts_ms=1_000,
    )  # fmt: skip


def test_rows_take_each_platforms_next_seq_and_enter_its_outbox() -> None:
    book = PlatformBook(3, STORE)
    book.get("p")
    book.get("q")
    src = SourcePosition("t", 3, 41)
    rows = book.rows([("p", transition("p", "met")), ("q", transition("q", "met")),
                      ("p", transition("p", "failed"))], src, "e1", 123)  # fmt: skip
    assert [(r.platform_id, r.seq) for r in rows] == [("p", 1), ("q", 1), ("p", 2)]
    assert rows[0].evidence[0].offset == 41 and rows[0].graded_at_ms == 123
    assert [r.seq for r in book.live["p"].pending] == [1, 2]


def test_records_cover_the_touched_platforms_trimmed_of_committed_rows() -> None:
    book = PlatformBook(3, STORE)
    book.get("p").latest_ms = 9
    book.get("q")
    rows = book.rows([("p", transition("p", "met")), ("p", transition("p", "failed"))],
                     SourcePosition("t", 3, 0), "e1", 1)  # fmt: skip
    book.dirty.add("p")

    def committed(row: TransitionRow) -> bool:
        return row.seq == 1

    (record,) = book.records(committed, {"t": 1}, 5)
    assert record.platform_id == "p" and record.state == b"p" and record.latest_ms == 9
    assert [r.seq for r in record.pending] == [2] and record.positions == {"t": 1}
    assert book.dirty == set() and rows[1] in book.live["p"].pending
    book.touch_all()
    assert book.dirty == {"p", "q"}


def test_a_loaded_platform_keeps_its_seq_outbox_and_clock() -> None:
    book = PlatformBook(3, STORE)
    book.get("p")
    (row,) = book.rows([("p", transition("p", "met"))], SourcePosition("t", 3, 0), "e1", 1)
    record = PlatformRecord("p", 3, b"p", {"t": 1}, 0, 7, (row,), latest_ms=11)
    again = PlatformBook(3, STORE)
    live = again.load(record)
    assert (live.seq, live.latest_ms, live.pending) == (7, 11, [row])
    (nxt,) = again.rows([("p", transition("p", "failed"))], SourcePosition("t", 3, 1), "e2", 1)
    assert nxt.seq == 8
