"""The commit protocol: exactly once into Iceberg, with the grader state as the truth.

The grader state is where each partition resumes. At every commit, in one step with
taking the sink's batch (no await in between), the state the batch covers is flushed:
the platform records graded since the last flush, then each partition's marker with its
positions, to the state table's changelog. Then, in order: wait for the broker's acks of
those records; commit the consumer group's offsets to the markers' positions; write the
batch to Iceberg with its source offsets in the snapshot. So neither the group's offsets
nor Iceberg's run ahead of durable state. A restart reads again from the group's offsets;
records already in the restored state are skipped, rows of records graded again are
dropped by the sink's offsets, and the outbox in the state re-offers rows the table did
not get (see ``grading.py``, ``record.py`` and ``sink.py``).

The unit talks to the world through three small protocols (:class:`StateLog`,
:class:`GroupOffsets`, :class:`BatchSink`), so it is tested without Faust or a broker.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any, Protocol

from services.errors import SinkError
from services.grader.grading import PartitionGrader
from services.grader.offsets import TopicPartition
from services.grader.record import PlatformRecord
from services.grader.rows import TransitionRow
from services.grader.sink import Batch, CommitResult
from services.grader.telemetry import Metrics

log = logging.getLogger(__name__)

RETRY_S = 2.0


class StateLog(Protocol):
    """The state table: keep a record locally and send it to the changelog."""

    def write(self, partition: int, record: PlatformRecord) -> Awaitable[Any]:
        """Returns what resolves when the broker acknowledged the record."""
        ...


class GroupOffsets(Protocol):
    """The consumer group's committed offsets."""

    async def commit(self, offsets: Mapping[TopicPartition, int]) -> None: ...


class BatchSink(Protocol):
    """The Iceberg sink as the checkpoint drives it (see ``sink.IcebergSink``)."""

    @property
    def buffered_rows(self) -> int: ...

    def is_committed(self, row: TransitionRow) -> bool: ...

    def due(self) -> bool: ...

    def take(self) -> Batch | None: ...

    def write(self, batch: Batch) -> CommitResult: ...

    def restore(self, batch: Batch) -> None: ...

    def finish(self, result: CommitResult) -> None: ...


class Checkpoint:
    """Flushes state, commits the group's offsets and writes Iceberg batches, one at a time."""

    def __init__(
        self,
        graders: Mapping[int, PartitionGrader],
        state_lock: asyncio.Lock,
        state: StateLog,
        offsets: GroupOffsets,
        sink: BatchSink,
        metrics: Metrics,
        retry_s: float = RETRY_S,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self._graders = graders
        self._state_lock = state_lock
        self._state = state
        self._offsets = offsets
        self._sink = sink
        self._metrics = metrics
        self._retry_s = retry_s
        self._wall_clock = wall_clock
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        #: partitions whose last state flush failed: the next flush writes all platforms
        self._unsure: set[int] = set()
        self.last_error: str | None = None
        self.last_ok_at: float | None = None

    def maybe_commit(self, force: bool = False) -> None:
        """Start a commit in the background when one is due and none is running."""
        if self._task is not None and not self._task.done():
            return
        self._metrics.buffered_rows.set(self._sink.buffered_rows)
        if force or self._sink.due():
            self._task = asyncio.ensure_future(self.commit())

    @contextlib.asynccontextmanager
    async def paused(self) -> AsyncIterator[None]:
        """No commit and no grading while inside (for a revocation)."""
        async with self._lock, self._state_lock:
            yield

    def forget(self, partitions: set[int]) -> None:
        """Revoked partitions: their next owner writes their state."""
        self._unsure -= partitions

    async def commit(self) -> None:
        """Take a batch, make its state durable, commit the group's offsets, write Iceberg.
        A failure puts the batch back and waits ``retry_s``; the next commit retries."""
        sink = self._sink
        async with self._lock:
            # One step, no await in between: the state written is the state the batch
            # covers, so Iceberg's offsets never pass the durable positions.
            async with self._state_lock:
                sends = self._flush()
                batch = sink.take()
            try:
                await self._await_acks(sends)
                await self._commit_positions({p for p, _f in sends})
                if batch is None:
                    return
                loop = asyncio.get_running_loop()
                result = await loop.run_in_executor(None, sink.write, batch)
            except Exception as exc:
                if batch is not None:
                    sink.restore(batch)
                self._metrics.commits.labels("failed").inc()
                self.last_error = str(exc)
                log.warning("Iceberg commit failed, will retry: %s", exc)
                await asyncio.sleep(self._retry_s)
                return
            sink.finish(result)
            self.last_error = None
            self.last_ok_at = self._wall_clock()
            self._metrics.commits.labels("ok").inc()
            self._metrics.commit_rows.inc(result.rows)
            self._metrics.commit_seconds.observe(result.duration_s)
            log.info("committed %d rows in snapshot %d", result.rows, result.snapshot_id)

    def _flush(self) -> list[tuple[int, Awaitable[Any]]]:
        """Write the state of every partition graded since the last flush: platform
        records first, each partition's marker last; returns the sends to wait for."""
        sends: list[tuple[int, Awaitable[Any]]] = []
        for partition, grader in self._graders.items():
            if partition in self._unsure:
                grader.touch_all()
            elif grader.unflushed == 0:
                continue
            records = grader.flush(self._sink.is_committed)
            sends += [(partition, self._state.write(partition, r)) for r in records]
            self._metrics.state_records.inc(len(records))
        return sends

    async def _await_acks(self, sends: list[tuple[int, Awaitable[Any]]]) -> None:
        """Wait for the broker's acks of a flush; a partition whose send failed writes
        all its platforms at the next flush (its marker must not vouch for lost ones)."""
        results = await asyncio.gather(*(fut for _p, fut in sends), return_exceptions=True)
        failed = {
            p for (p, _f), r in zip(sends, results, strict=True) if isinstance(r, BaseException)
        }
        self._unsure -= {p for p, _f in sends} - failed
        if failed:
            self._unsure |= failed
            raise SinkError(f"the grader state of partitions {sorted(failed)} was not written")

    async def _commit_positions(self, partitions: set[int]) -> None:
        """Commit the group's offsets to the positions of the markers just made durable
        (a partition no longer assigned is left to its new owner)."""
        offsets: dict[TopicPartition, int] = {}
        for partition in partitions:
            grader = self._graders.get(partition)
            if grader is None or grader.flushed_positions is None:
                continue
            for topic, offset in grader.flushed_positions.items():
                offsets[(topic, partition)] = offset
        if offsets:
            await self._offsets.commit(offsets)
