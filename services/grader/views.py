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

import re
from typing import Any

from services.errors import ConfigError

_NAME = re.compile(r"^[a-z_][a-z0-9_]*$")

#: criterion whose latest state says whether the exam is passed (rubric y3-final)
PASS_CRITERION = "overall.pass"
#: criterion ids of review notes start with this (services.core.model.REVIEW_PREFIX)
REVIEW_LIKE = "review:%"


def _check(name: str, what: str) -> str:
    if not _NAME.match(name):
        raise ConfigError(
            f"{what} {name!r} is not a plain lower-case SQL name (letters, digits, _); "
            "choose another namespace or table name"
        )
    return name


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


#: the criterion whose decision time is when the root cause was found (rule
#: ``root_cause_on_time`` in rubric y3-final: met or partial at the right diagnosis)
ROOT_CAUSE_CRITERION = "p2.root_cause_90min"
#: the scoreboard's views over the exam facts columns, in creation order
BOARD_VIEWS = ("part_windows", "exam_faults", "candidate_criteria", "stuck_criteria")


#: the scoreboard's table of collectors' heartbeats (services/scoreboard/health.py): when
#: it exists, a platform's newest heartbeat also moves its exam's clock
HEARTBEATS_TABLE = "collector_health"


def part_windows_sql(
    catalog: str,
    namespace: str,
    table: str = "criterion_transitions",
    view: str = "part_windows",
    heartbeats: str | None = None,
) -> str:
    """Each opened part of each exam: when its box opened and closes, the minutes added by
    extensions and the minutes left, from the latest row of that part that carries the
    window (the engine writes the window it knew on every row of the part).

    "Now" is the wall clock, or, when the exam's events run ahead of it (a simulation or
    a rehearsal on its own clock), the latest event time known of the exam: its latest
    decision, and with ``heartbeats`` (the scoreboard's heartbeat table) its platform's
    newest collector heartbeat, which keeps coming when no criterion changes. A box is
    closed once that clock has passed it, as the grader closed it."""
    cat, ns = _check(catalog, "catalog"), _check(namespace, "namespace")
    src = f"{cat}.{ns}.{_check(table, 'table')}"
    beat = beats = ""
    if heartbeats is not None:
        hsrc = f"{cat}.{ns}.{_check(heartbeats, 'table')}"
        beats = (
            f"\n    LEFT JOIN (SELECT platform_id AS beat_platform, max(last_heartbeat_at) AS beat"
            f" FROM {hsrc} GROUP BY platform_id) b ON b.beat_platform = t.platform_id"
        )
        beat = ", coalesce(max(b.beat), max(event_ts))"
    return f"""CREATE OR REPLACE VIEW {cat}.{ns}.{_check(view, "view")}
COMMENT 'Each opened part of each exam: opened, closes, minutes extended and left'
AS
WITH ranked AS (
    SELECT exam_id, candidate_id, platform_id, part, part_opened_at, part_closes_at,
           part_extended_minutes,
           row_number() OVER (
               PARTITION BY exam_id, part ORDER BY seq DESC, event_ts DESC, transition_id DESC
           ) AS rn
    FROM {src}
    WHERE part IS NOT NULL AND part_opened_at IS NOT NULL
),
clocks AS (
    SELECT exam_id AS clock_exam,
           greatest(current_timestamp, max(event_ts){beat}) AS clock_at
    FROM {src} t{beats} GROUP BY exam_id
)
SELECT exam_id, candidate_id, platform_id, part,
       part_opened_at AS opened_at, part_closes_at AS closes_at,
       coalesce(part_extended_minutes, 0) AS extended_minutes,
       CASE WHEN part_closes_at <= clock_at THEN 0
            ELSE CAST(ceiling(date_diff('second', clock_at, part_closes_at) / 60e0)
                      AS integer) END AS minutes_left,
       CASE WHEN part_closes_at <= clock_at THEN 'closed' ELSE 'open' END AS window_state,
       clock_at
FROM ranked JOIN clocks ON clocks.clock_exam = ranked.exam_id
WHERE rn = 1"""


def exam_faults_sql(
    catalog: str,
    namespace: str,
    table: str = "criterion_transitions",
    scores: str = "exam_scores",
    view: str = "exam_faults",
) -> str:
    """Each exam's injected fault (the latest row that carries it) and, once the root
    cause criterion is met or partial, when it was found and how many minutes after the
    fault: its decision time (event_ts) minus the fault's, both columns."""
    cat, ns = _check(catalog, "catalog"), _check(namespace, "namespace")
    src = f"{cat}.{ns}.{_check(table, 'table')}"
    cur = f"{cat}.{ns}.{_check(scores, 'view')}"
    return f"""CREATE OR REPLACE VIEW {cat}.{ns}.{_check(view, "view")}
COMMENT 'Each exam''s injected fault and the minutes to its root cause'
AS
WITH ranked AS (
    SELECT exam_id, candidate_id, platform_id, fault_layer, fault_kind, fault_injected_at,
           row_number() OVER (
               PARTITION BY exam_id ORDER BY seq DESC, event_ts DESC, transition_id DESC
           ) AS rn
    FROM {src}
    WHERE fault_injected_at IS NOT NULL
),
found AS (
    SELECT exam_id AS found_exam, event_ts AS root_cause_at, state AS root_cause_state
    FROM {cur}
    WHERE criterion_id = '{ROOT_CAUSE_CRITERION}' AND state IN ('met', 'partial')
)
SELECT exam_id, candidate_id, platform_id, fault_layer, fault_kind,
       fault_layer || '/' || fault_kind AS fault, fault_injected_at,
       root_cause_at, root_cause_state,
       CAST(round(date_diff('second', fault_injected_at, root_cause_at) / 60e0) AS integer)
           AS root_cause_minutes
FROM ranked LEFT JOIN found ON found.found_exam = ranked.exam_id
WHERE rn = 1"""


