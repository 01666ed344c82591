"""State bytes: small, restorable, and corrupt bytes are a clear error."""

from __future__ import annotations

import pytest

from services.contract.jsonl import read_jsonl
from services.core.engine import Engine
from services.core.state_codec import (
    engine_from_bytes,
    engine_to_bytes,
    platform_to_bytes,
    restore_platform,
)
from services.errors import GradingError
from services.offline.scenarios import ExamBuilder, load_exam
from services.stack.config import REPO_ROOT

pytestmark = pytest.mark.unit


def test_a_large_exam_keeps_a_small_state_that_does_not_grow_with_its_signals(
    rubrics, judge
) -> None:
    sizes = []
    for n in (100_000, 200_000):
        engine = Engine(rubrics, judge)
        engine.apply_many(load_exam(n))
        sizes.append(len(platform_to_bytes(engine, "basecamp-load")))
    assert sizes[1] < 32_000, sizes  # bench/engine.py prints the size for a 1,000,000-signal exam
    assert sizes[1] < sizes[0] * 1.2, sizes


def test_platform_state_restores_into_a_fresh_engine(rubrics, judge) -> None:
    b = ExamBuilder("basecamp-alice").full()
    half = len(b.events) // 2
    a = Engine(rubrics, judge)
    for ev in b.events[:half]:
        a.apply(ev)
    fresh = Engine(rubrics, judge)
    restore_platform(fresh, platform_to_bytes(a, "basecamp-alice"))
    for ev in b.events[half:]:
        a.apply(ev)
        fresh.apply(ev)
    a.evaluate(b.at(430))
    fresh.evaluate(b.at(430))
    assert fresh.results() == a.results()
    assert fresh.results()[0].passed


def test_a_state_of_the_former_format_is_refused_with_how_to_start_afresh(rubrics, judge) -> None:
    with pytest.raises(GradingError, match=r"state format 1 is not 2 .*new PROCTOR_APP_ID"):
        restore_platform(Engine(rubrics, judge), b'{"v": 1, "p": "x", "u": [], "d": null, "x": []}')


@pytest.mark.parametrize(
    "data",
    [b"{not json", b'{"v": 99, "p": "x"}', b'{"v": 2, "p": "x", "u": [["t"]], "d": null, "x": []}'],
)
def test_corrupt_state_is_a_grading_error(rubrics, judge, data: bytes) -> None:
    with pytest.raises(GradingError):
        restore_platform(Engine(rubrics, judge), data)
    with pytest.raises(GradingError):
        engine_from_bytes(b"\x00", Engine(rubrics, judge))


def test_whole_engine_round_trip(rubrics, judge) -> None:
    e = Engine(rubrics, judge)
    for ev in ExamBuilder("basecamp-alice").full().events:
        e.apply(ev)
    again = engine_from_bytes(engine_to_bytes(e), e)
    assert engine_to_bytes(again) == engine_to_bytes(e)


@pytest.mark.parametrize(
    "scenario", sorted(p.name for p in (REPO_ROOT / "tests" / "scenarios").glob("*.jsonl"))
)
def test_a_restored_engine_holds_the_results_it_last_emitted(rubrics, judge, scenario) -> None:
    """After a restore at any point, the engine compares later decisions with the states
    it last emitted (not with a fresh evaluation), so a restarted worker emits exactly the
    transitions an uninterrupted one does."""
    events = read_jsonl(REPO_ROOT / "tests" / "scenarios" / scenario)
    live = Engine(rubrics, judge)
    for k, ev in enumerate(events):
        live.apply(ev)
        live.evaluate(ev.ts_ms)
        if k % 7:
            continue
        for pid in live.platforms:
            fresh = Engine(rubrics, judge)
            restore_platform(fresh, platform_to_bytes(live, pid))
            for exam_id, ex in live.platforms[pid].exams.items():
                got = fresh.platforms[pid].exams[exam_id].results
                assert [(r.criterion_id, r.state, r.score) for r in got] == [
                    (r.criterion_id, r.state, r.score) for r in ex.results
                ], f"{scenario} after event {k}, exam {exam_id}"
