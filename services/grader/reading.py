"""Stage 1 of a batch: a record read, placed against its partition's state, decoded and
admitted, or skipped.

Per record: skip it if its partition is not owned; before a new grader's first record,
give it every input topic's log end from the broker (:meth:`RecordReader._note_log_ends`);
note the record for the rewind policy, skip a record past the state's position (a gap),
decode it with the contract's ``safe_decode`` (a registry lookup in a thread; a registry
outage waits, never dead-letters) and ask the :class:`Admission` whether it may grade.
A bad or refused record becomes a dead letter.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from services.contract.admission import Admission, RecordFacts, Refusal
from services.contract.dlq import DeadLetter, RawRecord, dead_letter_for, safe_decode
from services.contract.wire import WireCodec
from services.core.events import Event, SourcePosition
from services.errors import RegistryError
from services.grader.assignment import Assignments, RowBuffer
from services.grader.grading import PartitionGrader, StepResult
from services.grader.rewind import RewindPolicy
from services.grader.rows import Trace
from services.grader.telemetry import (
    QUIET_SPAN,
    Metrics,
    record_span,
    records_spans,
    span_id_of,
    trace_id_of,
)

log = logging.getLogger(__name__)

RETRY_S = 2.0
#: attempts at reading a new grader's log ends before grading without them
LOG_END_ATTEMPTS = 3

#: the broker's log-end offset of each input topic of a partition number
LogEnds = Callable[[int], Awaitable[Mapping[str, int]]]


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
class Step:
    """A record read and decoded, to be graded (an Event) or marked (a DeadLetter)."""

    raw: RawRecord
    grader: PartitionGrader
    decoded: Event | DeadLetter
    replay: bool
    span: Any
    #: seconds spent on the record: decoding, admission and grading
    seconds: float
    #: the record's trace id and its grading span's id, for its rows
    trace: Trace
    result: StepResult = field(default_factory=StepResult)

    @property
    def pos(self) -> SourcePosition:
        return SourcePosition(self.raw.topic_name, self.raw.partition_no, self.raw.offset_no)


class RecordReader:
    """Turns raw records into steps; owns which grader each partition's log ends were
    last given to."""

    def __init__(
        self,
        codec: WireCodec,
        admission: Admission,
        assignments: Assignments,
        rewind: RewindPolicy,
        sink: RowBuffer,
        metrics: Metrics,
        tracer: Any,
        clock: Callable[[], float] = time.monotonic,
        log_ends: LogEnds | None = None,
        retry_s: float = RETRY_S,
    ) -> None:
        self._codec = codec
        #: the wait before asking again a registry, roster or broker that failed
        self._retry_s = retry_s
        self._admission = admission
        self._assignments = assignments
        self._rewind = rewind
        self._sink = sink
        self._metrics = metrics
        self._tracer = tracer
        self._spans = records_spans(tracer)
        self._clock = clock
        self._log_ends = log_ends
        #: the grader each partition's log ends were last given to
        self._ends_noted: dict[int, PartitionGrader] = {}

    async def read(
        self,
        raw: RawRecord,
        expect: dict[tuple[str, int], tuple[PartitionGrader, int]],
        steps: list[Step],
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
        headers = raw.header_list
        if self._spans:
            span = record_span(self._tracer, topic, partition, offset, headers)
            trace = (trace_id_of(headers), span_id_of(span))
        else:
            span = QUIET_SPAN
            trace = (trace_id_of(headers), None)
        codec = self._codec
        if codec.needs_registry(raw.value_bytes):
            decoded = await self._decode(raw)  # a registry lookup: off the loop
        else:
            decoded = safe_decode(raw, codec)  # the schema is cached: no I/O, no await
        if isinstance(decoded, Event):
            span.set_attribute("proctor.event_id", decoded.event_id)
            span.set_attribute("proctor.event_type", decoded.type)
            facts = facts_of(raw)
            refusal = self._admission.admit(decoded, facts)
            if refusal is not None and refusal.error_class == "unknown_platform":
                refusal = await self._recheck(decoded, facts, refusal)
            if refusal is not None:
                decoded = dead_letter_for(raw, refusal.reason, refusal.error_class)
        replay = resume is not None and offset < resume
        if not replay:
            expect[tp] = (grader, offset + 1)
        steps.append(Step(raw, grader, decoded, replay, span, time.perf_counter() - start, trace))
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
                    await asyncio.sleep(self._retry_s)
        else:
            return  # graded without them; the tick notes them, and the next grader asks
        async with self._assignments.lock:
            grader.note_log_ends(ends)
        self._ends_noted[partition] = grader

    async def admit(self, event: Event, facts: RecordFacts) -> Refusal | None:
        """The admission's refusal of a decoded record, or None to grade it.

        An unknown platform may be one enrolled since the roster was last read: the
        admission's (blocking, rate-limited) re-read runs off the event loop, and an
        unreadable roster is retried, never the record's fault.
        """
        refusal = self._admission.admit(event, facts)
        if refusal is None or refusal.error_class != "unknown_platform":
            return refusal
        return await self._recheck(event, facts, refusal)

    async def _recheck(self, event: Event, facts: RecordFacts, refusal: Refusal) -> Refusal | None:
        """An unknown platform's record asked again after the roster is read again."""
        recheck = getattr(self._admission, "admit_after_refresh", None)
        if recheck is None:
            return refusal
        loop = asyncio.get_running_loop()
        while True:
            try:
                result: Refusal | None = await loop.run_in_executor(None, recheck, event, facts)
                return result
            except Exception as exc:
                log.warning("cannot re-read the roster (%s); retrying", exc)
                await asyncio.sleep(self._retry_s)

    async def _decode(self, raw: RawRecord) -> Event | DeadLetter:
        loop = asyncio.get_running_loop()
        while True:
            try:
                if self._codec.needs_registry(raw.value_bytes):  # a lookup may block
                    return await loop.run_in_executor(None, safe_decode, raw, self._codec)
                return safe_decode(raw, self._codec)
            except RegistryError as exc:  # not the record's fault: wait, never dead-letter
                log.warning("schema registry unavailable (%s); retrying", exc)
                await asyncio.sleep(self._retry_s)
