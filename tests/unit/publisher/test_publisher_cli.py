"""``proctor publish``: events built from options, validated before anything is sent.

These run with --dry-run (print the validated JSON line, send nothing); the broker tests
in tests/integration/test_contract_broker.py send for real.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
from click.testing import CliRunner

from services.contract.convert import parse_timestamp
from services.contract.schemas import CONTROL_TYPES
from services.contract.settings import ClientSettings
from services.errors import ContractError
from services.publisher import Publisher, new_event
from services.publisher.cli import publish

pytestmark = pytest.mark.unit

EXAMPLES = Path(__file__).resolve().parents[3] / "schemas" / "examples.jsonl"


def run(*args: str, input: str | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(publish, list(args), input=input)
    return result.exit_code, result.stdout, result.stderr


def dry(*args: str, input: str | None = None) -> dict[str, object]:
    code, out, err = run(*args, "--dry-run", input=input)
    assert code == 0, err + out
    return json.loads(out)


def test_exam_started_from_options() -> None:
    line = dry(
        "exam.started",
        "--platform",
        "basecamp-alice",
        "--exam-id",
        "e1",
        "--candidate-id",
        "alice",
        "--rubric-id",
        "y3-final",
        "--rubric-version",
        "1",
    )
    assert line["type"] == "exam.started" and line["platform_id"] == "basecamp-alice"
    assert {k: line[k] for k in ("exam_id", "candidate_id", "rubric_id", "rubric_version")} == {
        "exam_id": "e1",
        "candidate_id": "alice",
        "rubric_id": "y3-final",
        "rubric_version": "1",
    }
    uuid.UUID(str(line["event_id"]))  # a fresh UUID by default
    parse_timestamp(str(line["ts"]))  # now, in the contract's form


def test_event_id_and_ts_can_be_given() -> None:
    line = dry(
        "exam.ended",
        "--platform",
        "p",
        "--exam-id",
        "e1",
        "--event-id",
        "ev-9",
        "--ts",
        "2026-11-27T17:00:00+01:00",
    )
    assert line["event_id"] == "ev-9" and line["ts"] == "2026-11-27T16:00:00.000Z"
    code, _out, err = run(
        "exam.ended", "--platform", "p", "--exam-id", "e1", "--ts", "yesterday", "--dry-run"
    )
    assert code == 2 and "'yesterday' is not an RFC 3339 timestamp" in err


def test_environment_supplies_platform_and_exam(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROCTOR_PLATFORM_ID", "basecamp-bob")
    monkeypatch.setenv("PROCTOR_EXAM_ID", "e7")
    line = dry("part.started", "--part", "2")
    assert (line["platform_id"], line["exam_id"], line["part"]) == ("basecamp-bob", "e7", 2)


def test_fault_injected_generates_an_id_and_checks_the_kind() -> None:
    line = dry(
        "fault.injected",
        "--platform",
        "p",
        "--exam-id",
        "e1",
        "--layer",
        "trino",
        "--kind",
        "stale_statistics",
        "--target",
        "lake.orders",
    )
    assert str(line["fault_id"]).startswith("fault-") and line["note"] == ""
    code, _out, err = run(
        "fault.injected",
        "--platform",
        "p",
        "--exam-id",
        "e1",
        "--layer",
        "cdc",
        "--kind",
        "stale_statistics",
        "--target",
        "t",
        "--dry-run",
    )
    assert code == 1 and "field 'kind': 'stale_statistics' is not a fault of layer 'cdc'" in err
    code, _out, err = run(
        "fault.injected",
        "--platform",
        "p",
        "--exam-id",
        "e1",
        "--layer",
        "network",
        "--kind",
        "x",
        "--target",
        "t",
    )
    assert code == 2 and "'network' is not one of" in err


def test_artifact_from_a_file(tmp_path: Path) -> None:
    pm = tmp_path / "postmortem.md"
    pm.write_text("# Postmortem\n\nWhat went well: ...\n", encoding="utf-8")
    line = dry(
        "artifact", "--platform", "p", "--exam-id", "e1", "--kind", "postmortem", "--file", str(pm)
    )
    assert line["type"] == "artifact.submitted"
    assert line["content"] == pm.read_text() and line["part"] == 2 and line["uri"] == str(pm)
    review = dry(
        "artifact",
        "--platform",
        "p",
        "--exam-id",
        "e1",
        "--kind",
        "design_review",
        "--file",
        "-",
        input="Good: open formats.",
    )
    assert (
        review["part"] == 3 and review["content"] == "Good: open formats." and review["uri"] is None
    )
    code, _out, err = run(
        "artifact", "--platform", "p", "--exam-id", "e1", "--kind", "postmortem", "--dry-run"
    )
    assert code == 2 and "needs --file PATH or --content TEXT" in err
    code, _out, err = run(
        "artifact",
        "--platform",
        "p",
        "--exam-id",
        "e1",
        "--kind",
        "postmortem",
        "--file",
        str(tmp_path / "nope.md"),
    )
    assert code == 2 and "cannot read" in err


def test_pipeline_declared_nests_assets_and_repeats_namespaces() -> None:
    line = dry(
        "pipeline.declared",
        "--platform",
        "p",
        "--exam-id",
        "e1",
        "--source-table",
        "public.orders",
        "--cdc-topic",
        "cdc.public.orders",
        "--flink-job",
        "orders-enrich",
        "--sink-table",
        "lake.orders",
        "--dbt-model",
        "orders_hourly",
        "--superset-chart",
        "Orders",
        "--pii-column",
        "email",
        "--namespace",
        "pipeline",
        "--namespace",
        "flink",
    )
    assert line["assets"] == {
        "source_table": "public.orders",
        "cdc_topic": "cdc.public.orders",
        "flink_job": "orders-enrich",
        "sink_table": "lake.orders",
        "dbt_model": "orders_hourly",
        "superset_chart": "Orders",
        "pii_column": "email",
        "namespaces": ["pipeline", "flink"],
    }
    code, _out, err = run("pipeline.declared", "--platform", "p", "--exam-id", "e1", "--dry-run")
    assert code == 2 and "Missing option '--source-table'" in err


def test_aliases_and_numbers() -> None:
    line = dry("self-grade", "--platform", "p", "--exam-id", "e1", "--score-pct", "82.5")
    assert line["type"] == "self_grade.submitted" and line["score_pct"] == 82.5
    code, _out, err = run(
        "self-grade", "--platform", "p", "--exam-id", "e1", "--score-pct", "120", "--dry-run"
    )
    assert code == 1 and "score_pct" in err
    line = dry(
        "diagnosis",
        "--platform",
        "p",
        "--exam-id",
        "e1",
        "--layer",
        "superset",
        "--kind",
        "dashboard",
    )
    assert (line["type"], line["fault_id"], line["layer"]) == (
        "diagnosis.submitted",
        None,
        "superset",
    )


def test_every_control_type_is_a_command() -> None:
    code, out, _err = run("--help")
    assert code == 0
    for event_type in CONTROL_TYPES:
        assert event_type in out
        code, help_text, _ = run(event_type, "--help")
        assert code == 0 and "--platform" in help_text and "--dry-run" in help_text
    code, _out, err = run("exam.paused", "--platform", "p")
    assert code == 2 and "No such command 'exam.paused'" in err


def test_recording_dry_run_validates_every_line(tmp_path: Path) -> None:
    recording = tmp_path / "exam.jsonl"
    lines = EXAMPLES.read_text().splitlines()[:5]
    recording.write_text("\n".join(lines) + "\n")
    code, out, err = run("--file", str(recording), "--dry-run")
    assert code == 0, err
    assert [json.loads(x) for x in out.splitlines()] == [json.loads(x) for x in lines]
    bad = json.loads(lines[1])
    del bad["exam_id"]
    recording.write_text("\n".join([lines[0], json.dumps(bad), lines[2], "not json"]) + "\n")
    code, out, err = run("--file", str(recording), "--dry-run")
    assert code == 1 and out == ""
    assert "exam.jsonl line 2:" in err and "field 'exam_id': missing required field" in err
    assert "exam.jsonl line 4: not valid JSON" in err


def test_publisher_validates_the_whole_batch_before_sending() -> None:
    # Nothing listens on port 9: if prepare() sent anything, this would hang or fail differently.
    settings = ClientSettings("127.0.0.1:9", "mock://publisher-unit")
    publisher = Publisher(settings, auto_register=True)
    good = new_event("exam.ended", "p", {"exam_id": "e1"})
    bad = new_event("part.started", "p", {"exam_id": "e1", "part": 0})
    with pytest.raises(
        ContractError, match=r"event 2 \(part.started .*\): .*field 'part': 0 is not an exam part"
    ):
        publisher.prepare([good, bad])
    prepared = publisher.prepare([good])
    assert prepared[0].topic == "exam.control" and prepared[0].key == b"p"
    publisher.close(timeout_s=1)
