"""Every schema of the contract parses, is documented, and has a valid example."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import fastavro
import pytest

from services.contract.schemas import (
    INPUT_TOPICS,
    TOPICS,
    TOPICS_BY_NAME,
    TYPE_TOPICS,
    Contract,
    load_contract,
    logical_topic,
    topic_name,
)
from services.core.events import Event
from services.errors import ContractError

pytestmark = pytest.mark.unit

SCHEMAS = Path(__file__).resolve().parents[3] / "schemas"
#: The contract's tables (events.md) name these types; each must have a schema.
CONTRACT_TYPES = {
    "exam.started",
    "part.started",
    "part.ended",
    "part.extended",
    "pipeline.declared",
    "fault.injected",
    "row.broken",
    "diagnosis.submitted",
    "artifact.submitted",
    "self_grade.submitted",
    "exam.ended",
    "grade.overridden",
    "cdc.offsets",
    "schema.registered",
    "flink.job",
    "flink.checkpoint",
    "argocd.sync",
    "k8s.audit",
    "iceberg.commit",
    "dbt.run",
    "openlineage.run",
    "superset.chart",
    "superset.alert",
    "trino.query",
    "trino.column_mask",
    "pillar.seen",
    "tool.used",
    "gitops.merge",
    "collector.heartbeat",
}


@pytest.mark.parametrize("path", sorted(SCHEMAS.glob("*.avsc")), ids=lambda p: p.stem)
def test_schema_file_parses_with_fastavro(path: Path) -> None:
    parsed = fastavro.parse_schema(json.loads(path.read_text()), named_schemas={})
    assert parsed["type"] == "record"
    assert parsed["name"].startswith("io.proctor.") and ".v1." in parsed["name"]


def _walk_fields(schema: Any, where: str, out: list[tuple[str, dict[str, Any]]]) -> None:
    if isinstance(schema, list):
        for branch in schema:
            _walk_fields(branch, where, out)
    elif isinstance(schema, dict):
        if schema.get("type") == "record":
            assert schema.get("doc"), f"record {where} has no doc"
            for field in schema["fields"]:
                out.append((f"{where}.{field['name']}", field))
                _walk_fields(field["type"], f"{where}.{field['name']}", out)
        elif schema.get("type") == "enum":
            assert schema.get("doc"), f"enum at {where} has no doc"
        elif schema.get("type") == "array":
            _walk_fields(schema["items"], where, out)
        elif schema.get("type") == "map":
            _walk_fields(schema["values"], where, out)


@pytest.mark.parametrize("path", sorted(SCHEMAS.glob("*.avsc")), ids=lambda p: p.stem)
def test_every_field_is_documented_and_timestamps_are_millis(path: Path) -> None:
    raw = json.loads(path.read_text())
    fields: list[tuple[str, dict[str, Any]]] = []
    _walk_fields(raw, path.stem, fields)
    assert fields
    for name, field in fields:
        assert field.get("doc", "").strip(), f"{name} has no doc"
    envelope = {f["name"]: f for f in raw["fields"][:4]}
    assert list(envelope) == ["type", "platform_id", "event_id", "ts"]
    assert envelope["ts"]["type"] == {"type": "long", "logicalType": "timestamp-millis"}
    assert envelope["type"]["default"] == path.stem
    # Every field whose name says it is a time is a timestamp-millis, never a bare string.
    for name, field in fields:
        leaf = name.rsplit(".", 1)[-1]
        if leaf.endswith(("_ts", "_at")) or leaf == "ts":
            types = field["type"] if isinstance(field["type"], list) else [field["type"]]
            assert {"type": "long", "logicalType": "timestamp-millis"} in types, name


def test_contract_covers_every_type_of_events_md(contract: Contract) -> None:
    assert set(contract.types) >= CONTRACT_TYPES
    assert set(contract.types) == set(TYPE_TOPICS)
    assert {p.stem for p in SCHEMAS.glob("*.avsc")} == set(TYPE_TOPICS)


def test_every_type_has_a_valid_example(contract: Contract, examples: dict[str, Event]) -> None:
    assert set(examples) == set(contract.types)
    for event in examples.values():
        assert contract.validate(event) == event  # examples are in canonical form


def test_topic_map_is_consistent() -> None:
    for event_type, topic in TYPE_TOPICS.items():
        assert topic is None or topic in TOPICS_BY_NAME, event_type
    assert len({t.name for t in TOPICS}) == len(TOPICS)
    # Co-partitioning: every platform-keyed topic has the same partition count.
    counts = {TOPICS_BY_NAME[t].partitions for t in INPUT_TOPICS}
    assert len(counts) == 1
    assert TOPICS_BY_NAME["grading.criterion-states"].config["cleanup.policy"] == "compact"
    for spec in TOPICS:
        if spec.name != "grading.criterion-states":
            assert spec.config["cleanup.policy"] == "delete"
            assert int(spec.config["retention.ms"]) > 0


def test_shared_topics_use_topic_record_name_subjects(contract: Contract) -> None:
    job, checkpoint = contract.schema("flink.job"), contract.schema("flink.checkpoint")
    assert job.topic == checkpoint.topic == "platform.flink"
    assert job.subject() == "platform.flink-io.proctor.platform.v1.FlinkJob"
    assert checkpoint.subject("t1.") == "t1.platform.flink-io.proctor.platform.v1.FlinkCheckpoint"
    assert contract.schema("grading.criterion_transition").subject() == (
        "io.proctor.grading.v1.CriterionTransition"
    )
    assert contract.types_on("platform.trino") == ("trino.query", "trino.column_mask")


def test_topic_prefix_maps_both_ways() -> None:
    assert topic_name("exam.control", "t.x.") == "t.x.exam.control"
    assert logical_topic("t.x.exam.control", "t.x.") == "exam.control"
    assert logical_topic("exam.control", "t.x.") is None
    assert logical_topic("orders", "") is None


def test_unknown_type_is_a_clear_error(contract: Contract) -> None:
    with pytest.raises(ContractError, match=r"unknown event type 'exam.paused'.*exam.started"):
        contract.schema("exam.paused")


def test_missing_or_extra_schema_file_is_reported(tmp_path: Path) -> None:
    missing = tmp_path / "missing"
    shutil.copytree(SCHEMAS, missing)
    (missing / "flink.job.avsc").unlink()
    with pytest.raises(ContractError, match=r"no schema for flink\.job"):
        load_contract(missing)
    extra = tmp_path / "extra"
    shutil.copytree(SCHEMAS, extra)
    shutil.copy(SCHEMAS / "exam.ended.avsc", extra / "exam.paused.avsc")
    with pytest.raises(ContractError, match=r"exam\.paused not in TYPE_TOPICS"):
        load_contract(extra)


def test_broken_envelope_is_reported(tmp_path: Path) -> None:
    bad = tmp_path / "bad"
    shutil.copytree(SCHEMAS, bad)
    raw = json.loads((bad / "row.broken.avsc").read_text())
    raw["fields"][3]["type"] = "string"  # ts as text instead of timestamp-millis
    (bad / "row.broken.avsc").write_text(json.dumps(raw))
    with pytest.raises(ContractError, match=r"row\.broken\.avsc: envelope field 'ts'"):
        load_contract(bad)


def test_invalid_avro_is_reported(tmp_path: Path) -> None:
    bad = tmp_path / "bad"
    shutil.copytree(SCHEMAS, bad)
    raw = json.loads((bad / "row.broken.avsc").read_text())
    raw["fields"].append({"name": "x", "type": "no_such_type", "doc": "?"})
    (bad / "row.broken.avsc").write_text(json.dumps(raw))
    with pytest.raises(ContractError, match=r"row\.broken\.avsc: not a valid Avro schema"):
        load_contract(bad)
