"""The offline schemas kubeconform uses: CRD conversion, kept CRD schemas, Kubernetes' own.

scripts/crd_schema.py made k8s/schemas/ from the operators' CRDs; scripts/k8s_schemas.py
makes standalone Kubernetes schemas from the kubernetes-validate package at CI time.
Both conversions are checked on small inputs here, and their results on proctor's own
manifests with an independent validator (Python's jsonschema).
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from types import ModuleType
from typing import Any

import jsonschema
import pytest
import yaml

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[3]
K8S = REPO / "k8s"
SCHEMAS = K8S / "schemas"


def crd(versions: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "spec": {"group": "example.io", "names": {"kind": "Widget"}, "versions": versions},
    }


WIDGET = {
    "type": "object",
    "properties": {
        "apiVersion": {"type": "string"},
        "kind": {"type": "string"},
        "metadata": {"type": "object"},
        "spec": {
            "type": "object",
            "description": "dropped",
            "required": ["size"],
            "x-kubernetes-validations": [{"rule": "self.size > 0"}],
            "properties": {
                "size": {"x-kubernetes-int-or-string": True},
                "note": {"type": "string", "nullable": True},
                "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                "labels": {"type": "object", "additionalProperties": {"type": "string"}},
            },
        },
        "status": {"type": "object"},
    },
}


def widget_schema(crd_tool: ModuleType) -> dict[str, Any]:
    schemas = crd_tool.crd_schemas(
        crd([{"name": "v1", "served": True, "schema": {"openAPIV3Schema": WIDGET}}]), None
    )
    assert set(schemas) == {"v1"}
    schema: dict[str, Any] = schemas["v1"]
    return schema


def valid(schema: dict[str, Any], instance: Any) -> bool:
    return jsonschema.Draft4Validator(schema).is_valid(instance)


def test_crd_conversion_is_strict_where_the_api_server_is(crd_tool: ModuleType) -> None:
    schema = widget_schema(crd_tool)
    ok = {
        "apiVersion": "example.io/v1",
        "kind": "Widget",
        "metadata": {"name": "w"},
        "spec": {"size": 3},
    }
    assert valid(schema, ok)
    assert valid(schema, {**ok, "spec": {"size": "50%", "note": None, "labels": {"a": "b"}}})
    assert valid(schema, {**ok, "spec": {"size": 1, "free": {"anything": {"goes": 1}}}})
    assert not valid(schema, {**ok, "spec": {"size": 1, "colour": "red"}})  # unknown field
    assert not valid(schema, {**ok, "spec": {"size": 1.5}})  # int-or-string
    assert not valid(schema, {**ok, "spec": {}})  # required
    assert not valid(schema, {**ok, "spec": {"size": 1, "labels": {"a": 1}}})
    assert not valid(schema, {**ok, "apiVersion": "example.io/v2"})
    assert not valid(schema, {**ok, "status": {}})  # status never belongs in a manifest
    text = json.dumps(schema)
    assert "description" not in text and "x-kubernetes" not in text


def test_crd_conversion_refuses_versions_not_served(crd_tool: ModuleType) -> None:
    versions = [
        {"name": "v1", "served": True, "schema": {"openAPIV3Schema": WIDGET}},
        {"name": "v1beta1", "served": False, "schema": {"openAPIV3Schema": WIDGET}},
    ]
    with pytest.raises(SystemExit, match="not served"):
        crd_tool.crd_schemas(crd(versions), ["v1beta1"])
    with pytest.raises(SystemExit, match="no version v2"):
        crd_tool.crd_schemas(crd(versions), ["v2"])
    with pytest.raises(SystemExit, match="not a CustomResourceDefinition"):
        crd_tool.crd_schemas({"kind": "ConfigMap"}, None)


KEPT = {
    ("cluster.redpanda.com", "topic", "v1alpha2"): K8S / "base" / "topics" / "topics.yaml",
    ("monitoring.coreos.com", "servicemonitor", "v1"): K8S
    / "base"
    / "proctor"
    / "servicemonitor.yaml",
    ("argoproj.io", "application", "v1alpha1"): K8S / "argocd" / "application.yaml",
    ("external-secrets.io", "externalsecret", "v1"): K8S
    / "overlays"
    / "prod"
    / "externalsecrets.yaml",
}


def test_every_kept_crd_schema_is_used_and_named_for_its_kind() -> None:
    kept = {(p.parent.name, *p.stem.split("_")) for p in SCHEMAS.glob("*/*.json")}
    assert kept == set(KEPT)
    for (group, kind, version), _ in KEPT.items():
        schema = json.loads((SCHEMAS / group / f"{kind}_{version}.json").read_text())
        assert schema["properties"]["apiVersion"]["enum"] == [f"{group}/{version}"]
        assert schema["properties"]["kind"]["enum"][0].lower() == kind


@pytest.mark.parametrize("key", sorted(KEPT), ids=lambda k: k[1])
def test_kept_crd_schemas_accept_ours_and_reject_a_typo(key: tuple[str, str, str]) -> None:
    group, kind, version = key
    schema = json.loads((SCHEMAS / group / f"{kind}_{version}.json").read_text())
    objects = [
        d for d in yaml.safe_load_all(KEPT[key].read_text()) if d and d["kind"].lower() == kind
    ]
    assert objects
    for obj in objects:
        errors = [e.message for e in jsonschema.Draft4Validator(schema).iter_errors(obj)]
        assert errors == [], f"{obj['metadata']['name']}: {errors}"
    broken = copy.deepcopy(objects[0])
    broken["spec"]["speling"] = True
    assert not jsonschema.Draft4Validator(schema).is_valid(broken)


def test_standalone_inlines_what_is_reached_and_nothing_else(k8s_tool: ModuleType) -> None:
    remote = k8s_tool.REMOTE_REF
    definitions = {
        "A": {
            "type": "object",
            "properties": {"b": {"$ref": "#/$defs/B"}},
            "additionalProperties": False,
        },
        "B": {
            "type": "object",
            "properties": {"n": {"type": "integer"}},
            "additionalProperties": False,
        },
        "Unused": {"type": "string"},
    }
    schema = {
        "$id": "https://kubernetes.io/api/thing/v1",
        "type": "object",
        "properties": {"spec": {"$ref": remote + "A"}},
        "additionalProperties": False,
    }
    out = k8s_tool.standalone(schema, definitions)
    assert set(out["$defs"]) == {"A", "B"}
    assert "$id" not in out and remote not in json.dumps(out)
    validator = jsonschema.Draft202012Validator(out)
    assert validator.is_valid({"spec": {"b": {"n": 1}}})
    assert not validator.is_valid({"spec": {"b": {"n": "one"}}})
    assert not validator.is_valid({"spec": {"b": {"m": 1}}})
    with pytest.raises(SystemExit, match="Missing"):
        k8s_tool.standalone({"properties": {"x": {"$ref": remote + "Missing"}}}, definitions)


def test_kubernetes_schemas_from_the_package_validate_our_worker(
    k8s_tool: ModuleType, tmp_path: Path
) -> None:
    assert k8s_tool.convert("1.33.0", tmp_path) > 150
    path = tmp_path / "v1.33.0-standalone-strict" / "deployment-apps-v1.json"
    schema = json.loads(path.read_text())
    assert k8s_tool.REMOTE_REF not in path.read_text()
    worker = next(
        d
        for d in yaml.safe_load_all((K8S / "base" / "proctor" / "worker.yaml").read_text())
        if d["kind"] == "Deployment"
    )
    validator = jsonschema.Draft202012Validator(schema)
    assert [e.message for e in validator.iter_errors(worker)] == []
    broken = copy.deepcopy(worker)
    broken["spec"]["template"]["spec"]["containers"][0]["securityContext"]["readOnlyRootFS"] = True
    assert not validator.is_valid(broken)
    with pytest.raises(SystemExit, match=r"no schemas for 0\.1\.0"):
        k8s_tool.convert("0.1.0", tmp_path)
