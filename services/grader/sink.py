"""The Iceberg sink: transitions land in batches, exactly once, with their source offsets.

A batch is committed when it holds ``commit_rows`` rows or ``commit_interval_s`` has passed.
Each commit is one Iceberg snapshot that carries, in its summary, the next source offset of
every topic-partition whose records the batch covers (merged with what other workers
committed). On start the sink reads those offsets back; a row whose source record lies
below them is already in the table and is dropped, so a restart between an Iceberg commit
and a Kafka offset commit neither loses nor duplicates a row.

Threading: ``offer``/``processed``/``take``/``finish``/``restore``/``revoke`` run on one
thread (the worker's event loop); ``write`` touches only the catalog and may run in an
executor thread while the loop keeps buffering the next batch.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import pyarrow as pa
from pyiceberg.catalog import Catalog
from pyiceberg.exceptions import CommitFailedException
from pyiceberg.table import Table

from services.errors import SinkError
from services.grader import offsets as off
from services.grader.offsets import CommittedOffsets, OffsetMap, TopicPartition
from services.grader.row_table import ensure_table, to_arrow
from services.grader.rows import TransitionRow

__all__ = ["Batch", "CommitResult", "IcebergSink", "SinkConfig", "ensure_table"]


@dataclass(frozen=True, slots=True)
class SinkConfig:
    """Where and how often the sink commits."""

    identifier: str = "grading.criterion_transitions"
    commit_rows: int = 500
    commit_interval_s: float = 2.0
    writer_id: str = "grader"
    #: attempts of one commit when another writer committed in between
    conflict_retries: int = 5

    def __post_init__(self) -> None:
        if self.commit_rows < 1:
            raise ValueError(f"commit_rows must be >= 1, got {self.commit_rows}")
        if self.commit_interval_s <= 0:
            raise ValueError(f"commit_interval_s must be > 0, got {self.commit_interval_s}")
        if "." not in self.identifier:
            raise ValueError(
                f"table identifier {self.identifier!r} must be namespace.table, "
                "e.g. grading.criterion_transitions"
            )


@dataclass(frozen=True, slots=True)
class Batch:
    """Rows and offsets taken from the buffer for one commit."""

    rows: tuple[TransitionRow, ...]
    offsets: OffsetMap
    taken_at: float


@dataclass(frozen=True, slots=True)
class CommitResult:
    """What one commit did (for metrics and logs)."""

    rows: int
    snapshot_id: int
    offsets: OffsetMap
    duration_s: float
    attempts: int


@dataclass(slots=True)
class _Buffer:
    rows: dict[str, TransitionRow] = field(default_factory=dict)
    offsets: OffsetMap = field(default_factory=dict)


class IcebergSink:
    """Buffers transition rows and commits them to Iceberg exactly once."""

    def __init__(
        self,
        catalog: Catalog,
        config: SinkConfig,
        clock: Callable[[], float] = time.monotonic,
        arrow: Callable[[Sequence[TransitionRow], pa.Schema], pa.Table] = to_arrow,
    ) -> None:
        """``arrow`` turns a batch into the table's Arrow form (``bench/sink.py`` passes
        the former row-by-row form to compare)."""
        self._catalog = catalog
        self._arrow = arrow
        self.config = config
        self._clock = clock
        self._buffer = _Buffer()
        self._committed = CommittedOffsets({}, None, None)
        self._last_commit = clock()
        self._table: Table | None = None

    # --- start -------------------------------------------------------------------------
    def open(self) -> CommittedOffsets:
        """Create the table if needed and read back the offsets it holds."""
        try:
            self._table = ensure_table(self._catalog, self.config.identifier)
            self._committed = off.read_committed(self._table)
        except SinkError:
            raise
        except Exception as exc:
            raise SinkError(
                f"cannot open Iceberg table {self.config.identifier}: {exc}; check the "
                "catalog settings (PROCTOR_CATALOG_URI, PROCTOR_WAREHOUSE) and that the "
                "catalog database is up"
            ) from exc
        self._last_commit = self._clock()
        return self._committed

    @property
    def committed(self) -> CommittedOffsets:
        return self._committed

    @property
    def table(self) -> Table:
        if self._table is None:
            raise SinkError("the sink is not open; call open() first")
        return self._table

    # --- buffering (event loop thread) --------------------------------------------------
    def is_committed(self, row: TransitionRow) -> bool:
        """True when the row's source record is below the offsets held by the table."""
        src = row.source
        return src.offset < self._committed.next_offset((src.topic, src.partition))

    def offer(self, row: TransitionRow) -> bool:
        """Buffer a row unless the table already has it; returns whether it was buffered."""
        if self.is_committed(row):
            return False
        tid = row.transition_id
        if tid in self._buffer.rows:
            return False
        self._buffer.rows[tid] = row
        return True

    def processed(self, tp: TopicPartition, next_offset: int) -> None:
        """Records of ``tp`` below ``next_offset`` have been graded (rows offered)."""
        if next_offset > self._buffer.offsets.get(tp, 0):
            self._buffer.offsets[tp] = next_offset

    @property
    def buffered_rows(self) -> int:
        return len(self._buffer.rows)

    def _offsets_advance(self) -> bool:
        return any(
            offset > self._committed.next_offset(tp) for tp, offset in self._buffer.offsets.items()
        )

    def due(self) -> bool:
        """A commit is due: enough rows, or the interval passed with something new."""
        if len(self._buffer.rows) >= self.config.commit_rows:
            return True
        waited = self._clock() - self._last_commit >= self.config.commit_interval_s
        return waited and (bool(self._buffer.rows) or self._offsets_advance())

    def take(self) -> Batch | None:
        """Move the buffer into a batch (None when there is nothing to commit)."""
        if not self._buffer.rows and not self._offsets_advance():
            return None
        batch = Batch(tuple(self._buffer.rows.values()), dict(self._buffer.offsets), self._clock())
        self._buffer = _Buffer()
        return batch

    def finish(self, result: CommitResult) -> None:
        """Record a successful commit: its offsets now hold for the skip rule."""
        self._committed = CommittedOffsets(
            off.merge(self._committed.offsets, result.offsets),
            result.snapshot_id,
            None,
        )
        self._last_commit = self._clock()

    def restore(self, batch: Batch) -> None:
        """Put a batch whose commit failed back in front of the buffer, to be retried."""
        rows = {r.transition_id: r for r in batch.rows}
        rows.update(self._buffer.rows)
        self._buffer.rows = rows
        self._buffer.offsets = off.merge(batch.offsets, self._buffer.offsets)

    def revoke(self, tps: Iterable[TopicPartition]) -> int:
        """Drop buffered rows and offsets of partitions this worker no longer owns.

        The new owner re-grades them from the Kafka offsets; returns rows dropped.
        """
        gone = set(tps)
        before = len(self._buffer.rows)
        self._buffer.rows = {
            tid: r
            for tid, r in self._buffer.rows.items()
            if (r.source.topic, r.source.partition) not in gone
        }
        self._buffer.offsets = {tp: o for tp, o in self._buffer.offsets.items() if tp not in gone}
        return before - len(self._buffer.rows)

    # --- committing (may run in a thread) ------------------------------------------------
    def write(self, batch: Batch) -> CommitResult:
        """Append the batch as one snapshot carrying the merged offsets.

        On a conflict with another writer the table is reloaded, offsets merged again and
        rows already covered by the other writer's offsets dropped, then retried.
        """
        start = time.perf_counter()
        for attempt in range(1, self.config.conflict_retries + 1):
            try:
                table = self._table if self._table is not None else self._reload()
                current = off.read_committed(table)
                rows = self._not_covered(batch.rows, current)
                merged = off.merge(current.offsets, batch.offsets)
                table.append(
                    self._arrow(rows, table.schema().as_arrow()),
                    snapshot_properties={
                        off.OFFSETS_PROPERTY: off.encode_offsets(merged),
                        off.WRITER_PROPERTY: self.config.writer_id,
                    },
                )
                snapshot = table.current_snapshot()
                assert snapshot is not None
                return CommitResult(
                    rows=len(rows),
                    snapshot_id=snapshot.snapshot_id,
                    offsets=merged,
                    duration_s=time.perf_counter() - start,
                    attempts=attempt,
                )
            except CommitFailedException:
                self._table = None  # another writer moved the table on: reload and merge
            except Exception as exc:
                self._table = None  # reload on the next attempt: the connection may be gone
                raise SinkError(
                    f"commit of {len(batch.rows)} rows to {self.config.identifier} failed: "
                    f"{type(exc).__name__}: {exc}"
                ) from exc
        raise SinkError(
            f"commit to {self.config.identifier} lost {self.config.conflict_retries} races with "
            "other writers in a row; it will be retried with the next batch"
        )

    def _not_covered(
        self, rows: tuple[TransitionRow, ...], current: CommittedOffsets
    ) -> Sequence[TransitionRow]:
        """The rows whose source records ``current`` does not cover. Rows were offered
        only above this sink's own committed offsets, so only partitions another writer
        moved past those need a look row by row (none, unless a rebalance raced)."""
        moved = {
            tp for tp, offset in current.offsets.items() if offset > self._committed.next_offset(tp)
        }
        if not moved:
            return rows
        return [
            r
            for r in rows
            if (r.source.topic, r.source.partition) not in moved
            or r.source.offset >= current.next_offset((r.source.topic, r.source.partition))
        ]

    def _reload(self) -> Table:
        self._table = self._catalog.load_table(self.config.identifier)
        return self._table

    def commit(self) -> CommitResult | None:
        """Take and write the buffer now (synchronous form, for tools and tests)."""
        batch = self.take()
        if batch is None:
            return None
        try:
            result = self.write(batch)
        except SinkError:
            self.restore(batch)
            raise
        self.finish(result)
        return result
