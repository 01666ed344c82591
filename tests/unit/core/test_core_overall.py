"""Overall verdicts, scores and the review flag."""

from __future__ import annotations

import pytest

from services.offline.scenarios import ExamBuilder

pytestmark = pytest.mark.unit


def test_clean_exam_scores_100_and_passes(grade) -> None:
    r = grade(ExamBuilder("basecamp-alice").full().events)
    assert r.total_pct == 100.0
    assert r.passed
    assert r.criterion("overall.pass").state == "met"
    assert {k: (v.score, v.max_score) for k, v in r.parts.items()} == {
        "1": (42, 42),
        "2": (36, 36),
        "3": (22, 22),
    }


@pytest.mark.parametrize(
    ("self_grade", "state"), [(91.0, "met"), (100.0, "met"), (89.0, "failed"), (None, "expired")]
)
def test_self_grade_agreement(grade, self_grade: float | None, state: str) -> None:
    b = ExamBuilder("basecamp-alice").full(self_grade=self_grade)
    c = grade(b.events).criterion("overall.self_grade_agreement")
    assert c.state == state
    if state != "expired":
        assert "100.0%" in c.reason


def test_self_grade_is_pending_while_the_exam_runs(grade) -> None:
    b = ExamBuilder("basecamp-alice").full(self_grade=None)
    assert (
        grade(b.events, at_ms=b.at(300)).criterion("overall.self_grade_agreement").state
        == "pending"
    )


def test_failed_part_fails_the_exam_even_when_others_are_pending(grade) -> None:
    b = ExamBuilder("basecamp-alice").full(part1={"manual_apply_at": 30})
    r = grade(b.events, at_ms=b.at(100))
    assert r.criterion("overall.part1").state == "failed"
    assert r.criterion("overall.pass").state == "failed"
    assert not r.passed


def test_unknown_criterion_is_left_out_of_the_max_and_flags_review(grade) -> None:
    b = ExamBuilder("basecamp-alice").full(part1={"skip": ["schema"]}, silent=["schemas"])
    r = grade(b.events)
    assert r.criterion("p1.schema_registered").state == "unknown"
    assert r.parts["1"].max_score == 40  # 42 minus the unknown criterion's 2
    assert r.total_pct == 100.0
    assert not r.passed
    assert r.criterion("overall.pass").state == "unknown"
    assert any("blind" in x and "p1.schema_registered" in x for x in r.review)


def test_expired_criterion_counts_against_the_max(grade) -> None:
    b = ExamBuilder("basecamp-alice").full(part1={"skip": ["schema"]})
    r = grade(b.events)
    assert r.criterion("p1.schema_registered").state == "expired"
    assert r.parts["1"].max_score == 42
    assert r.total_pct == 98.0
    assert r.review == ()


def test_partial_counts_its_share(grade) -> None:
    b = ExamBuilder("basecamp-alice").full(part2={"diagnosis": "partial"})
    r = grade(b.events)
    assert r.criterion("p2.root_cause").score == 4.0
    assert r.criterion("overall.part2").state == "partial"
    assert r.parts["2"].score == 36 - 4 - 4  # half of root cause, none of the on-time criterion
