"""Part windows (rubric.md "Part windows"): part.ended closes a part early, part.extended
adds minutes to its box, exam.ended closes everything; evidence after the close does not
count for the part, an act between two parts counts for neither, and a bad extension or
end changes no box and opens a review note.

Each test starts from the scenario builder's clean exam (every criterion met, each part
ended by the proctor at its box's close) and changes one control event or one piece of
evidence.
"""

from __future__ import annotations

import random

import pytest

from services.core.contract_fields import CONTROL_TYPES
from services.core.engine import Engine
from services.core.events import Event
from services.core.reference import grade_history
from services.offline.scenarios import ExamBuilder
from tests.unit.core.helpers import edited, moved, of_type

pytestmark = pytest.mark.unit


def clean(*closes: float) -> ExamBuilder:
    """The clean exam, with every collector's heartbeat 20 s before each extra ``closes``
    (a box closing where no heartbeat is would make its expired criteria unknown)."""
    b = ExamBuilder("basecamp-alice").full()
    for close in closes:
        b.heartbeats(close - 1 / 3)
    return b


def ended(part: int) -> object:
    return lambda e: e.type == "part.ended" and e.data.get("part") == part


def extension(b: ExamBuilder, minutes_in: float, part: object, minutes: object) -> Event:
    return Event(
        "part.extended",
        b.platform_id,
        f"ext-{minutes_in}-{part}-{minutes}",
        b.at(minutes_in),
        {"exam_id": b.exam_id, "part": part, "minutes": minutes, "reason": "accommodation"},
    )


def notes(result: object) -> str:
    return " | ".join(n.reason for n in result.notes)  # type: ignore[attr-defined]


# ------------------------------------------------------------------ part.ended
def test_part_ended_closes_the_part_early_and_later_evidence_does_not_count(grade) -> None:
    b = clean(100)
    early = moved(b, ended(1), 100)  # the proctor ends Part 1 at minute 100
    late_schema = [
        Event(e.type, e.platform_id, e.event_id, b.at(120), e.data)
        if e.type == "schema.registered"
        else e
        for e in early
    ]
    c = grade(late_schema).criterion("p1.schema_registered")
    assert c.state == "expired"
    assert "closed at 10:40:00Z" in c.reason  # the exam starts at 09:00; the end at minute 100
    # the same late schema inside the full box (no early end) is met
    assert grade(moved(b, of_type("schema.registered"), 120)).criterion(
        "p1.schema_registered"
    ).state == ("met")


def test_evidence_before_an_early_part_ended_still_counts(grade) -> None:
    b = clean(170)
    r = grade(moved(b, ended(1), 170))  # every Part 1 signal of the builder is before 170
    states = {c.criterion_id: c.state for c in r.criteria if c.part == "1"}
    assert set(states.values()) == {"met"}, states


def test_part_ended_for_part_2_closes_the_incident_box(grade) -> None:
    b = clean(200)
    # the proctor ends Part 2 at minute 200: the diagnosis at 230 is too late
    c = grade(moved(b, ended(2), 200)).criterion("p2.root_cause")
    assert c.state == "expired", c.reason


def test_part_ended_before_the_part_started_is_ignored_and_noted(grade) -> None:
    b = clean()
    r = grade(moved(b, ended(3), 250))  # Part 3 starts at minute 300
    assert r.criterion("p3.issues_found").state == "met"  # the box still runs to 420
    assert "part.ended for part 3" in notes(r)
    assert "is before the part opened" in notes(r)


def test_part_ended_of_an_unknown_part_is_ignored_and_noted(grade) -> None:
    b = clean()
    events = edited(b.events, ended(3), {"part": 7})
    r = grade(events)
    assert r.criterion("p3.issues_found").state == "met"
    assert "names part 7" in notes(r)


def test_the_earliest_of_several_part_ended_closes_the_box(grade) -> None:
    b = clean(60)
    events = moved(b, ended(1), 170)
    second = Event(
        "part.ended", b.platform_id, "end-1-again", b.at(60), {"exam_id": b.exam_id, "part": 1}
    )
    c = grade([*events, second]).criterion("p1.column_masking")  # met at minute 116
    assert c.state == "expired", c.reason


