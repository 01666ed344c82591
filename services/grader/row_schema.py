"""The transitions table's shape: its Iceberg schema (fixed field ids, so it can evolve),
the columns added since its first version, its partitioning and sort order."""

from __future__ import annotations

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

_EVIDENCE = StructType(
    NestedField(101, "event_id", StringType(), required=True),
    NestedField(102, "topic", StringType(), required=False),
    NestedField(103, "partition", IntegerType(), required=False),
    NestedField(104, "offset", LongType(), required=False),
)

#: Columns added since the table's first version (optional, so a table made before them
#: gains them by schema evolution, no rewrite; rows written before read null).
TRACE_COLUMNS: dict[str, str] = {
    "trace_id": "W3C trace id (32 hex) of the source record's traceparent; null: none or "
    "malformed.",
    "grade_span_id": "Id (16 hex) of the span that graded the source record; null: spans "
    "not recorded.",
}

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
    *(
        NestedField(fid, name, type_, required=False, doc=doc)
        for fid, name, type_, doc in (
            (21, "confidence", DoubleType(), "A text criterion's confidence in its state."),
            (22, "review_verdict", StringType(), "Review queue: the judge's state."),
            (23, "review_threshold", DoubleType(), "Review queue: the threshold it was under."),
            (24, "judge", StringType(), "Review queue: the text judge."),
            (25, "text_digest", StringType(), "Review queue: sha256 of the judged text."),
            (26, "review_status", StringType(), "pending, confirmed, overridden, superseded."),
            (27, "decided_by", StringType(), "Review queue: the proctor who decided."),
            (28, "decision_reason", StringType(), "Review queue: the proctor's reason."),
        )
    ),
    *(
        NestedField(field_id, name, StringType(), required=False, doc=doc)
        for field_id, (name, doc) in enumerate(TRACE_COLUMNS.items(), start=29)
    ),
    *(
        NestedField(field_id, name, type_, required=False, doc=doc)
        for field_id, name, type_, doc in (
            (31, "part_opened_at", TimestamptzType(),
             "When the row's part box opened (its anchor event)."),
            (32, "part_closes_at", TimestamptzType(),
             "When it closes: limit plus extensions, part.ended or exam.ended."),
            (33, "part_extended_minutes", IntegerType(),
             "Minutes added to the part by accepted part.extended events."),
            (34, "fault_layer", StringType(), "Injected fault."),
            (35, "fault_kind", StringType(), None),
            (36, "fault_injected_at", TimestamptzType(), None),
        )
    ),
)  # fmt: skip

#: the exam facts columns (the scoreboard's; added to an older table on load)
FACT_COLUMNS = (
    "part_opened_at",
    "part_closes_at",
    "part_extended_minutes",
    "fault_layer",
    "fault_kind",
    "fault_injected_at",
)
#: columns added after the table's first version (added to an older table on load)
ADDED_COLUMNS = tuple(f for f in TRANSITIONS_SCHEMA.fields if f.field_id >= 21)

#: One partition per day of event time: an exam's rows sit together and the scoreboard's
#: "today" queries prune the rest; the sort order clusters rows by exam in each file.
TRANSITIONS_PARTITION_SPEC = PartitionSpec(
    PartitionField(source_id=15, field_id=1000, transform=DayTransform(), name="event_day"),
)
TRANSITIONS_SORT_ORDER = SortOrder(
    SortField(source_id=2, transform=IdentityTransform()),
    SortField(source_id=8, transform=IdentityTransform()),
)


__all__ = [
    "ADDED_COLUMNS",
    "FACT_COLUMNS",
    "TRACE_COLUMNS",
    "TRANSITIONS_PARTITION_SPEC",
    "TRANSITIONS_SCHEMA",
    "TRANSITIONS_SORT_ORDER",
]
