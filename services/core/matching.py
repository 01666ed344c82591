"""Small, total helpers for reading event fields and matching names.

The engine must never raise on a contract-valid event, and a recording read without
schema validation may carry odd types; every reader here returns a neutral value
(empty string, None, empty tuple) instead of raising.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

#: Asset names ``pipeline.declared`` carries (``namespaces`` is a list, the rest strings).
ASSET_NAMES: frozenset[str] = frozenset(
    {
        "source_table",
        "cdc_topic",
        "flink_job",
        "sink_table",
        "dbt_model",
        "superset_chart",
        "pii_column",
        "namespaces",
    }
)


def text(value: Any) -> str:
    """A string field, or "" for anything else (None, numbers are stringified)."""
    if isinstance(value, str):
        return value
    if value is None or isinstance(value, bool):
        return ""
    if isinstance(value, int | float):
        return str(value)
    return ""


def integer(value: Any) -> int | None:
    """An integer from an int or a decimal string (Iceberg summaries hold strings)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        s = value.strip()
        if s.lstrip("-").isdigit():
            return int(s)
    return None


def number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def strings(value: Any) -> tuple[str, ...]:
    """A list of strings; other items are dropped."""
    if isinstance(value, list | tuple):
        return tuple(v for v in value if isinstance(v, str))
    return ()


def records(value: Any) -> tuple[Mapping[str, Any], ...]:
    """A list of JSON objects; other items are dropped."""
    if isinstance(value, list | tuple):
        return tuple(v for v in value if isinstance(v, Mapping))
    return ()


def norm(value: Any) -> str:
    """Lower-case, trimmed, with spaces and dashes as underscores: for enum-like answers."""
    return re.sub(r"[\s\-]+", "_", text(value).strip().lower())


def name_matches(name: str, declared: str) -> bool:
    """The contract's rule: equal, or ending with the declared name after a dot."""
    if not name or not declared:
        return False
    return name == declared or name.endswith("." + declared)


def matching_keys(keys: Iterable[str], declared: str) -> list[str]:
    """Keys naming a declared asset: exact matches win, suffix matches only without one.

    Without this, a CDC topic ``cdc.public.orders`` would also "be" the source table
    ``public.orders`` and a lineage path could skip the hop it is meant to prove.
    """
    keys = list(keys)
    exact = [k for k in keys if k == declared]
    if exact:
        return exact
    return [k for k in keys if name_matches(k, declared)]


def mentions(target: str, name: str) -> bool:
    """``target`` names ``name``: equal, dotted suffix, or as a delimited token (URNs)."""
    if not target or not name:
        return False
    if name_matches(target, name):
        return True
    return re.search(r"(?<![\w.])" + re.escape(name) + r"(?![\w])", target) is not None


def is_person(user: str, system_prefixes: Iterable[str]) -> bool:
    """A human user: not empty and not a system or service-account identity."""
    return bool(user) and not any(user.startswith(p) for p in system_prefixes)


def clock(ts_ms: int | None) -> str:
    """A short UTC time for reasons, e.g. 09:12:03Z (or 'never')."""
    if ts_ms is None:
        return "never"
    return datetime.fromtimestamp(ts_ms / 1000, tz=UTC).strftime("%H:%M:%SZ")


def count(n: float) -> str:
    """A number for reasons: thousands separated, no trailing .0."""
    if float(n).is_integer():
        return f"{int(n):,}"
    return f"{n:,.1f}"
