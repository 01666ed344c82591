"""Blindness is the grader's, not the candidate's; review notes say why a person must look."""

from __future__ import annotations

from typing import Any

import pytest

from services.core.engine import Engine
from services.core.events import Event
from services.core.heartbeats import Coverage, heartbeat_status
from services.core.reference import LiteralCoverage, grade_history
from services.core.review import review_notes
from services.core.simple_judge import KeywordJudge
from services.core.state_codec import engine_from_bytes, engine_to_bytes
from services.exam_builder import ExamBuilder
from tests.unit.core.conftest import Grade

pytestmark = pytest.mark.unit

#: Part 1 closes 181 minutes after exam.started (opens at 1, 180 minutes long)
P1_CLOSE = 181


def beat(b: ExamBuilder, minutes: float, collector: str, kind: str | None, error: str) -> Event:
    """An unhealthy heartbeat as a collector sends it, with its error kind."""
    data: dict[str, Any] = {
        "collector": collector,
        "source": f"{collector}.basecamp",
        "position": "",
        "healthy": False,
        "error": error,
    }
    if kind is not None:
        data["error_kind"] = kind
    return b.add("collector.heartbeat", minutes, **data)


def failing_exam() -> ExamBuilder:
    """An exam that fails p1.schema_registered (no schema is ever registered)."""
    b = ExamBuilder("basecamp-alice")
    b.start()
    b.part1(skip={"schema"})
    return b


@pytest.mark.parametrize(
    ("kind", "error"),
    [
        ("payload", "cannot produce: KafkaError{code=MSG_SIZE_TOO_LARGE}: Message size too large"),
        ("platform", "GET http://schemas.basecamp/subjects answered 503: down"),
    ],
)
def test_an_error_the_candidate_caused_does_not_turn_expired_into_unknown(
    grade: Grade, kind: str, error: str
) -> None:
    b = failing_exam()
    beat(b, P1_CLOSE - 0.2, "schemas", kind, error)
    b.finish()
    c = grade(b.events).criterion("p1.schema_registered")
    assert c.state == "expired", c.reason
    assert "Cannot judge" not in c.reason


@pytest.mark.parametrize("kind", ["proctor_side", None])
def test_a_proctor_side_error_turns_expired_into_unknown_with_its_text(
    grade: Grade, kind: str | None
) -> None:
    b = failing_exam()
    beat(b, P1_CLOSE - 0.2, "schemas", kind, "GET http://registry: ConnectError: refused")
    b.finish()
    r = grade(b.events)
    c = r.criterion("p1.schema_registered")
    assert c.state == "unknown"
    assert "reported an error" in c.reason and "ConnectError: refused" in c.reason
    blind = [n for n in r.notes if n.kind == "blind"]
    assert [n.subject for n in blind] == ["p1.schema_registered"]
    assert "ConnectError: refused" in blind[0].reason


def test_a_candidate_error_still_counts_as_seeing_when_no_healthy_heartbeat_came(
    grade: Grade,
) -> None:
    """The payload-error heartbeat covers like a healthy one: not 'silent' either."""
    b = failing_exam()
    b.finish(silent=["schemas"])
    assert grade(b.events).criterion("p1.schema_registered").state == "unknown"  # silent
    b2 = failing_exam()
    beat(b2, P1_CLOSE - 0.5, "schemas", "payload", "too large")
    b2.finish(silent=["schemas"])
    assert grade(b2.events).criterion("p1.schema_registered").state == "expired"


def test_a_missing_canary_mid_part_makes_met_by_absence_unknown_with_the_reason(
    grade: Grade,
) -> None:
    """Auditing off for a while (canary missing), on again before the close: not met."""
    b = ExamBuilder("basecamp-alice")
    b.start()
    b.part1()
    why = "auditing is off or the webhook is not delivering: no canary request for 150 s"
    beat(b, 60, "k8s-audit", "proctor_side", why)
    b.finish()
    c = grade(b.events).criterion("p1.zero_manual_apply")
    assert c.state == "unknown"
    assert "auditing is off" in c.reason and "during the time box" in c.reason


def test_canary_present_keeps_met_by_absence_met(grade: Grade) -> None:
    b = ExamBuilder("basecamp-alice")
    b.start()
    b.part1()
    b.heartbeats(60, ["k8s-audit"])
    b.finish()
    c = grade(b.events).criterion("p1.zero_manual_apply")
    assert c.state == "met", c.reason


def test_a_proctor_side_error_before_the_part_opened_does_not_count(grade: Grade) -> None:
    b = ExamBuilder("basecamp-alice")
    beat(b, -10, "k8s-audit", "proctor_side", "canary missing before the exam")
    b.start()
    b.part1()
    b.finish()
    assert grade(b.events).criterion("p1.zero_manual_apply").state == "met"


def test_a_seen_manual_apply_stays_failed_whatever_the_heartbeat(grade: Grade) -> None:
    b = ExamBuilder("basecamp-alice")
    b.start()
    b.part1(manual_apply_at=70)
    beat(b, P1_CLOSE - 0.2, "k8s-audit", "proctor_side", "canary missing")
    b.finish()
    assert grade(b.events).criterion("p1.zero_manual_apply").state == "failed"


