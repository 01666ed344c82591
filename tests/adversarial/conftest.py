"""Fixtures of the adversarial tests that run a live worker.

``live`` is a :class:`LiveExam` with its own topics, consumer group and Iceberg
namespace, all removed afterwards (its views too).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pyiceberg.catalog import Catalog
from pyiceberg.catalog.sql import SqlCatalog

from services.stack.catalog import load_catalog, trino_connect
from tests.integration.grader.live import LiveExam, live_exam


@pytest.fixture(scope="module")
def catalog(stack: Any) -> Iterator[Catalog]:
    cat = load_catalog(stack.require("postgres"))
    yield cat
    if isinstance(cat, SqlCatalog):
        cat.engine.dispose()


@pytest.fixture(scope="module")
def trino(stack: Any) -> Iterator[Any]:
    with contextlib.closing(trino_connect(stack.require("trino"))) as conn:
        yield conn


@pytest.fixture
def live(
    stack: Any,
    kafka_bootstrap: str,
    registry_url: str,
    catalog: Catalog,
    trino: Any,
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> Iterator[LiveExam]:
    with live_exam(
        "adv",
        request.node.name,
        kafka_bootstrap,
        registry_url,
        catalog,
        trino,
        tmp_path,
        width=20,
    ) as exam:
        yield exam
