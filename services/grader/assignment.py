"""Which partitions this worker owns, and their graders restored from the state table.

The consumer group decides the partitions; Faust reads their table back from the
changelog and then says so (``on_rebalance_complete``). Only from then may a partition's
:class:`PartitionGrader` be built from the table: at its first record, or at the shell's
tick for a partition with no new records (its outbox must still reach Iceberg, and
/readyz waits for every assigned partition).

The graders change in a worker thread while a batch is graded (see ``pipeline.py``);
:attr:`Assignments.lock` is held for that and for every other change of their state
(the checkpoint's flush, a revocation), so none of them sees a grader mid-batch.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from typing import Protocol

from services.grader.grading import EngineStore, PartitionGrader
from services.grader.offsets import TopicPartition
from services.grader.record import PlatformRecord
from services.grader.rows import TransitionRow

log = logging.getLogger(__name__)


class RowBuffer(Protocol):
    """What a restore hands rows and positions to (the Iceberg sink's buffer)."""

    def offer(self, row: TransitionRow) -> bool: ...

    def processed(self, tp: TopicPartition, next_offset: int) -> None: ...


class Assignments:
    """Owned partition numbers, the recovery flag and one grader per restored partition."""

    def __init__(
        self, engines: EngineStore, read_state: Callable[[], Iterable[PlatformRecord]]
    ) -> None:
        self._engines = engines
        self._read_state = read_state
        #: partition numbers assigned to this worker now (records of others are ignored)
        self.owned: set[int] = set()
        self.graders: dict[int, PartitionGrader] = {}
        #: set when the table holds every assigned partition's state (Faust's own
        #: ``recovery.completed`` stays set from the first recovery on, so it cannot tell)
        self.recovered = asyncio.Event()
        #: held while graders change state (grading, flush, revocation)
        self.lock = asyncio.Lock()

    @property
    def restored(self) -> set[int]:
        return set(self.graders)

    def assigned(self, partitions: set[int]) -> None:
        """The group assigned ``partitions``. Not a place to clear :attr:`recovered`: Faust
        starts the table recovery before it says so, and an empty changelog can finish it
        first (the revocation clears it)."""
        self.owned = set(partitions)

    def revoking(self) -> None:
        """A rebalance began: nothing may be restored until the table is read back."""
        self.recovered.clear()

    def drop(self, partitions: set[int]) -> None:
        """``partitions`` were revoked: their graders go (call under :attr:`lock`)."""
        self.owned -= partitions
        for partition in partitions:
            self.graders.pop(partition, None)

    def grader(self, partition: int, sink: RowBuffer) -> PartitionGrader:
        """The partition's grader, restored from the table at first use; its outbox rows
        and positions go to ``sink``."""
        grader = self.graders.get(partition)
        if grader is not None:
            return grader
        grader = PartitionGrader(partition, self._engines)
        for row in grader.restore(self._read_state()):
            sink.offer(row)
        for topic, offset in grader.positions.items():
            sink.processed((topic, partition), offset)
        self.graders[partition] = grader
        log.info(
            "partition %d restored: %d platforms, positions %s, %d outbox rows held for "
            "records to grade again",
            partition,
            len(grader.platforms),
            grader.positions,
            grader.held_rows,
        )
        return grader

    def restore_idle(self, assigned: set[int], sink: RowBuffer) -> None:
        """Restore the assigned partitions that have no grader yet (none while the table
        is not read back)."""
        if not self.recovered.is_set():
            return
        for partition in sorted(assigned - set(self.graders)):
            self.grader(partition, sink)
