"""A deterministic builder of exam recordings (no I/O).

:class:`ExamBuilder` writes the events of one exam on one platform, part by part,
with deterministic event ids and times; the scenario library
(:mod:`services.offline.scenarios`) and the load generator
(:mod:`services.offline.load`) are built with it, and the simulator
(:mod:`services.publisher.timeline`) drives platforms live with it. It sits below both,
so the live publisher does not depend on the offline tools.

Timeline of a standard exam (minutes after exam.started): Part 1 opens at 1 (its box
closes at 181), the fault is injected at 180 (box closes at 300), Part 3 opens at 300
(box closes at 420), the exam ends at 425. Collectors send a heartbeat before every
close; a scenario can silence one to show ``unknown``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from services.core.events import Event, event_to_json_obj, ms_to_rfc3339, rfc3339_to_ms

BASE = rfc3339_to_ms("2026-11-27T09:00:00.000Z")
MINUTE = 60_000
#: minutes at which the standard exam's proctor ends each part: at its box's close (part
#: 1 opens at minute 1 for 180 min, the fault at 180 for 120, part 3 at 300 for 120), so
#: ``part.ended`` closes nothing early; tests of an early end move it
P1_END, P2_END, P3_END = 181, 300, 420
COLLECTORS = (
    "cdc-offsets",
    "schemas",
    "flink",
    "argocd",
    "k8s-audit",
    "iceberg",
    "dbt",
    "openlineage",
    "superset",
    "trino",
    "observability",
    "gitops",
)

ASSETS: dict[str, Any] = {
    "source_table": "public.orders",
    "cdc_topic": "cdc.public.orders",
    "flink_job": "orders-enrich",
    "sink_table": "lake.orders_enriched",
    "dbt_model": "orders_hourly",
    "superset_chart": "Orders per hour",
    "pii_column": "lake.orders_enriched.email",
    "namespaces": ["pipeline", "flink"],
}
MODEL_UID = "model.shop.orders_hourly"
MODEL_REL = "analytics.orders_hourly"
SOURCE_UID = "source.shop.lake.orders_enriched"

#: fault kinds by layer, as rubric.md lists them
FAULT_KINDS: dict[str, tuple[str, ...]] = {
    "cache": ("stale_cache",),
    "trino": ("dynamic_filtering_off", "wrong_join_order", "stale_statistics"),
    "iceberg": ("stale_snapshot", "unmerged_branch", "compaction_race"),
    "dbt": ("model_regressed", "test_missing"),
    "spark_airflow": ("wrong_backfill_partition",),
    "cdc": ("dropped_events", "lost_messages"),
}
FAULT_TARGETS = {
    "cache": "lake.orders_enriched",
    "trino": "lake.orders_enriched",
    "iceberg": "lake.orders_enriched",
    "dbt": MODEL_REL,
    "spark_airflow": "lake.orders_enriched",
    "cdc": "cdc.public.orders",
}
#: a sentence of the postmortem that names the pattern of each layer
PATTERN_SENTENCES = {
    "cache": "The failure rode in on caching: Trino kept serving a cached result because the cache was not invalidated when the table changed.",
    "trino": "This was a cost-based optimisation failure: stale table statistics made the optimiser pick a join order that multiplied the rows.",
    "iceberg": "The failure rode in on snapshot-plus-delta: readers kept using an old snapshot because the delta commits were never merged into the table they read.",
    "dbt": "The failure rode in on weak data testing: no dbt test checked the model's row counts, so the regression reached the dashboard unnoticed.",
    "spark_airflow": "The backfill was not idempotent per partition, so rerunning it loaded one day twice into the wrong date partition.",
    "cdc": "The failure rode in on stream-processing without exactly-once delivery: events were dropped between the connector and the sink because offsets were committed too early.",
}

STRONG_REVIEW = """# Review: a closed warehouse for analytics

Thanks for writing this up so clearly, the problem statement is strong and the latency numbers are well measured.

## Issues
- The design assumes the slow joins are Trino's fault, but the root cause may be stale statistics or small files that compaction would fix.
- There is no cost projection, and a closed warehouse bills by usage so the cost will scale with every new dashboard.
- There is no exit plan or disaster recovery story for moving data back out, which is a real lock-in risk.
- The design has no answer for machine learning training data, which next year's platform needs from the lakehouse.
- It does not say why federation goes away if every query must live in the warehouse.

