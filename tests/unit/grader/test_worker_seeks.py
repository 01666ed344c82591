"""The worker's rules for reading a partition again from its state's position.

Faust and its Kafka client can drop fetched records around a rebalance or a restart and
still move the read offset past them. The worker notices two ways: a record past the
state's position arrives (a gap), or the log holds records past the position and none
arrives (a stall, when the read offset reached the end of the log). Both end in a seek
back to the position. The consumer here is a stand-in that reports high-water marks and
records seeks: the rule under test is the worker's, not the broker's.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from faust.types import TP

from services.contract.wire import WireCodec, registry_client
from services.grader.app import GAP_SEEK_S, STALL_SEEK_S, GraderWorker
from services.grader.grading import PartitionGrader
from services.grader.settings import GraderSettings

pytestmark = pytest.mark.unit

TOPIC = "platform.flink"


class Consumer:
    """Assignment, high-water marks and the seeks asked for."""

    def __init__(self, high: dict[TP, int]) -> None:
        self.high = high
        self.seeks: list[tuple[TP, int]] = []

    def assignment(self) -> set[TP]:
        return set(self.high)

    def highwater(self, tp: TP) -> int:
        return self.high[tp]

    async def seek(self, tp: TP, offset: int) -> None:
        self.seeks.append((tp, offset))


class Engines:
    def new(self, platform_id: str) -> Any:
        raise AssertionError("no record is graded here")

    def dump(self, engine: Any) -> bytes:
        raise AssertionError("no state is written here")

    def load(self, data: bytes) -> Any:
        raise AssertionError("no state is read here")


@pytest.fixture
def worker(tmp_path: Path) -> GraderWorker:
    settings = GraderSettings(data_dir=str(tmp_path), topic_prefix="")
    codec = WireCodec(registry_client("http://127.0.0.1:9"), topic_prefix="")
    w = GraderWorker(settings, Engines(), codec, lambda: None, lambda: None)  # type: ignore[arg-type, return-value]
    w.now = 1000.0  # type: ignore[attr-defined]
    w.clock = lambda: w.now  # type: ignore[attr-defined]
    w._recovered.set()
    return w


def at(worker: GraderWorker, partition: int, resume: int | None, high: int) -> TP:
    """Partition ``partition`` of the topic, its state resuming at ``resume``."""
    tp = TP(TOPIC, partition)
    grader = PartitionGrader(partition, Engines())
    if resume is not None:
        grader.positions[TOPIC] = resume
    worker.graders[partition] = grader
    consumer = worker.app.consumer
    if not isinstance(consumer, Consumer):
        consumer = Consumer({})
        worker.app.consumer = consumer
    consumer.high[tp] = high
    return tp


def tick(worker: GraderWorker, advance_s: float) -> list[tuple[TP, int]]:
    """Let ``advance_s`` pass, run the worker's check and return the seeks it made."""
    worker.now += advance_s  # type: ignore[attr-defined]
    consumer = worker.app.consumer
    assert isinstance(consumer, Consumer)
    before = len(consumer.seeks)
    asyncio.run(worker._tick())
    return consumer.seeks[before:]


def test_a_partition_holding_records_it_never_delivers_is_read_again(worker: GraderWorker) -> None:
    tp = at(worker, 0, resume=35, high=290)
    assert tick(worker, 0) == []
    assert tick(worker, STALL_SEEK_S - 0.5) == []
    assert tick(worker, 1.0) == [(tp, 35)]
    # still nothing: the seek is repeated every GAP_SEEK_S, never in between
    assert tick(worker, GAP_SEEK_S / 2) == []
    assert tick(worker, GAP_SEEK_S) == [(tp, 35)]


def test_a_partition_that_keeps_delivering_is_left_alone(worker: GraderWorker) -> None:
    """A backlog: records past the position, arriving; no seek however long it lasts."""
    at(worker, 1, resume=100, high=5000)
    for _ in range(10):
        worker._last_seen[(TOPIC, 1)] = worker.clock()
        assert tick(worker, STALL_SEEK_S - 0.1) == []


def test_records_that_just_arrived_on_a_quiet_partition_get_their_time(
    worker: GraderWorker,
) -> None:
    """The partition delivered long ago; new records are not a stall until they wait."""
    tp = at(worker, 2, resume=55, high=55)
    worker._last_seen[(TOPIC, 2)] = worker.clock()
    assert tick(worker, 60) == []
    worker.app.consumer.high[tp] = 250  # type: ignore[attr-defined]
    assert tick(worker, 0.5) == []
    assert tick(worker, STALL_SEEK_S) == [(tp, 55)]


def test_caught_up_and_state_less_partitions(worker: GraderWorker) -> None:
    at(worker, 3, resume=90, high=90)
    empty = at(worker, 4, resume=None, high=0)
    assert tick(worker, 100) == []
    worker.app.consumer.high[empty] = 7  # type: ignore[attr-defined]
    tick(worker, 0)
    assert tick(worker, STALL_SEEK_S) == [(empty, 0)], "no state: read from the first record"


def test_a_record_past_the_position_seeks_back_until_the_position_arrives(
    worker: GraderWorker,
) -> None:
    tp = at(worker, 5, resume=96, high=340)
    asyncio.run(worker._out_of_order(tp, 339, 96))
    assert tick(worker, GAP_SEEK_S) == [(tp, 96)]
    assert tick(worker, GAP_SEEK_S) == [(tp, 96)]
    worker._gaps.pop((TOPIC, 5))  # what the record at the position does in _grade
    worker._last_seen[(TOPIC, 5)] = worker.clock()
    assert tick(worker, GAP_SEEK_S) == []


def test_no_seek_while_rebalancing_or_before_the_table_is_read_back(
    worker: GraderWorker,
) -> None:
    at(worker, 0, resume=10, high=20)
    worker._recovered.clear()
    assert tick(worker, 100) == []
    worker._recovered.set()
    worker.app.rebalancing = True
    assert tick(worker, 100) == []
