"""The review queue in the core: a text criterion decided at a confidence under the
threshold opens a ``review:judge:`` note (the exam shows review) while its state still
counts; a proctor's confirm (grade.overridden kind confirm) or override closes it, and the
note's changes carry the queue's columns (verdict, confidence, threshold, judge, digest,
status, who decided)."""

from __future__ import annotations

import dataclasses
import hashlib

import pytest

from services.core.engine import Engine
from services.core.events import Event
from services.core.model import exam_status
from services.core.simple_judge import KeywordJudge
from services.core.state_codec import engine_from_bytes, engine_to_bytes
from services.core.textjudge import TextKind, TextVerdict
from services.offline.replay import replay_events
from services.offline.scenarios import ExamBuilder

pytestmark = pytest.mark.unit

NOTE = "review:judge:p3.senior_tone"


class UnsureJudge:
    """The keyword judge, unsure (``confidence``) of every tone point, at ``threshold``."""

    def __init__(self, confidence: float, threshold: float) -> None:
        self.inner = KeywordJudge()
        self.confidence = confidence
        self.threshold = threshold

    @property
    def name(self) -> str:
        return "unsure"

    def judge(self, kind: TextKind, text: str) -> TextVerdict:
        v = self.inner.judge(kind, text)
        tone = ("tone.opens_positive", "tone.proposes", "tone.gatekeeping")
        return dataclasses.replace(
            v,
            judge=self.name,
            confidence=tuple((p, self.confidence) for p in tone),
            review_below=self.threshold,
        )


def decision(
    b: ExamBuilder, minutes: float, kind: str, state: str, criterion: str = "p3.senior_tone"
) -> Event:
    return Event(
        "grade.overridden",
        b.platform_id,
        f"{kind}-{criterion}-{minutes}",
        b.at(minutes),
        {
            "exam_id": b.exam_id,
            "criterion_id": criterion,
            "state": state,
            "reason": "read it: the tone is fine",
            "by": "jane",
            "kind": kind,
        },
    )


@pytest.fixture
def exam() -> ExamBuilder:
    return ExamBuilder("basecamp-alice").full()


def grade(rubrics, judge, events):
    return replay_events(list(events), rubrics, judge).results[0]


def test_a_sure_verdict_carries_its_confidence_and_queues_nothing(rubrics, exam) -> None:
    r = grade(rubrics, UnsureJudge(0.9, 0.7), exam.events)
    c = r.criterion("p3.senior_tone")
    assert c.confidence == 0.9 and c.review is None
    assert not [n for n in r.notes if n.kind == "judge"]
    # a criterion no tone point decides keeps full confidence; a non-text one has none
    assert r.criterion("p3.issues_found").confidence == 1.0
    assert r.criterion("p1.cdc_source").confidence is None


def test_an_unsure_verdict_waits_for_review_and_still_counts(rubrics, exam) -> None:
    sure = grade(rubrics, UnsureJudge(0.9, 0.7), exam.events)
    r = grade(rubrics, UnsureJudge(0.5, 0.7), exam.events)
    c = r.criterion("p3.senior_tone")
    assert c.state == sure.criterion("p3.senior_tone").state and c.score == pytest.approx(
        sure.criterion("p3.senior_tone").score
    )
    assert c.review is not None and (c.review.confidence, c.review.threshold) == (0.5, 0.7)
    review = next(e for e in exam.events if e.get("kind") == "design_review")
    digest = hashlib.sha256(str(review.get("content")).encode()).hexdigest()
    assert c.review.text_digest == digest and c.review.artifact_event_id == review.event_id
    assert [n.note_id for n in r.notes if n.kind == "judge"] == [NOTE]
    assert exam_status(r) == "review"
    # the same text verdict at a lower threshold is not queued
    assert (
        grade(rubrics, UnsureJudge(0.5, 0.4), exam.events).criterion("p3.senior_tone").review
        is None
    )


def test_a_confirm_closes_the_note_and_keeps_the_graded_state(rubrics, exam) -> None:
    judge = UnsureJudge(0.5, 0.7)
    before = grade(rubrics, judge, exam.events).criterion("p3.senior_tone")
    r = grade(rubrics, judge, [*exam.events, decision(exam, 430, "confirm", "graded")])
    c = r.criterion("p3.senior_tone")
    assert (c.state, c.score) == (before.state, before.score)
    assert c.review is None and "Confirmed by jane" in c.reason
    assert not [n for n in r.notes if n.kind == "judge"]


