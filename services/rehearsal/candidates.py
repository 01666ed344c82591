"""Scripted candidates: the reference solution and the variants that leave out or break
one step, each with the grades the rehearsal expects of it.

A variant names the criterion it should move and why, so a rehearsal that grades it
otherwise fails with that criterion named.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field

from services.errors import ConfigError

#: what the reference solution must be graded, from the systems a rehearsal runs here
REFERENCE_EXPECTED: Mapping[str, str] = {
    "p1.iceberg_maintenance": "met",
    "p2.root_cause": "met",
    "p2.root_cause_90min": "met",
    "p2.postmortem": "met",
    "p2.pattern_cited": "met",
    "p3.issues_found": "met",
    "p3.alternatives": "met",
    "p3.patterns_cited": "met",
    "p3.senior_tone": "met",
    "overall.part3": "met",
}

#: what the reference must be graded on the exams with the whole platform (the first of
#: each candidate): a real API server and a real dbt project
FULL_EXPECTED: Mapping[str, str] = {
    "p1.zero_manual_apply": "met",
    "p1.dbt_rollup_tested": "met",
    "p1.dbt_catches_broken_row": "met",
}

#: what the exam with the CDC (one per rehearsal) must be graded besides
CDC_EXPECTED: Mapping[str, str] = {
    "p1.cdc_source": "met",
    "p1.schema_registered": "met",
}

#: what the exam with a Flink job (the first exam of a streaming candidate) must be graded
FLINK_EXPECTED: Mapping[str, str] = {
    "p1.flink_lookup_join": "met",
    "p1.exactly_once": "met",
}

#: what the exam with the candidate's own Trino (access control) must be graded
TRINO_EXPECTED: Mapping[str, str] = {
    "p1.column_masking": "met",
}

#: what the exam with the candidate's Superset (a chart and an alert on the dbt model) must
#: be graded
SUPERSET_EXPECTED: Mapping[str, str] = {
    "p1.superset_alert": "met",
}

#: what each optional real system's criteria must be for the reference
SYSTEMS_EXPECTED: Mapping[str, Mapping[str, str]] = {
    "cdc": CDC_EXPECTED,
    "flink": FLINK_EXPECTED,
    "trino": TRINO_EXPECTED,
    "superset": SUPERSET_EXPECTED,
}

#: the criteria each optional real system grades, and what a rehearsal without it lacks
#: (said as what the criterion needs)
SYSTEM_CRITERIA: Mapping[str, tuple[str, tuple[str, ...]]] = {
    "flink": (
        "a Flink job of the candidate's (off: --no-flink, or not for these candidates)",
        tuple(FLINK_EXPECTED),
    ),
    "trino": (
        "the candidate's own Trino with file-based access control (off: --no-trino, or not "
        "for these candidates)",
        tuple(TRINO_EXPECTED),
    ),
    "superset": (
        "the candidate's Superset with a chart and an alert on the dbt model (off: "
        "--no-superset, or no dbt model built: --no-dbt)",
        tuple(SUPERSET_EXPECTED),
    ),
}

#: where each rehearsed criterion's evidence comes from, named when it is missed
EVIDENCE_PATH: Mapping[str, str] = {
    "p1.iceberg_maintenance": "the Iceberg collector (iceberg.commit: retention properties "
    "and Trino optimize's replace snapshot) and rule p1.iceberg_maintenance",
    "p2.root_cause": "the submission endpoint (diagnosis.submitted) against the signed "
    "fault.injected, rule p2.root_cause",
    "p2.root_cause_90min": "diagnosis.submitted's endpoint stamp against fault.injected, "
    "rule p2.root_cause_90min",
    "p2.postmortem": "artifact.submitted kind postmortem and the text judge",
    "p2.pattern_cited": "artifact.submitted kind postmortem and the text judge",
    "p3.issues_found": "artifact.submitted kind design_review and the text judge",
    "p3.alternatives": "artifact.submitted kind design_review and the text judge",
    "p3.patterns_cited": "artifact.submitted kind design_review and the text judge",
    "p3.senior_tone": "artifact.submitted kind design_review and the text judge",
    "overall.part3": "rule overall.part3 over p3.*",
    "p1.zero_manual_apply": "the API server's audit webhook, the k8s-audit receiver "
    "(k8s.audit) and rule p1.zero_manual_apply",
    "p1.dbt_rollup_tested": "dbt-trino's run_results.json, the dbt collector (dbt.run) "
    "and rule p1.dbt_rollup_tested",
    "p1.dbt_catches_broken_row": "the signed row.broken, the second dbt build's failing "
    "test through the dbt collector, rule p1.dbt_catches_broken_row",
    "p1.cdc_source": "Debezium's topic on the broker, the offsets collector (cdc.offsets) "
    "and rule p1.cdc_source",
    "p1.schema_registered": "the connector's Avro converter registering `<cdc_topic>-value`, "
    "the registry collector (schema.registered) and rule p1.schema_registered",
    "p1.flink_lookup_join": "Flink's REST API (/jobs, the job's plan), the Flink collector "
    "(flink.job) and rule p1.flink_lookup_join",
    "p1.exactly_once": "Flink's /jobs/<id>/checkpoints and checkpoint config (flink.job, "
    "flink.checkpoint), the Iceberg collector on the Flink sink (iceberg.commit with "
    "flink.max-committed-checkpoint-id) and rule p1.exactly_once",
    "p1.column_masking": "the candidate Trino's rules file through its access-control."
    "properties (trino-rules collector, trino.column_mask), its HTTP event listener to the "
    "trino receiver (trino.query) and rule p1.column_masking",
    "p1.superset_alert": "Superset's REST API (superset collector: superset.chart, "
    "superset.alert after the Celery beat evaluated it) and rule p1.superset_alert",
}

#: criteria no system here produces, and what a rehearsal would need for them
NOT_REHEARSED: Mapping[str, str] = {
    "p1.cdc_source": "Kafka Connect with Debezium on the platform (rehearsed on the first exam)",
    "p1.schema_registered": "the CDC connector registering its value schema (rehearsed on "
    "the first exam)",
    "p1.dbt_rollup_tested": "the candidate's dbt project built on Trino (rehearsed on the "
    "first exam of each candidate)",
    "p1.flink_observability": "traces, logs and metrics of the Flink job (pillar.seen of "
    "all three): the Flink session serves Prometheus metrics, but no Loki nor Tempo runs "
    "here, so the rule's log and trace requirements cannot be met from real signals",
    "p1.lineage_in_datahub": "OpenLineage from every hop (source_table, cdc_topic, "
    "sink_table, dbt_model, superset_chart): only dbt emits OpenLineage here; Debezium, "
    "the Flink job and Superset send none, so the hops before and after dbt are missing",
    "p1.argocd_deployed": "Argo CD syncing the pipeline's apps",
    "p1.e2e_100k": "CDC, Flink and dbt moving 100,000 events",
    "p1.lineage_path": "a lineage path from source_table to superset_chart: dbt's events "
    "give only the model's own edge (its source to the model); no emitter here links the "
    "source table to the topic, the topic to the sink, or the model to the chart",
    "p1.pillars_correlated": "traces, logs and metrics with one trace id",
    "p1.zero_manual_apply": "a Kubernetes API server auditing the platform's writes "
    "(rehearsed on the first exam of each candidate when scripts/build-kube.sh has run)",
    "p1.dbt_catches_broken_row": "a dbt test run after row.broken (rehearsed on the first "
    "exam of each candidate)",
    "p2.triage_observability": "access logs of Grafana, Loki or Tempo",
    "p2.lineage_walked": "access logs of DataHub",
    "p2.fix_via_gitops": "a Git host's merge webhook and Argo CD's sync",
}


@dataclass(frozen=True, slots=True)
class Candidate:
    """One scripted candidate: what they do differently from the reference, and why."""

    name: str
    about: str
    maintenance: bool = True
    diagnosis: str = "right"  # right | layer_only | symptom
    postmortem: bool = True
    deploy: str = "gitops"  # gitops | manual (a person's kubectl apply)
    #: whether the dbt project keeps the test that catches the broken row
    dbt_test: bool = True
    #: the Flink job's checkpointing (exactly_once | at_least_once)
    checkpointing: str = "exactly_once"
    #: whether the candidate's Trino rules mask the PII column
    column_mask: bool = True
    expected: Mapping[str, str] = field(default_factory=dict)

    def expectations(
        self, full: bool = False, systems: Collection[str] | None = None
    ) -> dict[str, str]:
        """What this candidate must be graded; ``full``: on an exam with the whole platform.

        ``systems`` names the real systems that ran for the exam (kube, dbt, cdc, flink,
        trino, superset): a criterion only a system that did not run can show is not
        expected, whatever the variant says. None: only ``full`` decides (no optional system).
        """
        base = {**REFERENCE_EXPECTED, **(FULL_EXPECTED if full else {})}
        own = {k: v for k, v in self.expected.items() if full or k not in FULL_EXPECTED}
        out = {**base, **own}
        if systems is None:
            return out
        for system, wanted in SYSTEMS_EXPECTED.items():
            for cid, state in wanted.items():
                if system in systems:
                    out.setdefault(cid, state)  # a variant's own expectation wins
                else:
                    out.pop(cid, None)
        if "kube" not in systems:
            out.pop("p1.zero_manual_apply", None)
        if "dbt" not in systems:
            out.pop("p1.dbt_rollup_tested", None)
            out.pop("p1.dbt_catches_broken_row", None)
        return out


VARIANTS: dict[str, Candidate] = {
    c.name: c
    for c in (
        Candidate("reference", "does everything the exam asks, in order"),
        Candidate(
            "no-maintenance",
            "never sets snapshot retention nor compacts the sink table",
            maintenance=False,
            expected={"p1.iceberg_maintenance": "failed"},
        ),
        Candidate(
            "wrong-root-cause",
            "blames the dashboard (the symptom) as the cause",
            diagnosis="symptom",
            # no right diagnosis ever came: the 90-minute box closes unmet
            expected={"p2.root_cause": "failed", "p2.root_cause_90min": "expired"},
        ),
        Candidate(
            "layer-only",
            "names the right layer but the wrong kind",
            diagnosis="layer_only",
            expected={"p2.root_cause": "partial", "p2.root_cause_90min": "expired"},
        ),
        Candidate(
            "manual-apply",
            "deploys the pipeline with a kubectl apply by hand instead of through GitOps",
            deploy="manual",
            expected={"p1.zero_manual_apply": "failed"},
        ),
        Candidate(
            "no-dbt-test",
            "drops the dbt test that would catch a broken upstream row",
            dbt_test=False,
            expected={"p1.dbt_catches_broken_row": "expired"},
        ),
        Candidate(
            "at-least-once",
            "runs the Flink job with at-least-once checkpoints: the sink commits on "
            "checkpoints, but replays after a failure write rows twice",
            checkpointing="at_least_once",
            expected={"p1.exactly_once": "failed"},
        ),
        Candidate(
            "no-column-mask",
            "gives analysts the table without masking its PII column in Trino's rules",
            column_mask=False,
            # no mask ever came: the time box closes with the criterion unmet
            expected={"p1.column_masking": "expired"},
        ),
    )
}


def variant(name: str) -> Candidate:
    try:
        return VARIANTS[name]
    except KeyError:
        raise ConfigError(
            f"unknown candidate {name!r}; choose one of {', '.join(VARIANTS)}"
        ) from None
