"""One batch of input records: decode, admit, grade, publish, offer to the sink.

The stages, in order, for a batch the agent took (one batch at a time):

1. *Read* (event loop): :class:`~services.grader.reading.RecordReader` places each
   record against its partition's state, decodes and admits it, or skips it; a bad or
   refused record becomes a dead letter.
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
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from typing import Any, Protocol

from services.contract.admission import Admission, RecordFacts, Refusal
from services.contract.dlq import DeadLetter, RawRecord, dead_letter_for, dead_letter_record
from services.contract.wire import WireCodec
from services.core.events import Event
from services.grader.assignment import Assignments, RowBuffer
from services.grader.grading import PartitionGrader
from services.grader.reading import (
    LOG_END_ATTEMPTS,
    RETRY_S,
    LogEnds,
    RecordReader,
    Step,
    facts_of,
)
from services.grader.rewind import RewindPolicy
from services.grader.rows import TransitionRow
from services.grader.telemetry import CriterionStates, Metrics

__all__ = ["LOG_END_ATTEMPTS", "RETRY_S", "BatchPipeline", "LogEnds", "Outbox", "facts_of"]

log = logging.getLogger(__name__)

STATE_TYPE = "grading.criterion_state"


class Outbox(Protocol):
    """The worker's output topics."""

    async def dead_letter(self, key: bytes | None, value: bytes) -> None:
        """Send to the dead-letter topic and wait for the broker's ack."""
        ...

    async def state(self, key: bytes, value: bytes) -> None:
        """Send a criterion state (the ack is not awaited: the topic is derived)."""
        ...


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
        self._reader = RecordReader(
            codec,
            admission,
            assignments,
            rewind,
            sink,
            metrics,
            tracer,
            clock,
            log_ends,
            retry_s=RETRY_S,
        )
        self._assignments = assignments
        self._sink = sink
        self._outbox = outbox
        self._metrics = metrics
        self._criteria = CriterionStates(metrics.criteria)
        self._thread = grading_thread

    async def run(self, records: Sequence[RawRecord]) -> None:
        outcomes: collections.Counter[tuple[str, str]] = collections.Counter()
        steps: list[Step] = []
        #: the next position of each partition (and its grader) once the steps so far
        #: are graded
        expect: dict[tuple[str, int], tuple[PartitionGrader, int]] = {}
        for raw in records:
            outcome = await self._reader.read(raw, expect, steps)
            if outcome:
                outcomes[(raw.topic_name, outcome)] += 1
        await self._send_dead_letters(steps)
        rows = await self._grade(steps, outcomes)
        await self._publish(rows)
        for (topic, outcome), n in outcomes.items():
            self._metrics.records.labels(topic, outcome).inc(n)
        self._metrics.batch_records.observe(len(records))

    async def _admit(self, event: Event, facts: RecordFacts) -> Refusal | None:
        """The admission's refusal of a decoded record, or None to grade it."""
        return await self._reader.admit(event, facts)

    async def _send_dead_letters(self, steps: list[Step]) -> None:
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
        self, steps: list[Step], outcomes: collections.Counter[tuple[str, str]]
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
                raw = step.raw
                self._sink.processed((raw.topic_name, raw.partition_no), raw.offset_no + 1)
                rows += step.result.rows
                step.span.set_attribute("proctor.transitions", len(step.result.rows))
                step.span.end()
                self._metrics.grading_seconds.observe(step.seconds)
                outcomes[(step.raw.topic_name, _outcome(step))] += 1
        return rows

    async def _dead_letter_conflict(self, step: Step) -> None:
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


def _grade_steps(steps: list[Step]) -> None:
    """Runs in the grading thread: touches the steps' graders and nothing else."""
    for step in steps:
        start = time.perf_counter()
        if isinstance(step.decoded, DeadLetter):
            step.result = step.grader.mark(step.pos, step.trace)
        else:
            step.result = step.grader.handle(step.decoded, step.pos, step.trace)
        step.seconds += time.perf_counter() - start


def _outcome(step: Step) -> str:
    if step.result.replayed:
        return "replayed"
    dead = isinstance(step.decoded, DeadLetter) or step.result.conflict
    return "dead_letter" if dead else "graded"