# ------------------------------------------------------------------ part.extended
def late_schema(b: ExamBuilder) -> list[Event]:
    """The clean exam without the proctor's end of Part 1 and its schema at minute 195."""
    return [
        Event(e.type, e.platform_id, e.event_id, b.at(195), e.data)
        if e.type == "schema.registered"
        else e
        for e in b.events
        if not ended(1)(e)
    ]


def test_an_extension_moves_the_close_and_late_evidence_counts(grade) -> None:
    b = clean()
    events = late_schema(b)
    assert grade(events).criterion("p1.schema_registered").state == "expired"
    r = grade([*events, extension(b, 30, 1, 20)])
    c = r.criterion("p1.schema_registered")
    assert c.state == "met", c.reason
    assert "part.extended" not in notes(r)


def test_extensions_add_up(grade) -> None:
    b = clean(191)
    events = late_schema(b)
    one = grade([*events, extension(b, 30, 1, 10)]).criterion("p1.schema_registered")
    assert one.state == "expired"  # 181 + 10 = 191 < 195
    two = [*events, extension(b, 30, 1, 10), extension(b, 40, 1, 10)]
    assert grade(two).criterion("p1.schema_registered").state == "met"  # 201


def test_an_extension_of_one_part_does_not_move_another(grade) -> None:
    b = clean()
    r = grade([*late_schema(b), extension(b, 30, 3, 60)])
    assert r.criterion("p1.schema_registered").state == "expired"


def test_part_ended_wins_over_an_extension(grade) -> None:
    b = clean(190)
    events = [*late_schema(b), extension(b, 30, 1, 60)]
    stop = Event("part.ended", b.platform_id, "end-1", b.at(190), {"exam_id": b.exam_id, "part": 1})
    assert grade([*events, stop]).criterion("p1.schema_registered").state == "expired"


def test_exam_ended_wins_over_an_extension(grade) -> None:
    b = clean()
    r = grade([*b.events, extension(b, 350, 3, 60)])
    # Part 3's box would run to 480 but the exam ended at 425: the review still counts
    assert r.criterion("p3.issues_found").state == "met"
    assert r.ended_ms == b.at(425)


@pytest.mark.parametrize("minutes", [-30, 0, 100_000, "ten", None])
def test_an_extension_with_bad_minutes_is_ignored_and_noted(grade, minutes: object) -> None:
    b = clean()
    r = grade([*late_schema(b), extension(b, 30, 1, minutes)])
    assert r.criterion("p1.schema_registered").state == "expired"
    assert "part.extended for part 1" in notes(r)
    assert "ignored" in notes(r)
    assert r.review, "a bad extension must put the exam in review"


def test_an_extension_for_an_unknown_part_is_ignored_and_noted(grade) -> None:
    b = clean()
    r = grade([*late_schema(b), extension(b, 30, 7, 30)])
    assert r.criterion("p1.schema_registered").state == "expired"
    assert "names part 7" in notes(r)


def test_an_extension_after_the_box_closed_does_not_reopen_it(grade) -> None:
    b = clean()
    r = grade([*late_schema(b), extension(b, 190, 1, 30)])  # the box closed at 181
    assert r.criterion("p1.schema_registered").state == "expired"
    assert "came after the part's time box closed" in notes(r)


def test_an_extension_before_the_part_started_counts(grade) -> None:
    """An accommodation granted up front (before part.started) extends the part."""
    b = clean()
    assert grade([*late_schema(b), extension(b, 0.2, 1, 20)]).criterion(
        "p1.schema_registered"
    ).state == ("met")


# ------------------------------------------------------------------ between the parts
def test_an_act_between_two_parts_counts_for_neither(grade) -> None:
    """Part 1 ended at 150; Part 2 opens with the fault at 180: a Grafana look and a
    kubectl apply at 160 belong to no part."""
    b = ExamBuilder("basecamp-alice")
    b.start()
    b.part1()
    b.audit(160, "patch", "alice", "kubectl-client-side-apply")
    b.add("tool.used", 160, tool="grafana", action="explore", target="Orders SLO", user="alice")
    b.part2("trino", "stale_statistics")
    b.part3()
    b.finish()
    b.heartbeats(150 - 1 / 3)
    events = [e for e in moved(b, ended(1), 150) if not _grafana_in_part2(b, e)]
    r = grade(events)
    assert r.criterion("p1.zero_manual_apply").state == "met", r.criterion(
        "p1.zero_manual_apply"
    ).reason
    assert r.criterion("p2.fix_via_gitops").state == "met"
    assert r.criterion("p2.triage_observability").state == "expired"
    # the same apply inside Part 1's box fails Part 1
    inside = moved(b, lambda e: e.type == "k8s.audit" and e.ts_ms == b.at(160), 140)
    assert grade(inside).criterion("p1.zero_manual_apply").state == "failed"


