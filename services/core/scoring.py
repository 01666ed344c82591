"""Scores, part totals, overall verdicts and the review flag: the same for engine and oracle.

Met earns the weight, partial the criterion's partial_credit share of it, everything
else nothing. An ``unknown`` criterion is left out of its part's max score as well: the
grader was blind, so the percentage neither punishes nor rewards the candidate for
it; the exam is flagged for review instead.
"""

from __future__ import annotations

from collections.abc import Sequence

from services.core.context import ExamContext
from services.core.model import OVERALL_PART, CriterionResult, ExamResult, Outcome, PartScore
from services.core.review import review_notes
from services.core.rubric import CriterionSpec, Rubric
from services.core.rules.base import OverallRule


def score(spec: CriterionSpec, out: Outcome) -> CriterionResult:
    if out.state == "met":
        points = spec.weight
    elif out.state == "partial":
        points = spec.weight * spec.partial_credit
    else:
        points = 0.0
    return CriterionResult(
        criterion_id=spec.criterion_id,
        part=spec.part,
        state=out.state,
        score=round(points, 4),
        max_score=spec.weight,
        reason=out.reason,
        evidence=tuple(dict.fromkeys(out.evidence)),
        decided_ms=out.decided_ms,
        confidence=out.confidence,
        review=out.review,
    )


def part_scores(
    rubric: Rubric, results: Sequence[CriterionResult]
) -> tuple[dict[str, PartScore], float]:
    """Per part score and max, and the total percentage (unknown criteria left out of max)."""
    parts: dict[str, PartScore] = {}
    total = top = 0.0
    for part in rubric.parts:
        rs = [r for r in results if r.part == part.part_id]
        s = sum(r.score for r in rs)
        m = sum(r.max_score for r in rs if r.state != "unknown")
        parts[part.part_id] = PartScore(round(s, 4), round(m, 4))
        total += s
        top += m
    pct = round(100.0 * total / top, 2) if top > 0 else 0.0
    return parts, pct


def with_overall(
    rubric: Rubric, ctx: ExamContext, base: Sequence[CriterionResult | None], now: int
) -> tuple[list[CriterionResult], dict[str, PartScore], float]:
    """Fill in the overall verdicts (``None`` slots of ``base``) in rubric order."""
    scored = [r for r in base if r is not None]
    parts, pct = part_scores(rubric, scored)
    by_id = {r.criterion_id: r for r in scored}
    out: list[CriterionResult] = []
    for spec, rule, r in zip(rubric.criteria, rubric.rules, base, strict=True):
        if r is None:
            assert isinstance(rule, OverallRule)
            r = score(spec, rule.decide_overall(rubric, by_id, pct, ctx, now))
            by_id[spec.criterion_id] = r
        out.append(r)
    return out, parts, pct


def review_reasons(
    ctx: ExamContext, results: Sequence[CriterionResult], extra: Sequence[str] = ()
) -> tuple[str, ...]:
    reasons = list(ctx.conflicts) + list(extra)
    unknown = [r.criterion_id for r in results if r.state == "unknown" and r.part != OVERALL_PART]
    if unknown:
        reasons.append(f"grader was blind for {', '.join(unknown)}")
    return tuple(reasons)


def exam_result(
    rubric: Rubric,
    ctx: ExamContext,
    results: Sequence[CriterionResult],
    parts: dict[str, PartScore],
    pct: float,
    extra_review: Sequence[str] = (),
) -> ExamResult:
    passed = any(r.criterion_id == rubric.pass_criterion and r.state == "met" for r in results)
    return ExamResult(
        exam_id=ctx.exam_id,
        candidate_id=ctx.candidate_id,
        platform_id=ctx.platform_id,
        rubric_id=rubric.rubric_id,
        rubric_version=rubric.version,
        started_ms=ctx.start_ms or 0,
        ended_ms=ctx.end_ms,
        criteria=tuple(results),
        parts=parts,
        total_pct=pct,
        passed=passed,
        review=review_reasons(ctx, results, extra_review),
        notes=review_notes(ctx.conflicts, results, extra_review),
    )


def unusable_result(ctx: ExamContext, error: str) -> ExamResult:
    """An exam that could not be graded (unknown rubric): reported, never dropped."""
    return ExamResult(
        exam_id=ctx.exam_id,
        candidate_id=ctx.candidate_id,
        platform_id=ctx.platform_id,
        rubric_id=ctx.rubric_id,
        rubric_version=ctx.rubric_version,
        started_ms=ctx.start_ms or 0,
        ended_ms=ctx.end_ms,
        criteria=(),
        parts={},
        total_pct=0.0,
        passed=False,
        review=(error,),
        error=error,
    )
