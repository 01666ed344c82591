"""Behaviour of the offline judge through its public interface: what counts as a point."""

from __future__ import annotations

import pytest

from services.core.textjudge import POINTS, TextVerdict
from services.judge.corpus import load_corpus
from services.judge.offline import DESIGN_REVIEW_POINTS, POSTMORTEM_POINTS, OfflineJudge

pytestmark = pytest.mark.unit

JUDGE = OfflineJudge()


def review(text: str) -> TextVerdict:
    return JUDGE.judge("design_review", text)


def postmortem(text: str) -> TextVerdict:
    return JUDGE.judge("postmortem", text)


@pytest.mark.parametrize(
    ("text", "point"),
    [
        (
            "Nobody has looked at the query plan yet, so we cannot tell whether Trino is the bottleneck.",
            "issue.slow_not_trino",
        ),
        (
            "A service that charges for every query gets more expensive as the dashboards succeed, and the RFC gives no number.",
            "issue.no_cost_projection",
        ),
        (
            "If the vendor doubles its price, what is our way back to the lakehouse? The RFC does not say.",
            "issue.no_exit_plan",
        ),
        (
            "What happens to the data scientists who train models on these tables?",
            "issue.no_ml_story",
        ),
        (
            "The proposal would drop the ability to query Postgres and the lake together, and it does not say why.",
            "issue.federation_loss",
        ),
        (
            "The planner needs fresh row counts to decide which side of a join to broadcast.",
            "pattern.cost_based_optimisation",
        ),
        (
            "A nightly copy next to our Flink stream gives every metric two separate routes, and they will drift apart.",
            "pattern.lambda_vs_kappa",
        ),
        (
            "Keep recent dashboard answers in memory for ten minutes so twenty viewers do not rerun the join.",
            "pattern.caching",
        ),
    ],
)
def test_a_paraphrase_counts(text: str, point: str) -> None:
    verdict = review(text)
    assert point in verdict.points(), f"{point} missed in: {text}"


def test_a_paraphrased_pattern_counts_in_a_postmortem() -> None:
    text = (
        "## Root cause\nEach Flink commit adds a new version on top of the previous one; the reader was "
        "pinned to an old snapshot, so the appends committed after it were invisible."
    )
    assert "pattern.snapshot_plus_delta" in postmortem(text).points()


@pytest.mark.parametrize(
    "text",
    [
        "Patterns: OLTP-vs-OLAP, lambda-vs-kappa, materialized views, caching, federation, cardinality-as-cost.",
        "## Issues\n- Statistics\n- Cost projection\n- DR plan\n- ML training story\n- Federation\n\n## Alternatives\n- Tune Trino\n- Caching\n- Partitioning",
        "Caching. Materialized views. Federation. OLTP vs OLAP. Lambda vs kappa.",
        "Materialized views matter. Caching matters. Federation matters. Lambda versus kappa matters.",
        "Cost is a keyword. DR is a keyword. ML is a keyword. Federation is a keyword.",
        "Alternatives: caching (trade-off: staleness). MVs (trade-off: freshness).",
    ],
)
def test_a_bare_keyword_list_makes_no_content_point(text: str) -> None:
    content = {p for p in review(text).points() if not p.startswith("tone.")}
    assert content == set(), f"stuffing counted: {sorted(content)}"


@pytest.mark.parametrize(
    ("text", "point"),
    [
        (
            "I'm honestly not worried about cost here; finance approved a budget.",
            "issue.no_cost_projection",
        ),
        ("An exit plan isn't needed, because the vendor exports to Parquet.", "issue.no_exit_plan"),
        ("ML training isn't relevant to this RFC, which is about dashboards.", "issue.no_ml_story"),
        ("Federation won't be affected.", "issue.federation_loss"),
        (
            "I would not add caching in front of Trino, it doesn't address the root cause.",
            "alternative.caching",
        ),
        (
            "I would not add caching in front of Trino, it doesn't address the root cause.",
            "pattern.caching",
        ),
        ("This has nothing to do with lambda-vs-kappa.", "pattern.lambda_vs_kappa"),
        ("Materialized views are not worth it for a weekly report.", "pattern.materialized_views"),
    ],
)
def test_negation_does_not_count(text: str, point: str) -> None:
    assert point not in review(text).points()


def test_the_same_concept_without_negation_does_count() -> None:
    # The control for the negation cases: the judge is not simply blind to these words.
    assert (
        "issue.no_cost_projection"
        in review("The RFC has no cost projection for usage-billed compute.").points()
    )
    assert "issue.no_exit_plan" in review("There is no exit plan for leaving the vendor.").points()


def test_a_denied_pattern_does_not_count_in_a_postmortem() -> None:
    text = "We first suspected the result cache, but this was not a caching problem: the cache behaved as designed."
    assert "pattern.caching" not in postmortem(text).points()


