"""Layers only point down: no import cycle between modules or between packages of
``services/``, and the pure core imports nothing but itself and the error hierarchy.

Imports are read with ast (tests/unit/architecture/imports.py): module-level and deferred
ones alike; ``if TYPE_CHECKING:`` imports, which never run, are left out. A failure names
the cycle or the import.
"""

from __future__ import annotations

import pytest

from tests.unit.architecture.imports import cycles, graph, imports_of, internal_target, modules

pytestmark = pytest.mark.unit

#: what the pure core (mypy strict, no I/O) may import from services
CORE_MAY_IMPORT = ("services.core", "services.errors")


def package(module: str) -> str:
    """The first level under services (``services.grader.app`` -> ``grader``)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def package_graph() -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for module, targets in graph().items():
        out.setdefault(package(module), set()).update(
            package(t) for t in targets if package(t) != package(module)
        )
    return out


def test_no_module_import_cycle() -> None:
    found = cycles(graph())
    assert not found, "import cycles in services/:\n" + "\n".join(" -> ".join(c) for c in found)


def test_no_package_import_cycle() -> None:
    """The packages form layers: if grader imports contract, nothing in contract imports
    grader, even through a third package."""
    found = cycles(package_graph())
    assert not found, "packages importing each other:\n" + "\n".join(" -> ".join(c) for c in found)


def test_the_core_imports_only_itself() -> None:
    """Judges and rubric files are handed to the core at the edge (the worker's engine
    store, replay), never imported by it."""
    offenders = [
        f"{i.where} imports {i.target}"
        for module in modules()
        if module.startswith("services.core")
        for i in imports_of(module)
        if (target := internal_target(i.target)) is not None
        and not any(target == p or target.startswith(f"{p}.") for p in CORE_MAY_IMPORT)
    ]
    assert not offenders, "the core imports outside itself:\n" + "\n".join(offenders)


# --- the checks catch what they are for -----------------------------------------------


def test_cycles_are_found_and_named_by_a_shortest_path() -> None:
    edges = {
        "a": {"b"},
        "b": {"c", "a"},
        "c": {"a"},
        "d": {"a"},  # leads into the cycle, is not part of it
        "e": {"e"},  # a self-import is not a cycle between modules
        "x": {"y"},
        "y": {"z"},
        "z": {"x"},
    }
    assert cycles(edges) == [["a", "b", "a"], ["x", "y", "z", "x"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_a_deferred_import_counts_and_a_type_checking_one_does_not() -> None:
    from tests.unit.architecture.imports import parse_imports

    text = "\n".join(
        [
            "from typing import TYPE_CHECKING",
            "if TYPE_CHECKING:",
            "    from services.core.rules.base import Rule",
            "def parse():",
            "    from services.core.rules import REGISTRY",
        ]
    )
    targets = [i.target for i in parse_imports("services.core.rubric", text)]
    assert "services.core.rules.base" not in targets
    assert "services.core.rules" in targets
