"""Part 2 rules: the diagnosis of the injected fault and its fix through GitOps."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import Field

from services.core.context import Diagnosis, ExamContext, Fault
from services.core.facts.base import FactSpec
from services.core.facts.keyed import Earliest, EarliestSpec, KeyRule
from services.core.matching import clock, norm
from services.core.model import Outcome
from services.core.rules.base import Params, Query, Rule, met, pending
from services.core.rules.governance import ManualApplyParams, first_manual_apply, same_commit
from services.core.rules.registry import register
from services.core.where import Cond

if TYPE_CHECKING:
    from services.core.rubric import CriterionSpec


def first_answer(ctx: ExamContext, close_ms: int) -> tuple[Fault | None, Diagnosis | None]:
    """The fault and the first diagnosis of it submitted between the fault and the close.

    A diagnosis without a fault id answers the exam's (only) fault; one naming another
    fault id answers something else and is not graded here.
    """
    fault = ctx.fault
    if fault is None:
        return None, None
    return fault, ctx.diagnoses.first(fault.fault_id, fault.ts_ms, close_ms)


def first_right(ctx: ExamContext, fault: Fault, close_ms: int) -> Diagnosis | None:
    """The first diagnosis of the fault, in the same range, that names its layer and kind."""
    return ctx.diagnoses.first_naming(
        fault.fault_id, fault.layer, fault.kind, fault.ts_ms, close_ms
    )


def grade(d: Diagnosis, fault: Fault) -> str:
    """ "right" (layer and kind), "layer" (layer only) or "wrong"."""
    if norm(d.layer) != norm(fault.layer):
        return "wrong"
    return "right" if norm(d.kind) == norm(fault.kind) else "layer"


class RootCauseParams(Params):
    #: layers that name the symptom, not a cause (the reason says so)
    symptom_layers: tuple[str, ...] = ("superset", "dashboard")


@register
class RootCause(Rule[RootCauseParams]):
    """Judged on the first answer: layer and kind met, layer only partial, else failed.

    A wrong first answer can recover to partial with a later right one (the rubric
    says so); it cannot become met, so guessing until right does not pay.
    """

    kind = "root_cause"
    params_model = RootCauseParams
    blind_sensitive = False

    def decide(self, q: Query) -> Outcome:
        fault, first = first_answer(q.ctx, q.close_ms)
        if fault is None:
            return pending("No fault.injected yet.")
        if first is None:
            return pending(f"No diagnosis of the fault injected at {clock(fault.ts_ms)} yet.")
        g = grade(first, fault)
        said = f"{first.layer}/{first.kind}"
        if g == "right":
            return met(
                f"The first diagnosis named the injected layer and kind ({said}) at {clock(first.ts_ms)}.",
                (first.event_id,),
                first.ts_ms,
            )
        if g == "layer":
            return Outcome(
                "partial",
                f"The first diagnosis named the right layer {first.layer} but the kind {first.kind}, not {fault.kind}.",
                (first.event_id,),
                first.ts_ms,
            )
        later = first_right(q.ctx, fault, q.close_ms)  # not the first: it was not right
        symptom = norm(first.layer) in {norm(s) for s in self.p.symptom_layers}
        blamed = "blamed the symptom" if symptom else "named the wrong layer"
        if later is not None:
            return Outcome(
                "partial",
                f"The first diagnosis {blamed} ({said}); a later one at {clock(later.ts_ms)} got "
                f"{fault.layer}/{fault.kind} right.",
                (first.event_id, later.event_id),
                later.ts_ms,
            )
        return Outcome(
            "failed",
            f"The first diagnosis {blamed} ({said}); the fault was {fault.layer}/{fault.kind}.",
            (first.event_id,),
            first.ts_ms,
        )


class OnTimeParams(Params):
    within_minutes: int = Field(default=90, gt=0)


@register
class RootCauseOnTime(Rule[OnTimeParams]):
    """A right diagnosis within N minutes of the fault; a later right one is partial (a signal)."""

    kind = "root_cause_on_time"
    params_model = OnTimeParams
    blind_sensitive = False

    def decide(self, q: Query) -> Outcome:
        fault = q.ctx.fault
        if fault is None:
            return pending("No fault.injected yet.")
        right = first_right(q.ctx, fault, q.close_ms)
        due = fault.ts_ms + self.p.within_minutes * 60_000
        if right is None:
            return pending(f"No right diagnosis yet (due by {clock(due)}).")
        minutes = (right.ts_ms - fault.ts_ms) / 60_000
        if right.ts_ms <= due:
            return met(
                f"Root cause found {minutes:.0f} minutes after the fault.",
                (right.event_id,),
                right.ts_ms,
            )
        return Outcome(
            "partial",
            f"Root cause found {minutes:.0f} minutes after the fault, later than {self.p.within_minutes}.",
            (right.event_id,),
            right.ts_ms,
        )


class GitopsFixParams(ManualApplyParams):
    phase: str = "Succeeded"
    health: str = "Healthy"


@register
class GitopsFix(Rule[GitopsFixParams]):
    """A merge after the fault, then a successful, healthy Argo CD sync of that commit,
    and no manual kubectl apply in the pipeline namespaces during the part."""

    kind = "gitops_fix"
    params_model = GitopsFixParams

    def __init__(self, spec: CriterionSpec) -> None:
        super().__init__(spec)
        self._merges = EarliestSpec("gitops.merge", (), KeyRule(("commit_sha",)))
        self._syncs = EarliestSpec(
            "argocd.sync",
            (Cond("phase", "equals", self.p.phase), Cond("health_status", "equals", self.p.health)),
            KeyRule(special="argocd_revisions"),
        )
        self._applies = self.p.fact_spec(f"part:{spec.part}")

    def facts(self) -> tuple[FactSpec, ...]:
        return (self._merges, self._syncs, self._applies)

    def decide(self, q: Query) -> Outcome:
        w = q.window
        if w is None:  # pragma: no cover - evaluate() never asks without a window
            return pending("The part has not opened.")
        close = w.close_ms
        bad = first_manual_apply(q.fact(self._applies, Earliest), q.ctx.namespaces, close)
        if bad is not None:
            ts, eid, ns = bad
            return Outcome(
                "failed",
                f"A person changed namespace {ns} with a manual kubectl apply at {clock(ts)}, during the incident.",
                (eid,),
                ts,
            )
        merges = [
            (p, sha)
            for sha, p in q.fact(self._merges, Earliest).best.items()
            if w.anchor_ms <= p[0] <= close
        ]
        if not merges:
            return pending("No merge into the GitOps repository since the fault yet.")
        syncs = q.fact(self._syncs, Earliest).best
        fixes = [
            (s, m, sha)
            for m, sha in merges
            for rev, s in syncs.items()
            if same_commit(rev, sha) and m[0] <= s[0] and s[0] <= close
        ]
        if not fixes:
            first = min(merges)
            return pending(
                f"Merged {first[1][:12]} at {clock(first[0][0])}, but no successful, healthy sync of it yet.",
                (first[0][1],),
            )
        s, m, sha = min(fixes)
        return met(
            f"Fix {sha[:12]} merged at {clock(m[0])} and synced by Argo CD (Succeeded, Healthy) at {clock(s[0])}.",
            (m[1], s[1]),
            s[0],
        )
