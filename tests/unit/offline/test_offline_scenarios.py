"""The scenario library: committed recordings equal a fresh build, and each grades as it should."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from services.core.simple_judge import KeywordJudge
from services.offline.reader import iter_events
from services.offline.replay import replay_events
from services.offline.scenarios import FAULT_KINDS, SCENARIOS, render_jsonl
from services.rubrics import resolver

pytestmark = pytest.mark.unit

HERE = Path(__file__).resolve().parents[2] / "scenarios"


def _index() -> str:
    spec = importlib.util.spec_from_file_location("scenarios_build", HERE / "build.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return str(mod.index())


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_recording_is_a_fresh_build(name: str) -> None:
    path = HERE / f"{name}.jsonl"
    assert path.read_text(encoding="utf-8") == render_jsonl(SCENARIOS[name]().events), (
        f"{path} is stale: run .venv/bin/python tests/scenarios/build.py"
    )


def test_index_is_fresh_and_every_recording_is_a_scenario() -> None:
    assert (HERE / "README.md").read_text(encoding="utf-8") == _index()
    assert {p.stem for p in HERE.glob("*.jsonl")} == set(SCENARIOS)


def test_the_library_covers_every_fault_kind() -> None:
    kinds = [(layer, kind) for layer, ks in FAULT_KINDS.items() for kind in ks]
    assert len(kinds) == 12
    assert all(f"p2_{layer}_{kind}" in SCENARIOS for layer, kind in kinds)


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_recording_grades_as_the_scenario_expects(name: str) -> None:
    scenario = SCENARIOS[name]()
    events = list(iter_events(HERE / f"{name}.jsonl"))
    results = {r.exam_id: r for r in replay_events(events, resolver(), KeywordJudge()).results}
    assert set(results) == {e.exam_id for e in scenario.expect}
    for expect in scenario.expect:
        r = results[expect.exam_id]
        got = {cid: r.criterion(cid).state for cid in expect.states}
        assert got == expect.states, name
        assert r.passed is expect.passed, (name, expect.exam_id)
