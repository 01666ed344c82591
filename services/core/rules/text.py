"""Text criteria: the postmortem and the design review, through the judge's points.

The engine never reads prose. The judge (see textjudge) says which points a text makes
and with which sentences; this rule only counts points against the rubric's numbers,
on the latest artifact of the kind submitted inside the part's time box (a candidate may
improve a text and submit it again).

Every outcome carries the criterion's *confidence*: the least confidence the judge gives
any point the state hangs on (the evidence margin: a count of points two or more away
from the rubric's numbers does not hang on any one of them). Under the verdict's review
threshold the state waits for a proctor (:class:`~services.core.model.TextReview`): it
still counts, and the exam shows ``review`` until a proctor confirms or overrides it.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from services.core.context import Artifact
from services.core.matching import clock, norm
from services.core.model import Outcome, State, TextReview
from services.core.rules.base import Params, Query, Rule, pending
from services.core.rules.registry import register
from services.core.textjudge import POINTS, TextVerdict


class TextPointsParams(Params):
    artifact_kind: Literal["postmortem", "design_review"]
    #: what the text must do, for reasons ("finds the design's issues")
    says: str
    #: count the points with this prefix ("issue.") ...
    count_prefix: str | None = None
    #: ... met at this many ...
    count_met: int = 1
    #: ... partial at this many (none: no partial)
    count_partial: int | None = None
    #: every one of these points
    require: tuple[str, ...] = ()
    #: at least one point of each group
    require_any: tuple[tuple[str, ...], ...] = ()
    #: any of these points fails the criterion (tone.gatekeeping, tone.blaming)
    forbid: tuple[str, ...] = ()
    #: fault layer -> points of which at least one is needed (the pattern for that layer)
    by_fault_layer: dict[str, tuple[str, ...]] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _points(self) -> TextPointsParams:
        named = set(self.require) | set(self.forbid)
        for group in self.require_any:
            named |= set(group)
        for group in self.by_fault_layer.values():
            named |= set(group)
        unknown = sorted(named - POINTS)
        if unknown:
            raise ValueError(f"unknown judge points {unknown}; see services/core/textjudge.py")
        if self.count_prefix is not None and not any(
            p.startswith(self.count_prefix) for p in POINTS
        ):
            raise ValueError(f"no judge point starts with {self.count_prefix!r}")
        if self.count_partial is not None and not 0 < self.count_partial < self.count_met:
            raise ValueError("count_partial must be between 0 and count_met")
        if self.count_prefix is None and not (named - set(self.forbid)):
            raise ValueError(
                "the criterion requires nothing: set count_prefix, require or require_any"
            )
        return self


@register
class TextPoints(Rule[TextPointsParams]):
    kind = "text_points"
    params_model = TextPointsParams
    blind_sensitive = False

    def decide(self, q: Query) -> Outcome:
        out = self._decide(q)
        art = self._latest(q)
        if art is None or art.verdict is None or out.state == "pending":
            return out
        return self._with_confidence(q, out, art, art.verdict)

    def _latest(self, q: Query) -> Artifact | None:
        w = q.window
        lo = w.anchor_ms if w is not None else 0
        arts = [
            a
            for a in q.ctx.artifacts
            if a.kind == self.p.artifact_kind and lo <= a.ts_ms <= q.close_ms
        ]
        return arts[-1] if arts else None

    def hinge_points(self, v: TextVerdict, layer: str) -> frozenset[str]:
        """The points whose call decides the state: required and forbidden ones, the
        fault layer's pattern, and a counted family only when the count is within one of
        the rubric's numbers (one point more or less would change the state)."""
        p = self.p
        out = set(p.require) | set(p.forbid)
        for g in p.require_any:
            out |= set(g)
        if p.by_fault_layer:
            out |= set(p.by_fault_layer.get(layer, ()))
        if p.count_prefix:
            n = sum(1 for x in v.points() if x.startswith(p.count_prefix))
            edges = {p.count_met} | ({p.count_partial} if p.count_partial is not None else set())
            if any(n in (e - 1, e) for e in edges):
                out |= {x for x in POINTS if x.startswith(p.count_prefix)}
        return frozenset(out)

    def _with_confidence(self, q: Query, out: Outcome, art: Artifact, v: TextVerdict) -> Outcome:
        layer = norm(q.ctx.fault.layer) if q.ctx.fault else ""
        hinges = self.hinge_points(v, layer)
        conf = round(min((v.confidence_of(x) for x in hinges), default=1.0), 4)
        cid = self.spec.criterion_id
        review: TextReview | None = None
        reason = out.reason
        if conf < v.review_below:
            confirmed = q.ctx.confirmations.get(cid)
            if confirmed is not None and confirmed.ts_ms >= art.ts_ms:
                reason = f"{reason} {confirmed.describe()}"
            else:
                state: State = out.state
                review = TextReview(
                    state, conf, v.review_below, v.judge, v.text_digest, art.event_id
                )
        return Outcome(out.state, reason, out.evidence, out.decided_ms, conf, review)

    def _decide(self, q: Query) -> Outcome:
        p = self.p
        kind = p.artifact_kind.replace("_", " ")
        w = q.window
        lo = w.anchor_ms if w is not None else 0
        arts = [
            a for a in q.ctx.artifacts if a.kind == p.artifact_kind and lo <= a.ts_ms <= q.close_ms
        ]
        if not arts:
            return pending(f"No {kind} submitted yet.")
        art = arts[-1]
        head = f"The {kind} submitted at {clock(art.ts_ms)}"
        if art.verdict is None:
            return pending(f"{head} has no verdict from the text judge yet.", (art.event_id,))
        v = art.verdict
        points = v.points()
        for bad in p.forbid:
            if bad in points:
                found = next(f for f in v.findings if f.point == bad)
                quote = f': "{found.sentences[0][:100].rstrip(".!?")}"' if found.sentences else ""
                return Outcome("failed", f"{head} shows {bad}{quote}.", (art.event_id,), art.ts_ms)
        missing = [x for x in p.require if x not in points]
        missing += [" or ".join(g) for g in p.require_any if not points & set(g)]
        if p.by_fault_layer:
            layer = norm(q.ctx.fault.layer) if q.ctx.fault else ""
            need = p.by_fault_layer.get(layer, ())
            if not points & set(need):
                missing.append(
                    " or ".join(need) if need else f"a pattern for the {layer or 'unknown'} layer"
                )
        counted = sorted(x for x in points if p.count_prefix and x.startswith(p.count_prefix))
        n = len(counted)
        short = ", ".join(x.split(".", 1)[1] for x in counted) or "none"
        count_part = (
            f"{n} '{p.count_prefix}' points of {p.count_met} needed ({short})"
            if p.count_prefix
            else ""
        )
        enough = p.count_prefix is None or n >= p.count_met
        if not missing and enough:
            what = count_part or ", ".join(sorted(set(p.require) | (points & _any(p))))
            return Outcome("met", f"{head} {p.says}: {what}.", (art.event_id,), art.ts_ms)
        lacks = f"lacks {'; '.join(missing)}" if missing else ""
        if not missing and p.count_partial is not None and n >= p.count_partial:
            return Outcome("partial", f"{head} has only {count_part}.", (art.event_id,), art.ts_ms)
        detail = "; ".join(x for x in (count_part if not enough else "", lacks) if x)
        return Outcome("failed", f"{head} falls short: {detail}.", (art.event_id,), art.ts_ms)


def _any(p: TextPointsParams) -> set[str]:
    out: set[str] = set()
    for g in p.require_any:
        out |= set(g)
    for g in p.by_fault_layer.values():
        out |= set(g)
    return out
