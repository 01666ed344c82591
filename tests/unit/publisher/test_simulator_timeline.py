"""The simulator's timelines: each scenario emits what the rubric needs to grade it as told.

Every preset's whole run (the builder's exam plus a day of heartbeats, offsets polls,
checkpoints and queries) is graded with the grading core and must give the preset's
states; the background must never change a grade; a run is reproducible from its seed.
"""

from __future__ import annotations

import itertools
from collections import Counter

import pytest

from services.contract.jsonl import event_to_line, parse_line
from services.contract.schemas import load_contract
from services.core.events import rfc3339_to_ms
from services.errors import ConfigError
from services.judge.default import default_judge
from services.offline.replay import replay_events
from services.offline.scenarios import COLLECTORS, ExamBuilder
from services.publisher.timeline import (
    DEMO_CANDIDATES,
    EXAM_MINUTES,
    PRESETS,
    Background,
    Candidate,
    exam_events,
    parse_scenario,
    plan_candidates,
    run_events,
)
from services.rubrics import resolver

pytestmark = pytest.mark.unit

START = rfc3339_to_ms("2026-11-27T09:00:00.000Z")
MINUTE = 60_000


def _grade(events: list) -> dict[str, dict[str, str]]:
    result = replay_events(events, resolver(), default_judge())
    return {r.exam_id: {c.criterion_id: c.state for c in r.criteria} for r in result.results}


def _one(scenario: str, name: str = "alice") -> Candidate:
    return plan_candidates([(name, scenario)], START)[0]


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_every_preset_grades_as_its_story_says(preset: str) -> None:
    cand = _one(preset)
    states = _grade(exam_events(cand))[cand.exam_id]
    expected = PRESETS[preset].expect
    wrong = {k: (v, states.get(k)) for k, v in expected.items() if states.get(k) != v}
    assert not wrong, f"{preset}: expected vs graded {wrong}"
    passed = states["overall.pass"] == "met"
    assert passed is PRESETS[preset].passed


@pytest.mark.parametrize("preset", ["clean_pass", "manual_apply", "no_100k", "blind_collector"])
def test_background_signals_never_change_a_grade(preset: str) -> None:
    """The builder's exam alone and the exam with a day of background grade the same."""
    cand = _one(preset)
    kwargs = cand.choices.builder_kwargs()
    bare = ExamBuilder(cand.platform, exam_id=cand.exam_id, candidate_id=cand.name, start_ms=START)
    bare.full(kwargs.pop("layer"), kwargs.pop("kind"), **kwargs)
    full = exam_events(cand)
    assert len(full) > 10 * len(bare.events)
    assert _grade(list(bare.events))[cand.exam_id] == _grade(full)[cand.exam_id]


@pytest.mark.parametrize(
    ("spec", "right"),
    [
        ("clean_pass:fault=cache/stale_cache", "met"),
        ("clean_pass:fault=cdc/lost_messages,diagnosis=partial", "partial"),
        ("clean_pass:fault=spark_airflow,diagnosis=wrong", "failed"),
        ("clean_pass:fault=dbt/test_missing,diagnosis=symptom", "failed"),
        ("clean_pass:fault=iceberg/compaction_race,diagnosis=none", "expired"),
    ],
)
def test_fault_kinds_and_diagnoses(spec: str, right: str) -> None:
    cand = plan_candidates([("erin", spec)], START)[0]
    events = exam_events(cand)
    fault = next(e for e in events if e.type == "fault.injected")
    assert (fault.data["layer"], fault.data["kind"]) == (cand.choices.layer, cand.choices.kind)
    assert _grade(events)[cand.exam_id]["p2.root_cause"] == right


def test_late_diagnosis_comes_after_ninety_minutes() -> None:
    events = exam_events(_one("late_diagnosis"))
    fault = next(e for e in events if e.type == "fault.injected")
    diagnosis = next(e for e in events if e.type == "diagnosis.submitted")
    assert diagnosis.ts_ms - fault.ts_ms > 90 * MINUTE


