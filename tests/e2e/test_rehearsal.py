"""A rehearsal on real systems, graded live by the worker: scripted candidates build the
lakehouse part of the reference solution on the stack's Iceberg catalog and Trino, deploy
through a real Kubernetes API server, and face three fault kinds injected for real; one
candidate diagnoses each right and another wrong, and the grades read back from Trino
say so criterion by criterion."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import pytest

from services.contract.settings import ClientSettings
from services.platform.connect import apicurio_v2_url
from services.rehearsal import kube
from services.rehearsal.candidates import (
    CDC_EXPECTED,
    FULL_EXPECTED,
    REFERENCE_EXPECTED,
    variant,
)
from services.rehearsal.report import RehearsalReport
from services.rehearsal.runner import Rehearsal, RehearsalPlan
from services.rehearsal.session import RehearsalSession, SessionSettings
from services.stack.catalog import load_catalog, trino_connect

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

FAULTS = ("stale_snapshot", "unmerged_branch", "stale_statistics")
#: what each injector measured on the real system, in its fault.injected note
BREAKS = {
    "stale_snapshot": "rows became",
    "unmerged_branch": "main still reads",
    "stale_statistics": "Trino believes",
}


@pytest.fixture(scope="module")
def report(stack: Any, kafka_bootstrap: str, registry_url: str) -> Iterator[RehearsalReport]:
    config = stack.require("postgres", "trino")
    session = RehearsalSession(
        ClientSettings(kafka_bootstrap, registry_url),
        SessionSettings(
            config.catalog_uri,
            config.warehouse,
            config.trino_url,
            config.state_dir,
            registry_v2_url=apicurio_v2_url(config),
        ),
        print,
    )
    plan = RehearsalPlan(
        [variant("reference"), variant("wrong-root-cause"), variant("manual-apply")],
        FAULTS,
        rows=2_000,
        commits=2,
        dbt_for=("reference",),  # one real dbt project: its builds are the slow part
    )
    with contextlib.closing(trino_connect(config)) as trino:
        yield Rehearsal(session, load_catalog(config), trino, plan, print).run()


def test_the_rehearsal_holds_every_expectation(report: RehearsalReport) -> None:
    assert report.passed, "\n".join(
        f"{c.candidate}: {c.criterion_id} is {c.state}, expected {c.expected}: {c.reason}"
        for c in report.failures
    )
    assert not report.dead_letters, report.dead_letters


@pytest.mark.parametrize("fault", FAULTS)
def test_the_reference_meets_each_rehearsed_criterion_from_real_signals(
    report: RehearsalReport, fault: str
) -> None:
    graded = report.graded(f"reference/{fault}")
    for cid in REFERENCE_EXPECTED:
        assert graded[cid].state == "met", f"{cid}: {graded[cid].reason}"
    maintenance = graded["p1.iceberg_maintenance"].reason
    assert "history.expire" in maintenance and "replace" in maintenance, maintenance


def test_the_whole_platform_meets_cdc_schema_dbt_and_gitops_criteria(
    report: RehearsalReport,
) -> None:
    """The reference's first exam ran Debezium on Kafka Connect, a real dbt project and a
    real API server: each of their criteria is met from what those systems did."""
    graded = report.graded(f"reference/{FAULTS[0]}")
    wanted = {**CDC_EXPECTED, **FULL_EXPECTED}
    if kube.available() is None:
        wanted.pop("p1.zero_manual_apply")
    for cid in wanted:
        assert graded[cid].state == "met", f"{cid}: {graded[cid].reason}"
    assert "grew by" in graded["p1.cdc_source"].reason
    assert "-value" in graded["p1.schema_registered"].reason
    assert "revenue_non_negative failed" in graded["p1.dbt_catches_broken_row"].reason
    seen = report.signals[next(p for p in report.signals if p.endswith("reference-stale-snapshot"))]
    for kind in ("cdc.offsets", "schema.registered", "dbt.run", "openlineage.run"):
        assert seen.get(kind, 0) >= 1, (kind, seen)


@pytest.mark.parametrize("fault", FAULTS)
def test_each_fault_is_broken_for_real_and_graded_by_the_diagnosis(
    report: RehearsalReport, fault: str
) -> None:
    injected = [
        s for s in report.steps if s.candidate.endswith(f"/{fault}") and s.step.startswith("inject")
    ]
    assert len(injected) == 3 and all(BREAKS[fault] in s.outcome for s in injected), injected
    right = report.graded(f"reference/{fault}")["p2.root_cause"]
    wrong = report.graded(f"wrong-root-cause/{fault}")["p2.root_cause"]
    assert right.state == "met" and fault in right.reason
    assert wrong.state == "failed" and "blamed the symptom" in wrong.reason, wrong.reason
    fixed = [s for s in report.steps if s.candidate == f"reference/{fault}" and s.step == "fix"]
    assert fixed and fixed[0].outcome.endswith("fault still visible: False"), fixed


def test_every_platform_was_watched_by_the_real_collectors(report: RehearsalReport) -> None:
    assert len(report.signals) == 9
    for platform, counts in report.signals.items():
        assert counts.get("iceberg.commit", 0) >= 3, (platform, counts)
        assert counts.get("collector.heartbeat", 0) >= 1, (platform, counts)


def test_a_manual_kubectl_apply_fails_zero_manual_apply_and_gitops_does_not(
    report: RehearsalReport,
) -> None:
    if kube.available() is None:
        pytest.skip("no Kubernetes API server built (scripts/build-kube.sh)")
    first = FAULTS[0]
    gitops = report.graded(f"reference/{first}")["p1.zero_manual_apply"]
    manual = report.graded(f"manual-apply/{first}")["p1.zero_manual_apply"]
    assert gitops.state == "met", gitops.reason
    assert manual.state == "failed" and "namespace pipeline" in manual.reason, manual.reason
    audited = [p for p, c in report.signals.items() if c.get("k8s.audit")]
    assert len(audited) == 3, report.signals