## Alternatives
- I suggest we first tune Trino with fresh statistics and join order hints, but this costs some engineering time.
- We could add result caching for the hot dashboards, however cached results can be stale after loads.
- Consider moving only specific workloads that need sub-second answers, while the rest stays open, at the cost of two systems.

## Patterns
Seen through oltp-vs-olap thinking, the warehouse solves an OLAP problem we already solve in Iceberg and Trino.
Materialized views over the hot joins would give most of the speedup with a refresh cost we control.
The cardinality of the join keys is the real cost driver here, not the engine.
Caching at the BI layer is the cheapest first step before any migration.
"""

WEAK_REVIEW = """# Review

The proposal should be rejected because this is wrong and obviously not how we work.
Trino is slow sometimes but the cost of a warehouse is high and there is no cost projection at all.
Also there is no disaster recovery or exit plan if we want to leave later.
The team has no machine learning story in this design for model training.
"""


def postmortem_text(layer: str, *, blaming: bool = False, with_test: bool = True) -> str:
    lines = [
        "# Postmortem: wrong numbers on the orders dashboard",
        "",
        "## Summary",
        "The orders per hour dashboard showed wrong numbers for about two hours on the exam day.",
        PATTERN_SENTENCES[layer],
        "",
        "## Timeline",
        "We started at the dashboard, walked lineage one hop upstream and checked the logs there.",
        "This review is blameless: the cause was a gap in our process and tooling, not a mistake of any one person."
        if not blaming
        else "",
    ]
    if blaming:
        lines.append("It was Bob's fault, he was careless and should have known better than this.")
    lines += ["", "## Action items"]
    if with_test:
        lines.append("- [ ] Add a new dbt test on row counts of the orders_hourly model.")
    lines.append("- [ ] Add an alert on the freshness of the sink table in Grafana.")
    lines.append("- [ ] Document the triage path in the runbook for the next on-call engineer.")
    return "\n".join(lines) + "\n"


def render_jsonl(events: Iterable[Event]) -> str:
    """The contract's JSON Lines form, one event per line, stable key order."""
    return "".join(json.dumps(event_to_json_obj(e), ensure_ascii=False) + "\n" for e in events)