def _grafana_in_part2(b: ExamBuilder, e: Event) -> bool:
    return e.type == "tool.used" and e.data.get("tool") == "grafana" and e.ts_ms > b.at(180)


# ------------------------------------------------------------------ any order, live
def test_any_delivery_order_gives_the_reference_windows(rubrics, judge) -> None:
    """Control events in any order (before the signals, as a replay feeds them), signals
    shuffled: the grades and notes of the reference. Everything shuffled: the same
    grades, or the exam says an extension came after signals past the old end."""
    b = clean(260)
    events = [
        *moved(b, ended(2), 260),
        extension(b, 30, 1, 15),
        extension(b, 35, 1, -5),
        extension(b, 200, 3, 10),
        extension(b, 330, 3, 7),
        extension(b, 250, 1, 30),  # Part 1 closed at 181 + 15: not reopened
    ]
    ref = grade_history(events, rubrics, judge, at_ms=b.at(500))[0]
    want = [(c.criterion_id, c.state, c.reason) for c in ref.criteria]
    assert "asks for -5 minutes" in notes(ref)
    assert "came after the part's time box closed" in notes(ref)
    flagged = 0
    for seed in range(6):
        rng = random.Random(seed)
        control = [e for e in events if e.type in CONTROL_TYPES]
        signals = [e for e in events if e.type not in CONTROL_TYPES]
        rng.shuffle(control)
        rng.shuffle(signals)
        for order, exact in (
            ([*control, *signals], True),
            (rng.sample(events, len(events)), False),
        ):
            engine = Engine(rubrics, judge)
            for ev in order:
                engine.apply(ev)
            engine.evaluate(b.at(500))
            got = engine.results()[0]
            if exact:
                assert [(c.criterion_id, c.state, c.reason) for c in got.criteria] == want
                assert got.notes == ref.notes
            elif any("was extended after signals" in r for r in got.review):
                flagged += 1
            else:
                assert [(c.criterion_id, c.state, c.reason) for c in got.criteria] == want
    assert flagged, "no shuffle delivered an extension late: the flag went untested"


def test_live_an_extension_read_before_the_close_keeps_the_box_open(rubrics, judge) -> None:
    """The worker's clocked engine: the extension arrives at minute 170, the clock passes
    the old close at 181 with nothing closing, the late schema at 195 meets the criterion."""
    b = clean()
    events = late_schema(b)
    engine = Engine(rubrics, judge, clocked=True)
    control = [e for e in events if e.type not in ("schema.registered",) and e.ts_ms <= b.at(170)]
    for ev in sorted(control, key=lambda e: e.ts_ms):
        engine.apply(ev)
    engine.apply(extension(b, 170, 1, 20))
    out = engine.evaluate(b.at(190))
    assert "p1.schema_registered" not in {t.criterion_id for t in out}
    schema = next(e for e in events if e.type == "schema.registered")
    changed = engine.apply(schema)
    assert [(t.criterion_id, t.state) for t in changed] == [("p1.schema_registered", "met")]
    closed = engine.evaluate(b.at(202))
    assert "p1.schema_registered" not in {t.criterion_id for t in closed}


def test_live_an_extension_after_signals_past_the_old_end_flags_the_exam(rubrics, judge) -> None:
    b = clean()
    engine = Engine(rubrics, judge, clocked=True)
    for ev in sorted(late_schema(b), key=lambda e: e.ts_ms):
        if ev.ts_ms <= b.at(200):
            engine.apply(ev)
    engine.apply(extension(b, 170, 1, 20))
    (result,) = engine.results()
    assert any("was extended after signals past its old end" in r for r in result.review)
