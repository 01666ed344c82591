"""Grading of one partition: the worker's logic without Faust, so it can be tested alone.

All input topics share the partition count and are keyed by platform_id, so partition
``p`` of every topic holds the complete history of the same platforms. A
:class:`PartitionGrader` owns those platforms and feeds each record to its platform's
engine. Time boxes close on event-time clocks, never the wall clock, and the clocks are
honest:

* the partition's *aligned watermark* is the minimum, over its input topics, of the
  highest event time read on each; a topic read to its log end (the worker's tick
  reports log ends through :meth:`PartitionGrader.note_log_ends`) is idle and does not
  hold the others back. A backlog read one topic first cannot close a time box before
  the other topics' records of that time have been read;
* each platform's engine (its exams) is evaluated at ``min(its own latest event time,
  the aligned watermark)``: another platform's records, whatever their dates, never close
  its boxes. A quiet candidate's clock still moves: its collectors' heartbeats, keyed by
  its platform, arrive every 30 s;
* the partition keeps a timer heap of (next deadline, platform): a record visits only
  the platforms whose deadline the watermark passed, not every platform.

The result of each record is the rows to sink; the state goes to the table in flushes.

Determinism is what makes restarts exact: everything here is a function of the records
of the partition in order (wall clock only stamps ``graded_at``), so re-grading a record
gives the same transitions with the same ids.
"""

from __future__ import annotations

import heapq
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
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
    #: the record's event id was seen before with another body: the engine kept the
    #: first and graded nothing; the worker dead-letters it as ``conflicting_duplicate``
    conflict: bool = False


_NOTHING = StepResult()
_REPLAYED = StepResult(replayed=True)
_CONFLICT = StepResult(conflict=True)
#: "no event time yet" for clocks (earlier than any event; the watermark starts at 0)
_NO_TIME = 0


@dataclass(slots=True)
class _Platform:
    engine: GradingEngine
    seq: int = 0
    pending: list[TransitionRow] = field(default_factory=list)
    #: the platform's own clock: the highest event time of its records
    latest_ms: int = _NO_TIME
    #: the deadline it is queued for in the timer heap (None: not queued)
    queued: int | None = None


#: table keys of partition markers start with this (no platform id can: ids are names)
MARKER_PREFIX = "\x00partition:"


def marker_key(partition: int) -> str:
    return f"{MARKER_PREFIX}{partition}"


def is_marker(key: str) -> bool:
    return key.startswith(MARKER_PREFIX)


def _next_deadline(engine: GradingEngine, clock: int) -> int | None:
    """When ``evaluate`` can next change anything: engines that know it
    (``next_deadline_ms()``, None when none is ahead) say so; any other engine may
    change with every step of time."""
    next_deadline = getattr(engine, "next_deadline_ms", None)
    if next_deadline is None:
        return clock + 1
    deadline: int | None = next_deadline()
    return deadline


def part_number(part: str) -> int | None:
    """The core names parts "1", "2", "3" and "overall"; the table stores 1, 2, 3 or null."""
    return int(part) if part.isdigit() else None


