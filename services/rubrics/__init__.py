"""The rubric files shipped with proctor, and the one function that reads them.

Rubrics are package data (``services/rubrics/<rubric_id>/v<version>.yaml``) so an
installed proctor finds them; ``rubrics/`` at the top of the repository points here.
A directory given explicitly (``--rubrics-dir``) is searched first, so a rubric change
can be shadow-tested (``proctor regrade``) before it is published.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import cache
from importlib import resources
from pathlib import Path

import yaml

from services.core.rubric import Rubric, parse_rubric
from services.core.rules import REGISTRY
from services.errors import RubricError

RubricResolverFn = Callable[[str, str], Rubric]

#: what a rubric id or version may look like (it becomes part of a file path)
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$")


def _read(rubric_id: str, version: str, directory: Path | None) -> tuple[str, str]:
    name = f"v{version}.yaml"
    if directory is not None:
        path = directory / rubric_id / name
        if path.is_file():
            return path.read_text(encoding="utf-8"), str(path)
    res = resources.files("services.rubrics").joinpath(rubric_id, name)
    if res.is_file():
        return res.read_text(encoding="utf-8"), f"{rubric_id}/{name}"
    known = ", ".join(f"{r}@{v}" for r, v in available(directory)) or "none"
    raise RubricError(f"no rubric {rubric_id} version {version} (known: {known})")


def available(directory: Path | None = None) -> list[tuple[str, str]]:
    """(rubric_id, version) of every rubric file shipped, and in ``directory`` if given."""
    found: set[tuple[str, str]] = set()
    for sub in resources.files("services.rubrics").iterdir():
        if sub.is_dir():
            found |= {
                (sub.name, f.name[1:-5])
                for f in sub.iterdir()
                if f.name.startswith("v") and f.name.endswith(".yaml")
            }
    if directory is not None and directory.is_dir():
        for path in directory.glob("*/v*.yaml"):
            found.add((path.parent.name, path.stem[1:]))
    return sorted(found)


def load_rubric(rubric_id: str, version: str, directory: Path | None = None) -> Rubric:
    """Read and validate a rubric; RubricError names the file and the bad entry."""
    if not _NAME.match(rubric_id) or not _NAME.match(version):
        raise RubricError(
            f"no rubric {rubric_id!r} version {version!r}: ids and versions are plain names like y3-final and 1"
        )
    return _cached(rubric_id, version, str(directory) if directory else "")


@cache
def _cached(rubric_id: str, version: str, directory: str) -> Rubric:
    text, source = _read(rubric_id, version, Path(directory) if directory else None)
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise RubricError(f"{source}: not valid YAML: {exc}") from exc
    rubric = parse_rubric(doc, source, kinds=REGISTRY)
    if rubric.rubric_id != rubric_id or rubric.version != version:
        raise RubricError(
            f"{source}: declares {rubric.rubric_id} v{rubric.version}, expected {rubric_id} v{version}"
        )
    return rubric


def resolver(directory: Path | None = None) -> RubricResolverFn:
    """A resolver for the engine: (rubric_id, version) -> Rubric, searching ``directory`` first."""

    # A rubric version never changes, and its rules are stateless (their state lives in
    # each exam's facts): one parse per version, not one per exam (YAML and validation
    # took about 10 ms, as much as grading a few hundred signals).
    loaded: dict[tuple[str, str], Rubric] = {}

    def resolve(rubric_id: str, version: str) -> Rubric:
        key = (rubric_id, version)
        found = loaded.get(key)
        if found is None:
            found = loaded[key] = load_rubric(rubric_id, version, directory)
        return found

    return resolve
