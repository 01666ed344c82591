"""Rubric files: v1 loads; every kind of mistake is rejected with the entry named."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from services.core.rubric import parse_rubric
from services.core.rules import REGISTRY
from services.errors import RubricError
from services.rubrics import available, load_rubric

pytestmark = pytest.mark.unit

V1 = Path(__file__).resolve().parents[3] / "services" / "rubrics" / "y3-final" / "v1.yaml"


@pytest.fixture
def doc() -> dict[str, Any]:
    return yaml.safe_load(V1.read_text())


def crit(doc: dict[str, Any], cid: str) -> dict[str, Any]:
    return next(c for c in doc["criteria"] if c["id"] == cid)


def test_v1_loads_with_every_criterion_of_the_contract() -> None:
    r = load_rubric("y3-final", "1")
    ids = [c.criterion_id for c in r.criteria]
    assert len(ids) == 32
    assert sum(1 for c in r.criteria if c.part == "1") == 16
    assert sum(c.weight for c in r.criteria) == 100
    assert [p.minutes for p in r.parts] == [180, 120, 120]
    assert r.heartbeat_grace_ms == 90_000
    assert ("y3-final", "1") in available()


def test_the_repository_rubrics_folder_points_at_the_packaged_files() -> None:
    repo = Path(__file__).resolve().parents[3] / "rubrics" / "y3-final" / "v1.yaml"
    assert repo.read_text() == V1.read_text()


def test_a_directory_rubric_is_found_first(tmp_path: Path, doc: dict[str, Any]) -> None:
    doc["version"] = "5"
    (tmp_path / "y3-final").mkdir()
    (tmp_path / "y3-final" / "v5.yaml").write_text(yaml.safe_dump(doc))
    assert load_rubric("y3-final", "5", tmp_path).version == "5"
    with pytest.raises(RubricError, match=r"no rubric y3-final version 6 \(known: .*y3-final@1"):
        load_rubric("y3-final", "6", tmp_path)


@pytest.mark.parametrize(
    ("rid", "version"), [("../etc", "1"), ("y3-final", "../../x"), ("", "1"), ("y3-final", "")]
)
def test_ids_that_are_not_plain_names_are_rejected(rid: str, version: str) -> None:
    with pytest.raises(RubricError, match="plain names"):
        load_rubric(rid, version)


def test_a_file_that_declares_another_version_is_rejected(
    tmp_path: Path, doc: dict[str, Any]
) -> None:
    (tmp_path / "y3-final").mkdir()
    (tmp_path / "y3-final" / "v7.yaml").write_text(yaml.safe_dump(doc))
    with pytest.raises(RubricError, match="declares y3-final v1, expected y3-final v7"):
        load_rubric("y3-final", "7", tmp_path)


def test_bad_yaml_is_named(tmp_path: Path) -> None:
    (tmp_path / "y3-final").mkdir()
    (tmp_path / "y3-final" / "v8.yaml").write_text("criteria: [unclosed\n")
    with pytest.raises(RubricError, match=r"v8\.yaml: not valid YAML"):
        load_rubric("y3-final", "8", tmp_path)


def test_thresholds_are_data(doc: dict[str, Any]) -> None:
    crit(doc, "p1.e2e_100k")["params"]["at_least_records"] = 5
    crit(doc, "p1.exactly_once")["params"]["min_checkpoints"] = 7
    r = parse_rubric(doc, kinds=REGISTRY)
    assert r.criteria[r.index("p1.e2e_100k")].params.at_least_records == 5  # type: ignore[attr-defined]


def test_a_new_criterion_of_an_existing_kind_is_data(doc: dict[str, Any]) -> None:
    doc["criteria"].insert(
        2,
        {
            "id": "p1.trino_used",
            "part": "1",
            "weight": 1,
            "rule": "first_event",
            "params": {
                "says": "Trino was used",
                "event": "tool.used",
                "where": [{"field": "tool", "equals": "trino"}],
            },
        },
    )
    assert parse_rubric(doc, kinds=REGISTRY).index("p1.trino_used") == 2


def mutate(doc: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    d = copy.deepcopy(doc)
    cid, _, rest = path.partition(":")
    target = crit(d, cid) if cid else d
    keys: list[Any] = rest.split(".")
    for k in keys[:-1]:
        target = target[int(k)] if isinstance(target, list) else target[k]
    last = int(keys[-1]) if isinstance(target, list) else keys[-1]
    if value is DELETE:
        del target[last]
    else:
        target[last] = value
    return d


DELETE = object()


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (":rubric_id", "Y3 Final", "rubric_id must be a lower-case id"),
        (":parts", {}, "parts must be a non-empty mapping"),
        (":parts.1.minutes", 0, r"parts.1.minutes must be a positive integer"),
        (":parts.1.opens_on", {"type": "part.begun"}, r"parts.1.opens_on: 'type' must be one of"),
        (":heartbeat_grace_seconds", -1, "heartbeat_grace_seconds must be positive"),
        (
            ":pass_criterion",
            "overall.nope",
            "pass_criterion 'overall.nope' is not an overall criterion",
        ),
        ("p1.cdc_source:rule", "grows", "criterion p1.cdc_source: unknown rule kind 'grows'"),
        ("p1.cdc_source:part", "4", r"criterion p1.cdc_source: part '4' is not one of"),
        ("p1.cdc_source:weight", -2, "criterion p1.cdc_source: weight must not be negative"),
        ("p1.cdc_source:partial_credit", 1.5, "partial_credit must be between 0 and 1"),
        ("p1.cdc_source:collectors", ["kafka"], r"collectors \['kafka'\] are not declared"),
        (
            "p1.cdc_source:params.at_least",
            0,
            r"p1.cdc_source \(rule counter_growth\): params.at_least",
        ),
        ("p1.cdc_source:params.typo", 3, r"params.typo: Extra inputs are not permitted"),
        (
            "p1.schema_registered:params.event",
            "schema.created",
            r"'schema.created' is not a platform signal type",
        ),
        (
            "p1.schema_registered:params.asset.name",
            "topic",
            r"'topic' is not an asset of pipeline.declared",
        ),
        (
            "p1.schema_registered:params.asset.field",
            "name",
            r"schema.registered has no field 'name'",
        ),
        ("p1.schema_registered:params.asset.format", "value", r"format must contain '\{\}' once"),
        (
            "p1.flink_lookup_join:params.where.1",
            {"field": "operators", "any_matches": "(unclosed"},
            "bad regular expression",
        ),
        (
            "p1.flink_lookup_join:params.where.0",
            {"field": "state", "equals": "RUNNING", "in": ["A"]},
            "needs exactly one operator",
        ),
        (
            "p1.flink_lookup_join:params.where.0",
            {"field": "state", "is": "yes"},
            "value must be true or false",
        ),
        (
            "p1.flink_lookup_join:params.where.0",
            {"field": "stat", "equals": "RUNNING"},
            "flink.job has no field 'stat'",
        ),
        ("p1.lineage_in_datahub:params.hops", ["source_table"], "hops needs at least two assets"),
        ("p2.postmortem:params.require", ["tone.kind"], r"unknown judge points \['tone.kind'\]"),
        (
            "p3.issues_found:params.count_partial",
            5,
            "count_partial must be between 0 and count_met",
        ),
        (
            "p3.issues_found:params.count_prefix",
            "problem.",
            "no judge point starts with 'problem.'",
        ),
        ("p3.issues_found:params.artifact_kind", "readme", r"params.artifact_kind"),
        (
            "overall.pass:params.criteria",
            ["overall.part1", "overall.part9"],
            "criterion 'overall.part9' does not exist",
        ),
        ("overall.part1:params", {"criteria": ["overall.pass"]}, "must come before overall.part1"),
        ("overall.part1:weight", 3, "overall verdicts carry no weight"),
        ("overall.part1:part", "1", "rule all_met belongs to the overall part"),
        ("p1.cdc_source:id", "P1 CDC", "'id' must be a lower-case id"),
    ],
)
def test_mistakes_name_the_entry(doc: dict[str, Any], path: str, value: Any, message: str) -> None:
    with pytest.raises(RubricError, match=message):
        parse_rubric(mutate(doc, path, value), "v1.yaml", kinds=REGISTRY)


def test_duplicate_ids_are_rejected(doc: dict[str, Any]) -> None:
    doc["criteria"].append(copy.deepcopy(crit(doc, "p1.cdc_source")))
    with pytest.raises(RubricError, match=r"criterion p1\.cdc_source: duplicate id"):
        parse_rubric(doc, kinds=REGISTRY)


def test_missing_required_keys(doc: dict[str, Any]) -> None:
    with pytest.raises(RubricError, match="missing 'criteria'"):
        parse_rubric(mutate(doc, ":criteria", DELETE), kinds=REGISTRY)
    with pytest.raises(RubricError, match=r"criterion p1\.cdc_source: missing .rule."):
        parse_rubric(mutate(doc, "p1.cdc_source:rule", DELETE), kinds=REGISTRY)
    with pytest.raises(RubricError, match="the document must be a mapping"):
        parse_rubric(["not", "a", "rubric"], kinds=REGISTRY)
