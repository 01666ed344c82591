"""The worker's tick alone, without Faust: a consumer view and a seek recorder."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from services.grader.assignment import Assignments
from services.grader.offsets import TopicPartition
from services.grader.record import PlatformRecord
from services.grader.rewind import RewindPolicy
from services.grader.rows import TransitionRow
from services.grader.telemetry import Metrics
from services.grader.tick import Tick

pytestmark = pytest.mark.unit


class Consumer:
    def __init__(self, highs: dict[TopicPartition, int | None]) -> None:
        self.highs = highs
        self.broken: set[TopicPartition] = set()

    def assigned(self) -> set[TopicPartition]:
        return set(self.highs)

    def highwater(self, tp: TopicPartition) -> int | None:
        if tp in self.broken:
            raise RuntimeError("not fetched yet")
        return self.highs[tp]


class Sink:
    def offer(self, row: TransitionRow) -> bool:
        return True

    def processed(self, tp: TopicPartition, next_offset: int) -> None:
        pass


class Commits:
    def __init__(self) -> None:
        self.asked = 0

    def maybe_commit(self) -> None:
        self.asked += 1


class Store:
    def new(self, platform_id: str) -> Any:
        raise AssertionError("no platform is graded here")

    def dump(self, engine: Any) -> bytes:
        return b""

    def load(self, data: bytes) -> Any:
        raise AssertionError("no platform is restored here")


def marker(partition: int, positions: dict[str, int]) -> PlatformRecord:
    return PlatformRecord(f"\x00partition:{partition}", partition, b"", positions, 0, 0)


class World:
    def __init__(self, highs: dict[TopicPartition, int | None], state: list[PlatformRecord]):
        self.assignments = Assignments(Store(), lambda: state)
        self.assignments.recovered.set()
        self.rewind = RewindPolicy(gap_seek_s=1.0, stall_seek_s=3.0)
        self.metrics = Metrics()
        self.consumer = Consumer(highs)
        self.seeks: list[tuple[TopicPartition, int]] = []
        self.now = 100.0
        self.commits = Commits()

        async def seek(tp: TopicPartition, offset: int) -> None:
            self.seeks.append((tp, offset))

        self.tick = Tick(
            self.assignments, self.rewind, self.metrics, self.consumer, seek, lambda: self.now
        )

    def run(self, settled: bool = True) -> None:
        asyncio.run(self.tick.run(Sink(), settled, self.commits))


def test_restores_idle_partitions_notes_log_ends_sets_lag_and_commits() -> None:
    world = World({("a", 0): 10, ("b", 0): 4, ("a", 1): None}, [marker(0, {"a": 7})])
    world.run()
    assert set(world.assignments.graders) == {0, 1}  # restored with nothing new to read
    assert world.tick.last_ends == {0: {"a": 10, "b": 4}}  # partition 1: no end known
    assert world.metrics.lag.labels("a", "0")._value.get() == 3
    assert world.metrics.lag.labels("b", "0")._value.get() == 4
    assert world.commits.asked == 1 and world.seeks == []


def test_a_partition_behind_with_no_delivery_is_sought_back_when_settled_only() -> None:
    world = World({("a", 0): 10}, [marker(0, {"a": 7})])
    world.run()
    world.now += 10
    world.run(settled=False)
    assert world.seeks == []  # a rebalance under way: stalls wait
    world.run()
    assert world.seeks == [(("a", 0), 7)]
    assert world.metrics.position_gaps.labels("a")._value.get() == 1


def test_an_unreadable_high_water_mark_is_skipped() -> None:
    world = World({("a", 0): 10, ("b", 0): 5}, [])
    world.run()
    world.consumer.broken.add(("a", 0))
    assert world.tick.log_ends() == {0: {"b": 5}}


def test_no_restore_before_the_table_is_read_back() -> None:
    world = World({("a", 0): 10}, [])
    world.assignments.recovered.clear()
    world.run(settled=False)
    assert world.assignments.graders == {} and world.tick.last_ends == {}
