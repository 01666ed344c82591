"""The rubric's text criteria, read from a verdict's points (the judge's view of rubric.md).

The grading engine applies the rubric file; this module states the same rules for the
tools that show a verdict on its own (``proctor judge``, ``bench/judge.py``), so a
reader sees per criterion what the points add up to. Pure, no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from services.core.textjudge import TextKind, TextVerdict

State = Literal["met", "partial", "failed", "pending"]

#: Which pattern a postmortem must cite for the fault's layer (rubric p2.pattern_cited).
EXPECTED_PATTERNS: Mapping[str, frozenset[str]] = {
    "cache": frozenset({"pattern.caching"}),
    "trino": frozenset({"pattern.cost_based_optimisation"}),
    "iceberg": frozenset({"pattern.snapshot_plus_delta"}),
    "dbt": frozenset({"pattern.schema_on_read_vs_write", "pattern.testing"}),
    "spark_airflow": frozenset({"pattern.backfill_idempotent_partitions"}),
    "cdc": frozenset({"pattern.stream_processing", "pattern.exactly_once"}),
}

#: Fault kind -> layer, from the rubric's list of fault kinds by layer.
FAULT_LAYERS: Mapping[str, str] = {
    "stale_cache": "cache",
    "dynamic_filtering_off": "trino",
    "wrong_join_order": "trino",
    "stale_statistics": "trino",
    "stale_snapshot": "iceberg",
    "unmerged_branch": "iceberg",
    "compaction_race": "iceberg",
    "model_regressed": "dbt",
    "test_missing": "dbt",
    "wrong_backfill_partition": "spark_airflow",
    "dropped_events": "cdc",
    "lost_messages": "cdc",
}

CRITERIA: Mapping[TextKind, tuple[str, ...]] = {
    "design_review": ("p3.issues_found", "p3.alternatives", "p3.patterns_cited", "p3.senior_tone"),
    "postmortem": ("p2.postmortem", "p2.pattern_cited"),
}

#: Points of a partial criterion (issues_found at 3 of 5) are worth this share.
PARTIAL_SHARE = 0.5


@dataclass(frozen=True, slots=True)
class CriterionResult:
    """One text criterion: its state, the points that decided it, and why in one sentence."""

    criterion: str
    state: State
    points: tuple[str, ...]
    reason: str

    @property
    def score(self) -> float:
        return {"met": 1.0, "partial": PARTIAL_SHARE}.get(self.state, 0.0)


def _count(points: frozenset[str], prefix: str) -> tuple[str, ...]:
    return tuple(sorted(p for p in points if p.startswith(prefix)))


def evaluate(
    kind: TextKind, points: frozenset[str], fault_layer: str | None = None
) -> tuple[CriterionResult, ...]:
    """The states of the text criteria of ``kind`` given the points a text makes."""
    if kind == "design_review":
        return _design_review(points)
    return _postmortem(points, fault_layer)


def evaluate_verdict(
    verdict: TextVerdict, fault_layer: str | None = None
) -> tuple[CriterionResult, ...]:
    return evaluate(verdict.kind, verdict.points(), fault_layer)


def _design_review(points: frozenset[str]) -> tuple[CriterionResult, ...]:
    issues = _count(points, "issue.")
    n = len(issues)
    issues_state: State = "met" if n >= 4 else "partial" if n == 3 else "failed"
    alts = _count(points, "alternative.")
    pats = _count(points, "pattern.")
    tone = tuple(
        p for p in ("tone.opens_positive", "tone.proposes", "tone.gatekeeping") if p in points
    )
    tone_ok = (
        "tone.opens_positive" in points
        and "tone.proposes" in points
        and "tone.gatekeeping" not in points
    )
    missing_tone = [
        label
        for label, ok in (
            ("does not open with what the design gets right", "tone.opens_positive" in points),
            ("proposes nothing", "tone.proposes" in points),
            ("gatekeeps", "tone.gatekeeping" not in points),
        )
        if not ok
    ]
    return (
        CriterionResult(
            "p3.issues_found",
            issues_state,
            issues,
            f"{n} of the 5 deliberate issues identified (4 needed, 3 is partial)",
        ),
        CriterionResult(
            "p3.alternatives",
            "met" if len(alts) >= 2 else "failed",
            alts,
            f"{len(alts)} alternatives proposed with a trade-off (2 needed)",
        ),
        CriterionResult(
            "p3.patterns_cited",
            "met" if len(pats) >= 4 else "failed",
            pats,
            f"{len(pats)} patterns used in an argument (4 needed)",
        ),
        CriterionResult(
            "p3.senior_tone",
            "met" if tone_ok else "failed",
            tone,
            "opens with credit, proposes, does not gatekeep"
            if tone_ok
            else "the review " + ", ".join(missing_tone),
        ),
    )


def _postmortem(points: frozenset[str], fault_layer: str | None) -> tuple[CriterionResult, ...]:
    has_items = "postmortem.action_items" in points
    has_guard = "action.new_test" in points or "action.new_alert" in points
    blameless = "tone.blameless" in points and "tone.blaming" not in points
    used = tuple(
        p
        for p in (
            "postmortem.action_items",
            "action.new_test",
            "action.new_alert",
            "tone.blameless",
            "tone.blaming",
        )
        if p in points
    )
    gaps = [
        label
        for label, ok in (
            ("has no concrete action items", has_items),
            ("adds no new test or alert", has_guard),
            ("is not written blamelessly", blameless),
        )
        if not ok
    ]
    pm = CriterionResult(
        "p2.postmortem",
        "met" if not gaps else "failed",
        used,
        "action items, a new test or alert among them, blameless"
        if not gaps
        else "the postmortem " + ", ".join(gaps),
    )
    cited = _count(points, "pattern.")
    if fault_layer is None:
        pc = CriterionResult(
            "p2.pattern_cited",
            "pending",
            cited,
            "the fault layer is unknown, so the expected pattern is too (give --fault-layer)",
        )
    else:
        expected = EXPECTED_PATTERNS[fault_layer]
        hit = tuple(sorted(expected & set(cited)))
        pc = CriterionResult(
            "p2.pattern_cited",
            "met" if hit else "failed",
            hit or cited,
            f"cites {', '.join(hit)} for the {fault_layer} layer"
            if hit
            else f"does not cite {' or '.join(sorted(expected))}, the pattern of the {fault_layer} layer",
        )
    return (pm, pc)


#: (weight, partial credit) per text criterion; the bench passes the rubric file's values.
Weights = Mapping[str, tuple[float, float]]


def total_pct(results: tuple[CriterionResult, ...], weights: Weights | None = None) -> float:
    """Share of the text criteria's points earned, in percent.

    With ``weights`` (criterion -> (weight, partial credit), as in the rubric file) the
    criteria count by weight; without, equally, with partial worth half.
    """
    graded = [r for r in results if r.state != "pending"]
    if not graded:
        return 0.0
    w = weights or {}
    total = sum(w.get(r.criterion, (1.0, PARTIAL_SHARE))[0] for r in graded)
    if total <= 0:
        return 0.0
    earned = 0.0
    for r in graded:
        weight, partial = w.get(r.criterion, (1.0, PARTIAL_SHARE))
        earned += weight * (1.0 if r.state == "met" else partial if r.state == "partial" else 0.0)
    return 100.0 * earned / total
