"""The proctors' scoreboard views over the transitions' exam facts columns: each part's
window and time left, each exam's fault and minutes to root cause, every criterion of a
candidate with reason and evidence, and where the cohort got stuck (docs/scoreboard.md).

Created with ``exam_scores`` (:func:`services.grader.views.create_exam_scores_view`),
whose view they read.
"""

from __future__ import annotations

from services.grader.sql_names import _check

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


#: the verified roster's snapshot (services/scoreboard/roster_table.py writes it): which
#: cohort each platform sits in, for the pages' cohort filter
ROSTER_TABLE = "cohort_roster"


def roster_table_sql(catalog: str, namespace: str, table: str = ROSTER_TABLE) -> str:
    """The roster snapshot's table, made empty if absent so the views can always join it
    (no cohort until the scoreboard's sampler, holding the proctor's keyring, fills it)."""
    cat, ns = _check(catalog, "catalog"), _check(namespace, "namespace")
    return f"""CREATE TABLE IF NOT EXISTS {cat}.{ns}.{_check(table, "table")} (
    platform_id varchar NOT NULL,
    candidate_id varchar NOT NULL,
    exam_id varchar NOT NULL,
    cohort varchar,
    revoked boolean NOT NULL,
    generation integer NOT NULL,
    snapshot_at timestamp(6) with time zone NOT NULL
)
COMMENT 'The verified roster as last read: platform, candidate, exam and cohort'"""


#: how the scoreboard orders and colours states (the Superset charts colour by name)
STATE_ORDER = ("met", "partial", "pending", "unknown", "expired", "failed")


def candidate_criteria_sql(
    catalog: str, namespace: str, scores: str = "exam_scores", view: str = "candidate_criteria"
) -> str:
    """The per-candidate page: every criterion's current state with its reason, evidence
    (topic, partition, offset and event id of each deciding event), its part's window
    and minutes left, the exam's fault and minutes to root cause, and the cohort the
    verified roster puts its platform in (null until the roster snapshot holds it)."""
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
       f.fault, f.fault_injected_at, f.root_cause_at, f.root_cause_minutes,
       r.cohort
FROM {cur} s
LEFT JOIN {cat}.{ns}.part_windows w ON w.exam_id = s.exam_id AND w.part = s.part
LEFT JOIN {cat}.{ns}.exam_faults f ON f.exam_id = s.exam_id
LEFT JOIN {cat}.{ns}.{ROSTER_TABLE} r ON r.platform_id = s.platform_id"""


def stuck_criteria_sql(catalog: str, namespace: str, view: str = "stuck_criteria") -> str:
    """Where the cohort got stuck: per cohort and criterion, how many exams reached its
    part's end without meeting it (and in which state), beside how many met it."""
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
       array_join(array_sort(array_distinct(array_agg(candidate_id)
                   FILTER (WHERE window_state = 'closed' AND state <> 'met'))), ', ')
           AS stuck_candidates,
       cohort
FROM {cat}.{ns}.candidate_criteria
WHERE part <> 'overall'
GROUP BY cohort, part, criterion_id"""


def board_views_sql(
    catalog: str,
    namespace: str,
    table: str = "criterion_transitions",
    heartbeats: str | None = None,
) -> list[str]:
    """The scoreboard's views in creation order (each reads the ones before it)."""
    return [
        roster_table_sql(catalog, namespace),
        part_windows_sql(catalog, namespace, table, heartbeats=heartbeats),
        exam_faults_sql(catalog, namespace, table),
        candidate_criteria_sql(catalog, namespace),
        stuck_criteria_sql(catalog, namespace),
    ]
