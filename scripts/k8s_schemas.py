#!/usr/bin/env python3
"""Kubernetes' own JSON schemas, offline, in the layout kubeconform reads.

CI reaches no network but the package registries, so kubeconform cannot download the
standard schemas. The pip package ``kubernetes-validate`` (pinned in the dev extra) ships
JSON schemas generated from each Kubernetes release's OpenAPI document, one file per type
plus a shared ``_definitions.json`` that every type file points to by an absolute
``$ref`` (``/api/_definitions.json#/$defs/...``) under an ``https://kubernetes.io``
``$id``: kubeconform would try to fetch that. This script writes each top-level kind as a
standalone schema (the definitions it reaches copied into its own ``$defs``, references
made local), under ``<out>/v<version>-standalone-strict/<kind>-<group>-<version>.json``,
the path kubeconform's ``-schema-location <out>`` looks up with ``-strict``.

    python scripts/k8s_schemas.py --out ~/.cache/proctor/k8s-schemas 1.33.0 1.37.0
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

REMOTE_REF = "/api/_definitions.json#/$defs/"
LOCAL_REF = "#/$defs/"


def package_dir() -> Path:
    try:
        import kubernetes_validate
    except ImportError:
        raise SystemExit(
            "the Kubernetes schemas come from the kubernetes-validate package: "
            "pip install -e '.[dev]'"
        ) from None
    return Path(kubernetes_validate.__file__).parent / "kubernetes-json-schema"


def _refs(node: Any, found: set[str]) -> None:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str):
            for prefix in (REMOTE_REF, LOCAL_REF):
                if ref.startswith(prefix):
                    found.add(ref[len(prefix) :])
        for value in node.values():
            _refs(value, found)
    elif isinstance(node, list):
        for value in node:
            _refs(value, found)


def _localise(node: Any) -> Any:
    if isinstance(node, dict):
        out = {k: _localise(v) for k, v in node.items()}
        ref = out.get("$ref")
        if isinstance(ref, str) and ref.startswith(REMOTE_REF):
            out["$ref"] = LOCAL_REF + ref[len(REMOTE_REF) :]
        return out
    if isinstance(node, list):
        return [_localise(v) for v in node]
    return node


def standalone(schema: dict[str, Any], definitions: dict[str, Any]) -> dict[str, Any]:
    """``schema`` with the definitions it reaches (transitively) inlined as ``$defs``."""
    wanted: set[str] = set()
    _refs(schema, wanted)
    closure: dict[str, Any] = {}
    todo = sorted(wanted)
    while todo:
        name = todo.pop()
        if name in closure:
            continue
        if name not in definitions:
            raise SystemExit(f"definition {name} is referenced but not defined")
        closure[name] = definitions[name]
        more: set[str] = set()
        _refs(definitions[name], more)
        todo.extend(sorted(more - closure.keys()))
    out = _localise(schema)
    out.pop("$id", None)
    if closure:
        out["$defs"] = {name: _localise(closure[name]) for name in sorted(closure)}
    return out


def convert(version: str, out_root: Path) -> int:
    """Write every top-level kind of one Kubernetes version; returns how many."""
    source = package_dir() / f"v{version}-local-strict"
    if not source.is_dir():
        have = sorted(p.name for p in package_dir().glob("v*-local-strict"))
        raise SystemExit(f"kubernetes-validate has no schemas for {version}; it has {have}")
    definitions = json.loads((source / "_definitions.json").read_text())["$defs"]
    target = out_root / f"v{version}-standalone-strict"
    target.mkdir(parents=True, exist_ok=True)
    count = 0
    for path in sorted(source.glob("*.json")):
        if path.name.startswith("_") or path.name == "all.json":
            continue
        schema = json.loads(path.read_text())
        if "x-kubernetes-group-version-kind" not in schema:
            continue  # a part of a kind, not a kind of its own
        (target / path.name).write_text(json.dumps(standalone(schema, definitions)))
        count += 1
    return count


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("versions", nargs="+", help="Kubernetes versions, e.g. 1.33.0")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    for version in args.versions:
        print(f"k8s schemas v{version}: {convert(version, args.out)} kinds -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
