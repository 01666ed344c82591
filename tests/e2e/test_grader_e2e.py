"""The grader service end to end with the real grading core, on the real stack.

A recorded exam from the scenario library goes through the contract's publisher to Kafka
(its own topic prefix), ``proctor worker`` grades it with the core engine and sinks it to
Iceberg, and the ``grading.exam_scores`` view in Trino must equal ``proctor replay
--json`` of the same recording: every criterion's state, score and max score, the part
scores, the total percentage and pass.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pyiceberg.catalog import Catalog
from pyiceberg.catalog.sql import SqlCatalog

from services.stack.catalog import load_catalog, trino_connect
from tests.integration.grader.live import (
    SCENARIOS,
    LiveExam,
    comparable,
    live_exam,
    replay_json,
    settle,
    transition_counts,
    trino_scores,
)

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


@pytest.fixture(scope="module")
def catalog(stack: Any) -> Iterator[Catalog]:
    cat = load_catalog(stack.require("postgres"))
    yield cat
    if isinstance(cat, SqlCatalog):
        cat.engine.dispose()


@pytest.fixture(scope="module")
def trino(stack: Any) -> Iterator[Any]:
    with contextlib.closing(trino_connect(stack.require("trino"))) as conn:
        yield conn


@pytest.fixture
def live(
    stack: Any,
    kafka_bootstrap: str,
    registry_url: str,
    catalog: Catalog,
    trino: Any,
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> Iterator[LiveExam]:
    with live_exam(
        "e2e",
        request.node.name,
        kafka_bootstrap,
        registry_url,
        catalog,
        trino,
        tmp_path,
        width=24,
    ) as exam:
        yield exam


#: the first four are the brief's; the rest of the scenario library follows
FIRST = ("clean_pass", "two_platforms", "p2_cdc_dropped_events", "duplicates_shuffled")
CASES = {
    name: (f"{name}.jsonl",)
    for name in FIRST
    + tuple(sorted(p.stem for p in SCENARIOS.glob("*.jsonl") if p.stem not in FIRST))
}


@pytest.mark.parametrize("files", list(CASES.values()), ids=list(CASES))
def test_trino_exam_scores_equal_the_offline_replay(
    live: LiveExam, trino: Any, files: tuple[str, ...]
) -> None:
    assert len(files) == 1
    expected = comparable(replay_json(SCENARIOS / files[0]))
    assert expected and all(e["criteria"] for e in expected.values())

    live.publish(live.events(*files))
    live.start_worker()
    live.wait_ready()
    got = settle(lambda: trino_scores(trino, live.namespace), expected, live.procs)

    assert set(got) == set(expected), "exams differ"
    for exam_id, want in expected.items():
        have = got[exam_id]
        diff = {
            cid: (have["criteria"].get(cid), state)
            for cid, state in want["criteria"].items()
            if have["criteria"].get(cid) != state
        }
        assert not diff, f"{exam_id}: criteria (trino, replay) differ: {diff}"
        assert set(have["criteria"]) == set(want["criteria"])
        assert have["parts"] == want["parts"]
        assert (have["total_pct"], have["passed"]) == (want["total_pct"], want["passed"])
        assert have["platform_id"] == want["platform_id"]
    total, distinct = transition_counts(trino, live.namespace)
    assert total == distinct > 0, f"{total} rows for {distinct} transition ids"
