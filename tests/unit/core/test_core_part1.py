"""Part 1 criteria: each one met, not met (pending, then expired), violated, unknown.

Every test starts from the clean exam of the scenario builder and changes the one piece
of evidence the criterion reads, so a test fails only for its own criterion's reasons.
"""

from __future__ import annotations

import pytest

from services.core.events import Event
from services.offline.scenarios import ASSETS, MODEL_UID, ExamBuilder
from tests.unit.core.helpers import edited, moved, of_type, without

pytestmark = pytest.mark.unit


def clean(**part1: object) -> ExamBuilder:
    return ExamBuilder("basecamp-alice").full(part1=part1 or None)


def test_clean_exam_meets_every_part1_criterion(grade) -> None:
    r = grade(clean().events)
    states = {c.criterion_id: c.state for c in r.criteria if c.part == "1"}
    assert set(states.values()) == {"met"}, states
    assert r.parts["1"].score == r.parts["1"].max_score == 42


# ------------------------------------------------------------------ p1.cdc_source
def test_cdc_source_needs_growth_after_the_part_started(grade) -> None:
    b = ExamBuilder("basecamp-alice")
    b.start()
    b.offsets(0.5, 5_000)  # before part.started at minute 1: the base
    b.offsets(30, 5_000)  # no growth since
    b.finish()
    c = grade(b.events).criterion("p1.cdc_source")
    assert c.state == "expired"
    assert "grew by 0 of 1" in c.reason


def test_cdc_source_counts_growth_from_the_base_at_part_start_not_from_zero(grade) -> None:
    b = ExamBuilder("basecamp-alice")
    b.start()
    b.offsets(0.5, 100_000)
    b.offsets(30, 100_007)
    b.finish()
    c = grade(b.events).criterion("p1.cdc_source")
    assert c.state == "met"
    assert "grew by 14 " in c.reason  # 2 partitions x 7


def test_cdc_source_ignores_other_topics(grade) -> None:
    b = clean()
    events = edited(b.events, lambda e: e.type == "cdc.offsets", {"topic": "other.topic"})
    assert grade(events).criterion("p1.cdc_source").state == "expired"


def test_cdc_source_is_pending_before_the_box_closes(grade) -> None:
    b = clean()
    events = without(b, of_type("cdc.offsets"))
    c = grade(events, at_ms=b.at(100)).criterion("p1.cdc_source")
    assert c.state == "pending"


def test_cdc_source_unknown_when_the_offsets_collector_is_silent_at_the_close(grade) -> None:
    b = ExamBuilder("basecamp-alice")
    b.start()
    b.part1()
    b.part2("trino", "stale_statistics")
    b.part3()
    b.finish(silent=["cdc-offsets"])
    events = [e for e in b.events if not (e.type == "cdc.offsets" and e.ts_ms > b.at(1))]
    c = grade(events).criterion("p1.cdc_source")
    assert c.state == "unknown"
    assert "cdc-offsets collector was silent" in c.reason


# ------------------------------------------------------------------ p1.schema_registered
def test_schema_registered_needs_the_value_subject_of_the_topic(grade) -> None:
    b = clean()
    events = edited(b.events, of_type("schema.registered"), {"subject": "cdc.public.orders-key"})
    assert grade(events).criterion("p1.schema_registered").state == "expired"
    assert grade(b.events).criterion("p1.schema_registered").state == "met"


# ------------------------------------------------------------------ p1.flink_lookup_join
@pytest.mark.parametrize(
    ("change", "state"),
    [
        ({}, "met"),
        ({"state": "FAILED"}, "expired"),
        ({"operators": ["Source: orders", "Join(hash)", "Sink"]}, "expired"),
        ({"job_name": "another-job"}, "expired"),
    ],
)
def test_flink_lookup_join(grade, change: dict[str, object], state: str) -> None:
    b = clean()
    events = edited(b.events, lambda e: e.type == "flink.job", {**change})
    assert grade(events).criterion("p1.flink_lookup_join").state == state


# ------------------------------------------------------------------ p1.exactly_once
def test_exactly_once_needs_three_completed_checkpoints(grade) -> None:
    b = clean()
    events = [
        e for e in b.events if not (e.type == "flink.checkpoint" and e.data["checkpoint_id"] >= 3)
    ]
    c = grade(events).criterion("p1.exactly_once")
    assert c.state == "expired"
    assert "2 of 3 checkpoints completed" in c.reason


