"""The interface between the grading engine and a text judge.

The engine never reads prose itself: it asks a :class:`TextJudge` which *points* a text
makes, and the rubric (data) says how many points of which family a criterion needs.
A judge reports every point with the sentences that made it, so a grade on text is
always explainable.

Point vocabulary (a judge may report only these; the rubric refers to them):

design_review
  issue.slow_not_trino, issue.no_cost_projection, issue.no_exit_plan,
  issue.no_ml_story, issue.federation_loss
  alternative.tune_trino, alternative.caching, alternative.partitioning,
  alternative.materialized_views, alternative.move_specific_workloads
  (an ``alternative.*`` point means the alternative was proposed *with* a trade-off)
  tone.opens_positive, tone.proposes, tone.gatekeeping (a negative point)
postmortem
  postmortem.action_items, action.new_test, action.new_alert,
  tone.blameless, tone.blaming (a negative point)
both
  pattern.oltp_vs_olap, pattern.lambda_vs_kappa, pattern.materialized_views,
  pattern.caching, pattern.schema_on_read_vs_write, pattern.snapshot_plus_delta,
  pattern.cardinality_as_cost, pattern.federation, pattern.cost_based_optimisation,
  pattern.backfill_idempotent_partitions, pattern.stream_processing,
  pattern.exactly_once, pattern.testing
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Protocol

TextKind = Literal["postmortem", "design_review"]

POINTS: frozenset[str] = frozenset(
    {
        "issue.slow_not_trino",
        "issue.no_cost_projection",
        "issue.no_exit_plan",
        "issue.no_ml_story",
        "issue.federation_loss",
        "alternative.tune_trino",
        "alternative.caching",
        "alternative.partitioning",
        "alternative.materialized_views",
        "alternative.move_specific_workloads",
        "tone.opens_positive",
        "tone.proposes",
        "tone.gatekeeping",
        "postmortem.action_items",
        "action.new_test",
        "action.new_alert",
        "tone.blameless",
        "tone.blaming",
        "pattern.oltp_vs_olap",
        "pattern.lambda_vs_kappa",
        "pattern.materialized_views",
        "pattern.caching",
        "pattern.schema_on_read_vs_write",
        "pattern.snapshot_plus_delta",
        "pattern.cardinality_as_cost",
        "pattern.federation",
        "pattern.cost_based_optimisation",
        "pattern.backfill_idempotent_partitions",
        "pattern.stream_processing",
        "pattern.exactly_once",
        "pattern.testing",
    }
)


@dataclass(frozen=True, slots=True)
class Finding:
    """One point a text makes, and the evidence for it."""

    point: str
    sentences: tuple[str, ...]
    why: str


@dataclass(frozen=True, slots=True)
class TextVerdict:
    """Everything a judge found in one text."""

    kind: TextKind
    judge: str
    findings: tuple[Finding, ...] = field(default_factory=tuple)
    #: Why this verdict comes from a fallback judge (the configured one failed); empty otherwise.
    fallback_reason: str = ""
    #: (point, confidence in [0, 1]) the judge gives its call on a point, made or not; a
    #: point left out is called with full confidence (a judge that states none)
    confidence: tuple[tuple[str, float], ...] = ()
    #: a text criterion decided at a confidence under this goes to a proctor's review
    #: (the grading run's threshold, stamped at the edge where the judge is configured;
    #: 0: never)
    review_below: float = 0.0
    #: sha256 of the judged text (hex), so a review names exactly what was judged
    text_digest: str = ""

    def points(self) -> frozenset[str]:
        return frozenset(f.point for f in self.findings)

    def confidence_of(self, point: str) -> float:
        """The judge's confidence in its call on ``point`` (made or not)."""
        for p, c in self.confidence:
            if p == point:
                return c
        return 1.0

    def with_prefix(self, prefix: str) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.point.startswith(prefix))


class TextJudge(Protocol):
    """Anything that can say which points a text makes. Must be deterministic and pure."""

    @property
    def name(self) -> str: ...

    def judge(self, kind: TextKind, text: str) -> TextVerdict: ...
