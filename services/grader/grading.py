"""Grading of one partition: the worker's logic without Faust, so it can be tested alone.

All input topics share the partition count and are keyed by platform_id, so partition
``p`` of every topic holds the complete history of the same platforms. A
:class:`PartitionGrader` owns those platforms: it feeds each record to its platform's
engine, advances the partition's event-time watermark (the highest event time seen) and,
when it moves, asks every engine of the partition to close time boxes at that watermark:
an event-time timer, never the wall clock.
The result of each record is the rows to sink; the state goes to the table in flushes.

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
from services.grader.record import PlatformRecord
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
    """Rows to sink after one input record."""

    rows: tuple[TransitionRow, ...] = ()
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
    """The platforms of one partition number, their engines, positions and watermark.

    State is written in flushes, not per record (:meth:`flush`): the platform records the
    records since the last flush touched, then the partition marker holding the positions
    and the watermark, always last. A crash keeps a prefix of the changelog, so a marker
    that survived vouches for every platform record written before it; the restarted
    worker resumes reading at the marker's positions (see the worker's rewind). Platforms
    written after the surviving marker are ahead of it: the engine ignores the events it
    has already seen, and their outbox rows from records beyond the marker are held back
    until those records are graded again, so every row enters the sink with its record.
    """

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
        self._dirty: set[str] = set()
        #: records graded (or dead-lettered) since the last flush
        self.unflushed = 0
        #: the positions of the last marker handed out by :meth:`flush`
        self.flushed_positions: dict[str, int] | None = None
        #: outbox rows of platforms restored ahead of the marker, by source record
        self._held: dict[tuple[str, int], list[TransitionRow]] = {}

    # --- restore -----------------------------------------------------------------------
    def restore(self, records: Iterable[PlatformRecord]) -> list[TransitionRow]:
        """Take over the partition from its table records; returns the outbox rows to
        offer the sink now (it drops those already committed)."""
        mine = [r for r in records if r.partition == self.partition]
        marker = next((r for r in mine if is_marker(r.platform_id)), None)
        self.positions = dict(marker.positions) if marker is not None else {}
        self.watermark_ms = marker.watermark_ms if marker is not None else 0
        outbox: list[TransitionRow] = []
        for record in mine:
            if is_marker(record.platform_id):
                continue
            self._platforms[record.platform_id] = _Platform(
                self._engines.load(record.state), record.seq, list(record.pending)
            )
            for row in record.pending:
                src = row.source
                if src.offset < self.positions.get(src.topic, 0):
                    outbox.append(row)
                else:
                    self._held.setdefault((src.topic, src.offset), []).append(row)
        return outbox

    def resume_at(self, topic: str) -> int | None:
        """The next offset of ``topic`` to grade; None when the state has none (start
        from the earliest record)."""
        return self.positions.get(topic)

    @property
    def platforms(self) -> list[str]:
        return sorted(self._platforms)

    @property
    def held_rows(self) -> int:
        return sum(len(rows) for rows in self._held.values())

    # --- grading -----------------------------------------------------------------------
    def _platform(self, platform_id: str) -> _Platform:
        live = self._platforms.get(platform_id)
        if live is None:
            live = _Platform(self._engines.new(platform_id))
            self._platforms[platform_id] = live
        return live

    def handle(self, event: Event, source: SourcePosition) -> StepResult:
        """Grade one record of this partition (a record below the positions is skipped)."""
        if source.offset < self.positions.get(source.topic, 0):
            return StepResult(replayed=True)
        own = self._platform(event.platform_id)
        # The engine decides at its own clock: bring it to the partition's watermark first
        # (another platform's records may have moved it), as one engine holding every
        # platform would be; deciding at a stale clock makes the result depend on how
        # the topics interleave.
        produced: list[tuple[str, Transition]] = [
            (event.platform_id, t) for t in own.engine.evaluate(self.watermark_ms)
        ]
        produced += [(event.platform_id, t) for t in own.engine.apply(event)]
        self._dirty.add(event.platform_id)
        self.positions[source.topic] = source.offset + 1
        self.unflushed += 1
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
            self._dirty.add(pid)
            for t in live.engine.evaluate(self.watermark_ms):
                produced.append((pid, t))
        now = self._clock_ms()
        rows: list[TransitionRow] = self._held.pop((source.topic, source.offset), [])
        for pid, t in produced:
            live = self._platforms[pid]
            live.seq += 1
            row = to_row(t, live.seq, source, event, now)
            live.pending.append(row)
            rows.append(row)
        return StepResult(tuple(rows))

    def mark(self, source: SourcePosition) -> StepResult:
        """A record that grades nothing (a dead letter) still moves the partition on; the
        next flush's marker keeps its position, so a restart does not dead-letter it again."""
        if source.offset < self.positions.get(source.topic, 0):
            return StepResult(replayed=True)
        self.positions[source.topic] = source.offset + 1
        self.unflushed += 1
        return StepResult()

    def touch_all(self) -> None:
        """Write every platform at the next flush (a previous flush may not have landed)."""
        self._dirty.update(self._platforms)
        self.unflushed = max(self.unflushed, 1)

    def flush(self, is_committed: Callable[[TransitionRow], bool]) -> tuple[PlatformRecord, ...]:
        """The records to write now: every platform touched since the last flush (outbox
        trimmed of rows the sink committed), then the partition marker, last."""
        records = []
        for pid in sorted(self._dirty):
            live = self._platforms[pid]
            live.pending = [r for r in live.pending if not is_committed(r)]
            records.append(self._record(pid, live))
        records.append(
            PlatformRecord(
                platform_id=marker_key(self.partition),
                partition=self.partition,
                state=b"",
                positions=dict(self.positions),
                watermark_ms=self.watermark_ms,
                seq=0,
            )
        )
        self._dirty.clear()
        self.unflushed = 0
        self.flushed_positions = dict(self.positions)
        return tuple(records)

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