def test_exactly_once_does_not_count_savepoints_or_failed_checkpoints(grade) -> None:
    b = clean()
    events = []
    for e in b.events:
        if e.type == "flink.checkpoint" and e.data["checkpoint_id"] == 1:
            e = Event(e.type, e.platform_id, e.event_id, e.ts_ms, {**e.data, "is_savepoint": True})
        if e.type == "flink.checkpoint" and e.data["checkpoint_id"] == 2:
            e = Event(e.type, e.platform_id, e.event_id, e.ts_ms, {**e.data, "status": "FAILED"})
        events.append(e)
    assert grade(events).criterion("p1.exactly_once").state == "expired"


def test_exactly_once_needs_the_mode_and_the_sink_checkpoint_summary(grade) -> None:
    b = clean()
    at_least = edited(b.events, of_type("flink.job"), {"checkpointing_mode": "at_least_once"})
    c = grade(at_least).criterion("p1.exactly_once")
    assert c.state == "failed"  # a wrong mode is a wrong answer, not a missing one
    assert f"job {ASSETS['flink_job']} checkpoints at least once, never exactly once" in c.reason
    no_summary = edited(
        b.events, of_type("iceberg.commit"), {"summary": {"added-records": "40000"}}
    )
    c = grade(no_summary).criterion("p1.exactly_once")
    assert c.state == "expired"
    assert "flink.max-committed-checkpoint-id" in c.reason


def test_exactly_once_fails_a_job_without_checkpointing(grade) -> None:
    b = clean()
    off = edited(
        b.events,
        of_type("flink.job"),
        {"checkpointing_mode": None, "checkpoint_interval_ms": None},
    )
    c = grade(off).criterion("p1.exactly_once")
    assert c.state == "failed"
    assert f"job {ASSETS['flink_job']} has checkpointing off, never exactly once" in c.reason


def test_exactly_once_is_pending_while_the_job_runs_another_mode(grade) -> None:
    """Before the close the candidate can still fix the mode: pending, naming the mode."""
    b = ExamBuilder("basecamp-alice")
    b.start()
    b.part1()
    # the builder ends Part 1 at its box's close; before that close nothing is final
    open_box = [e for e in b.events if e.type != "part.ended"]
    events = edited(open_box, of_type("flink.job"), {"checkpointing_mode": "at_least_once"})
    c = grade(events).criterion("p1.exactly_once")
    assert c.state == "pending"
    assert "checkpoints at least once, not exactly once" in c.reason


def test_exactly_once_met_when_the_mode_is_fixed_within_the_box(grade) -> None:
    """A job first run at least once, then again exactly once, is graded on the fix."""
    b = clean()
    [job] = [e for e in b.events if e.type == "flink.job"]
    wrong = Event(
        job.type,
        job.platform_id,
        job.event_id + "-first",
        job.ts_ms - 60_000,
        {**job.data, "job_id": "first-run", "checkpointing_mode": "at_least_once"},
    )
    assert grade([*b.events, wrong]).criterion("p1.exactly_once").state == "met"


def test_exactly_once_accepts_the_mode_in_any_case(grade) -> None:
    b = clean()
    upper = edited(b.events, of_type("flink.job"), {"checkpointing_mode": "EXACTLY_ONCE"})
    assert grade(upper).criterion("p1.exactly_once").state == "met"


# ------------------------------------------------------------------ p1.dbt_rollup_tested
def test_dbt_rollup_needs_a_successful_build_and_a_passing_test(grade) -> None:
    b = ExamBuilder("basecamp-alice")
    b.start()
    b.dbt_run(30, model="error", test="skipped")
    b.finish()
    c = grade(b.events).criterion("p1.dbt_rollup_tested")
    assert c.state == "expired"
    assert "no successful dbt build" in c.reason.lower()
    b2 = ExamBuilder("basecamp-alice")
    b2.start()
    b2.dbt_run(30, model="success", test="fail", failures=3)
    b2.finish()
    c2 = grade(b2.events).criterion("p1.dbt_rollup_tested")
    assert c2.state == "expired"
    assert "no test on it has passed" in c2.reason
    b3 = ExamBuilder("basecamp-alice")
    b3.start()
    b3.dbt_run(30)
    b3.finish()
    assert grade(b3.events).criterion("p1.dbt_rollup_tested").state == "met"


