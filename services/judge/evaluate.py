"""Precision and recall of a judge against the labelled corpus, per criterion and point family.

Shared by ``bench/judge.py`` (the table) and the held-out regression test (the floor), so
the number quoted and the number guarded are computed the same way.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from services.core.rubric import Rubric
from services.core.textjudge import TextJudge, TextVerdict
from services.judge.corpus import LabelledText
from services.judge.criteria import CRITERIA, Weights, evaluate, total_pct
from services.judge.offline import DESIGN_REVIEW_POINTS, POSTMORTEM_POINTS

#: Point families reported per kind: (label, kind, prefixes or exact points).
FAMILIES: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("issue.*", "design_review", ("issue.",)),
    ("alternative.*", "design_review", ("alternative.",)),
    ("pattern.* (reviews)", "design_review", ("pattern.",)),
    ("tone.* (reviews)", "design_review", ("tone.",)),
    ("postmortem/action.*", "postmortem", ("postmortem.", "action.")),
    ("tone.* (postmortems)", "postmortem", ("tone.",)),
    ("pattern.* (postmortems)", "postmortem", ("pattern.",)),
)

#: Texts whose text-criteria total is within this many points of the labels' total agree.
AGREEMENT_POINTS = 10.0


@dataclass(slots=True)
class Counts:
    tp: int = 0
    fp: int = 0
    fn: int = 0
    tn: int = 0

    def add(self, predicted: bool, actual: bool) -> None:
        if predicted and actual:
            self.tp += 1
        elif predicted:
            self.fp += 1
        elif actual:
            self.fn += 1
        else:
            self.tn += 1

    @property
    def precision(self) -> float:
        """Share of claimed positives that are right (1.0 when nothing was claimed)."""
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0

    @property
    def recall(self) -> float:
        """Share of labelled positives found (1.0 when there were none)."""
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0

    @property
    def support(self) -> int:
        return self.tp + self.fn


@dataclass(frozen=True, slots=True)
class Miss:
    """A disagreement with the labels, for the error listing."""

    text_id: str
    item: str
    predicted: bool
    labelled: bool


@dataclass(slots=True)
class SplitReport:
    split: str
    texts: int = 0
    criteria: dict[str, Counts] = field(default_factory=dict)
    families: dict[str, Counts] = field(default_factory=dict)
    points: dict[str, Counts] = field(default_factory=dict)
    state_agree: dict[str, int] = field(default_factory=dict)
    state_total: dict[str, int] = field(default_factory=dict)
    total_within: int = 0
    misses: list[Miss] = field(default_factory=list)

    @property
    def agreement(self) -> float:
        return self.total_within / self.texts if self.texts else 1.0


def relevant_points(kind: str) -> frozenset[str]:
    return DESIGN_REVIEW_POINTS if kind == "design_review" else POSTMORTEM_POINTS


def score_split(
    split: str,
    texts: Sequence[LabelledText],
    verdicts: Mapping[str, TextVerdict],
    weights: Weights | None = None,
) -> SplitReport:
    """Compare ``verdicts`` (by text id) with the labels of ``texts``; totals use ``weights``."""
    rep = SplitReport(split=split)
    for names in CRITERIA.values():
        for name in names:
            rep.criteria[name] = Counts()
            rep.state_agree[name] = 0
            rep.state_total[name] = 0
    for label, _, _ in FAMILIES:
        rep.families[label] = Counts()
    for t in texts:
        rep.texts += 1
        predicted = verdicts[t.text_id].points()
        for point in sorted(relevant_points(t.kind)):
            p, a = point in predicted, point in t.points
            rep.points.setdefault(point, Counts()).add(p, a)
            for label, kind, prefixes in FAMILIES:
                if kind == t.kind and point.startswith(prefixes):
                    rep.families[label].add(p, a)
            if p != a:
                rep.misses.append(Miss(t.text_id, point, p, a))
        got = evaluate(t.kind, predicted, t.fault_layer)
        want = evaluate(t.kind, t.points, t.fault_layer)
        for g, w in zip(got, want, strict=True):
            rep.criteria[g.criterion].add(g.state == "met", w.state == "met")
            rep.state_total[g.criterion] += 1
            rep.state_agree[g.criterion] += int(g.state == w.state)
            if g.state != w.state:
                rep.misses.append(
                    Miss(
                        t.text_id,
                        f"{g.criterion}={g.state} (label {w.state})",
                        g.state == "met",
                        w.state == "met",
                    )
                )
        if abs(total_pct(got, weights) - total_pct(want, weights)) <= AGREEMENT_POINTS:
            rep.total_within += 1
    return rep


def judge_all(judge: TextJudge, texts: Iterable[LabelledText]) -> dict[str, TextVerdict]:
    return {t.text_id: judge.judge(t.kind, t.read()) for t in texts}


@dataclass(frozen=True, slots=True)
class QueueFigures:
    """The review queue at one threshold on a split, and what a proctor's review buys."""

    threshold: float
    #: (text, criterion) pairs whose confidence is under the threshold / all of them
    queued: int
    criteria: int
    #: texts with at least one queued criterion
    texts_queued: int
    #: criterion states that disagree with the labels / of those, how many were queued
    wrong: int
    wrong_queued: int
    #: share of texts whose total is within AGREEMENT_POINTS of the labels' once every
    #: queued criterion takes the labelled state (a proctor's decision)
    agreement_after_review: float

    @property
    def share(self) -> float:
        return self.queued / self.criteria if self.criteria else 0.0


def criterion_confidence(
    verdict: TextVerdict, fault_layer: str | None, rubric: Rubric
) -> dict[str, float]:
    """Each text criterion's confidence, as the grading core computes it (its rule's
    hinge points, the least confident call among them)."""
    from services.core.rules.text import TextPoints

    out: dict[str, float] = {}
    for spec, rule in zip(rubric.criteria, rubric.rules, strict=True):
        if isinstance(rule, TextPoints) and rule.p.artifact_kind == verdict.kind:
            hinges = rule.hinge_points(verdict, (fault_layer or "").lower())
            out[spec.criterion_id] = min((verdict.confidence_of(p) for p in hinges), default=1.0)
    return out


def queue_figures(
    texts: Sequence[LabelledText],
    verdicts: Mapping[str, TextVerdict],
    thresholds: Sequence[float],
    rubric: Rubric,
    weights: Weights | None = None,
) -> list[QueueFigures]:
    """The queue's size at each threshold, the errors it holds back, and the agreement
    of the totals once a proctor decided the queued criteria."""
    rows = []
    for t in texts:
        v = verdicts[t.text_id]
        got = evaluate(t.kind, v.points(), t.fault_layer)
        want = evaluate(t.kind, t.points, t.fault_layer)
        rows.append((got, want, criterion_confidence(v, t.fault_layer, rubric)))
    out: list[QueueFigures] = []
    for th in thresholds:
        queued = criteria = texts_queued = wrong = wrong_queued = within = 0
        for got, want, conf in rows:
            decided = []
            any_queued = False
            for g, w in zip(got, want, strict=True):
                criteria += 1
                held = conf.get(g.criterion, 1.0) < th
                queued += held
                any_queued |= held
                wrong += g.state != w.state
                wrong_queued += held and g.state != w.state
                decided.append(w if held else g)
            texts_queued += any_queued
            if (
                abs(total_pct(tuple(decided), weights) - total_pct(want, weights))
                <= AGREEMENT_POINTS
            ):
                within += 1
        out.append(
            QueueFigures(
                th,
                queued,
                criteria,
                texts_queued,
                wrong,
                wrong_queued,
                within / len(rows) if rows else 1.0,
            )
        )
    return out
