"""``grading.exam_scores``: the scoreboard's view over the transitions, defined in Trino SQL.

A view rather than a second table: it is always exactly what the transitions say (no
second writer to keep in step), and Trino computes it in milliseconds for an exam's few
hundred rows. The latest state of a criterion is its change with the highest per-platform
sequence number; part and total scores sum the latest scores, and their max scores leave
``unknown`` criteria out (the grader was blind: as the core's ``part_scores`` does);
``passed`` is the latest state of ``overall.pass``.

Review notes (:mod:`services.core.review`) are rows of the same table whose
``criterion_id`` starts with ``review:``; their latest state is ``unknown`` while open.
They are not criteria, so the view leaves them out of its rows and scores, and says how
many are open per exam (``open_reviews``); ``status`` is ``review`` while any is open,
whatever the score says. ``review_reasons_sql`` lists the open ones with why.
"""

from __future__ import annotations

from typing import Any

from services.grader.board_views import HEARTBEATS_TABLE, board_views_sql
from services.grader.sql_names import _check

#: criterion whose latest state says whether the exam is passed (rubric y3-final)
PASS_CRITERION = "overall.pass"
#: criterion ids of review notes start with this (services.core.model.REVIEW_PREFIX)
REVIEW_LIKE = "review:%"


#: the table of published regrades (services/offline/versions.py); when it exists,
#: exam_scores shows each exam's current version (a regrade's, else the live grading)
VERSIONS_TABLE = "graded_versions"
#: the columns of exam_scores, in order (a published version carries the same)
SCORE_COLUMNS = (
    "exam_id, candidate_id, platform_id, rubric_id, rubric_version, part, criterion_id, "
    "state, score, max_score, reason, evidence, event_ts, graded_at, part_score, "
    "part_max_score, total_score, total_max_score, total_pct, passed, open_reviews, status"
)


def exam_scores_sql(
    catalog: str,
    namespace: str,
    table: str = "criterion_transitions",
    view: str = "exam_scores",
    versions: str | None = None,
) -> str:
    """CREATE OR REPLACE VIEW statement of the scoreboard view; with ``versions`` (the
    published regrades' table) an exam with a published version shows its latest one."""
    cat, ns = _check(catalog, "catalog"), _check(namespace, "namespace")
    src = f"{cat}.{ns}.{_check(table, 'table')}"
    head = f"""CREATE OR REPLACE VIEW {cat}.{ns}.{_check(view, "view")}
COMMENT 'Latest state per exam and criterion, with part and total scores and pass'
AS
"""
    if versions is None:
        return head + live_scores_query(src)
    vsrc = f"{cat}.{ns}.{_check(versions, 'table')}"
    return (
        head
        + f"""WITH live AS ({live_scores_query(src)}),
cur_versions AS (SELECT exam_id AS cur_exam, max(version) AS cur_version FROM {vsrc} GROUP BY exam_id)
SELECT {SCORE_COLUMNS} FROM live WHERE exam_id NOT IN (SELECT cur_exam FROM cur_versions)
UNION ALL
SELECT {", ".join("v." + c.strip() for c in SCORE_COLUMNS.split(","))}
FROM {vsrc} v JOIN cur_versions c ON v.exam_id = c.cur_exam AND v.version = c.cur_version"""
    )


