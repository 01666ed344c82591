"""Segmentation of markdown into sentences, and points -> text criterion states."""

from __future__ import annotations

import pytest

from services.judge.criteria import EXPECTED_PATTERNS, FAULT_LAYERS, evaluate, total_pct
from services.judge.segment import segment, split_sentences

pytestmark = pytest.mark.unit


def test_split_keeps_abbreviations_decimals_and_versions() -> None:
    text = (
        "Use stats, e.g. ANALYZE on orders. Trino 4.5 is fine vs. the old one. It took 15:00. Done?"
    )
    assert split_sentences(text) == [
        "Use stats, e.g. ANALYZE on orders.",
        "Trino 4.5 is fine vs. the old one.",
        "It took 15:00.",
        "Done?",
    ]


def test_headings_bullets_tables_and_labels_are_kept_apart() -> None:
    text = (
        "# Review\n\nThanks Sam. The RFC is clear.\n\n"
        "Alternatives:\n- Cache results; stale reads.\n- **Tune Trino**: run ANALYZE.\n\n"
        "| Option | Trade-off |\n| --- | --- |\n| MV | lags |\n\n"
        "Root cause. The cache had no link to the table.\n"
    )
    sents = segment(text)
    kinds = [(s.kind, s.text) for s in sents]
    assert kinds[0] == ("heading", "Review")
    assert ("paragraph", "Thanks Sam.") in kinds and ("paragraph", "The RFC is clear.") in kinds
    bullet = next(s for s in sents if s.text.startswith("Cache results"))
    assert bullet.kind == "bullet" and bullet.section == "alternatives"
    tune = next(s for s in sents if s.text.startswith("Tune Trino"))
    assert tune.label == "tune trino" and tune.body == "run analyze."
    row = next(s for s in sents if s.kind == "table_row")
    assert row.text == "MV | lags"
    cause = next(s for s in sents if s.text.startswith("The cache had"))
    assert cause.label == "root cause"
    assert all(s.index == i for i, s in enumerate(sents))


def test_a_pseudo_heading_scopes_only_its_list() -> None:
    text = "Alternatives:\n- Cache results; stale.\n\nPatterns: caching trades freshness for speed."
    after = next(s for s in segment(text) if s.text.startswith("Patterns"))
    assert after.section == ""


def test_fenced_code_is_ignored() -> None:
    sents = segment("Intro sentence.\n\n```\nSELECT * FROM orders;\n```\n\nOutro sentence.")
    assert [s.text for s in sents] == ["Intro sentence.", "Outro sentence."]


def test_issues_found_thresholds() -> None:
    three = frozenset({"issue.slow_not_trino", "issue.no_cost_projection", "issue.no_exit_plan"})
    four = three | {"issue.no_ml_story"}
    assert evaluate("design_review", three)[0].state == "partial"
    assert evaluate("design_review", four)[0].state == "met"
    assert evaluate("design_review", frozenset({"issue.no_ml_story"}))[0].state == "failed"


def test_senior_tone_fails_on_gatekeeping_even_with_a_positive_opening() -> None:
    points = frozenset({"tone.opens_positive", "tone.proposes", "tone.gatekeeping"})
    tone = evaluate("design_review", points)[3]
    assert (
        tone.criterion == "p3.senior_tone" and tone.state == "failed" and "gatekeeps" in tone.reason
    )


def test_postmortem_needs_items_a_guard_and_blamelessness() -> None:
    ok = frozenset({"postmortem.action_items", "action.new_alert", "tone.blameless"})
    assert evaluate("postmortem", ok, "cache")[0].state == "met"
    assert evaluate("postmortem", ok | {"tone.blaming"}, "cache")[0].state == "failed"
    assert evaluate("postmortem", ok - {"action.new_alert"}, "cache")[0].state == "failed"


@pytest.mark.parametrize(
    ("layer", "pattern"), [(k, sorted(v)[0]) for k, v in EXPECTED_PATTERNS.items()]
)
def test_pattern_cited_follows_the_fault_layer(layer: str, pattern: str) -> None:
    assert evaluate("postmortem", frozenset({pattern}), layer)[1].state == "met"
    other = next(
        p for ps in EXPECTED_PATTERNS.values() for p in ps if p not in EXPECTED_PATTERNS[layer]
    )
    assert evaluate("postmortem", frozenset({other}), layer)[1].state == "failed"


def test_pattern_cited_is_pending_without_a_layer_and_every_kind_has_one() -> None:
    assert evaluate("postmortem", frozenset({"pattern.caching"}), None)[1].state == "pending"
    assert set(FAULT_LAYERS.values()) == set(EXPECTED_PATTERNS)


def test_total_pct_uses_rubric_weights_when_given() -> None:
    results = evaluate(
        "postmortem", frozenset({"pattern.caching"}), "cache"
    )  # postmortem failed, pattern met
    assert total_pct(results) == 50.0
    assert total_pct(
        results, {"p2.postmortem": (6.0, 0.5), "p2.pattern_cited": (4.0, 0.5)}
    ) == pytest.approx(40.0)
    three = evaluate(
        "design_review",
        frozenset({"issue.slow_not_trino", "issue.no_cost_projection", "issue.no_exit_plan"}),
    )
    weights = {
        "p3.issues_found": (8.0, 0.25),
        "p3.alternatives": (6.0, 0.5),
        "p3.patterns_cited": (4.0, 0.5),
        "p3.senior_tone": (4.0, 0.5),
    }
    assert total_pct(three, weights) == pytest.approx(100 * 2 / 22)


def test_total_pct_counts_partial_as_half_and_skips_pending() -> None:
    results = evaluate(
        "design_review",
        frozenset({"issue.slow_not_trino", "issue.no_cost_projection", "issue.no_exit_plan"}),
    )
    assert total_pct(results) == pytest.approx(12.5)
    pending = evaluate(
        "postmortem",
        frozenset({"postmortem.action_items", "action.new_test", "tone.blameless"}),
        None,
    )
    assert total_pct(pending) == 100.0
