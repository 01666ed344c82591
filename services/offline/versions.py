"""Published regrades: a new graded version of exams beside the live one, both queryable.

``proctor regrade --publish`` appends the regraded exams to the Iceberg table
``<namespace>.graded_versions`` (the columns of ``exam_scores`` plus ``version``,
``label`` and ``published_at``), numbered after every version already there (the live
grading is version 0), and replaces the views: ``exam_scores`` shows each exam's current
version (its latest published one, else the live grading), so the scoreboard follows
without a change; ``exam_score_versions`` lists every version with ``is_current``. The
transitions table is never touched: the history stays.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa
from pyiceberg.catalog import Catalog
from pyiceberg.exceptions import NamespaceAlreadyExistsError, NoSuchTableError
from pyiceberg.schema import Schema
from pyiceberg.types import (
    BooleanType,
    DoubleType,
    IntegerType,
    LongType,
    NestedField,
    StringType,
    TimestamptzType,
)

from services.core.model import OVERALL_PART, ExamResult
from services.core.model import exam_status as status
from services.errors import SinkError
from services.grader.row_table import TRANSITIONS_SCHEMA
from services.grader.views import VERSIONS_TABLE, create_exam_scores_view

_EVIDENCE = TRANSITIONS_SCHEMA.find_field("evidence")

VERSIONS_SCHEMA = Schema(
    NestedField(1, "version", LongType(), required=True, doc="1, 2, ...; 0 is the live grading"),
    NestedField(2, "label", StringType(), required=True, doc="What this version is"),
    NestedField(3, "published_at", TimestamptzType(), required=True),
    NestedField(4, "exam_id", StringType(), required=True),
    NestedField(5, "candidate_id", StringType(), required=True),
    NestedField(6, "platform_id", StringType(), required=True),
    NestedField(7, "rubric_id", StringType(), required=True),
    NestedField(8, "rubric_version", StringType(), required=True),
    NestedField(9, "part", IntegerType(), required=False, doc="1, 2, 3; null: overall"),
    NestedField(10, "criterion_id", StringType(), required=True),
    NestedField(11, "state", StringType(), required=True),
    NestedField(12, "score", DoubleType(), required=True),
    NestedField(13, "max_score", DoubleType(), required=True),
    NestedField(14, "reason", StringType(), required=True),
    NestedField(15, "evidence", _EVIDENCE.field_type, required=False),
    NestedField(16, "event_ts", TimestamptzType(), required=True),
    NestedField(17, "graded_at", TimestamptzType(), required=True),
    NestedField(18, "part_score", DoubleType(), required=False),
    NestedField(19, "part_max_score", DoubleType(), required=False),
    NestedField(20, "total_score", DoubleType(), required=True),
    NestedField(21, "total_max_score", DoubleType(), required=True),
    NestedField(22, "total_pct", DoubleType(), required=True),
    NestedField(23, "passed", BooleanType(), required=True),
    NestedField(24, "open_reviews", LongType(), required=True),
    NestedField(25, "status", StringType(), required=True),
)


def _ts(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


def version_rows(
    results: Sequence[ExamResult], version: int, label: str, now_ms: int
) -> list[dict[str, Any]]:
    """The rows of one published version: one per criterion of every exam."""
    rows = []
    for r in results:
        total = sum(p.score for p in r.parts.values())
        total_max = sum(p.max_score for p in r.parts.values())
        for c in r.criteria:
            part = None if c.part == OVERALL_PART else int(c.part)
            ps = r.parts.get(c.part)
            rows.append(
                {
                    "version": version,
                    "label": label,
                    "published_at": _ts(now_ms),
                    "exam_id": r.exam_id,
                    "candidate_id": r.candidate_id,
                    "platform_id": r.platform_id,
                    "rubric_id": r.rubric_id,
                    "rubric_version": r.rubric_version,
                    "part": part,
                    "criterion_id": c.criterion_id,
                    "state": c.state,
                    "score": float(c.score),
                    "max_score": float(c.max_score),
                    "reason": c.reason,
                    "evidence": [
                        {"event_id": e, "topic": None, "partition": None, "offset": None}
                        for e in c.evidence
                    ],
                    "event_ts": _ts(c.decided_ms if c.decided_ms is not None else now_ms),
                    "graded_at": _ts(now_ms),
                    "part_score": None if ps is None else float(ps.score),
                    "part_max_score": None if ps is None else float(ps.max_score),
                    "total_score": float(total),
                    "total_max_score": float(total_max),
                    "total_pct": round(float(r.total_pct), 2),
                    "passed": bool(r.passed),
                    "open_reviews": len(r.notes),
                    "status": status(r),
                }
            )
    return rows


def ensure_versions_table(catalog: Catalog, namespace: str) -> Any:
    ident = f"{namespace}.{VERSIONS_TABLE}"
    try:
        return catalog.load_table(ident)
    except NoSuchTableError:
        with contextlib.suppress(NamespaceAlreadyExistsError):
            catalog.create_namespace(namespace)
        return catalog.create_table_if_not_exists(ident, schema=VERSIONS_SCHEMA)


def publish_version(
    catalog: Catalog,
    trino: Any,
    trino_catalog: str,
    namespace: str,
    results: Sequence[ExamResult],
    label: str,
    now_ms: int | None = None,
) -> int:
    """Append ``results`` as the next version; replace the views. Returns the version."""
    if not results:
        raise SinkError("nothing to publish: the recordings graded no exam")
    now = now_ms if now_ms is not None else int(time.time() * 1000)
    try:
        table = ensure_versions_table(catalog, namespace)
        existing = table.scan(selected_fields=("version",)).to_arrow()
        last = max(existing.column("version").to_pylist(), default=0)
        version = int(last) + 1
        arrow_schema = table.schema().as_arrow()
        table.append(pa.Table.from_pylist(version_rows(results, version, label, now), arrow_schema))
    except SinkError:
        raise
    except Exception as exc:  # pyiceberg and SQLAlchemy raise many unrelated types
        raise SinkError(
            f"cannot publish the regrade to {namespace}.{VERSIONS_TABLE}: {exc}"
        ) from exc
    try:
        create_exam_scores_view(trino, trino_catalog, namespace)
    except Exception as exc:  # the Trino client raises several unrelated types
        raise SinkError(
            f"version {version} is in {namespace}.{VERSIONS_TABLE} but the views were not "
            f"replaced ({exc}); run `proctor regrade --publish` again or restart the worker"
        ) from exc
    return version