def score_versions_sql(
    catalog: str,
    namespace: str,
    table: str = "criterion_transitions",
    versions: str = VERSIONS_TABLE,
    view: str = "exam_score_versions",
) -> str:
    """Every graded version of every exam: the live grading as version 0 (label ``live``)
    and each published regrade, with ``is_current`` true on the one exam_scores shows."""
    cat, ns = _check(catalog, "catalog"), _check(namespace, "namespace")
    src = f"{cat}.{ns}.{_check(table, 'table')}"
    vsrc = f"{cat}.{ns}.{_check(versions, 'table')}"
    return f"""CREATE OR REPLACE VIEW {cat}.{ns}.{_check(view, "view")}
COMMENT 'Every graded version per exam (0: live), the current one flagged'
AS
WITH live AS ({live_scores_query(src)}),
cur_versions AS (SELECT exam_id AS cur_exam, max(version) AS cur_version FROM {vsrc} GROUP BY exam_id)
SELECT {SCORE_COLUMNS}, CAST(0 AS bigint) AS version, 'live' AS label,
       exam_id NOT IN (SELECT cur_exam FROM cur_versions) AS is_current
FROM live
UNION ALL
SELECT {", ".join("v." + c.strip() for c in SCORE_COLUMNS.split(","))}, v.version, v.label,
       v.version = c.cur_version AS is_current
FROM {vsrc} v JOIN cur_versions c ON v.exam_id = c.cur_exam"""


def live_scores_query(src: str) -> str:
    """The query of the live exam_scores over the transitions table ``src``."""
    return f"""WITH ranked AS (
    SELECT t.*,
           row_number() OVER (
               PARTITION BY exam_id, criterion_id
               ORDER BY seq DESC, event_ts DESC, transition_id DESC
           ) AS rn
    FROM {src} t
),
latest AS (SELECT * FROM ranked WHERE rn = 1 AND criterion_id NOT LIKE '{REVIEW_LIKE}'),
reviews AS (
    SELECT exam_id AS review_exam_id, count(*) AS open_reviews
    FROM ranked
    WHERE rn = 1 AND criterion_id LIKE '{REVIEW_LIKE}' AND state = 'unknown'
    GROUP BY exam_id
),
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
           ) AS passed,
           max(CASE WHEN criterion_id = '{PASS_CRITERION}' THEN state END)
               OVER (PARTITION BY exam_id) AS pass_state,
           coalesce(reviews.open_reviews, 0) AS open_reviews
    FROM latest LEFT JOIN reviews ON reviews.review_exam_id = latest.exam_id
)
SELECT exam_id, candidate_id, platform_id, rubric_id, rubric_version, part, criterion_id,
       state, score, max_score, reason, evidence, event_ts, graded_at,
       CASE WHEN part IS NULL THEN NULL ELSE part_score END AS part_score,
       CASE WHEN part IS NULL THEN NULL ELSE part_max_score END AS part_max_score,
       total_score, total_max_score,
       CASE WHEN total_max_score > 0
            THEN round(100 * total_score / total_max_score, 2)
            ELSE 0e0 END AS total_pct,
       passed,
       open_reviews,
       CASE WHEN open_reviews > 0 THEN 'review'
            WHEN passed THEN 'pass'
            WHEN pass_state IN ('failed', 'expired') THEN 'fail'
            WHEN pass_state = 'unknown' THEN 'review'
            ELSE 'in progress' END AS status
FROM scored"""


def review_reasons_sql(
    catalog: str,
    namespace: str,
    table: str = "criterion_transitions",
    view: str = "review_reasons",
) -> str:
    """CREATE OR REPLACE VIEW statement of the open review notes, one row per note."""
    cat, ns = _check(catalog, "catalog"), _check(namespace, "namespace")
    src = f"{cat}.{ns}.{_check(table, 'table')}"
    return f"""CREATE OR REPLACE VIEW {cat}.{ns}.{_check(view, "view")}
COMMENT 'Open review notes per exam: conflicting control events, blind criteria, flags'
AS
WITH ranked AS (
    SELECT t.*,
           row_number() OVER (
               PARTITION BY exam_id, criterion_id
               ORDER BY seq DESC, event_ts DESC, transition_id DESC
           ) AS rn
    FROM {src} t
    WHERE criterion_id LIKE '{REVIEW_LIKE}'
)
SELECT exam_id, candidate_id, platform_id,
       split_part(criterion_id, ':', 2) AS kind,
       substr(criterion_id, length(split_part(criterion_id, ':', 2)) + 9) AS subject,
       reason, event_ts AS opened_at, graded_at
FROM ranked
WHERE rn = 1 AND state = 'unknown'"""


