"""Reading the rules Trino applies: its access-control.properties, a JSON pointer into a
REST answer, and Trino's first-match order (a mask behind a catch-all rule never applies)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from services.collectors.http import SourceError
from services.collectors.trino_rules import (
    Settings,
    TrinoRulesCollector,
    at_pointer,
    column_masks,
    rules_source,
)

pytestmark = pytest.mark.unit

MASK = {"name": "email", "mask": "'***'"}


def test_a_mask_behind_a_catch_all_rule_is_never_applied() -> None:
    rules = {
        "tables": [
            {"privileges": ["SELECT"]},  # everyone, every table: Trino stops here
            {"user": "analyst", "table": "customers", "columns": [MASK]},
        ]
    }
    assert column_masks(rules) == []


def test_an_earlier_rule_for_other_users_or_tables_leaves_the_mask_applied() -> None:
    rules = {
        "tables": [
            {"user": "admin", "privileges": ["OWNERSHIP"]},
            {"table": "orders", "privileges": ["SELECT"]},
            {"user": "analyst", "table": "customers", "columns": [MASK]},
        ]
    }
    (mask,) = column_masks(rules)
    assert (mask["table"], mask["column"], mask["applies_to"]) == (
        "customers",
        "email",
        ["analyst"],
    )


def test_the_same_pattern_earlier_shadows_but_a_catch_all_later_does_not() -> None:
    same = {"user": "analyst", "table": "customers", "privileges": ["SELECT"]}
    rule = {"user": "analyst", "table": "customers", "columns": [MASK]}
    assert column_masks({"tables": [same, rule]}) == []
    assert len(column_masks({"tables": [rule, {"privileges": ["SELECT"]}]})) == 1


def test_rules_that_are_not_objects_are_payload_errors() -> None:
    with pytest.raises(SourceError, match=r"tables\[0\]") as err:
        column_masks({"tables": ["x"]})
    assert err.value.kind == "payload"
    with pytest.raises(SourceError, match="not a list"):
        column_masks({"tables": {}})


def test_json_pointer_as_trino_reads_a_rest_answer() -> None:
    doc = {"data": {"a/b": [{"tables": []}]}}
    assert at_pointer(doc, "") is doc
    assert at_pointer(doc, "/data/a~1b/0") == {"tables": []}
    with pytest.raises(SourceError, match="nothing at"):
        at_pointer(doc, "/data/missing")
    with pytest.raises(SourceError, match="must start with /"):
        at_pointer(doc, "data")


def _props(path: Path, **values: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("# Trino\n" + "".join(f"{k}={v}\n" for k, v in values.items()))
    return path


def test_the_source_is_what_access_control_properties_name(tmp_path: Path) -> None:
    etc = tmp_path / "trino" / "etc"
    props = _props(
        etc / "access-control.properties",
        **{"access-control.name": "file", "security.config-file": "etc/rules.json"},
    )
    path, url, pointer = rules_source(Settings(access_control=props))
    assert (path, url, pointer) == (tmp_path / "trino" / "etc" / "rules.json", None, "")

    _props(
        props,
        **{
            "access-control.name": "file",
            "security.config-file": "http://rules.example:8181/v1/rules",
            "security.json-pointer": "/data",
        },
    )
    assert rules_source(Settings(access_control=props)) == (
        None,
        "http://rules.example:8181/v1/rules",
        "/data",
    )


def test_access_control_that_is_not_file_based_is_refused(tmp_path: Path) -> None:
    props = _props(tmp_path / "access-control.properties", **{"access-control.name": "opa"})
    with pytest.raises(SourceError, match="not 'file'"):
        rules_source(Settings(access_control=props))
    with pytest.raises(SourceError, match="cannot read"):
        rules_source(Settings(access_control=tmp_path / "missing.properties"))


def test_poll_reads_the_file_trino_applies_through_its_properties(tmp_path: Path) -> None:
    rules = tmp_path / "etc" / "rules.json"
    props = _props(
        tmp_path / "etc" / "access-control.properties",
        **{"access-control.name": "file", "security.config-file": str(rules)},
    )
    rules.write_text(json.dumps({"tables": [{"user": "analyst", "columns": [MASK]}]}))
    collector = TrinoRulesCollector(Settings(access_control=props), "basecamp-alice")
    result = collector.poll({})
    (event,) = result.events
    assert event.type == "trino.column_mask" and event.data["column"] == "email"
    assert collector.poll(result.position).events == ()
    rules.write_text("{not json")
    with pytest.raises(SourceError, match="not JSON") as err:
        collector.poll(result.position)
    assert err.value.kind == "payload"


def test_exactly_one_source() -> None:
    with pytest.raises(ValueError, match="exactly one"):
        Settings(path=Path("/r.json"), url="http://x/r")
    with pytest.raises(ValueError, match="exactly one"):
        Settings()