def to_row(
    t: Transition, seq: int, source: SourcePosition, event_id: str | None, graded_at_ms: int
) -> TransitionRow:
    """A core transition as a table row; evidence positions known for the current record
    (``event_id``; None for a record that graded nothing itself, such as a dead letter)."""
    evidence = tuple(
        Evidence(eid, source.topic, source.partition, source.offset)
        if eid == event_id
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
    :meth:`flush` at commits. Without log ends (tests, replays), a topic is never idle:
    the watermark is the minimum of the topics read so far. A topic the grader has not
    met (no record graded, no log end noted, not in the restored marker) does not hold
    the clock: a partition whose other topics stay empty must not wait for a tick. So
    the worker notes log ends as soon as it takes a partition over, before its first
    record, and at every tick. ``topics`` names input topics up front that hold the
    clock until read or noted idle (tools that know them all, tests).
    """

    def __init__(
        self,
        partition: int,
        engines: EngineStore,
        clock_ms: Callable[[], int] = lambda: int(time.time() * 1000),
        topics: Iterable[str] = (),
    ) -> None:
        self.partition = partition
        self._engines = engines
        self._clock_ms = clock_ms
        self._platforms: dict[str, _Platform] = {}
        self.positions: dict[str, int] = {}
        #: the aligned watermark (never moves back)
        self.watermark_ms = _NO_TIME
        #: the highest event time read on each input topic
        self.highs: dict[str, int] = dict.fromkeys(topics, _NO_TIME)
        #: log-end offsets the worker noted (a topic read up to its end is idle)
        self._ends: dict[str, int] = {}
        self._ends_changed = False
        self._timers: list[tuple[int, str]] = []
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
        self.watermark_ms = marker.watermark_ms if marker is not None else _NO_TIME
        if marker is not None:
            for topic, high in marker.highs.items():
                self.highs[topic] = max(self.highs.get(topic, _NO_TIME), high)
        for topic in self.positions:
            self.highs.setdefault(topic, _NO_TIME)
        self._ends_changed = True
        outbox: list[TransitionRow] = []
        for record in mine:
            if is_marker(record.platform_id):
                continue
            live = _Platform(
                self._engines.load(record.state),
                record.seq,
                list(record.pending),
                record.latest_ms,
            )
            self._platforms[record.platform_id] = live
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
        return self.positions.get(topic)

    @property
    def platforms(self) -> list[str]:
        return sorted(self._platforms)

    @property
    def held_rows(self) -> int:
        return sum(len(rows) for rows in self._held.values())

    def clock_of(self, platform_id: str) -> int:
        """The event time the platform's exams are evaluated at."""
        live = self._platforms.get(platform_id)
        return _NO_TIME if live is None else min(live.latest_ms, self.watermark_ms)

    # --- clocks ------------------------------------------------------------------------
    def note_log_ends(self, ends: Mapping[str, int]) -> None:
        """The worker's tick: each input topic's log-end offset of this partition.

        A topic read up to its end is idle and no longer holds the watermark back; one
        with records left to read holds it at the highest event time read on it. The
        watermark moves at the next record (rows are attributed to a record).
        """
        for topic, end in ends.items():
            if self._ends.get(topic) != end:
                self._ends[topic] = end
                self._ends_changed = True
            self.highs.setdefault(topic, _NO_TIME)

    def _aligned(self) -> int:
        """min over topics with records left of their highest event time read; the
        highest of all when every topic is idle."""
        low: int | None = None
        top = _NO_TIME
        positions = self.positions
        ends = self._ends
        for topic, high in self.highs.items():
            if high > top:
                top = high
            end = ends.get(topic)
            if end is not None and positions.get(topic, 0) >= end:
                continue
            if low is None or high < low:
                low = high
        return top if low is None else low

    def _queue(self, pid: str, live: _Platform) -> None:
        """(Re)enter the platform in the timer heap at its next deadline."""
        clock = min(live.latest_ms, self.watermark_ms)
        deadline = _next_deadline(live.engine, clock)
        if deadline is not None and deadline != live.queued:
            live.queued = deadline
            heapq.heappush(self._timers, (deadline, pid))

    def _fire(self, produced: list[tuple[str, Transition]]) -> None:
        """Evaluate the platforms whose deadline the watermark passed (and their own
        clock too; a platform held back by its own clock is evaluated at its next record)."""
        timers = self._timers
        wm = self.watermark_ms
        while timers and timers[0][0] <= wm:
            deadline, pid = heapq.heappop(timers)
            live = self._platforms[pid]
            if live.queued != deadline:
                continue  # superseded
            live.queued = None
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
    def _platform(self, platform_id: str) -> _Platform:
        live = self._platforms.get(platform_id)
        if live is None:
            live = _Platform(self._engines.new(platform_id))
            self._platforms[platform_id] = live
        return live

    def handle(self, event: Event, source: SourcePosition) -> StepResult:
        """Grade one record of this partition (a record below the positions is skipped)."""
        topic = source.topic
        positions = self.positions
        if source.offset < positions.get(topic, 0):
            return _REPLAYED
        pid = event.platform_id
        own = self._platforms.get(pid)
        if own is None:
            own = self._platform(pid)
        engine = own.engine
        ts = event.ts_ms
        wm = self.watermark_ms
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
        positions[topic] = source.offset + 1
        self.unflushed += 1
        if ts > own.latest_ms:
            own.latest_ms = ts
        high = self.highs.get(topic)
        moved = high is None or ts > high
        if moved:
            self.highs[topic] = ts
        # The watermark can move only when: the topic was at or below it and rose (it
        # may have held the minimum), the topic became idle, an idle topic rose past it
        # (every topic idle: the highest counts), or the log ends changed.
        end = self._ends.get(topic)
        if end is not None and source.offset + 1 >= end:
            recompute = source.offset + 1 == end or ts > wm
        else:
            recompute = moved and (high is None or high <= wm)
        if recompute or self._ends_changed:
            self._ends_changed = False
            aligned = self._aligned()
            if aligned > wm:
                self.watermark_ms = wm = aligned
        clock = own.latest_ms if own.latest_ms < wm else wm
        if clock > before:
            for t in engine.evaluate(clock):
                produced.append((pid, t))
        self._queue(pid, own)
        if self._timers and self._timers[0][0] <= wm:
            self._fire(produced)
        held = self._held.pop((topic, source.offset), None)
        if not produced and held is None:
            return _CONFLICT if conflict else _NOTHING
        now = self._clock_ms()
        rows: list[TransitionRow] = held or []
        for owner, t in produced:
            live = self._platforms[owner]
            live.seq += 1
            row = to_row(t, live.seq, source, event.event_id, now)
            live.pending.append(row)
            rows.append(row)
        return StepResult(tuple(rows), conflict=conflict)

    def mark(self, source: SourcePosition) -> StepResult:
        """A record that grades nothing (a dead letter) still moves the partition on; the
        next flush's marker keeps its position, so a restart does not dead-letter it again.

        Its topic may have become idle with it, so the watermark is looked at again and
        due time boxes close here: a dead letter last on its topic must not leave boxes
        waiting for a record that never comes. Their rows belong to this position."""
        if source.offset < self.positions.get(source.topic, 0):
            return _REPLAYED
        self.positions[source.topic] = source.offset + 1
        self.unflushed += 1
        self._ends_changed = False
        aligned = self._aligned()
        if aligned <= self.watermark_ms:
            return _NOTHING
        self.watermark_ms = aligned
        produced: list[tuple[str, Transition]] = []
        if self._timers and self._timers[0][0] <= aligned:
            self._fire(produced)
        if not produced:
            return _NOTHING
        now = self._clock_ms()
        rows: list[TransitionRow] = []
        for owner, t in produced:
            live = self._platforms[owner]
            live.seq += 1
            row = to_row(t, live.seq, source, None, now)
            live.pending.append(row)
            rows.append(row)
        return StepResult(tuple(rows))

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
                highs=dict(self.highs),
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
            latest_ms=live.latest_ms,
        )