def test_an_alternative_needs_a_trade_off() -> None:
    without = review("## Alternatives\n- Add a Superset cache for the revenue dashboard.")
    with_trade = review(
        "## Alternatives\n- Add a Superset cache for the revenue dashboard; the catch is that numbers can be ten minutes stale."
    )
    assert "alternative.caching" not in without.points()
    assert "alternative.caching" in with_trade.points()


@pytest.mark.parametrize(
    "text",
    [
        "Absolutely not. We are not adding a closed warehouse while I'm on the architecture board. Rejected.",
        "Do your homework and come back when you have numbers.",
        "You clearly don't understand how Trino works.",
        "Frankly, this shouldn't have been written before you learned how Trino works.",
    ],
)
def test_hostile_tone_flags_gatekeeping(text: str) -> None:
    assert "tone.gatekeeping" in review(text).points()


def test_kind_tone_is_not_gatekeeping_and_opens_positive() -> None:
    verdict = review(
        "Thanks Sam, this is a clear and well-scoped RFC. I suggest we try a materialized rollup first; "
        "the trade-off is that numbers lag one refresh."
    )
    assert {"tone.opens_positive", "tone.proposes"} <= verdict.points()
    assert "tone.gatekeeping" not in verdict.points()


def test_sarcasm_is_not_a_positive_opening() -> None:
    verdict = review(
        'Oh great, another "let\'s buy a warehouse" proposal. I am not sure why we review this.'
    )
    assert "tone.opens_positive" not in verdict.points()
    assert "tone.proposes" not in verdict.points()


def test_postmortem_actions_alert_test_and_refusals() -> None:
    text = (
        "## Root cause\nThe process had no check for cache lifetimes; no one is at fault.\n\n"
        "## Action items\n"
        "- We will not add an alert; it would be noisy.\n"
        "- Add a dbt test that orders_hourly has a row for every hour (DATA-9).\n"
    )
    points = postmortem(text).points()
    assert {"postmortem.action_items", "action.new_test", "tone.blameless"} <= points
    assert "action.new_alert" not in points


def test_vague_or_bare_actions_are_not_action_items() -> None:
    text = "## Action items\n- Be more careful with dbt profiles.\n- Improve monitoring.\n- test\n- alert"
    points = postmortem(text).points()
    assert not points & {"postmortem.action_items", "action.new_test", "action.new_alert"}


def test_a_config_check_is_not_a_data_test() -> None:
    text = "## Action items\n- Add a CI check that rejects session properties that disable join reordering (PLAT-1)."
    points = postmortem(text).points()
    assert "postmortem.action_items" in points
    assert "action.new_test" not in points


def test_blaming_a_person_is_flagged_and_blameless_framing_is_not() -> None:
    assert (
        "tone.blaming"
        in postmortem(
            "Bob forgot to run the merge, which any competent engineer would have done."
        ).points()
    )
    framed = postmortem(
        "Nobody is at fault here: our runbook had no step that checked the branch was merged."
    )
    assert "tone.blameless" in framed.points()
    assert "tone.blaming" not in framed.points()


def test_points_stay_within_the_kind_vocabulary() -> None:
    text = "Caching trades freshness for speed, because dashboards repeat the same query. Add an alert on cache age (PLAT-1)."
    assert review(text).points() <= DESIGN_REVIEW_POINTS
    assert postmortem("## Action items\n" + text).points() <= POSTMORTEM_POINTS
    assert DESIGN_REVIEW_POINTS | POSTMORTEM_POINTS <= POINTS


def test_every_finding_carries_sentences_from_the_text() -> None:
    seen = 0
    # The sealed split is run once, by whoever measures it after a freeze, never while tuning.
    for labelled in (t for t in load_corpus() if t.split != "sealed"):
        text = labelled.read()
        verdict = JUDGE.judge(labelled.kind, text)
        assert verdict.judge == "offline" and verdict.kind == labelled.kind
        flat = " ".join(text.replace("*", "").replace("`", "").split())
        for finding in verdict.findings:
            assert finding.sentences, f"{labelled.text_id} {finding.point} has no evidence"
            assert finding.why
            for sentence in finding.sentences:
                assert sentence in flat or sentence.rstrip(":") in flat, (
                    f"{labelled.text_id}: {sentence!r} not in text"
                )
            seen += 1
    assert seen > 500


def test_the_judge_is_deterministic_and_pure() -> None:
    text = load_corpus()[0].read()
    first = JUDGE.judge("design_review", text)
    assert all(JUDGE.judge("design_review", text) == first for _ in range(3))


def test_empty_and_whitespace_texts_make_no_point() -> None:
    assert review("").findings == ()
    assert postmortem("   \n\n  ").findings == ()
