"""Schema resolution checked ahead of time: the field that breaks BACKWARD compatibility."""

from __future__ import annotations

import copy
import json
from typing import Any

import fastavro
import pytest

from services.contract.compat import read_problems
from services.contract.schemas import Contract

pytestmark = pytest.mark.unit


def _parse(raw: dict[str, Any]) -> Any:
    return fastavro.parse_schema(raw, named_schemas={})


def _field(raw: dict[str, Any], name: str) -> dict[str, Any]:
    return next(f for f in raw["fields"] if f["name"] == name)


@pytest.fixture
def raw(contract: Contract) -> dict[str, Any]:
    return json.loads(contract.schema("argocd.sync").text)


def test_identical_and_every_contract_schema_read_themselves(contract: Contract) -> None:
    for schema in contract.schemas.values():
        assert read_problems(schema.parsed, schema.parsed) == []


def test_added_field_without_default_is_named(raw: dict[str, Any]) -> None:
    new = copy.deepcopy(raw)
    new["fields"].append({"name": "cluster", "type": "string", "doc": "d"})
    problems = read_problems(_parse(new), _parse(raw))
    assert [(p.path, p.kind) for p in problems] == [("cluster", "missing_field")]
    new["fields"][-1]["default"] = "in-cluster"
    assert read_problems(_parse(new), _parse(raw)) == []


def test_removed_field_is_fine_for_the_reader(raw: dict[str, Any]) -> None:
    new = copy.deepcopy(raw)
    new["fields"] = [f for f in new["fields"] if f["name"] != "project"]
    assert read_problems(_parse(new), _parse(raw)) == []


def test_type_change_and_promotion(raw: dict[str, Any], contract: Contract) -> None:
    new = copy.deepcopy(raw)
    _field(new, "revision")["type"] = "long"
    problems = read_problems(_parse(new), _parse(raw))
    assert [str(p) for p in problems] == ["field 'revision': written as string, read as long"]
    # int -> long is a promotion the reader may do.
    old = json.loads(contract.schema("cdc.offsets").text)
    promoted = copy.deepcopy(old)
    _field(promoted, "partition")["type"] = "long"
    assert read_problems(_parse(promoted), _parse(old)) == []
    assert read_problems(_parse(old), _parse(promoted))[0].path == "partition"


def test_enum_symbols(raw: dict[str, Any]) -> None:
    fewer = copy.deepcopy(raw)
    _field(fewer, "phase")["type"]["symbols"] = ["Succeeded", "Failed"]
    problems = read_problems(_parse(fewer), _parse(raw))
    assert problems[0].path == "phase" and problems[0].kind == "enum_symbol"
    assert "Error, Running, Terminating" in problems[0].message
    more = copy.deepcopy(raw)
    _field(more, "phase")["type"]["symbols"].append("Unknown")
    assert read_problems(_parse(more), _parse(raw)) == []
    with_default = copy.deepcopy(fewer)
    _field(with_default, "phase")["type"]["default"] = "Failed"
    assert read_problems(_parse(with_default), _parse(raw)) == []


def test_nested_record_fields_have_full_paths(raw: dict[str, Any]) -> None:
    new = copy.deepcopy(raw)
    _field(new, "resources")["type"]["items"]["fields"].append(
        {"name": "uid", "type": "string", "doc": "d"}
    )
    problems = read_problems(_parse(new), _parse(raw))
    assert [p.path for p in problems] == ["resources[].uid"]


def test_nullable_widening_and_narrowing(raw: dict[str, Any]) -> None:
    wider = copy.deepcopy(raw)
    _field(wider, "initiated_by")["type"] = ["null", "string"]
    assert read_problems(_parse(wider), _parse(raw)) == []
    problems = read_problems(_parse(raw), _parse(wider))
    assert problems and problems[0].path == "initiated_by" and problems[0].kind == "union_branch"


def test_renamed_record_needs_an_alias(raw: dict[str, Any]) -> None:
    new = copy.deepcopy(raw)
    _field(new, "resources")["type"]["items"]["name"] = "SyncedResource"
    assert read_problems(_parse(new), _parse(raw))[0].kind == "name_mismatch"
    _field(new, "resources")["type"]["items"]["aliases"] = ["ArgoResource"]
    assert read_problems(_parse(new), _parse(raw)) == []
