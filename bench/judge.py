"""Benchmark: how well the offline text judge agrees with the labelled corpus, and how fast.

For each split of corpus/judge (dev: tuned on; held_out: fixed before tuning, but looked
at during development; fresh and blind: written after a freeze, measured once, then read
for generic fixes; sealed: written after the last freeze, never read nor run while the
judge was changed, the honest figure) it prints, per rubric text criterion and per point
family, precision and recall (positive = the criterion is met / the point is made), and
the agreement of the total: the share of texts whose text-criteria total (weighted as in
rubrics/y3-final/v1.yaml, partial credit included) is within 10 points of the labels'
total. Beside it, in the same run, a naive keyword judge (a point counts when its concept
is mentioned anywhere) shows what the claim, negation and list checks buy.

Beside the agreement, the review queue (services.core.rules.text: a text criterion whose
confidence is under the threshold waits for a proctor): per split, how many criterion
decisions and texts it holds at the configured threshold (PROCTOR_REVIEW_THRESHOLD or
--threshold) and at others, how many of the states that disagree with the labels it holds,
and the agreement of the totals once a proctor decided what it held.

    .venv/bin/python bench/judge.py [--split dev|held_out|fresh|blind|sealed|all] [--points] [--errors] [--runs 5] [--threshold 0.7]

Speed: median milliseconds per text over --runs passes of the chosen splits' texts, offline
vs the keyword baseline, and the ratio.
"""

from __future__ import annotations

import argparse
import re
import statistics
import time
from collections.abc import Sequence
from typing import ClassVar

from rich.console import Console
from rich.table import Table

from services.core.textjudge import Finding, TextKind, TextVerdict
from services.judge import lexicon as lx
from services.judge.corpus import SPLITS, LabelledText, load_corpus, rubric_weights
from services.judge.evaluate import (
    AGREEMENT_POINTS,
    Counts,
    QueueFigures,
    SplitReport,
    judge_all,
    queue_figures,
    score_split,
)
from services.judge.offline import DESIGN_REVIEW_POINTS, POSTMORTEM_POINTS, OfflineJudge
from services.rubrics import resolver
from services.settings import load_settings

TARGET = 0.9


class KeywordJudge:
    """The baseline: a point counts when its concept is named anywhere in the text."""

    _EXTRA: ClassVar[dict[str, re.Pattern[str]]] = {
        "tone.opens_positive": lx.POSITIVE_OPENING,
        "tone.proposes": lx.PROPOSAL,
        "tone.gatekeeping": lx.GATEKEEPING,
        "postmortem.action_items": re.compile(r"\baction|follow ?ups?|next steps\b"),
        "action.new_test": re.compile(r"\btests?\b|expectations?"),
        "action.new_alert": lx.ALERT_ACTION,
        "tone.blameless": lx.BLAMELESS_STATED,
        "tone.blaming": lx.BLAMING,
        "issue.slow_not_trino": lx.SLOW_CAUSE,
    }

    @property
    def name(self) -> str:
        return "keyword"

    def judge(self, kind: TextKind, text: str) -> TextVerdict:
        norm = text.lower().replace("-", " ")
        allowed = DESIGN_REVIEW_POINTS if kind == "design_review" else POSTMORTEM_POINTS
        patterns = {**lx.ISSUE_TOPIC, **lx.ALT_TOPIC, **lx.PATTERN_TOPIC, **self._EXTRA}
        found = tuple(
            Finding(point, (m.group(0),), "keyword present")
            for point, q in sorted(patterns.items())
            if point in allowed and (m := q.search(norm))
        )
        return TextVerdict(kind=kind, judge=self.name, findings=found)


def _fmt(c: Counts) -> str:
    """'P / R  (labelled positives / claimed)'; figures under the target in red."""

    def mark(v: float) -> str:
        return f"{v:.2f}" if v >= TARGET else f"[red]{v:.2f}[/red]"

    return f"{mark(c.precision)} / {mark(c.recall)}  ({c.support}/{c.tp + c.fp})"


def _table(title: str, reports: Sequence[tuple[str, SplitReport]], points: bool) -> Table:
    t = Table(
        title=title, caption="cells: precision / recall  (labelled positives / claimed positives)"
    )
    t.add_column("item")
    for name, rep in reports:
        t.add_column(f"{name} ({rep.texts} texts)", justify="right")
    first = reports[0][1]
    sections: list[tuple[str, list[str]]] = [
        ("criterion", list(first.criteria)),
        ("family", list(first.families)),
    ]
    if points:
        sections.append(("point", sorted(first.points)))
    for kind, names in sections:
        for name in names:
            row = [f"{kind}: {name}"]
            for _, rep in reports:
                source = {"criterion": rep.criteria, "family": rep.families, "point": rep.points}[
                    kind
                ]
                row.append(_fmt(source.get(name, Counts())))
            t.add_row(*row)
        t.add_section()
    t.add_row(
        f"agreement: total within {AGREEMENT_POINTS:.0f} points",
        *(f"{rep.agreement:.2f}  ({rep.total_within}/{rep.texts})" for _, rep in reports),
    )
    cells = []
    for _, rep in reports:
        agree, total = sum(rep.state_agree.values()), sum(rep.state_total.values())
        cells.append(f"{agree / total:.2f}  ({agree}/{total})" if total else "-")
    t.add_row("criterion state exact (incl. partial)", *cells)
    return t


