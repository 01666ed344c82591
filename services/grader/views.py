"""``grading.exam_scores``: the scoreboard's view over the transitions, defined in Trino SQL.

A view rather than a second table: it is always exactly what the transitions say (no
second writer to keep in step), and Trino computes it in milliseconds for an exam's few
hundred rows. The latest state of a criterion is its change with the highest per-platform
sequence number; part and total scores sum the latest scores, and their max scores leave
``unknown`` criteria out (the grader was blind: as the core's ``part_scores`` does);
``passed`` is the latest state of ``overall.pass``.
"""

from __future__ import annotations

import re
from typing import Any

from services.errors import ConfigError

_NAME = re.compile(r"^[a-z_][a-z0-9_]*$")

#: criterion whose latest state says whether the exam is passed (rubric y3-final)
PASS_CRITERION = "overall.pass"


def _check(name: str, what: str) -> str:
    if not _NAME.match(name):
        raise ConfigError(
            f"{what} {name!r} is not a plain lower-case SQL name (letters, digits, _); "
            "choose another namespace or table name"
        )
    return name


def exam_scores_sql(
    catalog: str, namespace: str, table: str = "criterion_transitions", view: str = "exam_scores"
) -> str:
    """CREATE OR REPLACE VIEW statement of the scoreboard view."""
    cat, ns = _check(catalog, "catalog"), _check(namespace, "namespace")
    src = f"{cat}.{ns}.{_check(table, 'table')}"
    return f"""CREATE OR REPLACE VIEW {cat}.{ns}.{_check(view, "view")}
COMMENT 'Latest state per exam and criterion, with part and total scores and pass'
AS
WITH ranked AS (
    SELECT t.*,
           row_number() OVER (
               PARTITION BY exam_id, criterion_id
               ORDER BY seq DESC, event_ts DESC, transition_id DESC
           ) AS rn
    FROM {src} t
),
latest AS (SELECT * FROM ranked WHERE rn = 1),
scored AS (
    SELECT latest.*,
           sum(score) OVER (PARTITION BY exam_id, part) AS part_score,
           sum(CASE WHEN state <> 'unknown' THEN max_score ELSE 0 END)
               OVER (PARTITION BY exam_id, part) AS part_max_score,
           sum(CASE WHEN part IS NOT NULL THEN score ELSE 0 END)
               OVER (PARTITION BY exam_id) AS total_score,
           sum(CASE WHEN part IS NOT NULL AND state <> 'unknown' THEN max_score ELSE 0 END)
               OVER (PARTITION BY exam_id) AS total_max_score,
           coalesce(
               max(CASE WHEN criterion_id = '{PASS_CRITERION}' THEN state = 'met' END)
                   OVER (PARTITION BY exam_id),
               false
           ) AS passed
    FROM latest
)
SELECT exam_id, candidate_id, platform_id, rubric_id, rubric_version, part, criterion_id,
       state, score, max_score, reason, evidence, event_ts, graded_at,
       CASE WHEN part IS NULL THEN NULL ELSE part_score END AS part_score,
       CASE WHEN part IS NULL THEN NULL ELSE part_max_score END AS part_max_score,
       total_score, total_max_score,
       CASE WHEN total_max_score > 0
            THEN round(100 * total_score / total_max_score, 2)
            ELSE 0e0 END AS total_pct,
       passed
FROM scored"""


def create_exam_scores_view(
    conn: Any, catalog: str, namespace: str, table: str = "criterion_transitions"
) -> None:
    """Create (or replace) the view over ``table`` through a Trino DB-API connection."""
    cur = conn.cursor()
    cur.execute(exam_scores_sql(catalog, namespace, table))
    cur.fetchall()
