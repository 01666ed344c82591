"""Which dbt artifacts the collector publishes, waits for or reports: the shapes a real
dbt-trino build leaves (tests/integration/collectors/test_dbt_real.py drives the real one)."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from services.collectors.dbt import SETTLE_S, DbtCollector, Settings
from services.collectors.http import SourceError

pytestmark = pytest.mark.unit

MODEL = "model.shop.orders_hourly"
TEST = "test.shop.orders_hourly_revenue_non_negative"


def _run_results(invocation: str) -> dict[str, object]:
    return {
        "metadata": {"invocation_id": invocation, "generated_at": "2026-12-06T08:12:24.298245Z"},
        "args": {"which": "build"},
        "results": [
            {"unique_id": MODEL, "status": "success", "relation_name": '"iceberg"."s"."m"'},
            {"unique_id": TEST, "status": "pass", "failures": 0},
        ],
    }


def _manifest(invocation: str) -> dict[str, object]:
    return {
        "metadata": {"invocation_id": invocation},
        "nodes": {
            MODEL: {"resource_type": "model", "config": {"materialized": "table"}},
            TEST: {"resource_type": "test", "depends_on": {"nodes": [MODEL]}},
        },
    }


def _write(folder: Path, name: str, doc: dict[str, object], age_s: float = 0.0) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(json.dumps(doc))
    if age_s:
        then = time.time() - age_s
        os.utime(path, (then, then))


def _test_deps(collector: DbtCollector) -> list[list[str]]:
    result = collector.poll({})
    return [
        next(r["depends_on"] for r in ev.data["results"] if r["unique_id"] == TEST)
        for ev in result.events
    ]


def test_run_results_wait_for_their_own_manifest_while_fresh(tmp_path: Path) -> None:
    inv = tmp_path / "inv-1"
    _write(inv, "run_results.json", _run_results("a"))
    collector = DbtCollector(Settings(path=tmp_path), "basecamp-x")
    first = collector.poll({})
    assert first.events == () and first.lag == 1
    _write(inv, "manifest.json", _manifest("b"))  # another invocation's: still waiting
    assert collector.poll({}).events == ()
    _write(inv, "manifest.json", _manifest("a"))
    assert _test_deps(collector) == [[MODEL]]


def test_run_results_without_a_manifest_are_published_once_settled(tmp_path: Path) -> None:
    _write(tmp_path / "inv-1", "run_results.json", _run_results("a"), age_s=SETTLE_S + 5)
    collector = DbtCollector(Settings(path=tmp_path), "basecamp-x")
    assert _test_deps(collector) == [[]]


def test_a_project_that_never_parsed_has_no_target_dir_and_is_no_error(tmp_path: Path) -> None:
    (tmp_path / "dbt_project.yml").write_text("name: shop\n")
    collector = DbtCollector(Settings(path=tmp_path / "target"), "basecamp-x")
    assert collector.poll({}).events == ()
    elsewhere = DbtCollector(Settings(path=tmp_path / "nowhere" / "target"), "basecamp-x")
    with pytest.raises(SourceError, match="does not exist"):
        elsewhere.poll({})


def test_unreadable_artifacts_are_a_dead_letter_and_the_other_invocations_go_on(
    tmp_path: Path,
) -> None:
    cut = tmp_path / "inv-0"
    cut.mkdir()
    (cut / "run_results.json").write_text('{"metadata": {"invocation_id": "x"')
    then = time.time() - SETTLE_S - 5
    os.utime(cut / "run_results.json", (then, then))
    nameless = _run_results("")
    _write(tmp_path / "inv-1", "run_results.json", nameless, age_s=SETTLE_S + 4)
    _write(tmp_path / "inv-2", "run_results.json", _run_results("a"), age_s=SETTLE_S + 3)
    _write(tmp_path / "inv-2", "manifest.json", _manifest("a"), age_s=SETTLE_S + 3)
    collector = DbtCollector(Settings(path=tmp_path), "basecamp-x")
    result = collector.poll({})
    dead = [e for e in result.events if e.type == "grading.dead_letter"]
    runs = [e for e in result.events if e.type == "dbt.run"]
    assert [r.data["invocation_id"] for r in runs] == ["a"]
    assert {d.data["error_class"] for d in dead} == {"corrupt_bytes", "invalid_field"}
    assert all(d.platform_id == "basecamp-x" and d.data["source"] == "collector:dbt" for d in dead)
    assert any("not valid JSON" in d.data["reason"] for d in dead)
    assert any("invocation_id" in d.data["reason"] for d in dead)
    # once per version of a file: the next poll from this position publishes nothing
    assert collector.poll(result.position).events == ()
