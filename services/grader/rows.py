"""One criterion state change as the grader stores it: the row of ``criterion_transitions``.

The row carries the contract's fields plus what exactly-once delivery needs: a
deterministic ``transition_id`` (the same change at the same place in its platform's
sequence, computed twice, gets the same id; the same change happening again does not) and the
source position the change is attributed to (the record whose processing produced it), which
the sink compares with the offsets committed in Iceberg to skip what is already there.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from services.core.events import SourcePosition
from services.core.model import NO_FACTS, ExamFacts, QueueEntry, Transition

#: a record's trace id and its grading span's id (see :class:`TransitionRow`)
Trace = tuple[str | None, str | None]
#: a record without trace context, graded without a recorded span
NO_TRACE: Trace = (None, None)

#: criterion states of the contract (schemas/grading.criterion_transition.avsc)
STATES: frozenset[str] = frozenset({"pending", "met", "partial", "failed", "expired", "unknown"})


@dataclass(frozen=True, slots=True)
class Evidence:
    """An event that decided a state, with where it was read from (None when offline)."""

    event_id: str
    topic: str | None = None
    partition: int | None = None
    offset: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "event_id": self.event_id,
            "topic": self.topic,
            "partition": self.partition,
            "offset": self.offset,
        }

    @classmethod
    def from_dict(cls, obj: Mapping[str, Any]) -> Evidence:
        return cls(
            event_id=str(obj["event_id"]),
            topic=obj.get("topic"),
            partition=obj.get("partition"),
            offset=obj.get("offset"),
        )


def transition_id_of(row: TransitionRow) -> str:
    """The row's deterministic id (see :attr:`TransitionRow.transition_id`)."""
    parts: list[str] = [
        row.exam_id,
        row.criterion_id,
        str(row.seq),
        row.previous_state or "",
        row.state,
        repr(float(row.score)),
        str(row.event_ts_ms),
        *sorted(e.event_id for e in row.evidence),
    ]
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:32]


@dataclass(frozen=True, slots=True)
class TransitionRow:
    """A criterion state change, ready for the table and the state topic.

    ``source`` is the record whose processing produced the change: the event itself, or
    the event whose time advanced the watermark past a time box.
    """

    exam_id: str
    candidate_id: str
    platform_id: str
    rubric_id: str
    rubric_version: str
    part: int | None
    criterion_id: str
    state: str
    previous_state: str | None
    score: float
    max_score: float
    reason: str
    event_ts_ms: int
    graded_at_ms: int
    source: SourcePosition
    #: per-platform sequence of changes: orders the changes of one criterion for "latest"
    seq: int
    evidence: tuple[Evidence, ...] = field(default_factory=tuple)
    #: a text criterion's confidence in its state (None for every other criterion)
    confidence: float | None = None
    #: the review queue's columns, on a ``review:judge:`` note's change
    queue: QueueEntry | None = None
    #: W3C trace id of the source record's ``traceparent`` (None: it carried none, or a
    #: malformed one); not part of the id: which trace delivered a change is not the change
    trace_id: str | None = None
    #: id of the span that graded the source record, when spans are recorded
    grade_span_id: str | None = None
    #: the part window and fault the engine knew at the change (scoreboard columns)
    facts: ExamFacts = field(default=NO_FACTS, compare=False)
    _id: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.state not in STATES:
            raise ValueError(
                f"criterion {self.criterion_id!r}: state {self.state!r} is not one of "
                f"{sorted(STATES)}"
            )
        object.__setattr__(self, "_id", transition_id_of(self))

    @property
    def transition_id(self) -> str:
        """Same change, same id: computed from what the change is and its place in the
        platform's sequence, not when or from which record it was graded. The sequence
        number is part of it because the same change can happen twice (a verdict on the
        total, such as the self grade's agreement, flips back and forth as late signals
        move the total): without it the second flip was taken for a duplicate of the
        first and dropped, leaving the criterion's latest row wrong.

        Computed once, at the row's creation: the sink, the state topic and the table
        each read it, and a hash per read was a large part of a row's cost."""
        return self._id

    @property
    def state_key(self) -> str:
        """Key of the compacted state topic: ``exam_id:criterion_id``."""
        return f"{self.exam_id}:{self.criterion_id}"

    def to_json_obj(self) -> dict[str, Any]:
        """A JSON-safe form, kept in the platform record until the sink has committed it."""
        return {
            "exam_id": self.exam_id,
            "candidate_id": self.candidate_id,
            "platform_id": self.platform_id,
            "rubric_id": self.rubric_id,
            "rubric_version": self.rubric_version,
            "part": self.part,
            "criterion_id": self.criterion_id,
            "state": self.state,
            "previous_state": self.previous_state,
            "score": self.score,
            "max_score": self.max_score,
            "reason": self.reason,
            "event_ts_ms": self.event_ts_ms,
            "graded_at_ms": self.graded_at_ms,
            "source": [self.source.topic, self.source.partition, self.source.offset],
            "seq": self.seq,
            "evidence": [e.as_dict() for e in self.evidence],
            "confidence": self.confidence,
            "queue": _queue_obj(self.queue),
            "trace_id": self.trace_id,
            "grade_span_id": self.grade_span_id,
            "facts": facts_to_json(self.facts),
        }

    @classmethod
    def from_json_obj(cls, obj: Mapping[str, Any]) -> TransitionRow:
        topic, partition, offset = obj["source"]
        return cls(
            exam_id=obj["exam_id"],
            candidate_id=obj["candidate_id"],
            platform_id=obj["platform_id"],
            rubric_id=obj["rubric_id"],
            rubric_version=obj["rubric_version"],
            part=obj["part"],
            criterion_id=obj["criterion_id"],
            state=obj["state"],
            previous_state=obj["previous_state"],
            score=float(obj["score"]),
            max_score=float(obj["max_score"]),
            reason=obj["reason"],
            event_ts_ms=int(obj["event_ts_ms"]),
            graded_at_ms=int(obj["graded_at_ms"]),
            source=SourcePosition(str(topic), int(partition), int(offset)),
            seq=int(obj["seq"]),
            evidence=tuple(Evidence.from_dict(e) for e in obj["evidence"]),
            confidence=obj.get("confidence"),
            queue=QueueEntry(**obj["queue"]) if obj.get("queue") else None,
            # rows kept by a worker before rows carried their trace: none
            trace_id=obj.get("trace_id"),
            grade_span_id=obj.get("grade_span_id"),
            facts=facts_from_json(obj.get("facts")),
        )

    def to_state_record(self) -> dict[str, Any]:
        """The contract's ``grading.criterion_state`` fields (timestamps in epoch ms)."""
        return {
            "type": "grading.criterion_state",
            "platform_id": self.platform_id,
            "event_id": self.transition_id,
            "ts": self.event_ts_ms,
            "exam_id": self.exam_id,
            "candidate_id": self.candidate_id,
            "rubric_id": self.rubric_id,
            "rubric_version": self.rubric_version,
            "part": self.part,
            "criterion_id": self.criterion_id,
            "state": self.state,
            "score": self.score,
            "max_score": self.max_score,
            "reason": self.reason,
            "evidence": [e.as_dict() for e in self.evidence],
            "event_ts": self.event_ts_ms,
            "graded_at": self.graded_at_ms,
        }


