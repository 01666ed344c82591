"""The tables and the view the scoreboard reads, made before anything charts them.

The grader creates ``grading.criterion_transitions`` when it first runs; the scoreboard
must not depend on that order, so ``scoreboard up`` and the demo create the table with
the grader's own function and schema (a no-op when it exists), the ``exam_scores`` view
with the grader's own SQL, and the health table. Everything here is idempotent.
"""

from __future__ import annotations

import contextlib

from services.errors import StackError
from services.grader.sink import ensure_table
from services.grader.views import create_exam_scores_view
from services.scoreboard.health import ensure_health_table
from services.stack.catalog import TRINO_CATALOG, load_catalog, trino_connect
from services.stack.config import StackConfig

NAMESPACE = "grading"
TRANSITIONS = f"{NAMESPACE}.criterion_transitions"


def ensure_scoreboard_tables(config: StackConfig) -> None:
    """criterion_transitions (as the grader makes it), the exam_scores view, pipeline_health."""
    catalog = load_catalog(config)
    try:
        ensure_table(catalog, TRANSITIONS)
        ensure_health_table(catalog)
    except Exception as exc:  # pyiceberg and SQLAlchemy raise many unrelated types
        raise StackError(f"cannot create the scoreboard's Iceberg tables: {exc}") from exc
    finally:
        engine = getattr(catalog, "engine", None)
        if engine is not None:
            with contextlib.suppress(Exception):
                engine.dispose()
    with contextlib.closing(trino_connect(config)) as conn:
        try:
            create_exam_scores_view(conn, TRINO_CATALOG, NAMESPACE)
        except Exception as exc:  # the Trino client raises several unrelated types
            raise StackError(
                f"cannot create the view {NAMESPACE}.exam_scores in Trino: {exc}"
            ) from exc
