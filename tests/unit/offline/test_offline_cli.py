"""``proctor replay`` and ``proctor regrade`` through the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from services.cli import cli
from services.offline.cli import EXIT_REFUSED
from services.offline.scenarios import SCENARIOS, render_jsonl

pytestmark = pytest.mark.unit

SCENARIO_DIR = Path(__file__).resolve().parents[2] / "scenarios"
V2_DIR = SCENARIO_DIR / "rubrics"


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def run(runner: CliRunner, *args: str) -> tuple[int, str, str]:
    res = runner.invoke(cli, list(args))
    return res.exit_code, res.stdout, res.stderr


def test_replay_json_has_exactly_the_promised_shape(runner: CliRunner) -> None:
    code, out, _ = run(runner, "replay", str(SCENARIO_DIR / "two_platforms.jsonl"), "--json")
    assert code == 0
    doc = json.loads(out)
    assert list(doc) == ["exams", "refused"]
    assert doc["refused"] == {"count": 0, "by_class": {}, "lines": []}
    assert [e["candidate_id"] for e in doc["exams"]] == ["alice", "bob"]
    alice = doc["exams"][0]
    assert list(alice) == [
        "exam_id",
        "candidate_id",
        "platform_id",
        "rubric_id",
        "rubric_version",
        "criteria",
        "parts",
        "total_pct",
        "passed",
        "review",
    ]
    assert alice["review"] == []  # alice's exam gives no reason to look
    assert (alice["rubric_id"], alice["rubric_version"], alice["passed"], alice["total_pct"]) == (
        "y3-final",
        "1",
        True,
        100.0,
    )
    assert list(alice["parts"]) == ["1", "2", "3"]
    assert alice["parts"]["1"] == {"score": 42.0, "max_score": 42.0}
    assert len(alice["criteria"]) == 32
    for c in alice["criteria"].values():
        assert list(c) == ["state", "score", "max_score", "reason", "evidence"]
        assert c["state"] in {"pending", "met", "partial", "failed", "expired", "unknown"}
        assert isinstance(c["score"], float) and isinstance(c["max_score"], float)
        assert isinstance(c["reason"], str) and c["reason"]
        assert all(isinstance(e, str) for e in c["evidence"])
    bob = doc["exams"][1]
    assert bob["criteria"]["p1.zero_manual_apply"]["state"] == "failed"
    assert bob["passed"] is False


def test_replay_at_a_time_grades_what_was_known_then(runner: CliRunner) -> None:
    path = str(SCENARIO_DIR / "clean_pass.jsonl")
    code, out, _ = run(runner, "replay", path, "--json", "--at", "2026-11-27T10:00:00.000Z")
    assert code == 0
    crit = json.loads(out)["exams"][0]["criteria"]
    assert crit["p1.schema_registered"]["state"] == "met"
    assert crit["p1.e2e_100k"]["state"] == "pending"
    assert crit["overall.pass"]["state"] == "pending"
    code, _, err = run(runner, "replay", path, "--at", "yesterday")
    assert code == 2
    assert "not an RFC 3339 time" in err


def test_replay_with_another_rubric_version(runner: CliRunner) -> None:
    code, out, _ = run(
        runner,
        "replay",
        str(SCENARIO_DIR / "p1_fail_e2e_100k.jsonl"),
        "--json",
        "--rubric-version",
        "2",
        "--rubrics-dir",
        str(V2_DIR),
    )
    assert code == 0
    exam = json.loads(out)["exams"][0]
    assert exam["rubric_version"] == "2"
    assert exam["criteria"]["p1.e2e_100k"]["state"] == "met"
    assert "p1.schema_evolved" in exam["criteria"]


def test_replay_table(runner: CliRunner) -> None:
    code, out, _ = run(runner, "replay", str(SCENARIO_DIR / "two_platforms.jsonl"))
    assert code == 0
    assert "exam-2026-11-27-alice" in out and "PASSED" in out
    assert "p1.zero_manual_apply" in out
    tail = " ".join(out.split())
    assert "2 signals outside every exam (basecamp-nobody)" in tail


def test_replay_names_the_bad_line(runner: CliRunner, tmp_path: Path) -> None:
    good = render_jsonl(SCENARIOS["clean_pass"]().events).splitlines()
    bad = tmp_path / "bad.jsonl"
    bad.write_text(
        "\n".join([*good[:3], '{"type": "cdc.offsets", "platform_id": "p"}', "not json", *good[3:]])
        + "\n"
    )
    code, out, err = run(runner, "replay", str(bad), "--json")
    assert code == 0  # refused lines are reported and skipped, as live
    assert f"refused {bad}:4: [missing_required_field] field 'event_id': missing" in err
    assert f"refused {bad}:5: [corrupt_bytes] not a JSON object" in err
    doc = json.loads(out)
    assert doc["exams"][0]["passed"] is True
    assert doc["refused"]["by_class"] == {"corrupt_bytes": 1, "missing_required_field": 1}
    assert [r["line"] for r in doc["refused"]["lines"]] == [4, 5]
    code, out, _ = run(runner, "replay", str(bad), "--strict")
    assert code == EXIT_REFUSED == 3
    assert "2 line(s) refused as the live worker would" in " ".join(out.split())
    code, _, _ = run(runner, "replay", str(bad), "--skip-invalid", "--json")
    assert code == 0  # the old flag is still accepted


def test_replay_of_a_recording_without_exams(runner: CliRunner, tmp_path: Path) -> None:
    f = tmp_path / "empty.jsonl"
    f.write_text("")
    code, out, _ = run(runner, "replay", str(f), "--json")
    assert code == 0
    assert json.loads(out) == {"exams": [], "refused": {"count": 0, "by_class": {}, "lines": []}}


def test_replay_reports_an_unknown_rubric(runner: CliRunner) -> None:
    code, out, err = run(
        runner, "replay", str(SCENARIO_DIR / "clean_pass.jsonl"), "--json", "--rubric-version", "42"
    )
    assert code == 0
    assert "no rubric y3-final version 42" in err
    assert json.loads(out)["exams"][0]["criteria"] == {}


def test_regrade_shows_what_changes(runner: CliRunner) -> None:
    code, out, _ = run(
        runner,
        "regrade",
        str(SCENARIO_DIR / "p1_fail_e2e_100k.jsonl"),
        str(SCENARIO_DIR / "two_platforms.jsonl"),
        "--from",
        "1",
        "--to",
        "2",
        "--rubrics-dir",
        str(V2_DIR),
        "--json",
    )
    assert code == 0
    doc = json.loads(out)
    assert doc["exams"] == 3
    by = {(d["source"].rsplit("/", 1)[1], d["exam_id"]): d for d in doc["changed"]}
    e2e = by[("p1_fail_e2e_100k.jsonl", "exam-2026-11-27-alice")]["criteria"]
    assert e2e["p1.e2e_100k"]["from"]["state"] == "expired"
    assert e2e["p1.e2e_100k"]["to"]["state"] == "met"
    assert e2e["p1.schema_evolved"]["from"] is None
    assert e2e["p1.schema_evolved"]["to"]["state"] == "expired"
    bob = by[("two_platforms.jsonl", "exam-2026-11-27-bob")]["criteria"]
    assert bob["p3.issues_found"]["from"]["state"] == "partial"
    assert bob["p3.issues_found"]["to"]["state"] == "met"


def test_regrade_a_folder_as_a_table(runner: CliRunner, tmp_path: Path) -> None:
    for name in ("clean_pass", "p1_fail_e2e_100k"):
        (tmp_path / f"{name}.jsonl").write_text(render_jsonl(SCENARIOS[name]().events))
    code, out, _ = run(
        runner, "regrade", str(tmp_path), "--from", "1", "--to", "2", "--rubrics-dir", str(V2_DIR)
    )
    assert code == 0
    assert "2 of 2 exams change from v1 to v2" in out
    assert "p1.e2e_100k" in out


def test_regrade_errors(runner: CliRunner, tmp_path: Path) -> None:
    code, _, err = run(runner, "regrade", str(tmp_path), "--from", "1", "--to", "2")
    assert code == 2 and "no *.jsonl recordings" in err
    code, _, err = run(
        runner, "regrade", str(SCENARIO_DIR / "clean_pass.jsonl"), "--from", "1", "--to", "3"
    )
    assert code == 2 and "no rubric y3-final version 3" in err


def test_replay_shows_why_an_exam_needs_review(runner: CliRunner) -> None:
    code, out, _ = run(runner, "replay", str(SCENARIO_DIR / "collector_blind.jsonl"), "--json")
    assert code == 0
    review = json.loads(out)["exams"][0]["review"]
    assert [(n["kind"], n["subject"]) for n in review] == [("blind", "p1.schema_registered")]
    assert "schemas collector was silent" in review[0]["reason"]
    code, out, _ = run(runner, "replay", str(SCENARIO_DIR / "collector_blind.jsonl"))
    assert code == 0 and "REVIEW: blind:" in out and "p1.schema_registered: Cannot judge" in out
