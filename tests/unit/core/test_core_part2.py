"""Part 2 criteria: triage, lineage walk, root cause (first answer), on time, GitOps fix, postmortem."""

from __future__ import annotations

import pytest

from services.core.events import Event
from services.offline.scenarios import FAULT_KINDS, ExamBuilder
from tests.unit.core.helpers import edited, moved

pytestmark = pytest.mark.unit


def exam(layer: str = "trino", kind: str = "stale_statistics", **part2: object) -> ExamBuilder:
    return ExamBuilder("basecamp-alice").full(layer, kind, part2=part2 or None)


def diagnose(
    b: ExamBuilder,
    minutes: float,
    fault_id: str = "fault-1",
    layer: str = "trino",
    kind: str = "stale_statistics",
) -> None:
    """Add a diagnosis.submitted at ``minutes`` (the standard fault unless told otherwise)."""
    b.control(
        "diagnosis.submitted", minutes, fault_id=fault_id, layer=layer, kind=kind, summary="x"
    )


def test_triage_needs_an_observability_tool_after_the_fault(grade) -> None:
    b = exam()
    assert grade(b.events).criterion("p2.triage_observability").state == "met"
    before = moved(b, lambda e: e.type == "tool.used" and e.data["tool"] == "grafana", 170)
    c = grade(before).criterion("p2.triage_observability")
    assert c.state == "expired"
    datahub_only = [
        e for e in b.events if not (e.type == "tool.used" and e.data["tool"] == "grafana")
    ]
    assert grade(datahub_only).criterion("p2.triage_observability").state == "expired"


def test_lineage_walk_on_a_neighbour_counts_and_on_an_unrelated_asset_does_not(grade) -> None:
    b = exam()

    def datahub(e: Event) -> bool:
        return e.type == "tool.used" and e.data["tool"] == "datahub"

    neighbour = edited(b.events, datahub, {"target": "analytics.orders_hourly"})
    assert grade(neighbour).criterion("p2.lineage_walked").state == "met"
    unrelated = edited(b.events, datahub, {"target": "finance.invoices"})
    c = grade(unrelated).criterion("p2.lineage_walked")
    assert c.state == "expired"
    assert "lineage neighbour" in c.reason


@pytest.mark.parametrize(
    ("diagnosis", "root", "on_time"),
    [
        ("right", "met", "met"),
        ("partial", "partial", "expired"),
        ("wrong", "failed", "expired"),
        ("symptom", "failed", "expired"),
    ],
)
def test_root_cause_is_judged_on_the_first_answer(
    grade, diagnosis: str, root: str, on_time: str
) -> None:
    r = grade(exam(diagnosis=diagnosis).events)
    c = r.criterion("p2.root_cause")
    assert (c.state, r.criterion("p2.root_cause_90min").state) == (root, on_time)
    assert c.evidence
    if diagnosis == "symptom":
        assert "blamed the symptom" in c.reason
    score = {"met": 8.0, "partial": 4.0, "failed": 0.0}[root]
    assert c.score == score


@pytest.mark.parametrize("layer", sorted(FAULT_KINDS))
def test_every_fault_kind_can_be_diagnosed(grade, layer: str) -> None:
    for kind in FAULT_KINDS[layer]:
        r = grade(exam(layer, kind).events)
        assert r.criterion("p2.root_cause").state == "met", (layer, kind)
        assert r.criterion("p2.pattern_cited").state == "met", (layer, kind)


def test_a_later_right_answer_recovers_a_wrong_one_to_partial_but_not_a_partial_one_to_met(
    grade,
) -> None:
    b = exam(diagnosis="wrong", diagnosis_at=20)
    diagnose(b, 180 + 30)
    r = grade(b.events)
    assert r.criterion("p2.root_cause").state == "partial"
    assert r.criterion("p2.root_cause_90min").state == "met"
    b2 = exam(diagnosis="partial", diagnosis_at=20)
    diagnose(b2, 180 + 30)
    assert grade(b2.events).criterion("p2.root_cause").state == "partial"


def test_diagnoses_before_the_fault_or_of_another_fault_are_not_graded(grade) -> None:
    b = exam(diagnosis="none")
    diagnose(b, 170)
    diagnose(b, 200, fault_id="fault-9", layer="cdc", kind="lost_messages")
    r = grade(b.events)
    assert r.criterion("p2.root_cause").state == "expired"
    assert grade(b.events, at_ms=b.at(250)).criterion("p2.root_cause").state == "pending"


def test_late_diagnosis_is_a_signal_not_a_fail(grade) -> None:
    r = grade(exam(diagnosis_at=100).events)
    assert r.criterion("p2.root_cause").state == "met"
    c = r.criterion("p2.root_cause_90min")
    assert c.state == "partial"
    assert "100 minutes" in c.reason