@dataclass
class ExamBuilder:
    """Builds one exam on one platform. Times are minutes after exam.started."""

    platform_id: str
    exam_id: str = ""
    candidate_id: str = ""
    start_ms: int = BASE
    rubric_version: str = "1"
    events: list[Event] = field(default_factory=list)
    _seq: int = 0

    def __post_init__(self) -> None:
        name = self.platform_id.removeprefix("basecamp-")
        self.exam_id = self.exam_id or f"exam-2026-11-27-{name}"
        self.candidate_id = self.candidate_id or name

    # ---------------------------------------------------------------- primitives
    def at(self, minutes: float) -> int:
        return self.start_ms + round(minutes * MINUTE)

    def add(self, type: str, minutes: float, **data: Any) -> Event:
        self._seq += 1
        ev = Event(
            type=type,
            platform_id=self.platform_id,
            event_id=f"{self.platform_id}-{self._seq:05d}",
            ts_ms=self.at(minutes),
            data=data,
        )
        self.events.append(ev)
        return ev

    def control(self, type: str, minutes: float, **data: Any) -> Event:
        return self.add(type, minutes, exam_id=self.exam_id, **data)

    def heartbeats(
        self,
        minutes: float,
        collectors: Iterable[str] = COLLECTORS,
        healthy: bool = True,
        error_kind: str | None = None,
    ) -> None:
        """Heartbeats of ``collectors``; an unhealthy one says ``error_kind`` when given."""
        kind = {} if error_kind is None or healthy else {"error_kind": error_kind}
        for c in collectors:
            self.add(
                "collector.heartbeat",
                minutes,
                collector=c,
                source=f"{c}.basecamp",
                position=f"{minutes:g}m",
                healthy=healthy,
                error=None if healthy else "connection refused",
                **kind,
            )

    def around_closes(self, closes: Iterable[float], silent: Iterable[str] = ()) -> None:
        """A healthy heartbeat 20 seconds before each close, except from ``silent``."""
        mute = set(silent)
        for close in closes:
            self.heartbeats(close - 1 / 3, [c for c in COLLECTORS if c not in mute])

    # ---------------------------------------------------------------- control
    def start(self) -> None:
        self.control(
            "exam.started",
            0,
            candidate_id=self.candidate_id,
            rubric_id="y3-final",
            rubric_version=self.rubric_version,
        )
        self.heartbeats(0.5)
        self.control("part.started", 1, part=1)
        self.control("pipeline.declared", 2, assets=ASSETS)

    # ---------------------------------------------------------------- part 1
    def offsets(self, at: float, hw: int, partitions: int = 2) -> None:
        for p in range(partitions):
            self.add(
                "cdc.offsets",
                at,
                cluster="redpanda.basecamp:9092",
                topic=ASSETS["cdc_topic"],
                partition=p,
                high_watermark=hw,
                log_start_offset=0,
            )

    def commit(
        self, at: float, snapshot: int, added: int, op: str = "append", **summary: str
    ) -> None:
        self.add(
            "iceberg.commit",
            at,
            catalog="lake",
            table=ASSETS["sink_table"],
            snapshot_id=snapshot,
            parent_snapshot_id=snapshot - 1,
            operation=op,
            summary={"added-records": str(added), "flink.job-id": "job-1", **summary},
            table_properties={"history.expire.max-snapshot-age-ms": "86400000"},
        )

    def dbt_run(
        self, at: float, model: str = "success", test: str = "pass", failures: int = 0
    ) -> None:
        self.add(
            "dbt.run",
            at,
            invocation_id=f"inv-{self._seq}",
            command="build",
            results=[
                {
                    "unique_id": MODEL_UID,
                    "resource_type": "model",
                    "status": model,
                    "failures": None,
                    "depends_on": [SOURCE_UID],
                    "materialization": "table",
                    "relation_name": MODEL_REL,
                },
                {
                    "unique_id": "test.shop.not_null_orders_hourly_order_hour.1a2b",
                    "resource_type": "test",
                    "status": test,
                    "failures": failures,
                    "depends_on": [MODEL_UID],
                    "materialization": None,
                    "relation_name": None,
                },
            ],
        )

    def lineage(self, at: float, job: str, inputs: list[str], outputs: list[str]) -> None:
        self.add(
            "openlineage.run",
            at,
            eventType="COMPLETE",
            eventTime=ms_to_rfc3339(self.at(at)),
            run={"runId": f"run-{self._seq}", "facets": {}},
            job={"namespace": "basecamp", "name": job, "facets": {}},
            inputs=[{"namespace": "basecamp", "name": n} for n in inputs],
            outputs=[{"namespace": "basecamp", "name": n} for n in outputs],
            producer="basecamp",
            schemaURL="https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent",
        )

    def argo_sync(
        self, at: float, revision: str, initiated_by: str = "automated", phase: str = "Succeeded"
    ) -> None:
        self.add(
            "argocd.sync",
            at,
            app="orders-pipeline",
            project="data",
            revision=revision,
            sync_status="Synced",
            health_status="Healthy",
            phase=phase,
            initiated_by=initiated_by,
            finished_at=None,
            resources=[
                {"kind": "FlinkDeployment", "namespace": "flink", "name": "orders-enrich"},
                {"kind": "Deployment", "namespace": "pipeline", "name": "orders-api"},
            ],
        )

    def audit(
        self, at: float, verb: str, user: str, manager: str | None, agent: str = "kubectl/v1.31.0"
    ) -> None:
        self.add(
            "k8s.audit",
            at,
            verb=verb,
            user=user,
            user_agent=agent,
            field_manager=manager,
            resource="deployments",
            subresource=None,
            namespace="pipeline",
            name="orders-api",
            response_code=200,
            audit_id=f"audit-{self._seq}",
            user_groups=["system:authenticated"],
        )

    def pillars(self, at: float, traces: tuple[str, str, str] = ("t-1", "t-1", "t-1")) -> None:
        for i, (pillar, trace) in enumerate(zip(("trace", "log", "metric"), traces, strict=True)):
            self.add(
                "pillar.seen",
                at + i,
                pillar=pillar,
                trace_id=trace,
                service=ASSETS["flink_job"],
                selector=f"trace_id={trace}",
                count=1,
            )

    def part1(
        self,
        *,
        skip: Iterable[str] = (),
        offsets_peak: int = 60_000,
        commit_added: int = 40_000,
        broken_row_caught: bool = True,
        manual_apply_at: float | None = None,
        pillar_traces: tuple[str, str, str] = ("t-1", "t-1", "t-1"),
    ) -> None:
        """A complete Part 1; ``skip`` names pieces to leave out (e.g. "lineage_chart")."""
        skipped = set(skip)
        self.offsets(0.8, 0)
        self.offsets(60, offsets_peak)
        self.offsets(120, offsets_peak + 5_000)
        if "schema" not in skipped:
            self.add(
                "schema.registered",
                10,
                subject="cdc.public.orders-value",
                version=1,
                schema_id=41,
                schema_type="AVRO",
            )
        self.add(
            "flink.job",
            20,
            job_id="job-1",
            job_name=ASSETS["flink_job"],
            state="RUNNING",
            operators=[
                "Source: orders CDC",
                "LookupJoin(table=[customers])",
                "IcebergSink lake.orders_enriched",
            ],
            checkpointing_mode="exactly_once",
            checkpoint_interval_ms=30_000,
        )
        for i in range(1, 5):
            self.add(
                "flink.checkpoint",
                20 + i,
                job_id="job-1",
                checkpoint_id=i,
                status="COMPLETED",
                is_savepoint=False,
                trigger_ts=ms_to_rfc3339(self.at(20 + i)),
                duration_ms=500,
                state_size=1024,
            )
        for i, at in enumerate((30, 60, 90)):
            self.commit(
                at, 1000 + i, commit_added, **{"flink.max-committed-checkpoint-id": str(i + 2)}
            )
        self.commit(100, 1010, 120_000, op="replace")
        self.lineage(40, "debezium-orders", [ASSETS["source_table"]], [ASSETS["cdc_topic"]])
        self.lineage(41, ASSETS["flink_job"], [ASSETS["cdc_topic"]], [ASSETS["sink_table"]])
        self.lineage(96, "dbt-shop", [ASSETS["sink_table"]], [MODEL_REL])
        if "lineage_chart" not in skipped:
            self.lineage(101, ASSETS["superset_chart"], [MODEL_REL], [])
        self.argo_sync(50, "a1b2c3d4e5f60718293a4b5c6d7e8f9012345678")
        self.audit(
            50,
            "patch",
            "system:serviceaccount:argocd:argocd-application-controller",
            "argocd-controller",
            agent="argocd/v2.13",
        )
        self.audit(60, "get", "alice", None)
        if manual_apply_at is not None:
            self.audit(manual_apply_at, "patch", self.candidate_id, "kubectl-client-side-apply")
        self.dbt_run(95)
        self.add(
            "superset.chart",
            100,
            chart_id=12,
            chart_name=ASSETS["superset_chart"],
            dataset=MODEL_REL,
            database="trino",
            viz_type="line",
        )
        self.add(
            "superset.alert",
            105,
            alert_id=3,
            chart_id=12,
            condition=">",
            threshold=1000.0,
            last_state="Noop",
            last_eval_ts=ms_to_rfc3339(self.at(105)),
        )
        self.pillars(110, pillar_traces)
        self.add(
            "trino.column_mask",
            115,
            catalog="iceberg",
            schema="lake",
            table="orders_enriched",
            column="email",
            mask_expression="'***'",
            applies_to=["analyst", "group:bi"],
        )
        self.add(
            "trino.query",
            116,
            query_id="q-116",
            user="analyst",
            state="FINISHED",
            query="SELECT email FROM lake.orders_enriched LIMIT 10",
            catalog="iceberg",
            schema="lake",
            tables=["iceberg.lake.orders_enriched"],
            columns=["iceberg.lake.orders_enriched.email"],
            error_code=None,
        )
        self.control("row.broken", 140, dataset=ASSETS["source_table"], row_key="order-000042")
        if broken_row_caught:
            self.dbt_run(145, test="fail", failures=1)
        else:
            self.dbt_run(145, test="pass", failures=0)
        self.control("part.ended", P1_END, part=1)

    # ---------------------------------------------------------------- part 2
    def part2(
        self,
        layer: str,
        kind: str,
        *,
        diagnosis: str = "right",
        diagnosis_at: float = 50,
        fix: bool = True,
        manual_apply: bool = False,
        postmortem: str = "good",
    ) -> None:
        """Part 2 from the fault at minute 180; ``diagnosis_at`` is minutes after the fault."""
        f = 180.0
        self.control(
            "fault.injected",
            f,
            fault_id="fault-1",
            layer=layer,
            kind=kind,
            target=FAULT_TARGETS[layer],
            note=f"{layer}/{kind} injected by the proctor",
        )
        self.add(
            "tool.used",
            f + 5,
            tool="grafana",
            action="explore",
            target="Orders SLO",
            user=self.candidate_id,
        )
        target = FAULT_TARGETS[layer]
        self.add(
            "tool.used",
            f + 10,
            tool="datahub",
            action="view_lineage",
            target=f"urn:li:dataset:(urn:li:dataPlatform:iceberg,{target},PROD)",
            user=self.candidate_id,
        )
        answers = {
            "right": (layer, kind),
            "partial": (layer, "something_else"),
            "wrong": (
                "cdc" if layer != "cdc" else "trino",
                "lost_messages" if layer != "cdc" else "wrong_join_order",
            ),
            "symptom": ("superset", "dashboard_wrong"),
        }
        if diagnosis != "none":
            d_layer, d_kind = answers[diagnosis]
            self.control(
                "diagnosis.submitted",
                f + diagnosis_at,
                fault_id="fault-1",
                layer=d_layer,
                kind=d_kind,
                summary=f"The numbers were wrong because of {d_layer}/{d_kind}.",
            )
        if manual_apply:
            self.audit(f + 55, "patch", self.candidate_id, "kubectl-client-side-apply")
        if fix:
            sha = "f1x0000000000000000000000000000000000abc"
            self.add(
                "gitops.merge",
                f + 60,
                repo=f"{self.candidate_id}/basecamp",
                pr_number=118,
                commit_sha=sha,
                merged_by=self.candidate_id,
                files=["apps/pipeline/fix.yaml"],
                merged_at=ms_to_rfc3339(self.at(f + 60)),
            )
            self.argo_sync(f + 62, sha)
        if postmortem != "none":
            text = postmortem_text(
                layer, blaming=postmortem == "blaming", with_test=postmortem != "no_test"
            )
            self.control(
                "artifact.submitted",
                f + 100,
                part=2,
                kind="postmortem",
                content=text,
                uri="docs/postmortem.md",
            )
        self.control("part.ended", P2_END, part=2)

    # ---------------------------------------------------------------- part 3 and end
    def part3(self, review: str = "strong") -> None:
        self.control("part.started", 300, part=3)
        if review != "none":
            text = STRONG_REVIEW if review == "strong" else WEAK_REVIEW
            self.control(
                "artifact.submitted",
                400,
                part=3,
                kind="design_review",
                content=text,
                uri="docs/review.md",
            )
        self.control("part.ended", P3_END, part=3)

    def finish(self, self_grade: float | None = 95.0, silent: Iterable[str] = ()) -> None:
        if self_grade is not None:
            self.control("self_grade.submitted", 415, score_pct=self_grade)
        self.around_closes((181, 300, 420), silent)
        self.control("exam.ended", 425)

    def full(
        self,
        layer: str = "trino",
        kind: str = "stale_statistics",
        *,
        part1: dict[str, Any] | None = None,
        part2: dict[str, Any] | None = None,
        review: str = "strong",
        self_grade: float | None = 95.0,
        silent: Iterable[str] = (),
    ) -> ExamBuilder:
        self.start()
        self.part1(**(part1 or {}))
        self.part2(layer, kind, **(part2 or {}))
        self.part3(review)
        self.finish(self_grade, silent)
        return self


