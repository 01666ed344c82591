"""dbt on the stack's Trino: the venv (built by pip on first use) and projects with a schema
of their own, dropped after the test.

Register with ``pytest_plugins = ["tests.platform_fixtures.dbt"]`` in a test module.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from services.platform.dbt import DbtProject, DbtVenv, TrinoTarget, ensure_venv


@pytest.fixture(scope="session")
def dbt_venv() -> DbtVenv:
    """dbt-core, dbt-trino and openlineage-dbt in ~/.cache/proctor (about 90 s cold)."""
    return ensure_venv(progress=lambda line: print(line, flush=True))


@pytest.fixture
def dbt_project(
    stack: Any, dbt_venv: DbtVenv, tmp_path: Path
) -> Iterator[Callable[..., DbtProject]]:
    """``dbt_project(prefix, source=PROJECT)``: a started project on a fresh Iceberg schema
    of the stack's Trino; every project made is stopped (its schema dropped) afterwards."""
    config = stack.require("trino")
    made: list[DbtProject] = []

    def make(prefix: str = "it_dbt", **kwargs: Any) -> DbtProject:
        target = TrinoTarget.unique(prefix, url=config.trino_url)
        project = DbtProject(tmp_path / f"dbt-{len(made)}", dbt_venv, target, **kwargs)
        made.append(project)
        project.start()
        return project

    yield make
    for project in made:
        project.stop()
