"""The rehearsal's plan and report, without any system: fault coverage of the rubric,
scripted candidates' expectations, and a report that names what missed."""

from __future__ import annotations

import json
from typing import Any

import pytest

from services.errors import ConfigError
from services.exam_builder import FAULT_KINDS
from services.rehearsal.candidates import (
    EVIDENCE_PATH,
    FLINK_EXPECTED,
    FULL_EXPECTED,
    NOT_REHEARSED,
    REFERENCE_EXPECTED,
    SUPERSET_EXPECTED,
    SYSTEM_CRITERIA,
    TRINO_EXPECTED,
    VARIANTS,
    variant,
)
from services.rehearsal.faults import INJECTORS, NOT_INJECTABLE, injector
from services.rehearsal.report import CriterionVerdict, RehearsalReport, StepRecord
from services.rehearsal.stream import CUSTOMERS, changes
from services.rubrics import resolver

pytestmark = pytest.mark.unit


def test_every_fault_kind_of_the_rubric_is_injectable_or_says_why_not() -> None:
    rubric_kinds = {k for kinds in FAULT_KINDS.values() for k in kinds}
    assert set(INJECTORS) | set(NOT_INJECTABLE) == rubric_kinds
    assert not set(INJECTORS) & set(NOT_INJECTABLE)
    assert len(INJECTORS) >= 3
    for kind, cls in INJECTORS.items():
        assert kind in FAULT_KINDS[cls.layer], f"{kind} is not a {cls.layer} fault"


def test_a_kind_that_cannot_run_here_is_refused_with_its_reason() -> None:
    with pytest.raises(ConfigError, match="cannot be injected for real here: no Spark"):
        injector("wrong_backfill_partition", lake=None)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="unknown fault kind 'disk_full'"):
        injector("disk_full", lake=None)  # type: ignore[arg-type]


def test_every_rubric_criterion_is_expected_or_listed_as_not_rehearsed() -> None:
    rubric = resolver()("y3-final", "1")
    ids = {c.criterion_id for c in rubric.criteria}
    systems = {**FLINK_EXPECTED, **TRINO_EXPECTED, **SUPERSET_EXPECTED}
    rehearsed = set(REFERENCE_EXPECTED) | {"p1.zero_manual_apply"} | set(systems)
    assert rehearsed <= ids
    assert set(NOT_REHEARSED) <= ids
    # a criterion a real system grades is rehearsed, not listed as needing that system
    assert not set(systems) & set(NOT_REHEARSED)
    assert {c for _needs, cids in SYSTEM_CRITERIA.values() for c in cids} == set(systems)
    assert set(systems) <= set(EVIDENCE_PATH)
    # what is neither is decided by other criteria (overall.*) or by the self-grade
    left = ids - rehearsed - set(NOT_REHEARSED)
    assert left == {
        "overall.part1",
        "overall.part2",
        "overall.pass",
        "overall.self_grade_agreement",
    }
    assert set(REFERENCE_EXPECTED) <= set(EVIDENCE_PATH)


def test_variants_change_only_the_criterion_they_break() -> None:
    reference = VARIANTS["reference"].expectations(full=True)
    for name, cand in VARIANTS.items():
        full = cand.expectations(full=True)
        changed = {k for k, v in full.items() if reference.get(k) != v}
        assert changed == set(cand.expected), name
        # without the whole platform, what only it can show is not expected
        assert not set(cand.expectations()) & set(FULL_EXPECTED), name
    assert variant("wrong-root-cause").expectations()["p2.root_cause"] == "failed"
    assert variant("at-least-once").expected == {"p1.exactly_once": "failed"}
    assert variant("at-least-once").checkpointing == "at_least_once"
    assert variant("no-column-mask").expected == {"p1.column_masking": "expired"}
    assert not variant("no-column-mask").column_mask
    with pytest.raises(ConfigError, match="unknown candidate 'lazy'; choose one of reference"):
        variant("lazy")


def _report(state: str, expected: str | None) -> RehearsalReport:
    report = RehearsalReport("r1", "2026-12-06T09:00:00Z")
    report.steps.append(
        StepRecord("reference/stale_snapshot", 2, "injector", "inject", "Iceberg", "rolled", 0.1)
    )
    report.criteria.append(
        CriterionVerdict(
            "reference/stale_snapshot",
            "p1.iceberg_maintenance",
            expected,
            state,
            "no replace commit",
            "",
            EVIDENCE_PATH["p1.iceberg_maintenance"],
        )
    )
    return report


def test_observability_and_lineage_say_which_real_hop_is_missing() -> None:
    """Left out on purpose: each says what the rule needs that no system here sends."""
    assert "no Loki nor Tempo" in NOT_REHEARSED["p1.flink_observability"]
    for cid in ("p1.lineage_in_datahub", "p1.lineage_path"):
        assert "dbt" in NOT_REHEARSED[cid], cid
        assert "chart" in NOT_REHEARSED[cid] or "Superset" in NOT_REHEARSED[cid], cid


def test_a_criterion_graded_otherwise_fails_the_rehearsal_naming_its_path() -> None:
    report = _report("failed", "met")
    assert not report.passed
    doc: dict[str, Any] = json.loads(report.dumps())
    assert doc["passed"] is False
    (failure,) = doc["failures"]
    assert "p1.iceberg_maintenance is failed, expected met" in failure
    assert "Iceberg collector" in failure


def test_a_report_passes_only_with_every_expectation_held() -> None:
    assert _report("met", "met").passed
    assert _report("unknown", None).passed  # not expected: shown, not judged
    assert not RehearsalReport("r2", "t").passed  # nothing graded is no rehearsal


def test_a_system_criterion_is_expected_only_where_that_system_ran() -> None:
    everything = {"kube", "dbt", "cdc", "flink", "trino", "superset"}
    ref = variant("reference").expectations(full=True, systems=everything)
    for cid in (*FLINK_EXPECTED, *TRINO_EXPECTED, *SUPERSET_EXPECTED, "p1.cdc_source"):
        assert ref[cid] == "met", cid
    bare = variant("reference").expectations(full=True, systems=set())
    assert not set(bare) & {*FLINK_EXPECTED, *TRINO_EXPECTED, *SUPERSET_EXPECTED}
    assert "p1.zero_manual_apply" not in bare and "p1.dbt_rollup_tested" not in bare
    # the variant's own grade wins where its system ran, and is not expected elsewhere
    alo = variant("at-least-once")
    assert alo.expectations(full=True, systems={"flink"})["p1.exactly_once"] == "failed"
    assert "p1.exactly_once" not in alo.expectations(full=True, systems={"trino"})
    nomask = variant("no-column-mask").expectations(full=True, systems={"trino"})
    assert nomask["p1.column_masking"] == "expired"


def test_the_flink_input_is_debezium_shaped_creates_then_an_update() -> None:
    records = changes(100, 3)
    assert [r["op"] for r in records] == ["c", "c", "c", "u"]
    assert [r["after"]["order_id"] for r in records] == [100, 101, 102, 100]  # type: ignore[index]
    assert records[-1]["before"] == records[0]["after"]  # the update's before is the create
    # every customer the join looks up exists in the dimension table
    assert {r["after"]["customer_id"] for r in records} <= set(CUSTOMERS)  # type: ignore[index]