def _queue_obj(q: QueueEntry | None) -> dict[str, Any] | None:
    if q is None:
        return None
    return {
        "criterion_id": q.criterion_id,
        "verdict": q.verdict,
        "confidence": q.confidence,
        "threshold": q.threshold,
        "judge": q.judge,
        "text_digest": q.text_digest,
        "status": q.status,
        "decided_by": q.decided_by,
        "decision_reason": q.decision_reason,
    }


def part_number(part: str) -> int | None:
    """The core names parts "1", "2", "3" and "overall"; the table stores 1, 2, 3 or null."""
    return int(part) if part.isdigit() else None


def to_row(
    t: Transition,
    seq: int,
    source: SourcePosition,
    event_id: str | None,
    graded_at_ms: int,
    trace: Trace = NO_TRACE,
) -> TransitionRow:
    """A core transition as a table row; evidence positions known for the current record
    (``event_id``; None for a record that graded nothing itself, such as a dead letter);
    ``trace``: the source record's trace id and its grading span's id."""
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
        confidence=t.confidence,
        queue=t.queue,
        trace_id=trace[0],
        grade_span_id=trace[1],
        facts=t.facts,
    )


def facts_to_json(f: ExamFacts) -> dict[str, Any]:
    return {
        "part_opened_ms": f.part_opened_ms,
        "part_closes_ms": f.part_closes_ms,
        "part_extended_minutes": f.part_extended_minutes,
        "fault_layer": f.fault_layer,
        "fault_kind": f.fault_kind,
        "fault_ms": f.fault_ms,
    }


def facts_from_json(obj: Mapping[str, Any] | None) -> ExamFacts:
    """Facts from a pending record; a record written before they existed has none."""
    if not obj:
        return NO_FACTS
    return ExamFacts(
        part_opened_ms=obj.get("part_opened_ms"),
        part_closes_ms=obj.get("part_closes_ms"),
        part_extended_minutes=int(obj.get("part_extended_minutes") or 0),
        fault_layer=str(obj.get("fault_layer") or ""),
        fault_kind=str(obj.get("fault_kind") or ""),
        fault_ms=obj.get("fault_ms"),
    )
