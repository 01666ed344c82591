"""The labelled corpus is well-formed, and the judge keeps its measured agreement with it.

The floors sit a little below the figures bench/judge.py measured; they guard against a
regression, they are not a target. See corpus/judge/README.md for what each split means.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from services.errors import JudgeError
from services.judge.corpus import load_corpus, rubric_weights
from services.judge.evaluate import SplitReport, judge_all, score_split
from services.judge.offline import OfflineJudge

pytestmark = pytest.mark.unit

CORPUS = load_corpus()


def test_corpus_size_kinds_and_splits() -> None:
    kinds = [t.kind for t in CORPUS]
    assert kinds.count("design_review") >= 40 and kinds.count("postmortem") >= 30
    for split in ("dev", "held_out", "fresh", "blind"):
        assert {t.kind for t in CORPUS if t.split == split} == {"design_review", "postmortem"}
    tuned = [t for t in CORPUS if t.split in ("dev", "held_out")]
    share = sum(t.split == "held_out" for t in tuned) / len(tuned)
    assert 0.28 <= share <= 0.36


def test_every_style_is_represented() -> None:
    styles = " ".join(t.style for t in CORPUS)
    for style in (
        "strong",
        "weak",
        "off-topic",
        "paraphrased",
        "keyword-stuffed",
        "hostile",
        "negated",
        "blaming",
    ):
        assert style in styles, style


def test_a_bad_label_file_is_rejected_with_the_entry_named(tmp_path: Path) -> None:
    (tmp_path / "a.md").write_text("text")
    (tmp_path / "labels.yaml").write_text(
        "texts:\n  dr01:\n    file: a.md\n    kind: design_review\n    split: dev\n    points: {issue.made_up: x}\n"
    )
    with pytest.raises(JudgeError, match=r"dr01.*issue\.made_up"):
        load_corpus(tmp_path)
    (tmp_path / "labels.yaml").write_text(
        "texts:\n  dr03:\n    file: a.md\n    kind: design_review\n    split: dev\n"
    )
    with pytest.raises(JudgeError, match=r"dr03.*breaks the rule"):
        load_corpus(tmp_path)
    (tmp_path / "labels.yaml").write_text(
        "texts:\n  pm51:\n    file: a.md\n    kind: postmortem\n    split: blind\n"
    )
    with pytest.raises(JudgeError, match=r"pm51.*breaks the rule.*sealed from dr67/pm51"):
        load_corpus(tmp_path)
    with pytest.raises(JudgeError, match="no corpus labels"):
        load_corpus(tmp_path / "missing")


def test_texts_from_dr67_and_pm51_are_sealed(tmp_path: Path) -> None:
    (tmp_path / "a.md").write_text("text")
    (tmp_path / "labels.yaml").write_text(
        "texts:\n"
        "  dr66:\n    file: a.md\n    kind: design_review\n    split: blind\n"
        "  dr67:\n    file: a.md\n    kind: design_review\n    split: sealed\n"
        "  pm51:\n    file: a.md\n    kind: postmortem\n    split: sealed\n"
        "    fault_layer: cache\n    fault_kind: stale_cache\n"
    )
    assert {t.text_id: t.split for t in load_corpus(tmp_path)} == {
        "dr66": "blind",
        "dr67": "sealed",
        "pm51": "sealed",
    }


def test_rubric_weights_come_from_the_rubric_file(tmp_path: Path) -> None:
    weights = rubric_weights()
    assert set(weights) == {
        "p2.postmortem",
        "p2.pattern_cited",
        "p3.issues_found",
        "p3.alternatives",
        "p3.patterns_cited",
        "p3.senior_tone",
    }
    assert all(w > 0 and 0 <= partial <= 1 for w, partial in weights.values())
    (tmp_path / "r.yaml").write_text("criteria:\n  - {id: p2.postmortem, weight: 6}\n")
    with pytest.raises(JudgeError, match="has no text criteria"):
        rubric_weights(tmp_path / "r.yaml")


def _report(split: str) -> SplitReport:
    texts = [t for t in CORPUS if t.split == split]
    return score_split(split, texts, judge_all(OfflineJudge(), texts), rubric_weights())


def test_held_out_precision_recall_floor() -> None:
    rep = _report("held_out")
    for name, counts in rep.criteria.items():
        assert counts.precision >= 0.9 and counts.recall >= 0.9, (name, counts)
    for name, counts in rep.families.items():
        assert counts.precision >= 0.85 and counts.recall >= 0.85, (name, counts)
    assert rep.agreement >= 0.9


def test_fresh_texts_floor() -> None:
    # Written after a first freeze; its errors were then read and fixed generically.
    rep = _report("fresh")
    for name, counts in rep.criteria.items():
        assert counts.precision >= 0.9 and counts.recall >= 0.9, (name, counts)
    assert rep.agreement >= 0.9


def test_blind_texts_floor() -> None:
    # Written after the second freeze; measured once (v3: criteria precision 1.00, recall
    # 0.50-1.00, agreement 0.72), then its errors were read and fixed generically in v4.
    rep = _report("blind")
    for name, counts in rep.criteria.items():
        assert counts.precision >= 0.9 and counts.recall >= 0.9, (name, counts)
    for name, counts in rep.families.items():
        assert counts.precision >= 0.85 and counts.recall >= 0.85, (name, counts)
    assert rep.agreement >= 0.9
