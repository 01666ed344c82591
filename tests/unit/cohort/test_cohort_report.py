"""Reports: a page per candidate (Markdown, HTML) with every criterion's state, reason and
evidence, overrides with who and why, review notes; and the cohort's CSV."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from services.cohort.cli import report_cmd
from services.cohort.report import candidate_html, candidate_markdown, cohort_csv, write_reports
from services.contract.jsonl import read_jsonl, write_jsonl
from services.core.events import Event
from services.core.simple_judge import KeywordJudge
from services.offline.replay import replay_events
from services.rubrics import resolver

pytestmark = pytest.mark.unit

SCENARIO = Path(__file__).resolve().parents[2] / "scenarios" / "p2_trino_stale_statistics.jsonl"


def events() -> list[Event]:
    evs = read_jsonl(SCENARIO)
    carol_end = next(e for e in evs if e.type == "exam.ended" and e.platform_id == "basecamp-carol")
    appeal = Event(
        "grade.overridden",
        "basecamp-carol",
        "carol-appeal",
        carol_end.ts_ms - 60_000,
        {
            "exam_id": carol_end.data["exam_id"],
            "criterion_id": "p2.root_cause",
            "state": "partial",
            "reason": "named the layer <b>in the call</b>",
            "by": "jane",
            "kind": "appeal",
        },
    )
    # a second fault.injected on bob's platform: a conflict, so a review note
    bob_fault = next(
        e for e in evs if e.type == "fault.injected" and e.platform_id == "basecamp-bob"
    )
    again = Event(bob_fault.type, bob_fault.platform_id, "bob-fault-again",
                  bob_fault.ts_ms + 60_000, {**bob_fault.data, "kind": "wrong_join_order"})  # fmt: skip
    return [*evs, appeal, again]


@pytest.fixture(scope="module")
def results():  # type: ignore[no-untyped-def]
    return {r.candidate_id: r for r in replay_events(events(), resolver(), KeywordJudge()).results}


def test_markdown_lists_every_criterion_with_state_reason_and_evidence(results) -> None:
    alice = results["alice"]
    md = candidate_markdown(alice)
    assert md.startswith("# alice: exam-2026-11-27-alice")
    assert "status: **pass**" in md
    for c in alice.criteria:
        row = next(line for line in md.splitlines() if line.startswith(f"| {c.criterion_id} |"))
        assert f"**{c.state}**" in row
        for ev in c.evidence:
            assert f"`{ev}`" in row
    assert "- none open" in md


def test_an_appeal_shows_who_and_why_and_the_grade_it_replaced(results) -> None:
    carol = results["carol"]
    c = carol.criterion("p2.root_cause")
    assert c.state == "partial"
    md = candidate_markdown(carol)
    assert "Appeal decided by jane" in md and "(graded failed:" in md
    page = candidate_html(carol)
    assert "named the layer &lt;b&gt;in the call&lt;/b&gt;" in page  # escaped
    assert "<b>in the call</b>" not in page


def test_review_notes_are_in_the_report(results) -> None:
    bob = results["bob"]
    assert bob.notes
    md = candidate_markdown(bob)
    assert "status: **review**" in md
    assert "more than one fault.injected" in md


def test_the_cohort_csv_has_one_row_per_exam(results) -> None:
    rows = list(csv.DictReader(io.StringIO(cohort_csv(list(results.values())))))
    assert [r["candidate_id"] for r in rows] == ["alice", "bob", "carol"]
    by = {r["candidate_id"]: r for r in rows}
    assert by["alice"]["status"] == "pass" and by["alice"]["passed"] == "true"
    assert by["bob"]["status"] == "review" and int(by["bob"]["open_reviews"]) >= 1
    assert by["carol"]["overridden"] == "p2.root_cause"
    assert float(by["alice"]["total_pct"]) == pytest.approx(results["alice"].total_pct, abs=0.01)


def test_write_reports_and_the_cli(tmp_path: Path, results) -> None:
    paths = write_reports(results.values(), tmp_path / "a")
    assert sorted(p.name for p in paths)[:2] == [
        "alice-exam-2026-11-27-alice.html",
        "alice-exam-2026-11-27-alice.md",
    ]
    rec = tmp_path / "rec.jsonl"
    write_jsonl(events(), rec)
    out = CliRunner().invoke(report_cmd, [str(rec), "--out", str(tmp_path / "b"),
                                          "--candidate", "carol"])  # fmt: skip
    assert out.exit_code == 0, out.output
    assert sorted(p.name for p in (tmp_path / "b").iterdir()) == [
        "carol-exam-2026-11-27-carol.html",
        "carol-exam-2026-11-27-carol.md",
        "cohort.csv",
        "cohort.parquet",
    ]
    table = pq.read_table(tmp_path / "a" / "cohort.parquet").to_pylist()
    assert [(r["candidate_id"], r["passed"]) for r in table] == [
        ("alice", True),
        ("bob", results["bob"].passed),
        ("carol", False),
    ]
    assert table[0]["total_pct"] == round(results["alice"].total_pct, 2)
    none = CliRunner().invoke(report_cmd, [str(rec), "--out", str(tmp_path / "c"),
                                           "--candidate", "zed"])  # fmt: skip
    assert none.exit_code != 0 and "no exam of zed" in none.output