#: how the scoreboard orders and colours states (the Superset charts colour by name)
STATE_ORDER = ("met", "partial", "pending", "unknown", "expired", "failed")


def candidate_criteria_sql(
    catalog: str, namespace: str, scores: str = "exam_scores", view: str = "candidate_criteria"
) -> str:
    """The per-candidate page: every criterion's current state with its reason, evidence
    (topic, partition, offset and event id of each deciding event), its part's window
    and minutes left, and the exam's fault and minutes to root cause."""
    cat, ns = _check(catalog, "catalog"), _check(namespace, "namespace")
    cur = f"{cat}.{ns}.{_check(scores, 'view')}"
    order = " ".join(f"WHEN '{s}' THEN {i}" for i, s in enumerate(STATE_ORDER, 1))
    return f"""CREATE OR REPLACE VIEW {cat}.{ns}.{_check(view, "view")}
COMMENT 'Every criterion of every exam with reason, evidence, time left and the fault'
AS
SELECT s.exam_id, s.candidate_id, s.platform_id,
       coalesce(CAST(s.part AS varchar), 'overall') AS part,
       s.criterion_id, s.state,
       CASE s.state {order} ELSE 9 END AS state_order,
       s.score, s.max_score, s.reason,
       array_join(transform(coalesce(s.evidence, ARRAY[]), e ->
           CASE WHEN e.topic IS NULL THEN e.event_id
                ELSE e.topic || '[' || CAST(e.partition AS varchar) || ']@'
                     || CAST(e."offset" AS varchar) || ' ' || e.event_id END), chr(10))
           AS evidence,
       cardinality(coalesce(s.evidence, ARRAY[])) AS evidence_count,
       s.event_ts AS decided_at, s.graded_at, s.status,
       w.opened_at AS part_opened_at, w.closes_at AS part_closes_at,
       w.extended_minutes AS part_extended_minutes, w.minutes_left,
       coalesce(w.window_state, CASE WHEN s.part IS NULL THEN NULL ELSE 'not open' END)
           AS window_state,
       f.fault, f.fault_injected_at, f.root_cause_at, f.root_cause_minutes
FROM {cur} s
LEFT JOIN {cat}.{ns}.part_windows w ON w.exam_id = s.exam_id AND w.part = s.part
LEFT JOIN {cat}.{ns}.exam_faults f ON f.exam_id = s.exam_id"""


def stuck_criteria_sql(catalog: str, namespace: str, view: str = "stuck_criteria") -> str:
    """Where the cohort got stuck: per criterion, how many exams reached its part's end
    without meeting it (and in which state), beside how many met it."""
    cat, ns = _check(catalog, "catalog"), _check(namespace, "namespace")
    return f"""CREATE OR REPLACE VIEW {cat}.{ns}.{_check(view, "view")}
COMMENT 'Per criterion: exams whose part closed without it met, by state'
AS
SELECT part, criterion_id,
       count(*) AS exams,
       count_if(window_state = 'closed') AS closed,
       count_if(window_state = 'closed' AND state <> 'met') AS not_met_at_close,
       count_if(state = 'met') AS met,
       count_if(window_state = 'closed' AND state = 'partial') AS partial_at_close,
       count_if(window_state = 'closed' AND state IN ('failed', 'expired')) AS failed_at_close,
       count_if(window_state = 'closed' AND state = 'unknown') AS unknown_at_close,
       array_join(array_sort(array_agg(candidate_id)
                   FILTER (WHERE window_state = 'closed' AND state <> 'met')), ', ')
           AS stuck_candidates
FROM {cat}.{ns}.candidate_criteria
WHERE part <> 'overall'
GROUP BY part, criterion_id"""


def board_views_sql(
    catalog: str,
    namespace: str,
    table: str = "criterion_transitions",
    heartbeats: str | None = None,
) -> list[str]:
    """The scoreboard's views in creation order (each reads the ones before it)."""
    return [
        part_windows_sql(catalog, namespace, table, heartbeats=heartbeats),
        exam_faults_sql(catalog, namespace, table),
        candidate_criteria_sql(catalog, namespace),
        stuck_criteria_sql(catalog, namespace),
    ]
