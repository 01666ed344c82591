"""Paraphrases count, lists and negations do not: the v4 concept families through the public judge.

The sentences are written for these tests (none is taken from corpus/judge), so they check
that the concept families generalise beyond the labelled texts.
"""

from __future__ import annotations

import pytest

from services.core.textjudge import TextKind
from services.judge.offline import OfflineJudge

pytestmark = pytest.mark.unit

JUDGE = OfflineJudge()


def points(kind: TextKind, text: str) -> frozenset[str]:
    return JUDGE.judge(kind, text).points()


@pytest.mark.parametrize(
    ("kind", "text", "point"),
    [
        (
            "design_review",
            "If we later want to move away from the vendor, the RFC gives no migration path.",
            "issue.no_exit_plan",
        ),
        (
            "design_review",
            "What happens if the vendor goes down for a day, or if we want our tables back in two years?",
            "issue.no_exit_plan",
        ),
        (
            "design_review",
            "You do not say what it costs once every team is on it.",
            "issue.no_cost_projection",
        ),
        (
            "design_review",
            "Year 4 model training reads Parquet directly, and the design leaves that out.",
            "issue.no_ml_story",
        ),
        (
            "design_review",
            "Do we know the slowness comes from Trino and not from the table layout?",
            "issue.slow_not_trino",
        ),
        (
            "design_review",
            "The slowness may well come from uncompacted tables rather than from the engine itself.",
            "issue.slow_not_trino",
        ),
        (
            "design_review",
            "Why not move only the finance dashboard to the warehouse as a trial, accepting that we run two systems for a while?",
            "alternative.move_specific_workloads",
        ),
        (
            "design_review",
            "I would precompute the revenue join as a materialized view; the catch is that it is only as fresh as its last refresh.",
            "alternative.materialized_views",
        ),
        (
            "design_review",
            "Also worth trying: bump the worker memory and let Trino use a partitioned join. It costs a bit more hardware.",
            "alternative.tune_trino",
        ),
        (
            "design_review",
            "One idea to compare against: a results cache in front of Trino. Repeat loads get instant, but numbers could be minutes old.",
            "alternative.caching",
        ),
        (
            "design_review",
            "Lovely doc, and the timings make the problem obvious.\n\nThe cost is not estimated.",
            "tone.opens_positive",
        ),
        (
            "design_review",
            "Solid RFC, thanks. Notes:\n\n- No exit plan from the vendor format.",
            "tone.opens_positive",
        ),
        (
            "design_review",
            "A good first step would be to collect fresh statistics and rerun the benchmark.",
            "tone.proposes",
        ),
        (
            "design_review",
            "## Alternatives\nA result cache answers repeated questions from memory, with answers a few minutes old.",
            "tone.proposes",
        ),
        (
            "design_review",
            "I have to be blunt: you haven't understood the platform you work on.",
            "tone.gatekeeping",
        ),
        (
            "postmortem",
            "Usually the engine looks at how many rows each table has and puts the small one on the build side.",
            "pattern.cost_based_optimisation",
        ),
        (
            "postmortem",
            "The merge was a manual runbook step; our process depended on someone remembering it.",
            "tone.blameless",
        ),
        (
            "postmortem",
            "The setting changed in a commit nobody was asked to review for performance.",
            "tone.blameless",
        ),
        (
            "postmortem",
            "# Incident\n\nActions:\n- Page the data on-call if a branch stays unmerged for an hour (PLAT-3).",
            "action.new_alert",
        ),
    ],
)
def test_a_paraphrase_of_the_concept_counts(kind: TextKind, text: str, point: str) -> None:
    assert point in points(kind, text), text


@pytest.mark.parametrize(
    ("kind", "text", "wrong"),
    [
        (
            "design_review",
            "Cost, exit plan, ML story, federation: none of those worry me for a dashboard project.",
            {
                "issue.no_cost_projection",
                "issue.no_exit_plan",
                "issue.no_ml_story",
                "issue.federation_loss",
                "pattern.federation",
            },
        ),
        (
            "design_review",
            "Summary tables, caching, partitioning, statistics would help.",
            {
                "alternative.caching",
                "alternative.partitioning",
                "alternative.materialized_views",
                "tone.proposes",
            },
        ),
        (
            "design_review",
            "Alternatives: caching, partitioning, materialized views, tuning Trino.",
            {"alternative.caching", "tone.proposes"},
        ),
        (
            "postmortem",
            "The cache, the stream, exactly-once, snapshots, statistics.",
            {"pattern.caching", "pattern.exactly_once"},
        ),
    ],
)
def test_a_bare_list_of_concepts_makes_no_point(kind: TextKind, text: str, wrong: set[str]) -> None:
    assert not points(kind, text) & wrong, text


@pytest.mark.parametrize(
    ("kind", "text", "wrong"),
    [
        (
            "design_review",
            "Caching would not help here, and partitioning is not worth it.",
            {"alternative.caching", "alternative.partitioning"},
        ),
        (
            "design_review",
            "This is not a real pain point.\n\nThe cost is not estimated.",
            {"tone.opens_positive"},
        ),
        (
            "design_review",
            "Ship it? Absolutely not.\n\nCome back when you understand Trino.",
            {"tone.opens_positive"},
        ),
        (
            "design_review",
            "I would not move any dashboard to the warehouse, not even as a trial.",
            {"alternative.move_specific_workloads"},
        ),
        (
            "postmortem",
            "## Action items\n- We decided against paging the on-call for this (PLAT-1).",
            {"action.new_alert"},
        ),
        (
            "postmortem",
            "This was not a cost-based optimisation problem: the row counts were fresh.",
            {"pattern.cost_based_optimisation"},
        ),
    ],
)
def test_a_negated_or_dismissed_concept_makes_no_point(
    kind: TextKind, text: str, wrong: set[str]
) -> None:
    assert not points(kind, text) & wrong, text


def test_a_partitioned_join_is_engine_tuning_not_table_partitioning() -> None:
    text = "We could let Trino use a partitioned join for the big table; it costs a bit more memory, but no migration."
    got = points("design_review", text)
    assert "alternative.tune_trino" in got
    assert "alternative.partitioning" not in got
