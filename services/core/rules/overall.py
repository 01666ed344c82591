"""Overall verdicts: a part passed, the exam passed, the self grade agrees."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from pydantic import Field

from services.core.context import ExamContext
from services.core.model import CriterionResult, Outcome, State
from services.core.rules.base import OverallRule, Params
from services.core.rules.registry import register

if TYPE_CHECKING:
    from services.core.rubric import Rubric


class AllMetParams(Params):
    #: every criterion of this part ...
    part: str | None = None
    #: ... and/or these criteria
    criteria: tuple[str, ...] = ()


#: how a combination reads its inputs: the first state present wins
_PRECEDENCE: tuple[State, ...] = ("failed", "expired", "pending", "unknown", "partial")


@register
class AllMet(OverallRule[AllMetParams]):
    """Met when every input is met. Otherwise the worst input decides: failed, expired,
    pending (could still be met), unknown (a collector was blind), partial."""

    kind = "all_met"
    params_model = AllMetParams

    def inputs(self, rubric: Rubric) -> list[str]:
        ids = [
            c.criterion_id
            for c in rubric.criteria
            if self.p.part is not None and c.part == self.p.part
        ]
        return ids + [c for c in self.p.criteria if c not in ids]

    def check(self, rubric: Rubric) -> list[str]:
        problems = []
        if self.p.part is not None and rubric.part(self.p.part) is None:
            problems.append(f"part {self.p.part!r} does not exist")
        order = [c.criterion_id for c in rubric.criteria]
        me = order.index(self.spec.criterion_id)
        for cid in self.p.criteria:
            if cid not in order:
                problems.append(f"criterion {cid!r} does not exist")
            elif order.index(cid) >= me:
                problems.append(
                    f"criterion {cid!r} must come before {self.spec.criterion_id} in the file"
                )
        if self.p.part is None and not self.p.criteria:
            problems.append("name a part or criteria")
        return problems

    def decide_overall(
        self,
        rubric: Rubric,
        results: Mapping[str, CriterionResult],
        total_pct: float,
        ctx: ExamContext,
        now: int,
    ) -> Outcome:
        rs = [results[c] for c in self.inputs(rubric) if c in results]
        state: State
        for state in _PRECEDENCE:
            hit = [r for r in rs if r.state == state]
            if hit:
                names = ", ".join(r.criterion_id for r in hit[:4]) + (
                    ", ..." if len(hit) > 4 else ""
                )
                verb = {
                    "failed": "failed",
                    "expired": "expired",
                    "pending": "not decided yet",
                    "unknown": "unknown (a collector was blind)",
                    "partial": "only partly met",
                }[state]
                evidence = tuple(e for r in hit[:4] for e in r.evidence[:2])
                return Outcome(
                    state, f"{len(hit)} of {len(rs)} criteria {verb}: {names}.", evidence
                )
        decided = max((r.decided_ms for r in rs if r.decided_ms is not None), default=None)
        return Outcome("met", f"All {len(rs)} criteria are met.", (), decided)


class SelfGradeParams(Params):
    tolerance_pct: float = Field(default=10.0, ge=0)


@register
class SelfGradeAgreement(OverallRule[SelfGradeParams]):
    """The candidate's self grade is within the tolerance of the service's total."""

    kind = "self_grade_agreement"
    params_model = SelfGradeParams

    def decide_overall(
        self,
        rubric: Rubric,
        results: Mapping[str, CriterionResult],
        total_pct: float,
        ctx: ExamContext,
        now: int,
    ) -> Outcome:
        grades = [g for g in ctx.self_grades if ctx.end_ms is None or g.ts_ms <= ctx.end_ms]
        if ctx.clocked:  # a self grade is read when the exam's clock reaches it
            grades = [g for g in grades if g.ts_ms <= now]
        if not grades:
            if ctx.end_ms is not None and now >= ctx.end_ms:
                return Outcome(
                    "expired", "No self grade was submitted before the exam ended.", (), ctx.end_ms
                )
            return Outcome("pending", "No self grade submitted yet.")
        g = grades[-1]
        diff = abs(g.score_pct - total_pct)
        state: State = "met" if diff <= self.p.tolerance_pct else "failed"
        word = "within" if state == "met" else "further than"
        return Outcome(
            state,
            f"Self grade {g.score_pct:.1f}% vs graded {total_pct:.1f}%: {diff:.1f} points apart, "
            f"{word} {self.p.tolerance_pct:g}.",
            (g.event_id,),
            g.ts_ms,
        )
