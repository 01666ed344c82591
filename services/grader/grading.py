"""Grading of one partition: the worker's logic without Faust, so it can be tested alone.

All input topics share the partition count and are keyed by platform_id, so partition
``p`` of every topic holds the complete history of the same platforms. A
:class:`PartitionGrader` owns those platforms: it feeds each record to its platform's
engine, advances the partition's event-time watermark (the highest event time seen) and,
when it moves, asks every engine of the partition to close time boxes at that watermark:
an event-time timer, never the wall clock.
The result of each record is the rows to sink and the platform records to write back.

Determinism is what makes restarts exact: everything here is a function of the records
of the partition in order (wall clock only stamps ``graded_at``), so re-grading a record
gives the same transitions with the same ids.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from services.core.events import Event, SourcePosition
from services.core.model import Transition
from services.grader.record import PlatformRecord, partition_positions
from services.grader.rows import Evidence, TransitionRow


class GradingEngine(Protocol):
    """The grading core as the worker drives it (one engine per platform)."""

    def apply(self, event: Event) -> Sequence[Transition]: ...

    def evaluate(self, at_ms: int) -> Sequence[Transition]: ...


class EngineStore(Protocol):
    """Creates engines and moves their state to and from bytes."""

    def new(self, platform_id: str) -> GradingEngine: ...

    def dump(self, engine: GradingEngine) -> bytes: ...

    def load(self, data: bytes) -> GradingEngine: ...


@dataclass(frozen=True, slots=True)
class StepResult:
    """Rows to sink and records to write back after one input record."""

    rows: tuple[TransitionRow, ...] = ()
    records: tuple[PlatformRecord, ...] = ()
    #: the record was already in the restored state and was not graded again
    replayed: bool = False


@dataclass(slots=True)
class _Platform:
    engine: GradingEngine
    seq: int = 0
    pending: list[TransitionRow] = field(default_factory=list)


#: table keys of partition markers start with this (no platform id can: ids are names)
MARKER_PREFIX = "\x00partition:"


def marker_key(partition: int) -> str:
    return f"{MARKER_PREFIX}{partition}"


def is_marker(key: str) -> bool:
    return key.startswith(MARKER_PREFIX)


def _due(engine: GradingEngine, at_ms: int) -> bool:
    """Whether ``evaluate(at_ms)`` can change anything: engines that know their next
    deadline (``next_deadline_ms()``, None when none is open) save the call."""
    next_deadline = getattr(engine, "next_deadline_ms", None)
    if next_deadline is None:
        return True
    deadline = next_deadline()
    return deadline is not None and deadline <= at_ms


def part_number(part: str) -> int | None:
    """The core names parts "1", "2", "3" and "overall"; the table stores 1, 2, 3 or null."""
    return int(part) if part.isdigit() else None


def to_row(
    t: Transition, seq: int, source: SourcePosition, event: Event, graded_at_ms: int
) -> TransitionRow:
    """A core transition as a table row; evidence positions known for the current record."""
    evidence = tuple(
        Evidence(eid, source.topic, source.partition, source.offset)
        if eid == event.event_id
        else Evidence(eid)
        for eid in t.evidence
    )
    return TransitionRow(
        exam_id=t.exam_id,
        candidate_id=t.candidate_id,
        platform_id=t.platform_id,
        rubric_id=t.rubric_id,
        rubric_version=t.rubric_version,
        part=part_number(t.part),
        criterion_id=t.criterion_id,
        state=t.state,
        previous_state=t.previous_state,
        score=t.score,
        max_score=t.max_score,
        reason=t.reason,
        event_ts_ms=t.event_ts_ms,
        graded_at_ms=graded_at_ms,
        source=source,
        seq=seq,
        evidence=evidence,
    )


class PartitionGrader:
    """The platforms of one partition number, their engines, positions and watermark."""

    def __init__(
        self,
        partition: int,
        engines: EngineStore,
        clock_ms: Callable[[], int] = lambda: int(time.time() * 1000),
    ) -> None:
        self.partition = partition
        self._engines = engines
        self._clock_ms = clock_ms
        self._platforms: dict[str, _Platform] = {}
        self.positions: dict[str, int] = {}
        self.watermark_ms = 0

    # --- restore -----------------------------------------------------------------------
    def restore(self, records: Iterable[PlatformRecord]) -> list[TransitionRow]:
        """Take over the partition from its table records; returns the outbox rows to
        offer the sink again (it drops those already committed)."""
        mine = [r for r in records if r.partition == self.partition]
        outbox: list[TransitionRow] = []
        for record in mine:
            if is_marker(record.platform_id):
                continue
            self._platforms[record.platform_id] = _Platform(
                self._engines.load(record.state), record.seq, list(record.pending)
            )
            outbox.extend(record.pending)
        self.positions = partition_positions(mine)
        self.watermark_ms = max((r.watermark_ms for r in mine), default=0)
        return outbox

    @property
    def platforms(self) -> list[str]:
        return sorted(self._platforms)

    # --- grading -----------------------------------------------------------------------
    def _platform(self, platform_id: str) -> _Platform:
        live = self._platforms.get(platform_id)
        if live is None:
            live = _Platform(self._engines.new(platform_id))
            self._platforms[platform_id] = live
        return live

    def handle(
        self,
        event: Event,
        source: SourcePosition,
        is_committed: Callable[[TransitionRow], bool],
    ) -> StepResult:
        """Grade one record of this partition; ``is_committed`` trims the outboxes."""
        if source.offset < self.positions.get(source.topic, 0):
            return StepResult(replayed=True)
        own = self._platform(event.platform_id)
        produced: list[tuple[str, Transition]] = [
            (event.platform_id, t) for t in own.engine.apply(event)
        ]
        touched = {event.platform_id}
        self.positions[source.topic] = source.offset + 1
        advanced = event.ts_ms > self.watermark_ms
        self.watermark_ms = max(self.watermark_ms, event.ts_ms)
        # Close time boxes at the watermark: every platform when it moved, else the
        # record's own (new platforms included), so each engine has been evaluated at
        # the current watermark whatever the order the records came in.
        # An evaluated engine is written back even when nothing changed: evaluate moves
        # its clock, which later decisions read; a restart from the older clock would
        # grade the following records differently from an uninterrupted run.
        for pid in self.platforms if advanced else [event.platform_id]:
            live = self._platforms[pid]
            if not _due(live.engine, self.watermark_ms):
                continue
            touched.add(pid)
            for t in live.engine.evaluate(self.watermark_ms):
                produced.append((pid, t))
        now = self._clock_ms()
        rows: list[TransitionRow] = []
        for pid, t in produced:
            live = self._platforms[pid]
            live.seq += 1
            row = to_row(t, live.seq, source, event, now)
            live.pending.append(row)
            rows.append(row)
        records = []
        for pid in sorted(touched):
            live = self._platforms[pid]
            live.pending = [r for r in live.pending if not is_committed(r)]
            records.append(self._record(pid, live))
        return StepResult(tuple(rows), tuple(records))

    def mark(self, source: SourcePosition) -> StepResult:
        """A record that grades nothing (a dead letter) still moves the partition on.

        The returned marker record keeps its position, so a restart does not dead-letter
        it again once the marker is written.
        """
        if source.offset < self.positions.get(source.topic, 0):
            return StepResult(replayed=True)
        self.positions[source.topic] = source.offset + 1
        marker = PlatformRecord(
            platform_id=marker_key(self.partition),
            partition=self.partition,
            state=b"",
            positions=dict(self.positions),
            watermark_ms=self.watermark_ms,
            seq=0,
        )
        return StepResult(records=(marker,))

    def _record(self, platform_id: str, live: _Platform) -> PlatformRecord:
        return PlatformRecord(
            platform_id=platform_id,
            partition=self.partition,
            state=self._engines.dump(live.engine),
            positions=dict(self.positions),
            watermark_ms=self.watermark_ms,
            seq=live.seq,
            pending=tuple(live.pending),
        )