# ------------------------------------------------------------------ p1.superset_alert
@pytest.mark.parametrize(
    ("alert_state", "state"), [("Noop", "met"), ("Success", "met"), ("Error", "expired")]
)
def test_superset_alert_must_have_evaluated(grade, alert_state: str, state: str) -> None:
    b = clean()
    events = edited(b.events, lambda e: e.type == "superset.alert", {"last_state": alert_state})
    assert grade(events).criterion("p1.superset_alert").state == state


def test_superset_alert_chart_must_show_the_model(grade) -> None:
    b = clean()
    events = edited(b.events, lambda e: e.type == "superset.chart", {"dataset": "analytics.other"})
    c = grade(events).criterion("p1.superset_alert")
    assert c.state == "expired"
    assert "no superset chart on orders_hourly" in c.reason.lower()


# ------------------------------------------------------------------ p1.flink_observability
def test_flink_observability_needs_all_three_pillars(grade) -> None:
    b = clean()
    events = without(b, lambda e: e.type == "pillar.seen" and e.data["pillar"] == "log")
    c = grade(events).criterion("p1.flink_observability")
    assert c.state == "expired"
    assert "logs of the Flink job" in c.reason


# ------------------------------------------------------------------ lineage
def test_lineage_hops_names_the_missing_hop(grade) -> None:
    b = clean()
    events = without(
        b, lambda e: e.type == "openlineage.run" and e.data["job"]["name"] == "dbt-shop"
    )
    r = grade(events)
    c = r.criterion("p1.lineage_in_datahub")
    assert c.state == "expired"
    assert "lake.orders_enriched -> orders_hourly" in c.reason
    assert r.criterion("p1.lineage_path").state == "expired"


def test_lineage_path_may_pass_through_other_nodes(grade) -> None:
    b = ExamBuilder("basecamp-alice")
    b.start()
    b.lineage(10, "debezium", [ASSETS["source_table"]], ["staging.raw_orders"])
    b.lineage(11, "copy", ["staging.raw_orders"], ["lake.orders_enriched"])
    b.lineage(12, "report", ["lake.orders_enriched"], [])
    b.lineage(13, ASSETS["superset_chart"], ["lake.orders_enriched"], [])
    b.finish()
    r = grade(b.events)
    assert r.criterion("p1.lineage_path").state == "met"
    assert r.criterion("p1.lineage_in_datahub").state == "expired"


def test_lineage_path_does_not_start_at_a_node_that_only_ends_with_the_source_name(grade) -> None:
    # cdc.public.orders ends with ".public.orders" but the source table itself exists as a node
    b = ExamBuilder("basecamp-alice")
    b.start()
    b.lineage(10, "unrelated", [ASSETS["source_table"]], ["elsewhere.table"])
    b.lineage(11, "flink", [ASSETS["cdc_topic"]], [ASSETS["superset_chart"]])
    b.finish()
    assert grade(b.events).criterion("p1.lineage_path").state == "expired"


# ------------------------------------------------------------------ p1.iceberg_maintenance
def test_iceberg_maintenance_needs_a_compaction(grade) -> None:
    b = clean()
    events = without(b, lambda e: e.type == "iceberg.commit" and e.data["operation"] == "replace")
    c = grade(events).criterion("p1.iceberg_maintenance")
    assert c.state == "expired"
    assert "compaction" in c.reason


# ------------------------------------------------------------------ p1.column_masking
def test_column_masking_needs_a_read_by_a_masked_user(grade) -> None:
    b = clean()
    events = edited(b.events, lambda e: e.type == "trino.query", {"user": "admin"})
    c = grade(events).criterion("p1.column_masking")
    assert c.state == "expired"
    assert "no finished query by a masked user" in c.reason


def test_column_masking_needs_the_mask_on_the_pii_column(grade) -> None:
    b = clean()
    events = edited(b.events, lambda e: e.type == "trino.column_mask", {"column": "amount"})
    assert grade(events).criterion("p1.column_masking").state == "expired"


