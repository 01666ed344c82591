"""Avro schema resolution, checked ahead of time: can a reader schema read a writer's data?

The registry answers yes or no; this module says *which field* breaks and why, for
``proctor schemas check`` (a changed local schema is the reader of data written with the
registered one: BACKWARD) and for the wire decoder (the contract's schema reads records
written with whatever schema id they carry). It follows the resolution rules of the Avro
specification: matching names, field defaults, numeric promotion, enum symbols, unions.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

#: Writer primitive -> reader primitives it may be promoted to (Avro spec, schema resolution).
PROMOTIONS: Mapping[str, frozenset[str]] = {
    "int": frozenset({"int", "long", "float", "double"}),
    "long": frozenset({"long", "float", "double"}),
    "float": frozenset({"float", "double"}),
    "double": frozenset({"double"}),
    "string": frozenset({"string", "bytes"}),
    "bytes": frozenset({"bytes", "string"}),
    "boolean": frozenset({"boolean"}),
    "null": frozenset({"null"}),
}


@dataclass(frozen=True, slots=True)
class Problem:
    """One reason a reader cannot read a writer's data, at a field path."""

    path: str
    kind: (
        str  # "missing_field" | "type_mismatch" | "enum_symbol" | "name_mismatch" | "union_branch"
    )
    message: str

    def __str__(self) -> str:
        return f"field {self.path!r}: {self.message}" if self.path else self.message


def _short(name: str) -> str:
    return name.rsplit(".", 1)[-1]


def _type_name(schema: Any) -> str:
    if isinstance(schema, str):
        return schema
    if isinstance(schema, list):
        return "union[" + ", ".join(_type_name(s) for s in schema) + "]"
    t = schema.get("type")
    if t in ("record", "enum", "fixed", "error"):
        return f"{t} {schema.get('name')}"
    if t == "array":
        return f"array<{_type_name(schema['items'])}>"
    if t == "map":
        return f"map<{_type_name(schema['values'])}>"
    return str(t)


class _Resolver:
    def __init__(self, reader_named: Mapping[str, Any], writer_named: Mapping[str, Any]) -> None:
        self.rn = reader_named
        self.wn = writer_named
        self.seen: set[tuple[str, str]] = set()

    def deref(self, schema: Any, named: Mapping[str, Any]) -> Any:
        while isinstance(schema, str) and schema in named:
            schema = named[schema]
        if isinstance(schema, dict) and schema.get("type") in named and len(schema) == 1:
            return named[schema["type"]]
        return schema

    def kind(self, schema: Any) -> str:
        if isinstance(schema, str):
            return schema
        if isinstance(schema, list):
            return "union"
        t = schema["type"]
        return "record" if t == "error" else str(t)

    def check(self, reader: Any, writer: Any, path: str) -> list[Problem]:
        reader = self.deref(reader, self.rn)
        writer = self.deref(writer, self.wn)
        rk, wk = self.kind(reader), self.kind(writer)
        if wk == "union":
            problems: list[Problem] = []
            for branch in writer:
                sub = self.check(reader, branch, path)
                if sub:
                    problems.append(
                        Problem(
                            path,
                            "union_branch",
                            f"the writer's {_type_name(self.deref(branch, self.wn))} values "
                            f"cannot be read as {_type_name(reader)}",
                        )
                    )
            return problems
        if rk == "union":
            for branch in reader:
                if not self.check(branch, writer, path):
                    return []
            return [
                Problem(
                    path,
                    "type_mismatch",
                    f"written as {_type_name(writer)}, which no branch of {_type_name(reader)} can read",
                )
            ]
        if wk in PROMOTIONS or rk in PROMOTIONS:
            if wk in PROMOTIONS and rk in PROMOTIONS[wk]:
                return []
            return [
                Problem(
                    path,
                    "type_mismatch",
                    f"written as {_type_name(writer)}, read as {_type_name(reader)}",
                )
            ]
        if rk != wk:
            return [
                Problem(
                    path,
                    "type_mismatch",
                    f"written as {_type_name(writer)}, read as {_type_name(reader)}",
                )
            ]
        if rk in ("record", "enum", "fixed") and _short(reader["name"]) != _short(writer["name"]):
            aliases = {_short(a) for a in reader.get("aliases", [])}
            if _short(writer["name"]) not in aliases:
                return [
                    Problem(
                        path,
                        "name_mismatch",
                        f"the writer's {rk} is named {writer['name']}, the reader's {reader['name']}",
                    )
                ]
        if rk == "record":
            return self.record(reader, writer, path)
        if rk == "enum":
            missing = [s for s in writer["symbols"] if s not in reader["symbols"]]
            if missing and "default" not in reader:
                return [
                    Problem(
                        path,
                        "enum_symbol",
                        f"symbol(s) {', '.join(missing)} of the writer are not in the reader's enum "
                        f"{_short(reader['name'])} (and it has no default)",
                    )
                ]
            return []
        if rk == "array":
            return self.check(reader["items"], writer["items"], f"{path}[]")
        if rk == "map":
            return self.check(reader["values"], writer["values"], f"{path}{{}}")
        if rk == "fixed" and reader["size"] != writer["size"]:
            return [
                Problem(
                    path, "type_mismatch", f"fixed size {writer['size']} read as {reader['size']}"
                )
            ]
        return []

    def record(
        self, reader: Mapping[str, Any], writer: Mapping[str, Any], path: str
    ) -> list[Problem]:
        key = (str(reader["name"]), str(writer["name"]))
        if key in self.seen:  # recursive types: assume fine on the second visit
            return []
        self.seen.add(key)
        by_name = {f["name"]: f for f in writer["fields"]}
        problems: list[Problem] = []
        for field in reader["fields"]:
            sub = f"{path}.{field['name']}" if path else field["name"]
            wf = by_name.get(field["name"])
            if wf is None:
                for alias in field.get("aliases", []):
                    wf = by_name.get(alias)
                    if wf is not None:
                        break
            if wf is None:
                if "default" not in field:
                    problems.append(
                        Problem(
                            sub,
                            "missing_field",
                            "is required by the reader (no default) but the writer's schema does not have it",
                        )
                    )
                continue
            problems.extend(self.check(field["type"], wf["type"], sub))
        return problems


def read_problems(reader: Mapping[str, Any], writer: Mapping[str, Any]) -> list[Problem]:
    """Why ``reader`` cannot read data written with ``writer`` (both fastavro-parsed); [] if it can."""
    resolver = _Resolver(
        dict(reader.get("__named_schemas", {})), dict(writer.get("__named_schemas", {}))
    )
    return resolver.check(reader, writer, "")
