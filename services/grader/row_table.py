"""The Iceberg table of transition rows: its schema, partitioning and sort order, its
creation, and rows turned into Arrow tables (one list per column, one ``pa.array`` each)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa
from pyiceberg.catalog import Catalog
from pyiceberg.exceptions import CommitFailedException, NoSuchTableError
from pyiceberg.partitioning import PartitionField, PartitionSpec
from pyiceberg.schema import Schema
from pyiceberg.table import Table
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

from services.errors import SinkError
from services.grader.rows import TransitionRow, transition_id_of

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

#: pyiceberg retries a commit that lost a race itself, re-applying the same rows and
#: snapshot summary on the newer table; the sink must first drop the rows the other
#: writer's offsets cover and merge its offsets again (``write``), so the library must not.
OWN_RETRIES = {"commit.retry.num-retries": "0"}


def ensure_table(catalog: Catalog, identifier: str) -> Table:
    """Load the transitions table, creating its namespace and the table when absent; a
    table made before ``OWN_RETRIES`` gets that property, one made before
    ``ADDED_COLUMNS`` (confidence, review queue, ``TRACE_COLUMNS``) gets those columns
    (schema evolution: columns added, no file rewritten; several workers starting at once
    each retry on the other's commit)."""
    namespace = identifier.rsplit(".", 1)[0]
    try:
        table = catalog.load_table(identifier)
    except NoSuchTableError:
        catalog.create_namespace_if_not_exists(namespace)
        table = catalog.create_table_if_not_exists(
            identifier,
            schema=TRANSITIONS_SCHEMA,
            partition_spec=TRANSITIONS_PARTITION_SPEC,
            sort_order=TRANSITIONS_SORT_ORDER,
            properties={
                "format-version": "2",
                "write.parquet.compression-codec": "zstd",
                # Keep the metadata.json history short under many small commits.
                "write.metadata.delete-after-commit.enabled": "true",
                "write.metadata.previous-versions-max": "50",
                **OWN_RETRIES,
            },
        )
    table = _with_added_columns(catalog, identifier, table)
    for _ in range(5):
        if all(table.properties.get(k) == v for k, v in OWN_RETRIES.items()):
            return table
        try:
            with table.transaction() as tx:
                tx.set_properties(OWN_RETRIES)
        except CommitFailedException:
            pass  # another worker changed the table meanwhile: look again
        table = catalog.load_table(identifier)
    raise SinkError(
        f"cannot set {OWN_RETRIES} on {identifier}: other writers kept changing the table"
    )


def _with_added_columns(catalog: Catalog, identifier: str, table: Table) -> Table:
    """An older table gains the optional columns added since (confidence, review queue,
    trace, exam facts)."""
    for _ in range(5):
        have = {f.name for f in table.schema().fields}
        missing = [f for f in ADDED_COLUMNS if f.name not in have]
        if not missing:
            return table
        try:
            with table.update_schema() as update:
                for f in missing:
                    update.add_column(f.name, f.field_type, doc=f.doc)
        except (CommitFailedException, ValueError):
            pass  # another worker evolved it meanwhile: look again
        table = catalog.load_table(identifier)
    raise SinkError(f"cannot add {[f.name for f in ADDED_COLUMNS]} to {identifier}")


ARROW_SCHEMA: pa.Schema = TRANSITIONS_SCHEMA.as_arrow()


def _ts(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


def _extended(r: TransitionRow) -> int | None:
    """Minutes added to the row's part; null when the row has no open part."""
    return None if r.facts.part_opened_ms is None else r.facts.part_extended_minutes


def _opt_ts(ms: int | None) -> datetime | None:
    return None if ms is None else _ts(ms)


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


def _timestamps(ms: Sequence[int | None], type_: pa.DataType) -> pa.Array:
    """Epoch milliseconds (None: null) as the schema's timestamp type (microseconds, UTC)."""
    unit = getattr(type_, "unit", "us")
    factor = {"ms": 1, "us": 1000, "ns": 1_000_000}[unit]
    return pa.array([None if m is None else m * factor for m in ms], pa.int64()).cast(type_)


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
        "confidence": [r.confidence for r in rows],
        "review_verdict": [r.queue.verdict if r.queue else None for r in rows],
        "review_threshold": [r.queue.threshold if r.queue else None for r in rows],
        "judge": [r.queue.judge if r.queue else None for r in rows],
        "text_digest": [r.queue.text_digest if r.queue else None for r in rows],
        "review_status": [r.queue.status if r.queue else None for r in rows],
        "decided_by": [(r.queue.decided_by or None) if r.queue else None for r in rows],
        "decision_reason": [(r.queue.decision_reason or None) if r.queue else None for r in rows],
        "trace_id": [r.trace_id for r in rows],
        "grade_span_id": [r.grade_span_id for r in rows],
        "part_extended_minutes": [_extended(r) for r in rows],
        "fault_layer": [r.facts.fault_layer or None for r in rows],
        "fault_kind": [r.facts.fault_kind or None for r in rows],
    }
    times = {
        "event_ts": lambda r: r.event_ts_ms,
        "graded_at": lambda r: r.graded_at_ms,
        "part_opened_at": lambda r: r.facts.part_opened_ms,
        "part_closes_at": lambda r: r.facts.part_closes_ms,
        "fault_injected_at": lambda r: r.facts.fault_ms,
    }
    arrays: list[pa.Array] = []
    for f in schema:
        if f.name == "evidence":
            arrays.append(_evidence_array(rows, f.type))
        elif f.name in times:
            arrays.append(_timestamps([times[f.name](r) for r in rows], f.type))
        elif f.name not in columns and f.nullable:
            # an optional column a newer version added to the table: this one writes nulls
            arrays.append(pa.nulls(len(rows), f.type))
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
                "confidence": r.confidence,
                "review_verdict": r.queue.verdict if r.queue else None,
                "review_threshold": r.queue.threshold if r.queue else None,
                "judge": r.queue.judge if r.queue else None,
                "text_digest": r.queue.text_digest if r.queue else None,
                "review_status": r.queue.status if r.queue else None,
                "decided_by": (r.queue.decided_by or None) if r.queue else None,
                "decision_reason": (r.queue.decision_reason or None) if r.queue else None,
                "trace_id": r.trace_id,
                "grade_span_id": r.grade_span_id,
                "part_opened_at": _opt_ts(r.facts.part_opened_ms),
                "part_closes_at": _opt_ts(r.facts.part_closes_ms),
                "part_extended_minutes": _extended(r),
                "fault_layer": r.facts.fault_layer or None,
                "fault_kind": r.facts.fault_kind or None,
                "fault_injected_at": _opt_ts(r.facts.fault_ms),
            }
            for r in rows
        ],
        schema=schema,
    )