#: every criterion's state in an exam the builder's defaults pass
PASS_STATES = {
    "p1.cdc_source": "met",
    "p1.schema_registered": "met",
    "p1.flink_lookup_join": "met",
    "p1.exactly_once": "met",
    "p1.dbt_rollup_tested": "met",
    "p1.superset_alert": "met",
    "p1.flink_observability": "met",
    "p1.lineage_in_datahub": "met",
    "p1.iceberg_maintenance": "met",
    "p1.column_masking": "met",
    "p1.argocd_deployed": "met",
    "p1.e2e_100k": "met",
    "p1.lineage_path": "met",
    "p1.pillars_correlated": "met",
    "p1.zero_manual_apply": "met",
    "p1.dbt_catches_broken_row": "met",
    "p2.triage_observability": "met",
    "p2.lineage_walked": "met",
    "p2.root_cause": "met",
    "p2.root_cause_90min": "met",
    "p2.fix_via_gitops": "met",
    "p2.postmortem": "met",
    "p2.pattern_cited": "met",
    "p3.issues_found": "met",
    "p3.alternatives": "met",
    "p3.patterns_cited": "met",
    "p3.senior_tone": "met",
    "overall.part1": "met",
    "overall.part2": "met",
    "overall.part3": "met",
    "overall.self_grade_agreement": "met",
    "overall.pass": "met",
}
