"""The Iceberg table of transition rows: its creation and evolution, and rows turned into
Arrow tables (one list per column, one ``pa.array`` each). Its shape is in
:mod:`services.grader.row_schema` (re-exported here)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa
from pyiceberg.catalog import Catalog
from pyiceberg.exceptions import CommitFailedException, NoSuchTableError
from pyiceberg.table import Table

from services.errors import SinkError
from services.grader.row_schema import (
    ADDED_COLUMNS,
    FACT_COLUMNS,
    TRACE_COLUMNS,
    TRANSITIONS_PARTITION_SPEC,
    TRANSITIONS_SCHEMA,
    TRANSITIONS_SORT_ORDER,
)
from services.grader.rows import TransitionRow, transition_id_of

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


__all__ = [
    "ADDED_COLUMNS",
    "ARROW_SCHEMA",
    "FACT_COLUMNS",
    "OWN_RETRIES",
    "TRACE_COLUMNS",
    "TRANSITIONS_PARTITION_SPEC",
    "TRANSITIONS_SCHEMA",
    "TRANSITIONS_SORT_ORDER",
    "ensure_table",
    "to_arrow",
    "to_arrow_by_row",
]
