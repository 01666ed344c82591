"""The commit protocol (checkpoint.py) without Faust, a broker or a catalog.

The order is the guarantee: state records (platforms, then the partition's marker) are
sent and acknowledged, then the group's offsets go to the markers' positions, then the
batch goes to Iceberg. A failure at any step must leave nothing ahead of durable state
and retry later; a partition whose state send failed writes all its platforms next time.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping, Sequence
from typing import Any

import pytest

from services.core.events import Event, SourcePosition
from services.core.model import Transition
from services.errors import SinkError
from services.grader.checkpoint import Checkpoint
from services.grader.grading import GradingEngine, PartitionGrader
from services.grader.record import PlatformRecord
from services.grader.rows import TransitionRow
from services.grader.sink import Batch, CommitResult
from services.grader.telemetry import Metrics

pytestmark = pytest.mark.unit

TOPIC = "platform.flink"


class Engine:
    """Emits one change ("seen") at a platform's first event, nothing after."""

    def __init__(self, pid: str, seen: int = 0) -> None:
        self.pid, self.seen = pid, seen

    def apply(self, event: Event) -> Sequence[Transition]:
        self.seen += 1
        if self.seen > 1:
            return []
        return [
            Transition(
                f"exam-{self.pid}",
                "cand",
                self.pid,
                "y3-final",
                "1",
                "1",
                "p1.seen",
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
        assert isinstance(engine, Engine)
        return json.dumps([engine.pid, engine.seen]).encode()

    def load(self, data: bytes) -> GradingEngine:
        pid, seen = json.loads(data)
        return Engine(pid, seen)


class Log:
    """One record of every call the checkpoint makes, in order."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []


class StateLog:
    """Sends whose acks the test resolves (or fails)."""

    def __init__(self, log: Log) -> None:
        self.log = log
        self.fail_partitions: set[int] = set()
        self.records: list[PlatformRecord] = []

    def write(self, partition: int, record: PlatformRecord) -> asyncio.Future[None]:
        self.log.calls.append(("state", (partition, record.platform_id)))
        self.records.append(record)
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if partition in self.fail_partitions:
            fut.set_exception(OSError("broker gone"))
        else:
            fut.set_result(None)
        return fut


class Group:
    def __init__(self, log: Log) -> None:
        self.log = log

    async def commit(self, offsets: Mapping[tuple[str, int], int]) -> None:
        self.log.calls.append(("group", dict(offsets)))


class Sink:
    """The sink's buffer and commits; ``fail`` makes the next write raise."""

    def __init__(self, log: Log) -> None:
        self.log = log
        self.rows: dict[str, TransitionRow] = {}
        self.offsets: dict[tuple[str, int], int] = {}
        self.committed: dict[tuple[str, int], int] = {}
        self.fail = False
        self.is_due = True

    @property
    def buffered_rows(self) -> int:
        return len(self.rows)

    def is_committed(self, row: TransitionRow) -> bool:
        s = row.source
        return s.offset < self.committed.get((s.topic, s.partition), 0)

    def due(self) -> bool:
        return self.is_due

    def take(self) -> Batch | None:
        if not self.rows and not self.offsets:
            return None
        batch = Batch(tuple(self.rows.values()), dict(self.offsets), 0.0)
        self.rows, self.offsets = {}, {}
        return batch

    def write(self, batch: Batch) -> CommitResult:
        self.log.calls.append(("iceberg", dict(batch.offsets)))
        if self.fail:
            self.fail = False
            raise SinkError("catalog database unreachable")
        return CommitResult(len(batch.rows), 1, dict(batch.offsets), 0.01, 1)

    def restore(self, batch: Batch) -> None:
        self.log.calls.append(("restored", len(batch.rows)))
        self.rows = {r.transition_id: r for r in batch.rows} | self.rows
        self.offsets = dict(batch.offsets) | self.offsets

    def finish(self, result: CommitResult) -> None:
        self.committed.update(result.offsets)


class World:
    def __init__(self) -> None:
        self.log = Log()
        self.graders: dict[int, PartitionGrader] = {}
        self.lock = asyncio.Lock()
        self.state = StateLog(self.log)
        self.group = Group(self.log)
        self.sink = Sink(self.log)
        self.metrics = Metrics()
        self.checkpoint = Checkpoint(
            self.graders, self.lock, self.state, self.group, self.sink, self.metrics, retry_s=0
        )

    def grade(self, partition: int, offset: int, pid: str) -> None:
        """What the pipeline does for one record: grade, then offer rows and offset."""
        grader = self.graders.setdefault(partition, PartitionGrader(partition, Engines()))
        event = Event("tool.used", pid, f"{pid}-{offset}", 1_000 + offset, {})
        result = grader.handle(event, SourcePosition(TOPIC, partition, offset))
        for row in result.rows:
            self.sink.rows[row.transition_id] = row
        self.sink.offsets[(TOPIC, partition)] = offset + 1

    def calls(self, kind: str) -> list[Any]:
        return [arg for k, arg in self.log.calls if k == kind]


def commit(world: World) -> None:
    asyncio.run(world.checkpoint.commit())


def test_state_then_acks_then_group_offsets_then_iceberg() -> None:
    world = World()
    world.grade(0, 0, "p-a")
    world.grade(0, 1, "p-b")
    world.grade(3, 0, "p-c")
    commit(world)
    kinds = [k for k, _a in world.log.calls]
    assert kinds == ["state"] * 5 + ["group", "iceberg"]
    states = world.calls("state")
    # per partition: its platforms first, its marker last
    assert states[:3] == [(0, "p-a"), (0, "p-b"), (0, "\x00partition:0")]
    assert states[3:] == [(3, "p-c"), (3, "\x00partition:3")]
    assert world.calls("group") == [{(TOPIC, 0): 2, (TOPIC, 3): 1}]
    assert world.calls("iceberg") == [{(TOPIC, 0): 2, (TOPIC, 3): 1}]
    assert world.checkpoint.last_error is None and world.checkpoint.last_ok_at is not None


def test_a_lost_state_send_stops_the_commit_and_rewrites_every_platform_next_time() -> None:
    world = World()
    world.grade(0, 0, "p-a")
    world.grade(0, 1, "p-b")
    commit(world)
    world.log.calls.clear()
    world.grade(0, 2, "p-a")
    world.state.fail_partitions = {0}
    commit(world)
    assert world.calls("group") == [] and world.calls("iceberg") == [], "ran ahead of state"
    assert world.calls("restored") == [0], "the batch goes back to the buffer"
    assert world.sink.offsets == {(TOPIC, 0): 3}
    assert "partition" in (world.checkpoint.last_error or "")
    assert world.metrics.commits.labels("failed")._value.get() == 1

    world.log.calls.clear()
    world.state.fail_partitions = set()
    commit(world)  # nothing new graded: the unsure partition still writes all platforms
    assert world.calls("state") == [(0, "p-a"), (0, "p-b"), (0, "\x00partition:0")]
    assert world.calls("group") == [{(TOPIC, 0): 3}]
    assert world.calls("iceberg") == [{(TOPIC, 0): 3}]
    assert world.checkpoint.last_error is None


def test_a_failed_iceberg_write_keeps_the_batch_for_the_next_commit() -> None:
    world = World()
    world.grade(1, 0, "p-a")
    world.sink.fail = True
    commit(world)
    # state is durable and the group may resume from it; Iceberg did not get the rows
    assert world.calls("group") == [{(TOPIC, 1): 1}]
    assert world.calls("restored") == [1]
    assert world.sink.committed == {}
    assert world.checkpoint.last_error == "catalog database unreachable"

    world.log.calls.clear()
    commit(world)
    assert world.calls("state") == [], "the state was already written"
    assert world.calls("iceberg") == [{(TOPIC, 1): 1}]
    assert world.sink.committed == {(TOPIC, 1): 1}
    assert world.checkpoint.last_error is None


def test_nothing_graded_writes_nothing() -> None:
    world = World()
    world.graders[2] = PartitionGrader(2, Engines())
    commit(world)
    assert world.log.calls == []


def test_committed_rows_leave_the_outbox_of_the_next_flush() -> None:
    world = World()
    world.grade(0, 0, "p-a")
    commit(world)
    (first,) = [r for r in world.state.records if r.platform_id == "p-a"]
    assert len(first.pending) == 1, "the row is in the outbox until Iceberg has it"
    world.state.records.clear()
    world.grade(0, 1, "p-a")
    commit(world)
    (second,) = [r for r in world.state.records if r.platform_id == "p-a"]
    assert second.pending == (), "Iceberg has the row: the outbox drops it"


def test_a_revoked_partition_is_neither_flushed_nor_committed() -> None:
    world = World()
    world.grade(0, 0, "p-a")
    world.grade(1, 0, "p-b")
    world.state.fail_partitions = {1}
    commit(world)
    world.log.calls.clear()
    world.state.fail_partitions = set()

    async def revoke_then_commit() -> None:
        async with world.checkpoint.paused():
            world.graders.pop(1)
            world.checkpoint.forget({1})
            world.sink.rows, world.sink.offsets = {}, {}
        await world.checkpoint.commit()

    asyncio.run(revoke_then_commit())
    assert all(p == 0 for p, _pid in world.calls("state"))
    assert all((TOPIC, 1) not in offsets for offsets in world.calls("group"))


def test_no_flush_while_a_batch_is_being_graded() -> None:
    world = World()
    world.grade(0, 0, "p-a")

    async def scenario() -> list[tuple[str, Any]]:
        await world.lock.acquire()  # the pipeline grading a batch
        task = asyncio.ensure_future(world.checkpoint.commit())
        for _ in range(5):
            await asyncio.sleep(0)
        seen = list(world.log.calls)
        world.grade(0, 1, "p-b")  # the batch's rows and offsets enter the buffer
        world.lock.release()
        await task
        return seen

    assert asyncio.run(scenario()) == []
    assert world.calls("group") == [{(TOPIC, 0): 2}]
    assert world.calls("iceberg") == [{(TOPIC, 0): 2}]


def test_maybe_commit_starts_one_commit_when_due() -> None:
    world = World()
    world.grade(0, 0, "p-a")

    async def scenario() -> None:
        world.sink.is_due = False
        world.checkpoint.maybe_commit()
        await asyncio.sleep(0.01)
        assert world.calls("iceberg") == []
        world.sink.is_due = True
        await world.lock.acquire()
        world.checkpoint.maybe_commit()
        world.checkpoint.maybe_commit()  # one is running: no second
        world.lock.release()
        await asyncio.sleep(0.05)

    asyncio.run(scenario())
    assert len(world.calls("iceberg")) == 1
    assert world.metrics.buffered_rows._value.get() == 1
