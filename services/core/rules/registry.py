"""The registry of rule kinds a rubric file may name."""

from __future__ import annotations

from typing import Any, TypeVar

from services.core.rules.base import Rule

REGISTRY: dict[str, type[Rule[Any]]] = {}

R = TypeVar("R", bound=type[Rule[Any]])


def register(cls: R) -> R:
    if cls.kind in REGISTRY:  # pragma: no cover - a programming error, caught at import
        raise ValueError(f"rule kind {cls.kind} registered twice")
    REGISTRY[cls.kind] = cls
    return cls