def test_column_masking_met_by_a_read_trino_says_it_masked(grade) -> None:
    # Rules naming users by a regex (or no user at all: everyone) give no plain name to
    # match; the query's own masked_columns (Trino applied the mask) say the user was masked.
    b = clean()
    rules = edited(b.events, lambda e: e.type == "trino.column_mask", {"applies_to": ["an.*"]})
    query = {"user": "ann", "masked_columns": ["iceberg.lake.orders_enriched.email"]}
    events = edited(rules, lambda e: e.type == "trino.query", query)
    c = grade(events).criterion("p1.column_masking")
    assert c.state == "met", c.reason


def test_column_masking_not_met_by_a_read_masked_on_another_column(grade) -> None:
    b = clean()
    rules = edited(b.events, lambda e: e.type == "trino.column_mask", {"applies_to": ["an.*"]})
    query = {"user": "ann", "masked_columns": ["iceberg.lake.orders_enriched.city"]}
    c = grade(edited(rules, lambda e: e.type == "trino.query", query)).criterion(
        "p1.column_masking"
    )
    assert c.state == "expired"
    assert "no finished query by a masked user" in c.reason


def test_column_masking_not_met_by_a_masked_read_that_failed(grade) -> None:
    b = clean()
    rules = edited(b.events, lambda e: e.type == "trino.column_mask", {"applies_to": ["an.*"]})
    query = {
        "user": "ann",
        "state": "FAILED",
        "masked_columns": ["iceberg.lake.orders_enriched.email"],
    }
    c = grade(edited(rules, lambda e: e.type == "trino.query", query)).criterion(
        "p1.column_masking"
    )
    assert c.state == "expired"


def test_column_masking_not_met_by_a_named_user_trino_did_not_mask(grade) -> None:
    # the query says what Trino masked (nothing): the rules' naming the user is not enough
    b = clean()
    events = edited(b.events, lambda e: e.type == "trino.query", {"masked_columns": []})
    c = grade(events).criterion("p1.column_masking")
    assert c.state == "expired"
    assert "no finished query by a masked user" in c.reason


# ------------------------------------------------------------------ p1.argocd_deployed
def test_argocd_sync_by_a_person_counts_only_for_a_merged_commit(grade) -> None:
    sha = "a1b2c3d4e5f60718293a4b5c6d7e8f9012345678"
    b = ExamBuilder("basecamp-alice")
    b.start()
    b.argo_sync(30, sha, initiated_by="alice")
    b.finish()
    assert grade(b.events).criterion("p1.argocd_deployed").state == "expired"
    b.add(
        "gitops.merge",
        29,
        repo="r",
        pr_number=1,
        commit_sha=sha[:10],
        merged_by="alice",
        files=[],
        merged_at=None,
    )
    assert grade(b.events).criterion("p1.argocd_deployed").state == "met"


def test_argocd_failed_sync_does_not_count(grade) -> None:
    b = ExamBuilder("basecamp-alice")
    b.start()
    b.argo_sync(30, "abc1234", phase="Failed")
    b.finish()
    assert grade(b.events).criterion("p1.argocd_deployed").state == "expired"


# ------------------------------------------------------------------ p1.e2e_100k
def test_e2e_fails_when_the_sink_gets_too_few_records(grade) -> None:
    c = grade(clean(commit_added=20_000).events).criterion("p1.e2e_100k")
    assert c.state == "expired"
    assert "gained 60,000 of 100,000 records" in c.reason


def test_e2e_needs_the_dbt_build_after_the_sink_crossed(grade) -> None:
    b = clean()
    late = [e for e in b.events if not (e.type == "dbt.run" and e.ts_ms > b.at(94))]
    c = grade(late).criterion("p1.e2e_100k")
    assert c.state == "expired"
    assert "no successful build of orders_hourly after that" in c.reason


def test_e2e_counts_a_commit_seen_twice_once(grade) -> None:
    b = clean(commit_added=35_000)  # 3 x 35,000 = 105,000: just over
    commits = [
        e for e in b.events if e.type == "iceberg.commit" and e.data["operation"] == "append"
    ]
    again = [
        Event(e.type, e.platform_id, e.event_id + "-again", e.ts_ms + 1, e.data) for e in commits
    ]
    assert grade(b.events + again).criterion("p1.e2e_100k").state == "met"
    one_lost = [e for e in b.events if e.event_id != commits[0].event_id] + again[1:]
    assert grade(one_lost).criterion("p1.e2e_100k").state == "expired"


