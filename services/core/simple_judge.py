"""A minimal, honest keyword judge: the default until the text judge of services/judge lands.

What it does: splits the text into sentences and, for each point of the vocabulary in
:mod:`services.core.textjudge`, reports the sentences in which every keyword group of
that point matched, and which words matched. What it does not do: understand
paraphrase or negation ("we do not need a cost projection" still counts for the cost
issue). Its one defence against keyword stuffing is that a sentence must have at least
``MIN_WORDS`` words, so a bare list of pattern names makes no point.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from services.core.textjudge import Finding, TextKind, TextVerdict

MIN_WORDS = 6

#: point -> keyword groups; every group must match in one sentence
RULES: dict[str, tuple[str, ...]] = {
    "issue.slow_not_trino": (
        r"\b(slow|latency|performance|speed)",
        r"(statistic|\bstats\b|compaction|small files|join order|explain|profil|not (?:the )?trino|root cause)",
    ),
    "issue.no_cost_projection": (
        r"\bcost",
        r"(project|estimat|forecast|usage|scale|bill|pric|budget)",
    ),
    "issue.no_exit_plan": (
        r"(\bDR\b|disaster recovery|exit plan|exit strategy|lock-?in|migrat|rollback|moving back|way back)",
    ),
    "issue.no_ml_story": (
        r"(\bML\b|machine learning|model training|training data|data scien|feature store)",
    ),
    "issue.federation_loss": (r"federat",),
    "alternative.tune_trino": (
        r"(tun(e|ing)|statistic|ANALYZE|join order|dynamic filtering)",
        r"trino",
        r"(trade-?off|but|however|cost|downside|at the expense|while)",
    ),
    "alternative.caching": (r"cach", r"(trade-?off|but|however|stale|invalidat|downside)"),
    "alternative.partitioning": (r"partition", r"(trade-?off|but|however|downside|cost)"),
    "alternative.materialized_views": (
        r"materiali[sz]ed views?",
        r"(trade-?off|but|however|refresh|stale|downside|cost)",
    ),
    "alternative.move_specific_workloads": (
        r"(specific|only|certain|subset of|heaviest|few) (workload|queries|dashboards|jobs)",
        r"(trade-?off|but|however|downside|cost|while)",
    ),
    "tone.proposes": (
        r"(\bI suggest|\bpropose|\bconsider|\bwhat if|\brecommend|\bcould we|\bwe could|\bhow about)",
    ),
    "tone.gatekeeping": (
        r"(obviously|you should know|any senior|unacceptable|won't approve|will not approve|this is wrong|rejected|not a real engineer|waste of)",
    ),
    "action.new_test": (
        r"(add|new|write|create|introduce)",
        r"(dbt test|great expectations|\bGE\b|expectation|not_null|unique test|accepted_values|relationships test|data test|\btest\b)",
    ),
    "action.new_alert": (r"(add|new|create|set up|introduce)", r"\balert"),
    "tone.blaming": (
        r"(\b(his|her|their|[A-Z][a-z]+'s) (fault|mistake|error)|\bblame[sd]?\b(?! ?less)|should have known|careless|incompetent|negligen)",
    ),
    "pattern.oltp_vs_olap": (r"\b(oltp|olap)\b",),
    "pattern.lambda_vs_kappa": (r"\b(lambda|kappa)\b",),
    "pattern.materialized_views": (r"materiali[sz]ed views?",),
    "pattern.caching": (r"\bcach(e|es|ing|ed)\b",),
    "pattern.schema_on_read_vs_write": (r"schema[- ]on[- ](read|write)",),
    "pattern.snapshot_plus_delta": (r"snapshot[- ](plus|\+|and)[- ]delta",),
    "pattern.cardinality_as_cost": (r"cardinality",),
    "pattern.federation": (r"federat",),
    "pattern.cost_based_optimisation": (
        r"(cost[- ]based|\bCBO\b|table statistics|stale statistics)",
    ),
    "pattern.backfill_idempotent_partitions": (r"(backfill|idempoten)",),
    "pattern.stream_processing": (r"stream[- ]processing",),
    "pattern.exactly_once": (r"exactly[- ]once",),
    "pattern.testing": (r"\b(data )?testing\b",),
}

POSITIVE = re.compile(
    r"\b(good|great|strong|solid|well|clear|right|like|appreciate|thanks|thank you|nice)\b", re.I
)
ACTION_HEADING = re.compile(r"(action items?|follow[- ]ups?|next steps|remediation)", re.I)
CHECKBOX = re.compile(r"^\s*[-*]\s*\[[ xX]\]")

KIND_POINTS: dict[str, tuple[str, ...]] = {
    "design_review": ("issue.", "alternative.", "tone.proposes", "tone.gatekeeping", "pattern."),
    "postmortem": ("action.", "tone.blaming", "pattern."),
}

_COMPILED = {p: tuple(re.compile(g, re.I) for g in gs) for p, gs in RULES.items()}


def sentences(text: str) -> list[str]:
    """Sentences of a markdown text: one per line item, split at . ! ? inside lines."""
    out: list[str] = []
    for line in text.splitlines():
        line = re.sub(r"^\s*(#+|[-*+]|\d+[.)])\s*(\[[ xX]\]\s*)?", "", line).strip()
        if not line:
            continue
        out += [s.strip() for s in re.split(r"(?<=[.!?])\s+", line) if s.strip()]
    return out


def _words(s: str) -> int:
    return len(re.findall(r"[A-Za-z0-9][\w'-]*", s))


@dataclass(frozen=True, slots=True)
class KeywordJudge:
    """The offline keyword judge (deterministic, pure)."""

    @property
    def name(self) -> str:
        return "keywords-v1"

    def judge(self, kind: TextKind, text: str) -> TextVerdict:
        sents = sentences(text)
        findings: list[Finding] = []
        prefixes = KIND_POINTS.get(kind, ())
        for point, groups in _COMPILED.items():
            if not point.startswith(prefixes):
                continue
            hits: list[str] = []
            words: set[str] = set()
            for s in sents:
                if _words(s) < MIN_WORDS:
                    continue
                ms = [g.search(s) for g in groups]
                if all(ms):
                    hits.append(s)
                    words |= {m.group(0).lower() for m in ms if m is not None}
            if hits:
                findings.append(
                    Finding(point, tuple(hits[:3]), f"matched {', '.join(sorted(words))}")
                )
        found = {f.point for f in findings}
        if kind == "design_review":
            opening = [s for s in sents[:2] if _words(s) >= MIN_WORDS and POSITIVE.search(s)]
            if opening:
                findings.append(
                    Finding(
                        "tone.opens_positive",
                        (opening[0],),
                        "a positive word in the first two sentences",
                    )
                )
        else:
            items = [
                ln.strip()
                for ln in text.splitlines()
                if ACTION_HEADING.search(ln) or CHECKBOX.match(ln)
            ]
            if items:
                findings.append(
                    Finding(
                        "postmortem.action_items",
                        tuple(items[:3]),
                        "an action-item heading or checkbox",
                    )
                )
            if "tone.blaming" not in found:
                findings.append(Finding("tone.blameless", (), "no sentence blames a person"))
        return TextVerdict(
            kind=kind, judge=self.name, findings=tuple(sorted(findings, key=lambda f: f.point))
        )
