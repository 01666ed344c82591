"""One batch of input records: decode, admit, grade, publish, offer to the sink.

The stages, in order, for a batch the agent took (one batch at a time):

1. *Read* (event loop): per record, skip it if its partition is not owned; before a new
   grader's first record, give it every input topic's log end from the broker (see
   :meth:`BatchPipeline._note_log_ends`); note the record for the rewind policy, skip a record past the state's position (a gap), decode it with
   the contract's ``safe_decode`` (a registry lookup in a thread; a registry outage
   waits, never dead-letters) and ask the :class:`Admission` whether it may grade. A bad
   or refused record becomes a dead letter.
2. *Dead letters*: each is sent to ``grading.dlq`` and its broker ack awaited before its
   position can move, so none is lost (a crash before the next flush sends it again;
   consumers dedupe by source position).
3. *Grade* (one worker thread, under the graders' lock): each record goes to its
   partition's :class:`PartitionGrader` (``handle``, or ``mark`` for a dead letter), in
   order. Off the loop because judging a large text can take seconds; one thread keeps
   the order, and the lock keeps the checkpoint's flush and revocations away from a
   grader mid-batch. Back on the loop, still under the lock, the rows and each record's
   next offset enter the sink's buffer in one step: a batch the checkpoint takes never
   holds a record's rows without its offset, nor a position without its rows.
4. *Publish*: every change to ``grading.criterion-states``; metrics for the batch.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Any, Protocol

from services.contract.admission import Admission, RecordFacts, Refusal
from services.contract.dlq import (
    DeadLetter,
    RawRecord,
    dead_letter_for,
    dead_letter_record,
    safe_decode,
)
from services.contract.wire import WireCodec
from services.core.events import Event, SourcePosition
from services.errors import RegistryError
from services.grader.assignment import Assignments, RowBuffer
from services.grader.grading import PartitionGrader, StepResult
from services.grader.rewind import RewindPolicy
from services.grader.rows import TransitionRow
from services.grader.telemetry import CriterionStates, Metrics, record_span

log = logging.getLogger(__name__)

RETRY_S = 2.0
STATE_TYPE = "grading.criterion_state"
#: attempts at reading a new grader's log ends before grading without them
LOG_END_ATTEMPTS = 3

#: the broker's log-end offset of each input topic of a partition number
LogEnds = Callable[[int], Awaitable[Mapping[str, int]]]


class Outbox(Protocol):
    """The worker's output topics."""

    async def dead_letter(self, key: bytes | None, value: bytes) -> None:
        """Send to the dead-letter topic and wait for the broker's ack."""
        ...

    async def state(self, key: bytes, value: bytes) -> None:
        """Send a criterion state (the ack is not awaited: the topic is derived)."""
        ...


def facts_of(raw: RawRecord) -> RecordFacts:
    return RecordFacts(
        topic=raw.topic_name,
        partition=raw.partition_no,
        offset=raw.offset_no,
        key=raw.key_bytes,
        value=raw.value_bytes or b"",
        headers=raw.header_list,
        broker_ts_ms=raw.timestamp_ms,
    )


@dataclass(slots=True)
class _Step:
    """A record read and decoded, to be graded (an Event) or marked (a DeadLetter)."""

    raw: RawRecord
    grader: PartitionGrader
    decoded: Event | DeadLetter
    replay: bool
    span: Any
    #: seconds spent on the record: decoding, admission and grading
    seconds: float
    result: StepResult = field(default_factory=StepResult)

    @property
    def pos(self) -> SourcePosition:
        return SourcePosition(self.raw.topic_name, self.raw.partition_no, self.raw.offset_no)