def test_gitops_fix(grade) -> None:
    assert grade(exam().events).criterion("p2.fix_via_gitops").state == "met"
    no_sync = [
        e for e in exam().events if not (e.type == "argocd.sync" and e.ts_ms > exam().at(200))
    ]
    c = grade(no_sync).criterion("p2.fix_via_gitops")
    assert c.state == "expired"
    assert "no successful, healthy sync" in c.reason
    b = exam()
    merge_before_fault = moved(b, lambda e: e.type == "gitops.merge", 170)
    assert grade(merge_before_fault).criterion("p2.fix_via_gitops").state == "expired"


@pytest.mark.parametrize(
    ("revisions", "state"),
    [
        (["1111111111111111111111111111111111111111", "<fix>"], "met"),  # fix in source 2
        (["<fix>"], "met"),
        (["1111111111111111111111111111111111111111"], "expired"),
    ],
)
def test_gitops_fix_synced_by_any_source_of_a_multi_source_app(
    grade, revisions: list[str], state: str
) -> None:
    """A multi-source application syncs one revision per source; the fix may be in any."""
    events = exam().events
    fix = next(e for e in events if e.type == "gitops.merge").data["commit_sha"]
    revs = [fix if r == "<fix>" else r for r in revisions]
    out = [
        Event(
            e.type,
            e.platform_id,
            e.event_id,
            e.ts_ms,
            {**e.data, "revision": revs[0], "revisions": revs},
        )
        if e.type == "argocd.sync" and e.data["revision"] == fix
        else e
        for e in events
    ]
    assert any(e.type == "argocd.sync" and e.data.get("revisions") == revs for e in out)
    assert grade(out).criterion("p2.fix_via_gitops").state == state


@pytest.mark.parametrize("event_id", ["00000000-sync", "zzzzzzzz-sync"])
def test_gitops_fix_synced_in_the_second_of_its_merge(grade, event_id: str) -> None:
    """Git hosts and Argo CD stamp whole seconds: a sync in the merge's second is after
    it, whichever event id sorts first (a real Argo CD reconciled a revert that fast)."""
    events = exam().events
    merge = next(e for e in events if e.type == "gitops.merge")
    out = [
        Event(e.type, e.platform_id, event_id, merge.ts_ms, dict(e.data))
        if e.type == "argocd.sync" and e.data["revision"] == merge.data["commit_sha"]
        else e
        for e in events
    ]
    assert grade(out).criterion("p2.fix_via_gitops").state == "met"


def test_manual_apply_during_the_incident_fails_the_fix_but_not_part1(grade) -> None:
    r = grade(exam(manual_apply=True).events)
    c = r.criterion("p2.fix_via_gitops")
    assert c.state == "failed"
    assert c.evidence
    assert r.criterion("p1.zero_manual_apply").state == "met"


@pytest.mark.parametrize(
    ("postmortem", "state", "words"),
    [
        ("good", "met", ""),
        ("blaming", "failed", "tone.blaming"),
        ("no_test", "met", ""),
        ("none", "expired", "No postmortem"),
    ],
)
def test_postmortem(grade, postmortem: str, state: str, words: str) -> None:
    c = grade(exam(postmortem=postmortem).events).criterion("p2.postmortem")
    assert c.state == state
    assert words.lower() in c.reason.lower()


def test_postmortem_without_test_or_alert_fails(grade) -> None:
    b = exam(postmortem="none")
    text = "# Postmortem\n\n## Action items\n- [ ] Write down the triage path in the runbook for on-call.\n"
    b.control("artifact.submitted", 280, part=2, kind="postmortem", content=text, uri=None)
    c = grade(b.events).criterion("p2.postmortem")
    assert c.state == "failed"
    assert "action.new_test or action.new_alert" in c.reason


def test_pattern_must_match_the_fault_layer(grade) -> None:
    # an iceberg postmortem text for a trino fault cites the wrong pattern
    b = exam(postmortem="none")
    from services.offline.scenarios import postmortem_text

    b.control(
        "artifact.submitted",
        280,
        part=2,
        kind="postmortem",
        content=postmortem_text("iceberg"),
        uri=None,
    )
    c = grade(b.events).criterion("p2.pattern_cited")
    assert c.state == "failed"
    assert "pattern.cost_based_optimisation" in c.reason


def test_part2_never_opened_expires_at_the_exam_end(grade) -> None:
    b = ExamBuilder("basecamp-alice")
    b.start()
    b.part1()
    b.part3()
    b.finish()
    r = grade(b.events)
    c = r.criterion("p2.root_cause")
    assert c.state == "expired"
    assert "never opened" in c.reason
    assert r.parts["2"].score == 0