def test_an_override_closes_the_note_and_sets_the_state(rubrics, exam) -> None:
    judge = UnsureJudge(0.5, 0.7)
    r = grade(rubrics, judge, [*exam.events, decision(exam, 430, "override", "failed")])
    c = r.criterion("p3.senior_tone")
    assert c.state == "failed" and c.score == 0 and c.reason.startswith("Overridden by jane")
    assert not [n for n in r.notes if n.kind == "judge"]


@pytest.mark.parametrize(
    ("event", "why"),
    [
        # a confirm that sets a state is not a confirm: ignored with a conflict note
        (lambda b: decision(b, 430, "confirm", "met"), "a confirm keeps the grader's decision"),
        # a confirm of a criterion the rubric does not have
        (lambda b: decision(b, 430, "confirm", "graded", "p3.nothing"), "no such criterion"),
        # a confirm dated before the text it would confirm was submitted
        (lambda b: decision(b, 399, "confirm", "graded"), ""),
    ],
)
def test_a_confirm_that_does_not_apply_leaves_the_queue_and_grade_alone(
    rubrics, exam, event, why
) -> None:
    judge = UnsureJudge(0.5, 0.7)
    before = grade(rubrics, judge, exam.events)
    r = grade(rubrics, judge, [*exam.events, event(exam)])
    assert [(c.criterion_id, c.state, c.score) for c in r.criteria] == [
        (c.criterion_id, c.state, c.score) for c in before.criteria
    ]
    assert NOTE in [n.note_id for n in r.notes]
    if why:
        assert any(why in n.reason for n in r.notes), r.notes


def test_live_the_queue_rows_say_pending_then_who_confirmed(rubrics, exam) -> None:
    engine = Engine(rubrics, UnsureJudge(0.5, 0.7), clocked=True)
    out = engine.apply_many(sorted(exam.events, key=lambda e: e.ts_ms))
    out += engine.evaluate(exam.at(426))
    opened = [t for t in out if t.criterion_id == NOTE]
    assert len(opened) == 1 and opened[0].state == "unknown"
    q = opened[0].queue
    assert q is not None and (q.status, q.confidence, q.threshold, q.judge) == (
        "pending",
        0.5,
        0.7,
        "unsure",
    )
    assert q.verdict == engine.results()[0].criterion("p3.senior_tone").state
    # the state survives a restart: the closing row still knows what was queued
    restored = engine_from_bytes(engine_to_bytes(engine), engine)
    closed = [
        t
        for t in restored.apply(decision(exam, 430, "confirm", "graded"))
        if t.criterion_id == NOTE
    ]
    assert len(closed) == 1 and closed[0].state == "met"
    c = closed[0].queue
    assert c is not None and (c.status, c.decided_by, c.decision_reason) == (
        "confirmed",
        "jane",
        "read it: the tone is fine",
    )
    assert c.text_digest == q.text_digest


def test_live_an_override_row_says_overridden(rubrics, exam) -> None:
    engine = Engine(rubrics, UnsureJudge(0.5, 0.7), clocked=True)
    engine.apply_many(sorted(exam.events, key=lambda e: e.ts_ms))
    engine.evaluate(exam.at(426))
    out = engine.apply(decision(exam, 430, "override", "met"))
    closed = [t for t in out if t.criterion_id == NOTE]
    assert closed and closed[0].queue is not None and closed[0].queue.status == "overridden"


def test_a_confirm_for_another_exam_changes_nothing_here(rubrics, exam) -> None:
    judge = UnsureJudge(0.5, 0.7)
    stray = decision(exam, 430, "confirm", "graded")
    stray = Event(stray.type, stray.platform_id, stray.event_id, stray.ts_ms,
                  {**stray.data, "exam_id": "no-such-exam"})  # fmt: skip
    before = grade(rubrics, judge, exam.events)
    results = replay_events([*exam.events, stray], rubrics, judge).results
    (mine,) = [r for r in results if r.exam_id == exam.exam_id]
    assert [(c.criterion_id, c.state, c.reason) for c in mine.criteria] == [
        (c.criterion_id, c.state, c.reason) for c in before.criteria
    ]
    assert NOTE in [n.note_id for n in mine.notes]
    # the stray exam grades nothing: it never started
    assert all(r.error for r in results if r.exam_id == "no-such-exam")