class BatchPipeline:
    """Grades batches of records into rows, dead letters and state changes."""

    def __init__(
        self,
        codec: WireCodec,
        admission: Admission,
        assignments: Assignments,
        rewind: RewindPolicy,
        sink: RowBuffer,
        outbox: Outbox,
        metrics: Metrics,
        grading_thread: Executor,
        tracer: Any,
        clock: Callable[[], float] = time.monotonic,
        log_ends: LogEnds | None = None,
    ) -> None:
        self._codec = codec
        self._log_ends = log_ends
        #: the grader each partition's log ends were last given to
        self._ends_noted: dict[int, PartitionGrader] = {}
        self._admission = admission
        self._assignments = assignments
        self._rewind = rewind
        self._sink = sink
        self._outbox = outbox
        self._metrics = metrics
        self._criteria = CriterionStates(metrics.criteria)
        self._thread = grading_thread
        self._tracer = tracer
        self._clock = clock

    async def run(self, records: Sequence[RawRecord]) -> None:
        outcomes: collections.Counter[tuple[str, str]] = collections.Counter()
        steps: list[_Step] = []
        #: the next position of each partition (and its grader) once the steps so far
        #: are graded
        expect: dict[tuple[str, int], tuple[PartitionGrader, int]] = {}
        for raw in records:
            outcome = await self._read(raw, expect, steps)
            if outcome:
                outcomes[(raw.topic_name, outcome)] += 1
        await self._send_dead_letters(steps)
        rows = await self._grade(steps, outcomes)
        await self._publish(rows)
        for (topic, outcome), n in outcomes.items():
            self._metrics.records.labels(topic, outcome).inc(n)
        self._metrics.batch_records.observe(len(records))

    async def _read(
        self,
        raw: RawRecord,
        expect: dict[tuple[str, int], tuple[PartitionGrader, int]],
        steps: list[_Step],
    ) -> str | None:
        """Stage 1 for one record: a step appended, or the outcome of a skipped record."""
        if not self._assignments.recovered.is_set():
            await self._assignments.recovered.wait()
        topic, partition, offset = raw.topic_name, raw.partition_no, raw.offset_no
        if partition not in self._assignments.owned:
            return "not_owned"  # fetched before its partition was revoked: the new owner's
        tp = (topic, partition)
        grader = self._assignments.grader(partition, self._sink)
        if self._log_ends is not None and self._ends_noted.get(partition) is not grader:
            await self._note_log_ends(partition, grader)
        known = expect.get(tp)
        resume = known[1] if known and known[0] is grader else grader.resume_at(topic)
        if self._rewind.delivered(tp, self._clock()):
            log.info("%s[%d]: first record at offset %d (state resumes at %s)", *tp, offset, resume)
        if resume is not None and offset > resume:
            self._metrics.position_gaps.labels(topic).inc()
            if self._rewind.past_position(tp, resume, self._clock()):
                log.warning(
                    "%s[%d] offset %d arrived before %d, where the grader state resumes; "
                    "reading from %d again",
                    *tp,
                    offset,
                    resume,
                    resume,
                )
            return "out_of_order"
        if resume is not None and offset == resume:
            self._rewind.at_position(tp)
        start = time.perf_counter()
        span = record_span(self._tracer, topic, partition, offset, raw.header_list)
        decoded = await self._decode(raw)
        if isinstance(decoded, Event):
            span.set_attribute("proctor.event_id", decoded.event_id)
            span.set_attribute("proctor.event_type", decoded.type)
            refusal = await self._admit(decoded, facts_of(raw))
            if refusal is not None:
                decoded = dead_letter_for(raw, refusal.reason, refusal.error_class)
        replay = resume is not None and offset < resume
        if not replay:
            expect[tp] = (grader, offset + 1)
        steps.append(_Step(raw, grader, decoded, replay, span, time.perf_counter() - start))
        return None

    async def _note_log_ends(self, partition: int, grader: PartitionGrader) -> None:
        """Give a new grader every input topic's log end before its first record.

        Why: a topic the grader has not met does not hold its clock, and the tick's log
        ends come from the consumer's fetches, which know a partition's end only once a
        fetch of it returned. Read at a fresh start (or past a topic the state never
        saw), a backlog's first-fetched topics would otherwise move the clock past
        records of the others not fetched yet: time boxes closed early, and transient
        rows (``unknown``, ``expired``) the time-ordered stream never shows.
        """
        assert self._log_ends is not None
        for attempt in range(1, LOG_END_ATTEMPTS + 1):
            try:
                ends = await self._log_ends(partition)
                break
            except Exception as exc:
                log.warning(
                    "cannot read the log ends of partition %d (attempt %d of %d): %s",
                    partition,
                    attempt,
                    LOG_END_ATTEMPTS,
                    exc,
                )
                if attempt < LOG_END_ATTEMPTS:
                    await asyncio.sleep(RETRY_S)
        else:
            return  # graded without them; the tick notes them, and the next grader asks
        async with self._assignments.lock:
            grader.note_log_ends(ends)
        self._ends_noted[partition] = grader

    async def _admit(self, event: Event, facts: RecordFacts) -> Refusal | None:
        """The admission's refusal of a decoded record, or None to grade it.

        An unknown platform may be one enrolled since the roster was last read: the
        admission's (blocking, rate-limited) re-read runs off the event loop, and an
        unreadable roster is retried, never the record's fault.
        """
        refusal = self._admission.admit(event, facts)
        recheck = getattr(self._admission, "admit_after_refresh", None)
        if refusal is None or refusal.error_class != "unknown_platform" or recheck is None:
            return refusal
        loop = asyncio.get_running_loop()
        while True:
            try:
                result: Refusal | None = await loop.run_in_executor(None, recheck, event, facts)
                return result
            except Exception as exc:
                log.warning("cannot re-read the roster (%s); retrying", exc)
                await asyncio.sleep(RETRY_S)

    async def _decode(self, raw: RawRecord) -> Event | DeadLetter:
        loop = asyncio.get_running_loop()
        while True:
            try:
                if self._codec.needs_registry(raw.value_bytes):  # a lookup may block
                    return await loop.run_in_executor(None, safe_decode, raw, self._codec)
                return safe_decode(raw, self._codec)
            except RegistryError as exc:  # not the record's fault: wait, never dead-letter
                log.warning("schema registry unavailable (%s); retrying", exc)
                await asyncio.sleep(RETRY_S)

    async def _send_dead_letters(self, steps: list[_Step]) -> None:
        """Stage 2: each new dead letter acked by the broker before its position moves."""
        for step in steps:
            dead = step.decoded
            if not isinstance(dead, DeadLetter) or step.replay:
                continue
            _topic, key, value = dead_letter_record(dead, self._codec)
            await self._outbox.dead_letter(key, value)
            self._metrics.dead_letters.labels(step.raw.topic_name, dead.error_class).inc()
            log.warning("dead letter %s: %s", step.pos, dead.reason)

    async def _grade(
        self, steps: list[_Step], outcomes: collections.Counter[tuple[str, str]]
    ) -> list[TransitionRow]:
        """Stage 3: grade in the worker thread, then offer rows and offsets in one step."""
        rows: list[TransitionRow] = []
        async with self._assignments.lock:
            graders = self._assignments.graders
            live = [s for s in steps if graders.get(s.raw.partition_no) is s.grader]
            for step in steps:
                if graders.get(step.raw.partition_no) is not step.grader:
                    outcomes[(step.raw.topic_name, "not_owned")] += 1  # revoked meanwhile
                    step.span.end()
            loop = asyncio.get_running_loop()
            await loop.run_in_executor(self._thread, _grade_steps, live)
            for step in live:
                if step.result.conflict and isinstance(step.decoded, Event):
                    # the engine kept the first body; the record's position moves only
                    # once its dead letter is acknowledged (still under the lock, so no
                    # checkpoint can commit the position before it)
                    await self._dead_letter_conflict(step)
                for row in step.result.rows:
                    self._sink.offer(row)
                    self._metrics.transitions.labels(row.state).inc()
                    self._criteria.update(row.state_key, row.state)
                self._sink.processed(
                    (step.raw.topic_name, step.raw.partition_no), step.pos.offset + 1
                )
                rows += step.result.rows
                step.span.set_attribute("proctor.transitions", len(step.result.rows))
                step.span.end()
                self._metrics.grading_seconds.observe(step.seconds)
                outcomes[(step.raw.topic_name, _outcome(step))] += 1
        return rows

    async def _dead_letter_conflict(self, step: _Step) -> None:
        event = step.decoded
        assert isinstance(event, Event)
        dead = dead_letter_for(
            step.raw,
            f"event id {event.event_id!r} was graded before with another body; the first "
            "one stands (a sender that reuses event ids must make them unique)",
            "conflicting_duplicate",
        )
        _topic, key, value = dead_letter_record(dead, self._codec)
        await self._outbox.dead_letter(key, value)
        self._metrics.dead_letters.labels(step.raw.topic_name, dead.error_class).inc()
        log.warning("dead letter %s: %s", step.pos, dead.reason)

    async def _publish(self, rows: Sequence[TransitionRow]) -> None:
        for row in rows:
            # the row's own state record is the schema's plain datum (a unit test checks
            # it encodes as the validated Event does): no round trip per row
            value = self._codec.encode_datum(STATE_TYPE, row.to_state_record())
            await self._outbox.state(row.state_key.encode(), value)


def _grade_steps(steps: list[_Step]) -> None:
    """Runs in the grading thread: touches the steps' graders and nothing else."""
    for step in steps:
        start = time.perf_counter()
        if isinstance(step.decoded, DeadLetter):
            step.result = step.grader.mark(step.pos)
        else:
            step.result = step.grader.handle(step.decoded, step.pos)
        step.seconds += time.perf_counter() - start


def _outcome(step: _Step) -> str:
    if step.result.replayed:
        return "replayed"
    dead = isinstance(step.decoded, DeadLetter) or step.result.conflict
    return "dead_letter" if dead else "graded"
