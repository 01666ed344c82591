"""``proctor simulate`` from the command line: recordings, the scenario list, bad input."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from services.cli import cli
from services.contract.jsonl import read_jsonl
from services.judge.default import default_judge
from services.offline.replay import replay_events
from services.rubrics import resolver

pytestmark = pytest.mark.unit


def test_no_publish_writes_a_recording_that_replays_to_the_stories(tmp_path: Path) -> None:
    out = tmp_path / "run.jsonl"
    result = CliRunner().invoke(
        cli,
        [
            "simulate",
            "--no-publish",
            "--record",
            str(out),
            "--start",
            "2026-11-27T09:00:00Z",
            "-c",
            "ann=clean_pass",
            "-c",
            "ben=manual_apply",
            "--stagger",
            "3",
            "--poll-seconds",
            "20",
        ],
    )
    assert result.exit_code == 0, result.output
    events = read_jsonl(out)
    assert {e.platform_id for e in events} == {"basecamp-ann", "basecamp-ben"}
    beats = [
        e for e in events if e.type == "collector.heartbeat" and e.platform_id == "basecamp-ann"
    ]
    assert len(beats) > 12 * 425 * 3 - 50  # every 20 s, 12 collectors
    graded = {r.candidate_id: r for r in replay_events(events, resolver(), default_judge()).results}
    assert graded["ann"].passed and not graded["ben"].passed
    assert graded["ben"].criterion("p1.zero_manual_apply").state == "failed"
    assert "sent" in result.output and f"recording: {out}" in result.output


def test_count_and_scenario_make_many_candidates(tmp_path: Path) -> None:
    out = tmp_path / "many.jsonl"
    result = CliRunner().invoke(
        cli,
        ["simulate", "--no-publish", "--record", str(out), "--count", "5", "--scenario", "no_100k"],
    )
    assert result.exit_code == 0, result.output
    started = [e for e in read_jsonl(out) if e.type == "exam.started"]
    assert sorted(e.data["candidate_id"] for e in started) == [f"cand-00{i}" for i in range(1, 6)]


def test_list_scenarios_names_every_preset() -> None:
    result = CliRunner().invoke(cli, ["simulate", "--list-scenarios"])
    assert result.exit_code == 0
    for name in ("clean_pass", "manual_apply", "no_100k", "late_diagnosis", "blind_collector"):
        assert name in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-c", "alice"], "write NAME=SCENARIO"),
        (["-c", "alice=nonsense"], "unknown scenario 'nonsense'"),
        (["-c", "a=clean_pass", "--count", "2"], "not both"),
        (["--start", "yesterday", "-c", "a=clean_pass"], "not an RFC 3339 time"),
        (["--speed", "-3"], "-3"),
    ],
)
def test_bad_input_is_named(args: list[str], message: str, tmp_path: Path) -> None:
    result = CliRunner().invoke(
        cli, ["simulate", "--no-publish", "--record", str(tmp_path / "x.jsonl"), *args]
    )
    assert result.exit_code != 0
    assert message in result.output
    assert not (tmp_path / "x.jsonl").exists()


def test_no_publish_needs_a_recording() -> None:
    result = CliRunner().invoke(cli, ["simulate", "--no-publish"])
    assert result.exit_code != 0 and "give --record FILE" in result.output
