"""The proctor's exam actions as events: selection, validation, and what the grader makes
of them (an accommodation from the roster extends the part it names)."""

from __future__ import annotations

import pytest

from services.cohort.lifecycle import (
    ACCOMMODATION,
    cohorts,
    end,
    end_part,
    extend,
    inject_fault,
    select,
    start,
    start_part,
)
from services.contract.schemas import load_contract
from services.core.engine import Engine
from services.core.simple_judge import KeywordJudge
from services.errors import CohortError
from services.rubrics import resolver
from services.trust.roster import RosterEntry

pytestmark = pytest.mark.unit

T0 = 1_795_770_000_000
MIN = 60_000


def seat(name: str, cohort: str = "y3", **kw: object) -> RosterEntry:
    return RosterEntry(f"basecamp-{name}", f"{cohort}-{name}", name, cohort=cohort, **kw)  # type: ignore[arg-type]


@pytest.fixture
def roster() -> dict[str, RosterEntry]:
    entries = [
        seat("alice", extra_minutes={1: 30}),
        seat("bob"),
        seat("carol", revoked=True),
        seat("dave", cohort="other"),
        RosterEntry("basecamp-solo", "solo-exam", "solo"),
    ]
    return {e.platform_id: e for e in entries}


def test_a_cohort_selects_its_live_exams_and_reports_the_revoked(roster) -> None:
    s = select(roster, cohort="y3")
    assert [e.candidate_id for e in s.entries] == ["alice", "bob"]
    assert s.skipped == ("basecamp-carol",)
    assert sorted(cohorts(roster.values())) == ["other", "y3"]


def test_a_candidate_by_candidate_or_platform_id(roster) -> None:
    assert [e.platform_id for e in select(roster, candidates=["bob"]).entries] == ["basecamp-bob"]
    one = select(roster, cohort="y3", candidates=["basecamp-alice", "alice"])
    assert [e.candidate_id for e in one.entries] == ["alice"]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"cohort": "nope"}, "no cohort 'nope' in the roster (cohorts: other, y3"),
        ({"cohort": "y3", "candidates": ["dave"]}, "'dave' is neither a candidate nor a platform"),
        ({"candidates": ["zed"]}, "of the roster"),
        ({}, "name a cohort"),
        ({"candidates": ["carol"]}, "every selected platform is revoked"),
    ],
)
def test_selection_errors_say_what_to_do(roster, kwargs: dict, message: str) -> None:
    with pytest.raises(CohortError) as err:
        select(roster, **kwargs)
    assert message in str(err.value)


def test_start_sends_the_exam_part_1_and_each_accommodation(roster) -> None:
    events = start(roster["basecamp-alice"], T0)
    assert [(e.type, e.data.get("part")) for e in events] == [
        ("exam.started", None),
        ("part.started", 1),
        ("part.extended", 1),
    ]
    assert events[2].data["minutes"] == 30 and events[2].data["reason"] == ACCOMMODATION
    # the same command again: the same event ids (the worker keeps the first)
    again = start(roster["basecamp-alice"], T0 + MIN)
    assert [e.event_id for e in again] == [e.event_id for e in events]
    contract = load_contract()
    for e in events:
        contract.validate(e)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda e: extend(e, 1, -5, "x", T0), "1 to 1440 minutes, not -5"),
        (lambda e: extend(e, 1, 0, "x", T0), "not 0"),
        (lambda e: extend(e, 1, 10, "  ", T0), "say why"),
        (lambda e: extend(e, 4, 10, "x", T0), "part 4 is not an exam part"),
        (lambda e: end_part(e, 0, T0), "part 0 is not an exam part"),
        (lambda e: start_part(e, 9, T0), "part 9"),
        (lambda e: inject_fault(e, "trino", "stale_cache", "t", T0), "not a fault of layer"),
        (lambda e: inject_fault(e, "kafka", "x", "t", T0), "layer 'kafka' is not one of"),
        (lambda e: inject_fault(e, "cache", "stale_cache", " ", T0), "--target"),
    ],
)
def test_invalid_actions_are_refused_before_anything_is_sent(roster, call, message: str) -> None:
    with pytest.raises(CohortError) as err:
        call(roster["basecamp-bob"])
    assert message in str(err.value)


def test_every_action_is_a_valid_contract_event(roster) -> None:
    e = roster["basecamp-bob"]
    contract = load_contract()
    events = [
        *start(e, T0),
        *extend(e, 2, 15, "VPN outage", T0 + MIN),
        *inject_fault(e, "trino", "stale_statistics", "lake.orders_enriched", T0 + 2 * MIN),
        *end_part(e, 2, T0 + 3 * MIN),
        *start_part(e, 3, T0 + 4 * MIN),
        *end(e, T0 + 5 * MIN),
    ]
    for ev in events:
        contract.validate(ev)
        assert ev.data["exam_id"] == "y3-bob" and ev.platform_id == "basecamp-bob"
    assert len({ev.event_id for ev in events}) == len(events)


def test_the_grader_gives_an_accommodated_candidate_the_extra_time(roster) -> None:
    """alice's 30 extra minutes in Part 1 (from the roster, sent at start) keep her box
    open at minute 200, bob's is closed."""
    engine = Engine(resolver(), KeywordJudge())
    for name in ("alice", "bob"):
        for ev in start(roster[f"basecamp-{name}"], T0):
            engine.apply(ev)
    engine.evaluate(T0 + 200 * MIN)
    by = {r.candidate_id: r for r in engine.results()}
    assert by["alice"].criterion("p1.schema_registered").state == "pending"
    assert by["bob"].criterion("p1.schema_registered").state in ("expired", "unknown")


def test_a_roster_entry_keeps_its_cohort_and_older_entries_their_bytes() -> None:
    plain = RosterEntry("basecamp-x", "e", "x", extra_minutes={1: 5})
    assert b"cohort" not in plain.to_bytes()  # a signature made before cohorts still holds
    assert RosterEntry.from_bytes(plain.to_bytes()) == plain
    seated = RosterEntry("basecamp-x", "e", "x", cohort="y3")
    assert RosterEntry.from_bytes(seated.to_bytes()).cohort == "y3"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("p1.cdc_source", "excellent", "r", "jane"), "state 'excellent' is not one of"),
        (("overall.pass", "met", "r", "jane"), "overall verdicts follow"),
        (("p1.cdc_source", "met", " ", "jane"), "say why"),
        (("p1.cdc_source", "met", "r", ""), "say who decided"),
    ],
)
def test_an_override_needs_a_criterion_state_reason_and_who(roster, args, message: str) -> None:
    from services.cohort.lifecycle import override

    with pytest.raises(CohortError) as err:
        override(roster["basecamp-bob"], *args, T0)
    assert message in str(err.value)


def test_an_appeal_is_a_valid_signed_contract_event(roster) -> None:
    from services.cohort.lifecycle import override

    (ev,) = override(roster["basecamp-bob"], "p3.senior_tone", "met", "upheld", "board", T0,
                     kind="appeal")  # fmt: skip
    load_contract().validate(ev)
    assert ev.data["kind"] == "appeal" and ev.data["by"] == "board"
