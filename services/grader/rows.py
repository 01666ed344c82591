"""One criterion state change as the grader stores it: the row of ``criterion_transitions``.

The row carries the contract's fields plus what exactly-once delivery needs: a
deterministic ``transition_id`` (the same change at the same place in its platform's
sequence, computed twice, gets the same id; the same change happening again does not) and the
source position the change is attributed to (the record whose processing produced it), which
the sink compares with the offsets committed in Iceberg to skip what is already there.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa
from pyiceberg.partitioning import PartitionField, PartitionSpec
from pyiceberg.schema import Schema
from pyiceberg.table.sorting import SortField, SortOrder
from pyiceberg.transforms import DayTransform, IdentityTransform
from pyiceberg.types import (
    DoubleType,
    IntegerType,
    ListType,
    LongType,
    NestedField,
    StringType,
    StructType,
    TimestamptzType,
)

from services.core.events import SourcePosition

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


_EVIDENCE = StructType(
    NestedField(101, "event_id", StringType(), required=True),
    NestedField(102, "topic", StringType(), required=False),
    NestedField(103, "partition", IntegerType(), required=False),
    NestedField(104, "offset", LongType(), required=False),
)

#: Iceberg schema of ``grading.criterion_transitions``; field ids are fixed so the table
#: can evolve (new optional fields get new ids, never reused).
TRANSITIONS_SCHEMA = Schema(
    NestedField(
        1,
        "transition_id",
        StringType(),
        required=True,
        doc="Deterministic id: the change and its place in the platform's sequence.",
    ),
    NestedField(2, "exam_id", StringType(), required=True),
    NestedField(3, "candidate_id", StringType(), required=True),
    NestedField(4, "platform_id", StringType(), required=True),
    NestedField(5, "rubric_id", StringType(), required=True),
    NestedField(6, "rubric_version", StringType(), required=True),
    NestedField(7, "part", IntegerType(), required=False, doc="1, 2, 3; null: overall"),
    NestedField(8, "criterion_id", StringType(), required=True),
    NestedField(9, "state", StringType(), required=True),
    NestedField(10, "previous_state", StringType(), required=False),
    NestedField(11, "score", DoubleType(), required=True),
    NestedField(12, "max_score", DoubleType(), required=True),
    NestedField(13, "reason", StringType(), required=True),
    NestedField(
        14,
        "evidence",
        ListType(100, _EVIDENCE, element_required=True),
        required=False,
        doc="Events that decided the state, with topic/partition/offset.",
    ),
    NestedField(15, "event_ts", TimestamptzType(), required=True, doc="Event time."),
    NestedField(16, "graded_at", TimestamptzType(), required=True, doc="Wall clock, audit."),
    NestedField(17, "source_topic", StringType(), required=True),
    NestedField(18, "source_partition", IntegerType(), required=True),
    NestedField(19, "source_offset", LongType(), required=True),
    NestedField(20, "seq", LongType(), required=True, doc="Per-platform order of changes."),
)

#: One partition per day of event time: an exam's rows sit together and the scoreboard's
#: "today" queries prune the rest; the sort order clusters rows by exam in each file.
TRANSITIONS_PARTITION_SPEC = PartitionSpec(
    PartitionField(source_id=15, field_id=1000, transform=DayTransform(), name="event_day"),
)
TRANSITIONS_SORT_ORDER = SortOrder(
    SortField(source_id=2, transform=IdentityTransform()),
    SortField(source_id=8, transform=IdentityTransform()),
)

ARROW_SCHEMA: pa.Schema = TRANSITIONS_SCHEMA.as_arrow()


def _ts(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


def _evidence_array(rows: Sequence[TransitionRow], list_type: pa.DataType) -> pa.Array:
    """The evidence lists of ``rows`` built from flat columns and offsets, not dicts."""
    offsets = [0]
    ids: list[str] = []
    topics: list[str | None] = []
    partitions: list[int | None] = []
    positions: list[int | None] = []
    n = 0
    for r in rows:
        for e in r.evidence:
            ids.append(e.event_id)
            topics.append(e.topic)
            partitions.append(e.partition)
            positions.append(e.offset)
        n += len(r.evidence)
        offsets.append(n)
    element = list_type.value_field
    struct_type = element.type
    children = [
        pa.array(values, type=struct_type.field(i).type)
        for i, values in enumerate((ids, topics, partitions, positions))
    ]
    struct = pa.StructArray.from_arrays(children, fields=list(struct_type))
    if pa.types.is_large_list(list_type):
        return pa.LargeListArray.from_arrays(pa.array(offsets, pa.int64()), struct, type=list_type)
    return pa.ListArray.from_arrays(pa.array(offsets, pa.int32()), struct, type=list_type)


def _timestamps(ms: list[int], type_: pa.DataType) -> pa.Array:
    """Epoch milliseconds as the schema's timestamp type (microseconds, UTC)."""
    unit = getattr(type_, "unit", "us")
    factor = {"ms": 1, "us": 1000, "ns": 1_000_000}[unit]
    return pa.array([m * factor for m in ms], pa.int64()).cast(type_)


