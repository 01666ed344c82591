"""The candidate's Trino configuration and rules, as written before any process starts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from services.collectors.trino_rules import Settings, column_masks, rules_source
from services.platform.trino import (
    CandidateTrino,
    EventListener,
    Mask,
    access_control_properties,
    acl_rules,
    config_properties,
    event_listener_properties,
    without_masks,
)
from services.stack.config import StackConfig

pytestmark = pytest.mark.unit

MASK = Mask("shop", "customers", "email", "'***'", "analyst|bi")


def test_rules_put_the_mask_before_the_unmasked_readers() -> None:
    rules = acl_rules([MASK], readers="auditor")
    users = [r.get("user") for r in rules["tables"]]
    assert users == ["admin", "analyst|bi", "auditor"]
    (mask,) = column_masks(rules)  # the collector reads it as Trino would apply it
    assert (mask["table"], mask["column"], mask["applies_to"]) == (
        "customers",
        "email",
        ["analyst", "bi"],
    )


def test_readers_before_the_mask_would_shadow_it() -> None:
    rules = acl_rules([MASK])
    rules["tables"].insert(1, {"user": ".*", "privileges": ["SELECT"]})
    assert column_masks(rules) == []


def test_without_masks_keeps_the_privileges() -> None:
    rules = acl_rules([MASK, Mask("shop", "customers", "phone", "NULL", "analyst")])
    only_email = without_masks(rules, "email")
    assert [m["column"] for m in column_masks(only_email)] == ["phone"]
    none = without_masks(rules)
    assert column_masks(none) == []
    assert [r["privileges"] for r in none["tables"]] == [r["privileges"] for r in rules["tables"]]
    assert column_masks(rules)  # the original is untouched


def test_server_properties_name_the_access_control_and_listener(tmp_path: Path) -> None:
    props = config_properties(18999, tmp_path / "home", tmp_path / "etc")
    assert props["access-control.config-files"] == str(
        tmp_path / "etc" / "access-control.properties"
    )
    assert props["http-server.http.port"] == "18999"
    acl = access_control_properties(tmp_path / "etc" / "rules.json")
    assert acl["access-control.name"] == "file"
    assert acl["security.refresh-period"] == "1s"
    listener = event_listener_properties(EventListener("http://127.0.0.1:1/platforms/p/trino", "t"))
    assert listener["event-listener.name"] == "http"
    assert listener["http-event-listener.connect-http-headers"] == "Authorization: Bearer t"


def test_written_config_is_what_the_rules_collector_follows(tmp_path: Path) -> None:
    trino = CandidateTrino(
        tmp_path, StackConfig(), EventListener("http://127.0.0.1:1/x", "secret"), acl_rules([MASK])
    )
    trino.port = 18999
    trino._write_config()
    path, url, pointer = rules_source(Settings(access_control=trino.access_control_path))
    assert (path, url, pointer) == (trino.rules_path, None, "")
    assert json.loads(trino.rules_path.read_text()) == acl_rules([MASK])
    listener = trino.etc / "http-event-listener.properties"
    assert listener.stat().st_mode & 0o077 == 0  # the bearer token is in it
    assert "-Xmx1G" in (trino.etc / "jvm.config").read_text()
