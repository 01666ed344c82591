"""Published regrades: the rows of a version and the version-aware views' SQL."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest

from services.contract.jsonl import read_jsonl
from services.core.simple_judge import KeywordJudge
from services.errors import ConfigError
from services.grader.views import exam_scores_sql, live_scores_query, score_versions_sql
from services.offline.replay import replay_events
from services.offline.versions import VERSIONS_SCHEMA, version_rows
from services.rubrics import resolver

pytestmark = pytest.mark.unit

SCENARIO = Path(__file__).resolve().parents[2] / "scenarios" / "p2_trino_stale_statistics.jsonl"


def test_a_version_has_a_row_per_criterion_with_the_exam_scores_columns() -> None:
    results = replay_events(read_jsonl(SCENARIO), resolver(), KeywordJudge()).results
    rows = version_rows(results, 3, "after appeals", 1_800_000_000_000)
    assert len(rows) == sum(len(r.criteria) for r in results)
    table = pa.Table.from_pylist(rows, VERSIONS_SCHEMA.as_arrow())  # the schema holds them
    assert set(table.column("version").to_pylist()) == {3}
    alice = [r for r in rows if r["exam_id"] == "exam-2026-11-27-alice"]
    overall = [r for r in alice if r["criterion_id"] == "overall.pass"]
    assert overall[0]["part"] is None and overall[0]["part_score"] is None
    assert {r["status"] for r in alice} == {"pass"}
    assert alice[0]["total_pct"] == round(results[0].total_pct, 2)


def test_without_published_versions_exam_scores_is_the_live_query() -> None:
    sql = exam_scores_sql("iceberg", "grading")
    assert sql.endswith(live_scores_query("iceberg.grading.criterion_transitions"))
    assert "graded_versions" not in sql


def test_with_versions_exam_scores_prefers_the_latest_published_one() -> None:
    sql = exam_scores_sql("iceberg", "grading", versions="graded_versions")
    assert "max(version) AS cur_version FROM iceberg.grading.graded_versions" in sql
    assert "WHERE exam_id NOT IN (SELECT cur_exam FROM cur_versions)" in sql
    both = score_versions_sql("iceberg", "grading")
    assert "'live' AS label" in both and "AS is_current" in both
    with pytest.raises(ConfigError):
        exam_scores_sql("iceberg", "grading", versions="x; DROP TABLE y")
