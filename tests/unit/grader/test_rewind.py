"""The rules for reading a partition again from its state's position (rewind.py).

A record past the state's position arrives (a gap), or the log holds records past the
position and none arrives (a stall, when the read offset reached the end of the log):
both end in a seek back to the position. The policy is pure: each test drives the clock
and the marks (state position, high-water mark) and reads the seeks it returns.
"""

from __future__ import annotations

import pytest

from services.grader.rewind import GAP_SEEK_S, STALL_SEEK_S, Mark, RewindPolicy, Seek

pytestmark = pytest.mark.unit

TOPIC = "platform.flink"


class Partitions:
    """A policy, a clock and the marks of the assigned partitions, as the worker's tick
    would pass them."""

    def __init__(self) -> None:
        self.policy = RewindPolicy()
        self.now = 1000.0
        self.marks: dict[tuple[str, int], Mark] = {}
        self.settled = True

    def at(self, partition: int, resume: int | None, high: int) -> tuple[str, int]:
        """Partition ``partition`` of the topic, its state resuming at ``resume`` (None:
        no state yet, so the worker reads from the first record)."""
        tp = (TOPIC, partition)
        self.marks[tp] = Mark(resume or 0, high)
        return tp

    def tick(self, advance_s: float) -> list[tuple[tuple[str, int], int]]:
        """Let ``advance_s`` pass and return the seeks the policy asks for."""
        self.now += advance_s
        return [(s.tp, s.offset) for s in self.policy.seeks(self.now, self.marks, self.settled)]


@pytest.fixture
def parts() -> Partitions:
    return Partitions()


def test_a_partition_holding_records_it_never_delivers_is_read_again(parts: Partitions) -> None:
    tp = parts.at(0, resume=35, high=290)
    assert parts.tick(0) == []
    assert parts.tick(STALL_SEEK_S - 0.5) == []
    assert parts.tick(1.0) == [(tp, 35)]
    # still nothing: the seek is repeated every GAP_SEEK_S, never in between
    assert parts.tick(GAP_SEEK_S / 2) == []
    assert parts.tick(GAP_SEEK_S) == [(tp, 35)]


def test_a_stall_seek_says_how_long_the_partition_was_silent(parts: Partitions) -> None:
    parts.at(0, resume=35, high=290)
    parts.tick(0)
    parts.now += STALL_SEEK_S + 0.5
    (seek,) = parts.policy.seeks(parts.now, parts.marks, True)
    assert seek == Seek((TOPIC, 0), 35, stalled_s=STALL_SEEK_S + 0.5, high=290)
    parts.now += GAP_SEEK_S
    (again,) = parts.policy.seeks(parts.now, parts.marks, True)
    assert again.stalled_s is None, "a repeated seek is not a new stall"


def test_a_partition_that_keeps_delivering_is_left_alone(parts: Partitions) -> None:
    """A backlog: records past the position, arriving; no seek however long it lasts."""
    parts.at(1, resume=100, high=5000)
    for _ in range(10):
        parts.policy.delivered((TOPIC, 1), parts.now)
        assert parts.tick(STALL_SEEK_S - 0.1) == []


def test_records_that_just_arrived_on_a_quiet_partition_get_their_time(
    parts: Partitions,
) -> None:
    """The partition delivered long ago; new records are not a stall until they wait."""
    tp = parts.at(2, resume=55, high=55)
    parts.policy.delivered(tp, parts.now)
    assert parts.tick(60) == []
    parts.at(2, resume=55, high=250)
    assert parts.tick(0.5) == []
    assert parts.tick(STALL_SEEK_S) == [(tp, 55)]


def test_caught_up_and_state_less_partitions(parts: Partitions) -> None:
    parts.at(3, resume=90, high=90)
    empty = parts.at(4, resume=None, high=0)
    assert parts.tick(100) == []
    parts.at(4, resume=None, high=7)
    parts.tick(0)
    assert parts.tick(STALL_SEEK_S) == [(empty, 0)], "no state: read from the first record"


def test_a_record_past_the_position_seeks_back_until_the_position_arrives(
    parts: Partitions,
) -> None:
    tp = parts.at(5, resume=96, high=340)
    assert parts.policy.past_position(tp, 96, parts.now) is True
    assert parts.policy.past_position(tp, 96, parts.now) is False, "one gap, logged once"
    assert parts.policy.open_gaps() == {tp: 96}
    assert parts.tick(GAP_SEEK_S) == [(tp, 96)]
    assert parts.tick(GAP_SEEK_S) == [(tp, 96)]
    parts.policy.at_position(tp)  # the record at the position arrived
    parts.policy.delivered(tp, parts.now)
    assert parts.tick(GAP_SEEK_S) == []
    assert parts.policy.open_gaps() == {}


def test_a_gap_is_not_sought_before_its_time(parts: Partitions) -> None:
    tp = parts.at(5, resume=96, high=340)
    parts.policy.past_position(tp, 96, parts.now)
    assert parts.tick(GAP_SEEK_S / 2) == []
    assert parts.tick(GAP_SEEK_S / 2) == [(tp, 96)]


def test_no_stall_seek_while_rebalancing_or_before_the_table_is_read_back(
    parts: Partitions,
) -> None:
    tp = parts.at(0, resume=10, high=20)
    parts.settled = False
    assert parts.tick(100) == []
    assert parts.tick(100) == []
    parts.settled = True
    # the wait starts when the partition is first seen behind while settled
    assert parts.tick(0) == []
    assert parts.tick(STALL_SEEK_S) == [(tp, 10)]


def test_an_open_gap_is_sought_back_even_during_a_rebalance(parts: Partitions) -> None:
    tp = parts.at(0, resume=10, high=20)
    parts.policy.past_position(tp, 10, parts.now)
    parts.settled = False
    assert parts.tick(GAP_SEEK_S) == [(tp, 10)]


def test_a_revoked_partition_is_forgotten(parts: Partitions) -> None:
    tp = parts.at(0, resume=10, high=20)
    parts.policy.past_position(tp, 10, parts.now)
    parts.policy.delivered(tp, parts.now)
    parts.policy.forget({tp})
    del parts.marks[tp]
    assert parts.tick(100) == []
    assert parts.policy.delivered(tp, parts.now) is True, "first record again after a revoke"