def test_e2e_offsets_must_grow_by_100k(grade) -> None:
    c = grade(clean(offsets_peak=40_000).events).criterion("p1.e2e_100k")
    assert c.state == "expired"
    assert "grew by 90,000 of 100,000" in c.reason


# ------------------------------------------------------------------ p1.pillars_correlated
def test_pillars_must_share_one_trace_id(grade) -> None:
    r = grade(clean(pillar_traces=("t-1", "t-1", "t-2")).events)
    assert r.criterion("p1.pillars_correlated").state == "expired"
    assert r.criterion("p1.flink_observability").state == "met"


# ------------------------------------------------------------------ p1.zero_manual_apply
@pytest.mark.parametrize(
    ("verb", "user", "manager", "agent", "code", "state"),
    [
        ("patch", "alice", "kubectl-client-side-apply", "kubectl/v1.31.0", 200, "failed"),
        ("create", "alice", "kubectl", "kubectl/v1.31.0", 201, "failed"),
        (
            "patch",
            "system:serviceaccount:argocd:ctrl",
            "kubectl-client-side-apply",
            "kubectl/v1.31.0",
            200,
            "met",
        ),
        ("get", "alice", None, "kubectl/v1.31.0", 200, "met"),
        ("delete", "alice", None, "kubectl/v1.31.0", 200, "met"),
        ("patch", "alice", "kubectl-client-side-apply", "kubectl/v1.31.0", 403, "met"),
        ("patch", "alice", "kubectl-edit", "kubectl/v1.31.0", 200, "failed"),
        ("patch", "alice", "kubectl-patch", "kubectl/v1.31.0", 200, "failed"),
        ("update", "alice", "kubectl-replace", "kubectl/v1.31.0", 200, "failed"),
        ("create", "alice", "kubectl-create", "kubectl/v1.31.0", 201, "failed"),
        ("create", "alice", "kubectl-run", "kubectl/v1.31.0", 201, "failed"),
        (
            "patch",
            "alice",
            "kubectl-client-side-apply",
            "kubectl.exe/v1.30.0 (windows/amd64) kubernetes/7c48c2b",
            200,
            "failed",
        ),
        ("patch", "alice", "kubectl-client-side-apply", "kubectlx/v1.31.0", 200, "met"),
        ("patch", "alice", "helm", "kubectl/v1.31.0", 200, "met"),
        ("patch", "alice", "kubectl-client-side-apply", "Go-http-client/1.1", 200, "met"),
    ],
)
def test_zero_manual_apply(
    grade, verb: str, user: str, manager: str | None, agent: str, code: int, state: str
) -> None:
    b = ExamBuilder("basecamp-alice")
    b.start()
    b.add(
        "k8s.audit",
        70,
        verb=verb,
        user=user,
        user_agent=agent,
        field_manager=manager,
        resource="deployments",
        subresource=None,
        namespace="pipeline",
        name="orders-api",
        response_code=code,
        audit_id="a-1",
        user_groups=[],
    )
    b.finish()
    c = grade(b.events).criterion("p1.zero_manual_apply")
    assert c.state == state, c.reason
    if state == "failed":
        assert "namespace pipeline" in c.reason and c.evidence


@pytest.mark.parametrize(("dry_run", "state"), [(True, "met"), (False, "failed"), (None, "failed")])
def test_a_dry_run_is_no_manual_apply(grade, dry_run: bool | None, state: str) -> None:
    """apply --dry-run=server and diff send the apply's own request with dryRun=All."""
    b = ExamBuilder("basecamp-alice")
    b.start()
    extra = {} if dry_run is None else {"dry_run": dry_run}
    b.add(
        "k8s.audit",
        70,
        verb="patch",
        user="alice",
        user_agent="kubectl/v1.37.2 (linux/amd64) kubernetes/$Format",
        field_manager="kubectl-client-side-apply",
        resource="deployments",
        subresource=None,
        namespace="pipeline",
        name="orders-api",
        response_code=200,
        audit_id="a-1",
        user_groups=[],
        **extra,
    )
    b.finish()
    c = grade(b.events).criterion("p1.zero_manual_apply")
    assert c.state == state, c.reason


