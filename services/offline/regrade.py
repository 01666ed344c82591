"""Regrade: the same recordings under two rubric versions, and what changed per criterion.

A rubric change is shadow-tested this way on past exams before it is published.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from services.core.model import CriterionResult, ExamResult


@dataclass(frozen=True, slots=True)
class CriterionChange:
    criterion_id: str
    before: CriterionResult | None
    after: CriterionResult | None


@dataclass(frozen=True, slots=True)
class ExamDiff:
    source: str
    exam_id: str
    platform_id: str
    candidate_id: str
    total_before: float
    total_after: float
    passed_before: bool
    passed_after: bool
    changes: tuple[CriterionChange, ...]

    @property
    def changed(self) -> bool:
        return (
            bool(self.changes)
            or self.total_before != self.total_after
            or self.passed_before != self.passed_after
        )


def _differs(a: CriterionResult | None, b: CriterionResult | None) -> bool:
    if a is None or b is None:
        return a is not b
    return (a.state, a.score, a.max_score) != (b.state, b.score, b.max_score)


def diff_exam(source: str, before: ExamResult, after: ExamResult) -> ExamDiff:
    """Criteria whose state, score or max score differ; added and removed criteria too."""
    a = {c.criterion_id: c for c in before.criteria}
    b = {c.criterion_id: c for c in after.criteria}
    order = list(a) + [k for k in b if k not in a]
    changes = tuple(
        CriterionChange(cid, a.get(cid), b.get(cid))
        for cid in order
        if _differs(a.get(cid), b.get(cid))
    )
    return ExamDiff(
        source=source,
        exam_id=before.exam_id,
        platform_id=before.platform_id,
        candidate_id=before.candidate_id,
        total_before=before.total_pct,
        total_after=after.total_pct,
        passed_before=before.passed,
        passed_after=after.passed,
        changes=changes,
    )


def diff_results(
    source: str, before: Sequence[ExamResult], after: Sequence[ExamResult]
) -> list[ExamDiff]:
    """Pair exams by (platform, exam id); both runs grade the same events, so both have them."""
    right = {(r.platform_id, r.exam_id): r for r in after}
    return [
        diff_exam(source, r, right[(r.platform_id, r.exam_id)])
        for r in before
        if (r.platform_id, r.exam_id) in right
    ]
