#!/usr/bin/env python3
"""Turn a CustomResourceDefinition into the strict JSON schema kubeconform reads.

kubeconform validates custom resources only against schemas it can open, and CI has no
network but the package registries, so the schemas of the CRDs proctor uses are kept in
k8s/schemas/<group>/<kind>_<version>.json (the layout of ``-schema-location
'k8s/schemas/{{.Group}}/{{.ResourceKind}}_{{.ResourceAPIVersion}}.json'``). This script
made them from the operators' own CRD files; k8s/schemas/README.md names each source.

Strict means what the API server does with a structural schema: an object that lists its
properties rejects any other field (``additionalProperties: false``) unless the CRD says
``x-kubernetes-preserve-unknown-fields``. ``status`` is dropped: it never belongs in a
manifest. Descriptions are dropped to keep the files small; CEL rules
(``x-kubernetes-validations``) cannot be checked offline and are dropped too.

    python scripts/crd_schema.py CRD.yaml --version v1alpha2 --out k8s/schemas
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import yaml

DROP_KEYS = {"description", "x-kubernetes-validations", "example", "externalDocs"}


def strict(node: Any) -> Any:
    """A copy of an OpenAPI v3 (structural) schema node in kubeconform's strict form."""
    if isinstance(node, list):
        return [strict(item) for item in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in DROP_KEYS or key.startswith("x-kubernetes-"):
            continue
        if key == "properties":
            out[key] = {name: strict(sub) for name, sub in value.items()}
        elif key in ("items", "additionalProperties", "not"):
            out[key] = strict(value) if isinstance(value, dict | list) else value
        elif key in ("allOf", "anyOf", "oneOf"):
            out[key] = strict(value)
        elif key == "nullable":
            continue
        else:
            out[key] = value
    if node.get("x-kubernetes-int-or-string"):
        out.pop("type", None)
        out["oneOf"] = [{"type": "string"}, {"type": "integer"}]
    if node.get("nullable") and isinstance(out.get("type"), str):
        out["type"] = [out["type"], "null"]
    preserve = node.get("x-kubernetes-preserve-unknown-fields", False)
    if "properties" in out and "additionalProperties" not in out and not preserve:
        out["additionalProperties"] = False
    return out


def crd_schemas(crd: dict[str, Any], versions: list[str] | None) -> dict[str, dict[str, Any]]:
    """version -> strict schema, for the named versions (all served ones when None)."""
    if crd.get("kind") != "CustomResourceDefinition":
        raise SystemExit(f"not a CustomResourceDefinition: kind {crd.get('kind')!r}")
    spec = crd["spec"]
    group, kind = spec["group"], spec["names"]["kind"]
    out: dict[str, dict[str, Any]] = {}
    for version in spec["versions"]:
        name = version["name"]
        if versions is not None and name not in versions:
            continue
        if not version.get("served", False):
            raise SystemExit(
                f"{kind}.{group}/{name} is not served by this CRD: pick a served version"
            )
        schema = dict(version["schema"]["openAPIV3Schema"])
        schema.setdefault("properties", {})
        schema["properties"] = dict(schema["properties"])
        schema["properties"].pop("status", None)
        converted = strict(schema)
        converted["properties"]["apiVersion"] = {"type": "string", "enum": [f"{group}/{name}"]}
        converted["properties"]["kind"] = {"type": "string", "enum": [kind]}
        converted["required"] = sorted({*converted.get("required", []), "apiVersion", "kind"})
        converted["additionalProperties"] = False
        out[name] = {"title": f"{kind} {group}/{name}", **converted}
    missing = sorted(set(versions or ()) - set(out))
    if missing:
        raise SystemExit(f"{kind}.{group} has no version {', '.join(missing)}")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("crd", type=Path, help="CRD YAML file (one CustomResourceDefinition)")
    parser.add_argument("--version", action="append", dest="versions", help="only this version")
    parser.add_argument("--out", type=Path, default=Path("k8s/schemas"))
    args = parser.parse_args(argv)
    crd = yaml.safe_load(args.crd.read_text())
    group = crd["spec"]["group"]
    kind = crd["spec"]["names"]["kind"].lower()
    for version, schema in crd_schemas(crd, args.versions).items():
        path = args.out / group / f"{kind}_{version}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(schema, indent=1, sort_keys=True) + "\n")
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
