"""Field conditions a rubric writes in YAML, compiled once into a fast predicate.

A condition is one mapping with ``field`` and exactly one operator, e.g.
``{field: state, equals: RUNNING}`` or ``{field: summary, has_key: flink.max-committed-checkpoint-id}``.
Conditions are frozen and hashable so two criteria asking for the same evidence share
one aggregate in the engine.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from services.core.matching import mapping, number, text

Scalar = str | int | float | bool
Value = Scalar | tuple[str, ...]
Predicate = Callable[[Mapping[str, Any]], bool]

#: operator -> what its value must be ("str", "strs", "num", "bool", "regex")
OPERATORS: dict[str, str] = {
    "equals": "scalar",
    "not_equals": "scalar",
    "equals_ci": "str",
    "in": "strs",
    "not_in": "strs",
    "in_ci": "strs",
    "prefix": "str",
    "not_prefix": "strs",
    "matches": "regex",
    "any_matches": "regex",
    "has_key": "str",
    "has_key_prefix": "str",
    "is": "bool",
    "at_least": "num",
    "at_most": "num",
}


@dataclass(frozen=True, slots=True)
class Cond:
    field: str
    op: str
    value: Value

    def describe(self) -> str:
        return f"{self.field} {self.op.replace('_', ' ')} {self.value!r}"


def parse_cond(raw: Any) -> Cond:
    """Build a :class:`Cond` from its YAML mapping; ValueError names what is wrong."""
    if not isinstance(raw, Mapping):
        raise ValueError(
            f"a condition must be a mapping like {{field: state, equals: RUNNING}}, got {raw!r}"
        )
    field = raw.get("field")
    if not isinstance(field, str) or not field:
        raise ValueError(f"condition {dict(raw)!r} needs a 'field'")
    ops = [k for k in raw if k != "field"]
    if len(ops) != 1 or ops[0] not in OPERATORS:
        raise ValueError(
            f"condition on {field!r} needs exactly one operator of {sorted(OPERATORS)}, got {ops}"
        )
    op = ops[0]
    value = raw[op]
    kind = OPERATORS[op]
    if kind == "strs":
        if isinstance(value, str):
            value = (value,)
        if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
            raise ValueError(f"condition {field} {op}: value must be a list of strings")
        return Cond(field, op, tuple(value))
    if kind in ("str", "regex"):
        if not isinstance(value, str):
            raise ValueError(f"condition {field} {op}: value must be a string")
        if kind == "regex":
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"condition {field} {op}: bad regular expression: {exc}") from exc
        return Cond(field, op, value)
    if kind == "bool":
        if not isinstance(value, bool):
            raise ValueError(f"condition {field} {op}: value must be true or false")
        return Cond(field, op, value)
    if kind == "num":
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"condition {field} {op}: value must be a number")
        return Cond(field, op, value)
    if not isinstance(value, str | int | float | bool):
        raise ValueError(f"condition {field} {op}: value must be a string, number or boolean")
    return Cond(field, op, value)


def _one(c: Cond) -> Predicate:
    f = c.field
    v = c.value
    op = c.op
    if op == "equals":
        return lambda d: d.get(f) == v
    if op == "not_equals":
        return lambda d: d.get(f) != v
    if op == "equals_ci":
        low = str(v).lower()
        return lambda d: text(d.get(f)).lower() == low
    if op == "in":
        vs = frozenset(v) if isinstance(v, tuple) else frozenset()
        return lambda d: text(d.get(f)) in vs
    if op == "not_in":
        vs = frozenset(v) if isinstance(v, tuple) else frozenset()
        return lambda d: text(d.get(f)) not in vs
    if op == "in_ci":
        vs = frozenset(s.lower() for s in v) if isinstance(v, tuple) else frozenset()
        return lambda d: text(d.get(f)).lower() in vs
    if op == "prefix":
        p = str(v)
        return lambda d: text(d.get(f)).startswith(p)
    if op == "not_prefix":
        ps = v if isinstance(v, tuple) else (str(v),)
        return lambda d: not text(d.get(f)).startswith(ps)
    if op == "matches":
        rx = re.compile(str(v))
        return lambda d: rx.search(text(d.get(f))) is not None
    if op == "any_matches":
        rx = re.compile(str(v))

        def any_matches(d: Mapping[str, Any]) -> bool:
            items = d.get(f)
            if not isinstance(items, list | tuple):
                return False
            return any(rx.search(i if isinstance(i, str) else str(i)) for i in items)

        return any_matches
    if op == "has_key":
        k = str(v)
        return lambda d: k in mapping(d.get(f))
    if op == "has_key_prefix":
        p = str(v)
        return lambda d: any(isinstance(k, str) and k.startswith(p) for k in mapping(d.get(f)))
    if op == "is":
        return lambda d: d.get(f) is v
    if op == "at_least":
        lo = float(v) if isinstance(v, int | float) else 0.0

        def at_least(d: Mapping[str, Any]) -> bool:
            n = number(d.get(f))
            return n is not None and n >= lo

        return at_least
    if op == "at_most":
        hi = float(v) if isinstance(v, int | float) else 0.0

        def at_most(d: Mapping[str, Any]) -> bool:
            n = number(d.get(f))
            return n is not None and n <= hi

        return at_most
    raise ValueError(f"unknown operator {op!r}")  # pragma: no cover - parse_cond rejects it


def compile_where(conds: Sequence[Cond]) -> Predicate:
    """One predicate that holds when every condition holds (an empty list always holds)."""
    preds = tuple(_one(c) for c in conds)
    if not preds:
        return lambda d: True
    if len(preds) == 1:
        return preds[0]
    return lambda d: all(p(d) for p in preds)