def test_manual_apply_outside_pipeline_namespaces_or_after_part1_does_not_fail_part1(grade) -> None:
    b = ExamBuilder("basecamp-alice")
    b.start()
    b.audit(
        190, "patch", "alice", "kubectl-client-side-apply"
    )  # after the Part 1 box closed at 181
    b.add(
        "k8s.audit",
        70,
        verb="patch",
        user="alice",
        user_agent="kubectl/v1",
        field_manager="kubectl",
        resource="configmaps",
        subresource=None,
        namespace="sandbox",
        name="x",
        response_code=200,
        audit_id="a",
        user_groups=[],
    )
    b.finish()
    assert grade(b.events).criterion("p1.zero_manual_apply").state == "met"


def test_zero_manual_apply_is_pending_until_the_close_then_unknown_if_audit_was_blind(
    grade,
) -> None:
    b = ExamBuilder("basecamp-alice")
    b.start()
    b.finish(silent=["k8s-audit"])
    assert grade(b.events, at_ms=b.at(100)).criterion("p1.zero_manual_apply").state == "pending"
    c = grade(b.events).criterion("p1.zero_manual_apply")
    assert c.state == "unknown"
    assert "k8s-audit collector was silent" in c.reason


def test_zero_manual_apply_unknown_when_the_audit_collector_reported_an_error(grade) -> None:
    b = ExamBuilder("basecamp-alice")
    b.start()
    b.heartbeats(180.5, ["k8s-audit"], healthy=False)
    b.finish()
    c = grade(b.events).criterion("p1.zero_manual_apply")
    assert c.state == "unknown"
    assert "reported an error" in c.reason


# ------------------------------------------------------------------ p1.dbt_catches_broken_row
def test_broken_row_needs_a_failing_test_after_row_broken(grade) -> None:
    r = grade(clean(broken_row_caught=False).events)
    assert r.criterion("p1.dbt_catches_broken_row").state == "expired"


def test_failing_test_before_the_row_was_broken_does_not_count(grade) -> None:
    b = ExamBuilder("basecamp-alice")
    b.start()
    b.dbt_run(100, test="fail", failures=2)
    b.control("row.broken", 140, dataset="public.orders", row_key="k")
    b.finish()
    assert grade(b.events).criterion("p1.dbt_catches_broken_row").state == "expired"


def test_failing_test_upstream_of_the_model_counts(grade) -> None:
    b = ExamBuilder("basecamp-alice")
    b.start()
    b.dbt_run(100)  # tells the engine the model depends on the source
    b.control("row.broken", 140, dataset="public.orders", row_key="k")
    b.add(
        "dbt.run",
        145,
        invocation_id="inv-x",
        command="test",
        results=[
            {
                "unique_id": "test.shop.source_not_null_orders_id.77",
                "resource_type": "test",
                "status": "fail",
                "failures": 1,
                "depends_on": ["source.shop.lake.orders_enriched"],
            }
        ],
    )
    b.finish()
    c = grade(b.events).criterion("p1.dbt_catches_broken_row")
    assert c.state == "met"
    assert "source_not_null_orders_id" in c.reason


def test_failing_test_on_an_unrelated_model_does_not_count(grade) -> None:
    b = ExamBuilder("basecamp-alice")
    b.start()
    b.dbt_run(100)
    b.control("row.broken", 140, dataset="public.orders", row_key="k")
    b.add(
        "dbt.run",
        145,
        invocation_id="inv-x",
        command="test",
        results=[
            {
                "unique_id": "test.shop.t.1",
                "resource_type": "test",
                "status": "fail",
                "failures": 5,
                "depends_on": ["model.shop.customers"],
            }
        ],
    )
    b.finish()
    assert grade(b.events).criterion("p1.dbt_catches_broken_row").state == "expired"
    assert MODEL_UID  # the model id the builder uses is the one the rubric resolves


# ------------------------------------------------------------------ time boxes
def test_evidence_after_the_part1_box_does_not_count(grade) -> None:
    b = clean()
    late = moved(b, of_type("schema.registered"), 185)
    c = grade(late).criterion("p1.schema_registered")
    assert c.state == "expired"
    assert "closed at 12:01:00Z" in c.reason


def test_part1_never_opened(grade) -> None:
    b = clean()
    events = without(b, lambda e: e.type == "part.started" and e.data["part"] == 1)
    r = grade(events)
    c = r.criterion("p1.schema_registered")
    assert c.state == "expired"
    assert "never opened" in c.reason
    assert grade(events, at_ms=b.at(100)).criterion("p1.schema_registered").state == "pending"