#: the review queue's view and its columns, in order (the scoreboard charts them)
QUEUE_VIEW = "review_queue"
QUEUE_COLUMNS = (
    "exam_id, candidate_id, platform_id, criterion_id, verdict, confidence, threshold, "
    "judge, text_digest, queued_at, status, decided_by, decided_at, reason"
)
#: ids of review-queue notes (services.core.review.JUDGE_PREFIX)
JUDGE_PREFIX = "review:judge:"


def review_queue_sql(
    catalog: str,
    namespace: str,
    table: str = "criterion_transitions",
    view: str = QUEUE_VIEW,
) -> str:
    """CREATE OR REPLACE VIEW statement of the review queue: one row per text criterion
    whose verdict was under the review threshold, with its latest status (pending until a
    proctor confirms or overrides it; superseded when a later text replaced it).

    The queue's rows are the ``review:judge:<criterion>`` notes' rows of the transitions
    table, written in the worker's exactly-once commits; the view names their columns."""
    cat, ns = _check(catalog, "catalog"), _check(namespace, "namespace")
    src = f"{cat}.{ns}.{_check(table, 'table')}"
    return f"""CREATE OR REPLACE VIEW {cat}.{ns}.{_check(view, "view")}
COMMENT 'Text verdicts under the review threshold, pending or decided by a proctor'
AS
WITH ranked AS (
    SELECT t.*,
           row_number() OVER (
               PARTITION BY exam_id, criterion_id
               ORDER BY seq DESC, event_ts DESC, transition_id DESC
           ) AS rn,
           max(CASE WHEN review_status = 'pending' THEN event_ts END) OVER (
               PARTITION BY exam_id, criterion_id
           ) AS queued_at
    FROM {src} t
    WHERE criterion_id LIKE '{JUDGE_PREFIX}%' AND review_status IS NOT NULL
)
SELECT exam_id, candidate_id, platform_id,
       substr(criterion_id, {len(JUDGE_PREFIX) + 1}) AS criterion_id,
       review_verdict AS verdict, confidence, review_threshold AS threshold, judge,
       text_digest, queued_at, review_status AS status, decided_by,
       CASE WHEN review_status = 'pending' THEN NULL ELSE event_ts END AS decided_at,
       decision_reason AS reason
FROM ranked
WHERE rn = 1"""


def _has_table(conn: Any, catalog: str, namespace: str, table: str) -> bool:
    cur = conn.cursor()
    cur.execute(
        f"SELECT count(*) FROM {_check(catalog, 'catalog')}.information_schema.tables "
        f"WHERE table_schema = '{_check(namespace, 'namespace')}' "
        f"AND table_name = '{_check(table, 'table')}'"
    )
    return bool(cur.fetchall()[0][0])


def create_exam_scores_view(
    conn: Any, catalog: str, namespace: str, table: str = "criterion_transitions"
) -> None:
    """Create (or replace) the views over ``table`` through a Trino DB-API connection
    (version-aware once a regrade was published in the namespace)."""
    cur = conn.cursor()
    versions = VERSIONS_TABLE if _has_table(conn, catalog, namespace, VERSIONS_TABLE) else None
    cur.execute(exam_scores_sql(catalog, namespace, table, versions=versions))
    cur.fetchall()
    if versions is not None:
        cur.execute(score_versions_sql(catalog, namespace, table))
        cur.fetchall()
    cur.execute(review_reasons_sql(catalog, namespace, table))
    cur.fetchall()
    cur.execute(review_queue_sql(catalog, namespace, table))
    cur.fetchall()
    beats = HEARTBEATS_TABLE if _has_table(conn, catalog, namespace, HEARTBEATS_TABLE) else None
    for statement in board_views_sql(catalog, namespace, table, beats):
        cur.execute(statement)
        cur.fetchall()