def test_heartbeat_status_reads_the_error_kind() -> None:
    def ev(**data: Any) -> Event:
        return Event("collector.heartbeat", "p", "e", 0, {"collector": "flink", **data})

    assert heartbeat_status(ev(healthy=True, error=None)).blind is None  # type: ignore[union-attr]
    assert heartbeat_status(ev(healthy=False, error="x", error_kind="payload")).blind is None  # type: ignore[union-attr]
    assert heartbeat_status(ev(healthy=False, error="x", error_kind="platform")).blind is None  # type: ignore[union-attr]
    assert heartbeat_status(ev(healthy=False, error="x", error_kind="proctor_side")).blind == "x"  # type: ignore[union-attr]
    assert heartbeat_status(ev(healthy=False, error="x")).blind == "x"  # type: ignore[union-attr]
    assert heartbeat_status(ev(healthy=False, error="x", error_kind="nonsense")).blind == "x"  # type: ignore[union-attr]
    assert heartbeat_status(Event("collector.heartbeat", "p", "e", 0, {})) is None


def test_coverage_agrees_with_the_literal_definition_in_any_order() -> None:
    evs = [
        Event("collector.heartbeat", "p", f"e{i}", ts, data)
        for i, (ts, data) in enumerate(
            [
                (0, {"collector": "a", "healthy": True}),
                (
                    60_000,
                    {
                        "collector": "a",
                        "healthy": False,
                        "error": "z",
                        "error_kind": "proctor_side",
                    },
                ),
                (60_000, {"collector": "a", "healthy": False, "error": "b"}),
                (60_000, {"collector": "a", "healthy": False, "error": ""}),
                (
                    120_000,
                    {"collector": "a", "healthy": False, "error": "p", "error_kind": "payload"},
                ),
                (200_000, {"collector": "a", "healthy": True}),
            ]
        )
    ]
    literal = LiteralCoverage(evs, 90_000)
    for order in (evs, list(reversed(evs)), evs[2:] + evs[:2]):
        cov = Coverage(90_000)
        for e in order:
            cov.fold(e)
        for at in range(0, 400_000, 10_000):
            assert cov.blind_at("a", at) == literal.blind_at("a", at), at
            assert cov.blind_during("a", 0, at) == literal.blind_during("a", 0, at), at
        assert "(b)" in (cov.blind_at("a", 100_000) or "")  # the smallest text, in any order
        restored = Coverage(90_000)
        restored.load(cov.dump())
        assert restored.blind_at("a", 100_000) == cov.blind_at("a", 100_000)


# ------------------------------------------------------------------ review notes
def two_faults() -> ExamBuilder:
    b = ExamBuilder("basecamp-alice")
    b.full()
    b.control(
        "fault.injected",
        200,
        fault_id="f-second",
        layer="cdc",
        kind="dropped_events",
        target="cdc",
        note="",
    )
    return b


def test_conflicting_fault_injected_is_a_review_note(grade: Grade) -> None:
    r = grade(two_faults().events)
    conflicts = [n for n in r.notes if n.kind == "conflict"]
    assert [n.subject for n in conflicts] == ["fault.injected"]
    assert "more than one fault.injected" in conflicts[0].reason
    assert "cdc/dropped_events" in conflicts[0].reason


def test_a_second_exam_started_is_a_review_note(grade: Grade) -> None:
    b = ExamBuilder("basecamp-alice")
    b.full()
    b.control(
        "exam.started", 0, candidate_id=b.candidate_id, rubric_id="y3-final", rubric_version="1"
    )
    notes = grade(b.events).notes
    assert [n.subject for n in notes if n.kind == "conflict"] == ["exam.started"]


def test_a_clean_exam_has_no_review_note(grade: Grade) -> None:
    assert grade(ExamBuilder("basecamp-alice").full().events).notes == ()


def test_the_engine_reports_review_notes_as_changes_that_open_and_close(rubrics: Any) -> None:
    """A blind criterion opens a note; a late heartbeat that covers the close closes it."""
    b = ExamBuilder("basecamp-alice")
    b.full(silent=["k8s-audit"])
    engine = Engine(rubrics, KeywordJudge())
    out = engine.apply_many(sorted(b.events, key=lambda e: (e.ts_ms, e.event_id)))
    out += engine.evaluate(b.at(430))
    opened = [t for t in out if t.criterion_id == "review:blind:p1.zero_manual_apply"]
    assert [(t.state, t.previous_state, t.part) for t in opened] == [("unknown", None, "review")]
    assert opened[0].score == 0 and opened[0].max_score == 0
    # the state survives a restart: nothing is reported twice
    engine = engine_from_bytes(engine_to_bytes(engine), like=engine)
    late = b.add(
        "collector.heartbeat",
        P1_CLOSE - 0.3,
        collector="k8s-audit",
        source="s",
        position="",
        healthy=True,
        error=None,
    )
    closed = [t for t in engine.apply(late) if t.criterion_id.startswith("review:")]
    assert [(t.state, t.previous_state) for t in closed] == [("met", "unknown")]
    assert closed[0].reason.startswith("No longer applies")


def test_review_notes_equal_between_engine_and_reference(rubrics: Any) -> None:
    events = two_faults().events
    engine = Engine(rubrics, KeywordJudge())
    engine.apply_many(events)
    engine.evaluate(max(e.ts_ms for e in events))
    ref = grade_history(events, rubrics, KeywordJudge())
    assert [r.notes for r in engine.results()] == [r.notes for r in ref]


def test_review_notes_are_sorted_and_merge_conflicts_about_one_type() -> None:
    notes = review_notes(
        ["more than one fault.injected (a): x", "more than one fault.injected (b): y"], []
    )
    assert len(notes) == 1 and notes[0].reason.count("fault.injected") == 2
    assert [n.kind for n in review_notes(["z"], [], ["flag"], [("p1.x", "proctor")])] == [
        "conflict",
        "flag",
        "override",
    ]
