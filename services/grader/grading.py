"""Grading of one partition: the worker's logic without Faust, so it can be tested alone.

All input topics share the partition count and are keyed by platform_id, so partition
``p`` of every topic holds the complete history of the same platforms. A
:class:`PartitionGrader` owns those platforms and feeds each record to its platform's
engine. Time boxes close on event-time clocks, never the wall clock, and the clocks are
honest:

* the partition's *aligned watermark* is the minimum, over its input topics, of the
  highest event time read on each, topics read to their log end aside
  (:class:`~services.grader.watermark.PartitionClock`);
* each platform's engine (its exams) is evaluated at ``min(its own latest event time,
  the aligned watermark)``: another platform's records, whatever their dates, never close
  its boxes. A quiet candidate's clock still moves: its collectors' heartbeats, keyed by
  its platform, arrive every 30 s;
* the partition keeps a timer heap of (next deadline, platform)
  (:class:`~services.grader.timers.DeadlineTimers`): a record visits only the platforms
  whose deadline the watermark passed, not every platform.

The result of each record is the rows to sink; the state goes to the table in flushes.

Determinism is what makes restarts exact: everything here is a function of the records
of the partition in order (wall clock only stamps ``graded_at``), so re-grading a record
gives the same transitions with the same ids.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from services.core.events import Event, SourcePosition
from services.core.model import Transition
from services.grader.engine_api import EngineStore, GradingEngine, next_deadline
from services.grader.platforms import LivePlatform, PlatformBook
from services.grader.record import PlatformRecord, is_marker, marker_key
from services.grader.rows import NO_TRACE, Trace, TransitionRow
from services.grader.timers import DeadlineTimers
from services.grader.watermark import NO_TIME, PartitionClock

__all__ = [
    "EngineStore",
    "GradingEngine",
    "PartitionGrader",
    "StepResult",
    "is_marker",
    "marker_key",
]


@dataclass(frozen=True, slots=True)
class StepResult:
    """Rows to sink after one input record."""

    rows: tuple[TransitionRow, ...] = ()
    #: the record was already in the restored state and was not graded again
    replayed: bool = False
    #: the record's event id was seen before with another body: the engine kept the
    #: first and graded nothing; the worker dead-letters it as ``conflicting_duplicate``
    conflict: bool = False


_NOTHING = StepResult()
_REPLAYED = StepResult(replayed=True)
_CONFLICT = StepResult(conflict=True)


class PartitionGrader:
    """The platforms of one partition number, their engines, positions and clocks.

    State is written in flushes, not per record (:meth:`flush`): the platform records the
    records since the last flush touched (each with its own clock), then the partition
    marker holding the positions, the highest event time read on each topic and the
    aligned watermark, always last. A crash keeps a prefix of the changelog, so a marker
    that survived vouches for every platform record written before it; the restarted
    worker resumes reading at the marker's positions (see the worker's rewind). Platforms
    written after the surviving marker are ahead of it: the engine ignores the events it
    has already seen, and their outbox rows from records beyond the marker are held back
    until those records are graded again, so every row enters the sink with its record.

    The worker calls :meth:`handle` (or :meth:`mark`) per record, :meth:`note_log_ends`
    from its tick with each input topic's log-end offset of this partition, and
    :meth:`flush` at commits. A topic the grader has not met does not hold the clock
    (a partition whose other topics stay empty must not wait for a tick), so the worker
    notes log ends as soon as it takes a partition over, before its first record, and
    at every tick. ``topics`` names input topics up front that hold the clock until
    read or noted idle (tools that know them all, tests).
    """

    def __init__(
        self,
        partition: int,
        engines: EngineStore,
        clock_ms: Callable[[], int] = lambda: int(time.time() * 1000),
        topics: Iterable[str] = (),
    ) -> None:
        self.partition = partition
        self._clock_ms = clock_ms
        self._book = PlatformBook(partition, engines)
        #: the live platforms by id (the book's)
        self._platforms = self._book.live
        #: positions, per-topic highs, log ends and the aligned watermark
        self.clock = PartitionClock(topics)
        self._timers = DeadlineTimers()
        self._dirty = self._book.dirty
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
        if marker is None:
            self.clock.restore({}, {}, NO_TIME)
        else:
            self.clock.restore(marker.positions, marker.highs, marker.watermark_ms)
        outbox: list[TransitionRow] = []
        for record in mine:
            if is_marker(record.platform_id):
                continue
            live = self._book.load(record)
            self._queue(record.platform_id, live)
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
        return self.clock.positions.get(topic)

    @property
    def positions(self) -> dict[str, int]:
        """The next offset to grade of each input topic."""
        return self.clock.positions

    @property
    def highs(self) -> dict[str, int]:
        """The highest event time read on each input topic."""
        return self.clock.highs

    @property
    def watermark_ms(self) -> int:
        """The aligned watermark (never moves back)."""
        return self.clock.watermark_ms

    @property
    def platforms(self) -> list[str]:
        return sorted(self._platforms)

    @property
    def held_rows(self) -> int:
        return sum(len(rows) for rows in self._held.values())

    def clock_of(self, platform_id: str) -> int:
        """The event time the platform's exams are evaluated at."""
        live = self._platforms.get(platform_id)
        return NO_TIME if live is None else min(live.latest_ms, self.clock.watermark_ms)

    # --- clocks ------------------------------------------------------------------------
    def note_log_ends(self, ends: Mapping[str, int]) -> None:
        """The worker's tick: each input topic's log-end offset of this partition.

        A topic read up to its end is idle and no longer holds the watermark back; one
        with records left to read holds it at the highest event time read on it. The
        watermark moves at the next record (rows are attributed to a record).
        """
        self.clock.note_log_ends(ends)

    def _aligned(self) -> int:
        """The watermark the partition's topics allow now (see :class:`PartitionClock`)."""
        return self.clock.aligned()

    def _queue(self, pid: str, live: LivePlatform) -> None:
        """(Re)enter the platform in the timer heap at its next deadline."""
        wm = self.clock.watermark_ms
        clock = live.latest_ms if live.latest_ms < wm else wm
        self._timers.schedule(pid, next_deadline(live.engine, clock))

    def _fire(self, produced: list[tuple[str, Transition]]) -> None:
        """Evaluate the platforms whose deadline the watermark passed (and their own
        clock too; a platform held back by its own clock is evaluated at its next record)."""
        wm = self.clock.watermark_ms
        for deadline, pid in self._timers.pop_due(wm):
            live = self._platforms[pid]
            if deadline > live.latest_ms:
                continue
            clock = live.latest_ms if live.latest_ms < wm else wm
            # An evaluated engine is written back even when nothing changed: evaluate
            # moves its clock, which later decisions read.
            self._dirty.add(pid)
            for t in live.engine.evaluate(clock):
                produced.append((pid, t))
            self._queue(pid, live)

    # --- grading -----------------------------------------------------------------------
    def handle(self, event: Event, source: SourcePosition, trace: Trace = NO_TRACE) -> StepResult:
        """Grade one record of this partition (a record below the positions is skipped);
        its rows carry ``trace`` (the record's trace id and grading span id)."""
        topic = source.topic
        clock = self.clock
        if source.offset < clock.positions.get(topic, 0):
            return _REPLAYED
        pid = event.platform_id
        own = self._platforms.get(pid)
        if own is None:
            own = self._book.get(pid)
        engine = own.engine
        ts = event.ts_ms
        wm = clock.watermark_ms
        # The engine decides at its own clock as it stood before this record, as the
        # time-ordered stream would have it.
        before = own.latest_ms if own.latest_ms < wm else wm
        produced: list[tuple[str, Transition]] = []
        for t in engine.evaluate(before):
            produced.append((pid, t))
        for t in engine.apply(event):
            produced.append((pid, t))
        conflict = bool(getattr(engine, "conflict", False))
        self._dirty.add(pid)
        self.unflushed += 1
        if ts > own.latest_ms:
            own.latest_ms = ts
        if clock.read(topic, source.offset, ts):
            aligned = self._aligned()
            if aligned > wm:
                clock.watermark_ms = wm = aligned
        at = own.latest_ms if own.latest_ms < wm else wm
        if at > before:
            for t in engine.evaluate(at):
                produced.append((pid, t))
        self._queue(pid, own)
        if self._timers.due(wm):
            self._fire(produced)
        held = self._held.pop((topic, source.offset), None)
        if not produced and held is None:
            return _CONFLICT if conflict else _NOTHING
        return StepResult(
            self._book.rows(produced, source, event.event_id, self._clock_ms(), held, trace),
            conflict=conflict,
        )

    def mark(self, source: SourcePosition, trace: Trace = NO_TRACE) -> StepResult:
        """A record that grades nothing (a dead letter) still moves the partition on; the
        next flush's marker keeps its position, so a restart does not dead-letter it again.

        Its topic may have become idle with it, so the watermark is looked at again and
        due time boxes close here: a dead letter last on its topic must not leave boxes
        waiting for a record that never comes. Their rows belong to this position."""
        clock = self.clock
        if source.offset < clock.positions.get(source.topic, 0):
            return _REPLAYED
        clock.skip(source.topic, source.offset)
        self.unflushed += 1
        aligned = self._aligned()
        if aligned <= clock.watermark_ms:
            return _NOTHING
        clock.watermark_ms = aligned
        produced: list[tuple[str, Transition]] = []
        if self._timers.due(aligned):
            self._fire(produced)
        if not produced:
            return _NOTHING
        return StepResult(self._book.rows(produced, source, None, self._clock_ms(), trace=trace))

    def touch_all(self) -> None:
        """Write every platform at the next flush (a previous flush may not have landed)."""
        self._book.touch_all()
        self.unflushed = max(self.unflushed, 1)

    def flush(self, is_committed: Callable[[TransitionRow], bool]) -> tuple[PlatformRecord, ...]:
        """The records to write now: every platform touched since the last flush (outbox
        trimmed of rows the sink committed), then the partition marker, last."""
        records = self._book.records(is_committed, self.clock.positions, self.clock.watermark_ms)
        records.append(
            PlatformRecord(
                platform_id=marker_key(self.partition),
                partition=self.partition,
                state=b"",
                positions=dict(self.clock.positions),
                watermark_ms=self.clock.watermark_ms,
                seq=0,
                highs=dict(self.clock.highs),
            )
        )
        self.unflushed = 0
        self.flushed_positions = dict(self.clock.positions)
        return tuple(records)
