"""The worker's tick (every 0.5 s): restore idle partitions, give each grader its topics'
log ends, set the lag gauge, seek back where the rewind policy says, commit when due.

Faust-free: the consumer is seen through :class:`ConsumerView` (what is assigned, each
partition's high-water mark) and a ``seek`` callable, so the tick is tested alone.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Protocol

from services.grader.assignment import Assignments, RowBuffer
from services.grader.offsets import TopicPartition
from services.grader.rewind import Mark, RewindPolicy
from services.grader.telemetry import Metrics

log = logging.getLogger(__name__)


class ConsumerView(Protocol):
    """The input partitions as the worker's consumer knows them."""

    def assigned(self) -> set[TopicPartition]:
        """The input topic partitions assigned to this member (empty when unknown)."""
        ...

    def highwater(self, tp: TopicPartition) -> int | None:
        """The partition's log end as last fetched (None: not known yet)."""
        ...


class Committer(Protocol):
    def maybe_commit(self) -> None: ...


class Tick:
    """One tick's work over the assigned partitions; holds the last log ends it read."""

    def __init__(
        self,
        assignments: Assignments,
        rewind: RewindPolicy,
        metrics: Metrics,
        consumer: ConsumerView,
        seek: Callable[[TopicPartition, int], Awaitable[None]],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._assignments = assignments
        self._rewind = rewind
        self._metrics = metrics
        self._consumer = consumer
        self._seek = seek
        self._clock = clock
        #: the log ends read at the last tick, by partition then topic
        self.last_ends: dict[int, dict[str, int]] = {}

    async def run(
        self, sink: RowBuffer | None, settled: bool, checkpoint: Committer | None
    ) -> None:
        """One tick; ``settled``: no rebalance under way and the tables read back."""
        assignments = self._assignments
        if sink is not None and settled:
            assignments.restore_idle({p for _t, p in self._consumer.assigned()}, sink)
        ends = self.last_ends = self.log_ends()
        async with assignments.lock:  # the graders may be grading in their thread
            for partition, topic_ends in ends.items():
                grader = assignments.graders.get(partition)
                if grader is not None:
                    grader.note_log_ends(topic_ends)
        for seek in self._rewind.seeks(self._clock(), self.marks(ends), settled):
            topic, partition = seek.tp
            if seek.stalled_s is not None:
                self._metrics.position_gaps.labels(topic).inc()
                log.warning("%s", seek.describe())
            log.info("%s[%d]: seeking back to %d", topic, partition, seek.offset)
            await self._seek(seek.tp, seek.offset)
        if checkpoint is not None:
            checkpoint.maybe_commit()

    def log_ends(self) -> dict[int, dict[str, int]]:
        """The log-end offset (high-water mark) of each input topic, by assigned partition
        with a grader: one read per partition a tick, for the lag, stalls and graders."""
        ends: dict[int, dict[str, int]] = {}
        graders = self._assignments.graders
        for tp in self._consumer.assigned():
            if tp[1] not in graders:
                continue
            try:
                high = self._consumer.highwater(tp)
            except Exception:
                continue
            if high is not None:
                ends.setdefault(tp[1], {})[tp[0]] = high
        return ends

    def marks(self, ends: dict[int, dict[str, int]]) -> dict[TopicPartition, Mark]:
        """Where each partition of ``ends`` stands; sets the lag gauge."""
        marks: dict[TopicPartition, Mark] = {}
        for partition, highs in ends.items():
            grader = self._assignments.graders.get(partition)
            if grader is None:
                continue
            for topic, high in highs.items():
                resume = grader.resume_at(topic) or 0
                self._metrics.lag.labels(topic, str(partition)).set(max(0, high - resume))
                marks[(topic, partition)] = Mark(resume, high)
        return marks