def to_arrow(
    rows: Sequence[TransitionRow] | Iterable[TransitionRow], schema: pa.Schema = ARROW_SCHEMA
) -> pa.Table:
    """Rows as an Arrow table; pass the table's own ``schema().as_arrow()`` when writing
    (the catalog assigns field ids at creation, so they differ from TRANSITIONS_SCHEMA's).

    Built column by column (one list per field, one ``pa.array`` each), which costs a few
    microseconds a row where a dict per row through ``from_pylist`` cost tens."""
    rows = rows if isinstance(rows, Sequence) else list(rows)
    columns: dict[str, list[Any]] = {
        "transition_id": [r._id for r in rows],
        "exam_id": [r.exam_id for r in rows],
        "candidate_id": [r.candidate_id for r in rows],
        "platform_id": [r.platform_id for r in rows],
        "rubric_id": [r.rubric_id for r in rows],
        "rubric_version": [r.rubric_version for r in rows],
        "part": [r.part for r in rows],
        "criterion_id": [r.criterion_id for r in rows],
        "state": [r.state for r in rows],
        "previous_state": [r.previous_state for r in rows],
        "score": [float(r.score) for r in rows],
        "max_score": [float(r.max_score) for r in rows],
        "reason": [r.reason for r in rows],
        "source_topic": [r.source.topic for r in rows],
        "source_partition": [r.source.partition for r in rows],
        "source_offset": [r.source.offset for r in rows],
        "seq": [r.seq for r in rows],
    }
    arrays: list[pa.Array] = []
    for f in schema:
        if f.name == "evidence":
            arrays.append(_evidence_array(rows, f.type))
        elif f.name == "event_ts":
            arrays.append(_timestamps([r.event_ts_ms for r in rows], f.type))
        elif f.name == "graded_at":
            arrays.append(_timestamps([r.graded_at_ms for r in rows], f.type))
        else:
            arrays.append(pa.array(columns[f.name], type=f.type))
    return pa.Table.from_arrays(arrays, schema=schema)


def to_arrow_by_row(
    rows: Sequence[TransitionRow] | Iterable[TransitionRow], schema: pa.Schema = ARROW_SCHEMA
) -> pa.Table:
    """The former form of :func:`to_arrow`: a dict per row, the id hashed per row. Kept
    so ``bench/sink.py`` measures both in one run, and tests check they agree."""
    return pa.Table.from_pylist(
        [
            {
                "transition_id": transition_id_of(r),
                "exam_id": r.exam_id,
                "candidate_id": r.candidate_id,
                "platform_id": r.platform_id,
                "rubric_id": r.rubric_id,
                "rubric_version": r.rubric_version,
                "part": r.part,
                "criterion_id": r.criterion_id,
                "state": r.state,
                "previous_state": r.previous_state,
                "score": float(r.score),
                "max_score": float(r.max_score),
                "reason": r.reason,
                "evidence": [e.as_dict() for e in r.evidence],
                "event_ts": _ts(r.event_ts_ms),
                "graded_at": _ts(r.graded_at_ms),
                "source_topic": r.source.topic,
                "source_partition": r.source.partition,
                "source_offset": r.source.offset,
                "seq": r.seq,
            }
            for r in rows
        ],
        schema=schema,
    )