def test_realistic_timing_heartbeats_offsets_checkpoints() -> None:
    cand = _one("clean_pass")
    events = exam_events(cand, background=Background(poll_seconds=30))
    beats = Counter(e.data["collector"] for e in events if e.type == "collector.heartbeat")
    assert set(beats) == set(COLLECTORS)
    polls = EXAM_MINUTES * 2  # every 30 s of a 425-minute exam
    assert all(n >= polls for n in beats.values())
    # a collector never goes quiet for longer than the rubric's 90 s grace
    times = sorted(
        e.ts_ms for e in events if e.type == "collector.heartbeat" and e.data["collector"] == "dbt"
    )
    assert max(b - a for a, b in itertools.pairwise(times)) < 90_000
    # offsets never go backwards on a partition
    per_partition: dict[int, list[tuple[int, int]]] = {}
    for e in events:
        if e.type == "cdc.offsets":
            per_partition.setdefault(e.data["partition"], []).append(
                (e.ts_ms, e.data["high_watermark"])
            )
    for readings in per_partition.values():
        values = [v for _, v in sorted(readings)]
        assert values == sorted(values)
        assert len(values) > polls / 2
    checkpoints = [e.data["checkpoint_id"] for e in events if e.type == "flink.checkpoint"]
    assert len(checkpoints) == len(set(checkpoints)) > 300
    assert [e.ts_ms for e in events] == sorted(e.ts_ms for e in events)


def test_a_silent_collector_sends_nothing_at_all() -> None:
    events = exam_events(_one("blind_collector"))
    assert not [
        e for e in events if e.type == "collector.heartbeat" and e.data["collector"] == "schemas"
    ]
    assert not [e for e in events if e.type == "schema.registered"]


def test_deterministic_for_a_seed_and_different_across_seeds() -> None:
    plan = plan_candidates(DEMO_CANDIDATES, START, 2)
    a, b = run_events(plan, seed=7), run_events(plan, seed=7)
    assert [(e.event_id, e.ts_ms, dict(e.data)) for e in a] == [
        (e.event_id, e.ts_ms, dict(e.data)) for e in b
    ]
    c = run_events(plan, seed=8)
    assert {e.event_id for e in a}.isdisjoint({e.event_id for e in c})


def test_event_ids_are_unique_and_differ_between_runs() -> None:
    first = run_events(plan_candidates(DEMO_CANDIDATES, START))
    later = run_events(plan_candidates(DEMO_CANDIDATES, START + 8 * 60 * MINUTE))
    ids = [e.event_id for e in first]
    assert len(ids) == len(set(ids))
    assert set(ids).isdisjoint(e.event_id for e in later)
    assert {c.exam_id for c in plan_candidates(DEMO_CANDIDATES, START)}.isdisjoint(
        c.exam_id for c in plan_candidates(DEMO_CANDIDATES, START + 8 * 60 * MINUTE)
    )


def test_every_event_is_contract_valid_and_keyed_by_its_platform() -> None:
    contract = load_contract()
    plan = plan_candidates(DEMO_CANDIDATES, START, 3)
    events = run_events(plan)
    platforms = {c.platform for c in plan}
    sample = events[:: max(1, len(events) // 2000)] + [
        e
        for e in events
        if e.type.startswith(("exam", "part", "fault", "diag", "artifact", "self"))
    ]
    for ev in sample:
        assert ev.platform_id in platforms
        line = event_to_line(ev, contract)  # raises ContractError when invalid
        assert parse_line(line, contract).event_id == ev.event_id


def test_candidates_are_staggered_and_the_run_is_merged_in_time_order() -> None:
    plan = plan_candidates(DEMO_CANDIDATES, START, stagger_minutes=5)
    assert [c.start_ms - START for c in plan] == [0, 5 * MINUTE, 10 * MINUTE, 15 * MINUTE]
    events = run_events(plan)
    starts = {e.platform_id: e.ts_ms for e in events if e.type == "exam.started"}
    assert starts == {c.platform: c.start_ms for c in plan}
    graded = _grade(events)
    assert set(graded) == {c.exam_id for c in plan}
    assert graded[plan[0].exam_id]["overall.pass"] == "met"
    assert graded[plan[1].exam_id]["p1.zero_manual_apply"] == "failed"


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("nope", "unknown scenario 'nope'"),
        ("clean_pass:fault=db/x", "unknown layer 'db'"),
        ("clean_pass:fault=trino/stale_cache", "'stale_cache' is not a fault of trino"),
        ("clean_pass:diagnosis=maybe", "choose one of right, partial"),
        ("clean_pass:self_grade=120", "between 0 and 100"),
        ("clean_pass:silent=dns", "unknown collector(s) dns"),
        ("clean_pass:colour=red", "unknown scenario option 'colour'"),
        ("clean_pass:fault", "write key=value"),
    ],
)
def test_bad_scenarios_are_named(spec: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_scenario(spec)


def test_bad_candidates_are_named() -> None:
    with pytest.raises(ConfigError, match="named twice"):
        plan_candidates([("al", "clean_pass"), ("al", "no_100k")], START)
    with pytest.raises(ConfigError, match="lower-case letters"):
        plan_candidates([("Al Ice", "clean_pass")], START)
    with pytest.raises(ConfigError, match="poll interval"):
        Background(poll_seconds=120)
