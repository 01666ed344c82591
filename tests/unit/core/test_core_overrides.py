"""A proctor's override or appeal decision (grade.overridden): applied by the engine, the
same in the reference grader, shown with who and why, withdrawn by state `graded`, and
ignored (with a review note) when it names no criterion, an overall verdict or a bad
state."""

from __future__ import annotations

import random

import pytest

from services.core.engine import Engine
from services.core.events import Event
from services.core.reference import grade_history
from services.offline.scenarios import ExamBuilder

pytestmark = pytest.mark.unit


def failing() -> ExamBuilder:
    """A clean exam but the schema registered for another subject: p1.schema_registered
    expires."""
    b = ExamBuilder("basecamp-alice").full()
    b.events = [
        Event(e.type, e.platform_id, e.event_id, e.ts_ms, {**e.data, "subject": "x-value"})
        if e.type == "schema.registered"
        else e
        for e in b.events
    ]
    return b


def override(
    b: ExamBuilder,
    minutes: float,
    criterion: str,
    state: str,
    *,
    kind: str = "override",
    n: int = 0,
) -> Event:
    return Event(
        "grade.overridden",
        b.platform_id,
        f"ov-{criterion}-{n}",
        b.at(minutes),
        {
            "exam_id": b.exam_id,
            "criterion_id": criterion,
            "state": state,
            "reason": "the schema was registered under the topic's alias",
            "by": "jane",
            "kind": kind,
        },
    )


def test_an_override_sets_the_state_and_shows_who_why_and_what_was_graded(grade) -> None:
    b = failing()
    before = grade(b.events)
    assert before.criterion("p1.schema_registered").state == "expired"
    r = grade([*b.events, override(b, 430, "p1.schema_registered", "met")])
    c = r.criterion("p1.schema_registered")
    assert c.state == "met" and c.score == c.max_score
    assert c.reason.startswith("Overridden by jane at 16:10:00Z: the schema was registered")
    assert "(graded expired: The time box closed" in c.reason
    assert c.evidence[0] == "ov-p1.schema_registered-0"
    assert r.total_pct > before.total_pct
    assert r.parts["1"].score == before.parts["1"].score + c.max_score


def test_an_appeal_decision_says_so(grade) -> None:
    b = failing()
    c = grade([*b.events, override(b, 430, "p1.schema_registered", "partial", kind="appeal")])
    got = c.criterion("p1.schema_registered")
    assert got.state == "partial" and 0 < got.score < got.max_score
    assert got.reason.startswith("Appeal decided by jane")


def test_the_latest_decision_wins_and_graded_withdraws_it(grade) -> None:
    b = failing()
    first = override(b, 430, "p1.schema_registered", "met", n=1)
    later = override(b, 431, "p1.schema_registered", "failed", n=2)
    assert grade([*b.events, later, first]).criterion("p1.schema_registered").state == "failed"
    back = override(b, 432, "p1.schema_registered", "graded", n=3)
    c = grade([*b.events, first, later, back]).criterion("p1.schema_registered")
    assert c.state == "expired" and "Overridden" not in c.reason


@pytest.mark.parametrize(
    ("criterion", "state", "note"),
    [
        ("p9.nothing", "met", "the rubric has no such criterion"),
        ("overall.pass", "met", "overall verdicts follow the criteria"),
        ("p1.schema_registered", "excellent", "is not met, partial, failed or graded"),
    ],
)
def test_a_bad_override_changes_nothing_and_opens_a_note(
    grade, criterion: str, state: str, note: str
) -> None:
    b = failing()
    before = grade(b.events)
    r = grade([*b.events, override(b, 430, criterion, state)])
    assert [(c.criterion_id, c.state) for c in r.criteria] == [
        (c.criterion_id, c.state) for c in before.criteria
    ]
    assert any(note in n.reason for n in r.notes), r.notes


def test_any_order_gives_the_reference(rubrics, judge) -> None:
    b = failing()
    events = [
        *b.events,
        override(b, 100, "p1.schema_registered", "met", n=1),
        override(b, 300, "p2.root_cause", "failed", kind="appeal", n=2),
    ]
    ref = grade_history(events, rubrics, judge, at_ms=b.at(500))[0]
    for seed in range(4):
        shuffled = random.Random(seed).sample(events, len(events))
        engine = Engine(rubrics, judge)
        for ev in shuffled:
            engine.apply(ev)
        engine.evaluate(b.at(500))
        got = engine.results()[0]
        assert [(c.criterion_id, c.state, c.reason, c.evidence) for c in got.criteria] == [
            (c.criterion_id, c.state, c.reason, c.evidence) for c in ref.criteria
        ]


def test_live_an_override_is_a_transition_with_who_and_why(rubrics, judge) -> None:
    b = failing()
    engine = Engine(rubrics, judge, clocked=True)
    engine.apply_many(sorted(b.events, key=lambda e: e.ts_ms))
    engine.evaluate(b.at(426))
    out = engine.apply(override(b, 430, "p1.schema_registered", "met"))
    moved = {t.criterion_id: t for t in out}
    t = moved["p1.schema_registered"]
    assert (t.previous_state, t.state) == ("expired", "met")
    assert "Overridden by jane" in t.reason
