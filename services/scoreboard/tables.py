"""The tables and the view the scoreboard reads, made before anything charts them.

The grader creates ``grading.criterion_transitions`` when it first runs; the scoreboard
must not depend on that order, so ``scoreboard up`` and the demo create the table with
the grader's own function and schema (a no-op when it exists), the ``exam_scores`` view
with the grader's own SQL, and the health table. Everything here is idempotent.

The grader's two functions are handed in by the caller (the stack's ``scoreboard up``),
so the scoreboard does not import the grader: :class:`GraderTables`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from services.connections import open_catalog, trino_connect
from services.errors import StackError
from services.scoreboard.health import (
    COLLECTORS_SCHEMA,
    COLLECTORS_TABLE,
    collector_status_sql,
    ensure_health_table,
)
from services.settings import CatalogSettings, TrinoSettings

NAMESPACE = "grading"
TRANSITIONS = f"{NAMESPACE}.criterion_transitions"


@dataclass(frozen=True, slots=True)
class GraderTables:
    """How the grader makes its table and its view (``services.grader.sink.ensure_table``,
    ``services.grader.views.create_exam_scores_view``)."""

    ensure_table: Callable[[Any, str], object]
    create_view: Callable[[Any, str, str], object]


def ensure_scoreboard_tables(
    catalog_settings: CatalogSettings, trino: TrinoSettings, grader: GraderTables
) -> None:
    """criterion_transitions (as the grader makes it), the grader's views, pipeline_health,
    collector_health and its view collector_status."""
    try:
        catalog = open_catalog(catalog_settings)
    except Exception as exc:  # SQLAlchemy's errors when the catalog database is down
        raise StackError(f"cannot open the Iceberg catalog: {exc}") from exc
    try:
        grader.ensure_table(catalog, TRANSITIONS)
        ensure_health_table(catalog)
        ensure_health_table(catalog, COLLECTORS_TABLE, COLLECTORS_SCHEMA)
    except Exception as exc:  # pyiceberg and SQLAlchemy raise many unrelated types
        raise StackError(f"cannot create the scoreboard's Iceberg tables: {exc}") from exc
    finally:
        engine = getattr(catalog, "engine", None)
        if engine is not None:
            with contextlib.suppress(Exception):
                engine.dispose()
    with contextlib.closing(trino_connect(trino)) as conn:
        try:
            grader.create_view(conn, trino.catalog, NAMESPACE)
            cur = conn.cursor()
            cur.execute(collector_status_sql(trino.catalog))
            cur.fetchall()
        except Exception as exc:  # the Trino client raises several unrelated types
            raise StackError(
                f"cannot create the scoreboard's views in {NAMESPACE} in Trino: {exc}"
            ) from exc