def _queue_table(
    judge: str,
    configured: float,
    figures: Sequence[tuple[str, int, list[QueueFigures]]],
    base: dict[str, float],
) -> Table:
    t = Table(
        title=f"review queue of judge={judge} (configured threshold {configured:.2f})",
        caption="queued: criterion decisions under the threshold (texts with one); caught: "
        "states that disagree with the labels and were queued; after review: totals within "
        f"{AGREEMENT_POINTS:.0f} points once a proctor decided the queued ones",
    )
    for col in (
        "split",
        "agreement without review",
        "threshold",
        "queued decisions",
        "texts queued",
        "caught / wrong",
        "agreement after review",
    ):
        t.add_column(col, justify="right")
    for split, n_texts, rows in figures:
        for q in rows:
            mark = " (configured)" if q.threshold == configured else ""
            t.add_row(
                split,
                f"{base[split]:.2f}",
                f"{q.threshold:.2f}{mark}",
                f"{q.queued}/{q.criteria} ({q.share:.0%})",
                f"{q.texts_queued}/{n_texts}",
                f"{q.wrong_queued}/{q.wrong}",
                f"{q.agreement_after_review:.2f}",
            )
        t.add_section()
    return t


def _median_ms_per_text(
    judge: OfflineJudge | KeywordJudge, texts: Sequence[LabelledText], runs: int
) -> float:
    bodies = [(t.kind, t.read()) for t in texts]
    per_text = []
    for _ in range(runs):
        start = time.perf_counter()
        for kind, body in bodies:
            judge.judge(kind, body)
        per_text.append((time.perf_counter() - start) * 1000 / len(bodies))
    return statistics.median(per_text)


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--split", choices=(*SPLITS, "all"), default="all")
    ap.add_argument("--points", action="store_true", help="also one row per point")
    ap.add_argument("--errors", action="store_true", help="list each disagreement with the labels")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument(
        "--threshold",
        type=float,
        default=None,
        help="review threshold [PROCTOR_REVIEW_THRESHOLD, else 0.7]; 0.5, 0.8 and 0.95 beside it (the margins score 0.55, 0.75, 0.9, 0.95)",
    )
    args = ap.parse_args()
    configured = (
        args.threshold if args.threshold is not None else load_settings().judge.review_threshold
    )
    thresholds = sorted({configured, 0.5, 0.8, 0.95})
    rubric = resolver()("y3-final", "1")

    console = Console(width=200)
    corpus = load_corpus()
    weights = rubric_weights()
    wanted = SPLITS if args.split == "all" else (args.split,)
    splits = tuple(split for split in wanted if any(t.split == split for t in corpus))
    for split in sorted(set(wanted) - set(splits), key=wanted.index):
        console.print(f"split {split!r} has no labelled texts yet; left out")
    if not splits:
        return
    chosen = [t for t in corpus if t.split in splits]
    for judge in (OfflineJudge(), KeywordJudge()):
        reports = []
        queues = []
        for split in splits:
            texts = [t for t in corpus if t.split == split]
            verdicts = judge_all(judge, texts)
            reports.append((split, score_split(split, texts, verdicts, weights)))
            queues.append(
                (split, len(texts), queue_figures(texts, verdicts, thresholds, rubric, weights))
            )
        console.print(
            _table(
                f"judge={judge.name} vs corpus labels (target P and R >= {TARGET})",
                reports,
                args.points,
            )
        )
        if judge.name == "offline":
            agreement = {split: rep.agreement for split, rep in reports}
            console.print(_queue_table(judge.name, configured, queues, agreement))
        if args.errors and judge.name == "offline":
            for split, rep in reports:
                for m in rep.misses:
                    console.print(
                        f"  {split:8} {'FP' if m.predicted else 'FN'} {m.text_id} {m.item}"
                    )
    offline_ms = _median_ms_per_text(OfflineJudge(), chosen, args.runs)
    keyword_ms = _median_ms_per_text(KeywordJudge(), chosen, args.runs)
    console.print(
        f"speed over {len(chosen)} texts, median of {args.runs} runs: offline {offline_ms:.2f} ms/text, "
        f"keyword baseline {keyword_ms:.2f} ms/text, ratio {offline_ms / keyword_ms:.1f}x"
    )


if __name__ == "__main__":
    main()
