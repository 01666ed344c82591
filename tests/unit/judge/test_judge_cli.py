"""``proctor judge``: tables by default, a stable JSON shape with --json, clear usage errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from services.cli import COMMANDS, cli
from services.judge.corpus import DEFAULT_CORPUS

pytestmark = pytest.mark.unit

POSTMORTEM = DEFAULT_CORPUS / "postmortems" / "pm01-cache-strong.md"
REVIEW = DEFAULT_CORPUS / "design_reviews" / "dr01-staff-structured.md"


@pytest.fixture
def runner(monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    for name in ("PROCTOR_JUDGE_URL", "PROCTOR_JUDGE_MODEL", "PROCTOR_JUDGE_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    return CliRunner()


def test_judge_is_a_proctor_command() -> None:
    assert COMMANDS["judge"][:2] == ("services.judge.cli", "judge")


def test_prints_each_rubric_item_and_the_sentences_used(runner: CliRunner) -> None:
    result = runner.invoke(
        cli,
        ["judge", str(POSTMORTEM), "--kind", "postmortem", "--fault-layer", "cache"],
        env={"COLUMNS": "240"},
    )
    assert result.exit_code == 0, result.output
    assert "p2.postmortem" in result.output and "p2.pattern_cited" in result.output
    assert "met" in result.output and "judge=offline" in result.output
    assert "The caching layer in front of Trino kept serving a result" in result.output


def test_json_shape(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["judge", str(REVIEW), "--kind", "design_review", "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    assert set(doc) == {
        "file",
        "kind",
        "judge",
        "confidence",
        "review_below",
        "fallback_reason",
        "fault_layer",
        "criteria",
        "text_total_pct",
        "findings",
    }
    assert (
        doc["kind"] == "design_review"
        and doc["judge"] == "offline"
        and doc["fallback_reason"] is None
    )
    assert [c["criterion"] for c in doc["criteria"]] == [
        "p3.issues_found",
        "p3.alternatives",
        "p3.patterns_cited",
        "p3.senior_tone",
    ]
    assert all(set(c) == {"criterion", "state", "points", "reason"} for c in doc["criteria"])
    assert doc["text_total_pct"] == 100.0
    assert doc["findings"] and all(
        f["sentences"] and f["why"] and f["point"] for f in doc["findings"]
    )


def test_fault_kind_implies_the_layer(runner: CliRunner) -> None:
    result = runner.invoke(
        cli,
        ["judge", str(POSTMORTEM), "--kind", "postmortem", "--fault-kind", "stale_cache", "--json"],
    )
    doc = json.loads(result.output)
    assert doc["fault_layer"] == "cache"
    assert {c["criterion"]: c["state"] for c in doc["criteria"]}["p2.pattern_cited"] == "met"


def test_without_a_layer_the_pattern_criterion_is_pending(runner: CliRunner) -> None:
    doc = json.loads(
        runner.invoke(cli, ["judge", str(POSTMORTEM), "--kind", "postmortem", "--json"]).output
    )
    states = {c["criterion"]: c for c in doc["criteria"]}
    assert (
        states["p2.pattern_cited"]["state"] == "pending"
        and "--fault-layer" in states["p2.pattern_cited"]["reason"]
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--kind", "postmortem", "--fault-layer", "trino", "--fault-kind", "stale_cache"],
            "is a fault of layer cache",
        ),
        (["--kind", "design_review", "--fault-layer", "cache"], "apply to postmortems only"),
        (["--kind", "essay"], "Invalid value for '--kind'"),
        (["--kind", "postmortem", "--fault-layer", "network"], "Invalid value for '--fault-layer'"),
    ],
)
def test_bad_options_say_what_is_wrong(runner: CliRunner, args: list[str], message: str) -> None:
    result = runner.invoke(cli, ["judge", str(POSTMORTEM), *args])
    assert result.exit_code == 2 and message in result.output


def test_missing_empty_and_binary_files_are_usage_errors(runner: CliRunner, tmp_path: Path) -> None:
    missing = runner.invoke(cli, ["judge", str(tmp_path / "nope.md"), "--kind", "postmortem"])
    assert missing.exit_code == 2 and "does not exist" in missing.output
    empty = tmp_path / "empty.md"
    empty.write_text("  \n")
    result = runner.invoke(cli, ["judge", str(empty), "--kind", "postmortem"])
    assert result.exit_code == 2 and "is empty" in result.output
    binary = tmp_path / "bin.md"
    binary.write_bytes(b"\xff\xfe\x00bad")
    result = runner.invoke(cli, ["judge", str(binary), "--kind", "postmortem"])
    assert result.exit_code == 2 and "not UTF-8" in result.output


def test_a_misconfigured_model_judge_is_a_usage_error_and_offline_overrides(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PROCTOR_JUDGE_URL", "http://127.0.0.1:9/v1")
    result = runner.invoke(cli, ["judge", str(REVIEW), "--kind", "design_review"])
    assert result.exit_code == 2 and "PROCTOR_JUDGE_MODEL" in result.output
    offline = runner.invoke(
        cli, ["judge", str(REVIEW), "--kind", "design_review", "--offline", "--json"]
    )
    assert offline.exit_code == 0 and json.loads(offline.output)["judge"] == "offline"


def test_an_unreachable_model_falls_back_and_the_output_says_so(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("PROCTOR_JUDGE_URL", f"http://127.0.0.1:{port}/v1")
    monkeypatch.setenv("PROCTOR_JUDGE_MODEL", "m")
    monkeypatch.setenv("PROCTOR_JUDGE_TIMEOUT_S", "2")
    doc = json.loads(
        runner.invoke(cli, ["judge", str(REVIEW), "--kind", "design_review", "--json"]).output
    )
    assert doc["judge"] == "offline" and "llm:m failed" in doc["fallback_reason"]
