"""Part 3 criteria: the design review through the judge's points."""

from __future__ import annotations

import pytest

from services.offline.scenarios import STRONG_REVIEW, WEAK_REVIEW, ExamBuilder

pytestmark = pytest.mark.unit


def review(*texts: tuple[float, str], part3_close_extra: bool = False) -> ExamBuilder:
    b = ExamBuilder("basecamp-alice")
    b.start()
    b.control("part.started", 300, part=3)
    for at, text in texts:
        b.control("artifact.submitted", at, part=3, kind="design_review", content=text, uri=None)
    b.finish()
    return b


def test_strong_review_meets_every_part3_criterion(grade) -> None:
    r = grade(review((400, STRONG_REVIEW)).events)
    assert {c.criterion_id: c.state for c in r.criteria if c.part == "3"} == {
        "p3.issues_found": "met",
        "p3.alternatives": "met",
        "p3.patterns_cited": "met",
        "p3.senior_tone": "met",
    }
    assert r.parts["3"].score == 22


def test_weak_review(grade) -> None:
    r = grade(review((400, WEAK_REVIEW)).events)
    issues = r.criterion("p3.issues_found")
    assert issues.state == "partial"
    assert issues.score == 4.0
    assert r.criterion("p3.alternatives").state == "failed"
    tone = r.criterion("p3.senior_tone")
    assert tone.state == "failed"
    assert "tone.gatekeeping" in tone.reason


def test_the_latest_review_inside_the_box_counts(grade) -> None:
    r = grade(review((350, WEAK_REVIEW), (400, STRONG_REVIEW)).events)
    assert r.criterion("p3.issues_found").state == "met"
    r2 = grade(review((350, STRONG_REVIEW), (400, WEAK_REVIEW)).events)
    assert r2.criterion("p3.issues_found").state == "partial"


def test_a_review_after_the_box_closed_does_not_count(grade) -> None:
    b = review((350, WEAK_REVIEW), (421, STRONG_REVIEW))
    assert grade(b.events).criterion("p3.issues_found").state == "partial"


def test_no_review_expires(grade) -> None:
    b = review()
    assert grade(b.events, at_ms=b.at(350)).criterion("p3.issues_found").state == "pending"
    c = grade(b.events).criterion("p3.issues_found")
    assert c.state == "expired"
    assert "design review" in c.reason


def test_a_keyword_list_makes_no_point(grade) -> None:
    stuffed = (
        "oltp-vs-olap\nlambda-vs-kappa\nmaterialized views\ncaching\nfederation\ncardinality\n"
    )
    r = grade(review((400, stuffed)).events)
    assert r.criterion("p3.patterns_cited").state == "failed"
