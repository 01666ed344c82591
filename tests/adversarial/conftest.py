"""Fixtures of the adversarial tests that run a live worker.

``live`` is a :class:`LiveExam` with its own topics, consumer group and Iceberg
namespace, all removed afterwards (the ``exam_scores`` view too).
"""

from __future__ import annotations

import contextlib
import re
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlparse
from urllib.request import url2pathname

import pytest
from pyiceberg.catalog import Catalog
from pyiceberg.catalog.sql import SqlCatalog

from services.stack.catalog import TRINO_CATALOG, load_catalog, trino_connect
from tests.integration.grader.live import LiveExam


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
    test = re.sub(r"[^a-z0-9]+", "_", request.node.name.lower()).strip("_")[:20]
    namespace = f"adv_{test}_{uuid.uuid4().hex[:8]}"
    catalog.create_namespace(namespace)
    exam = LiveExam(kafka_bootstrap, registry_url, namespace, tmp_path)
    try:
        yield exam
    finally:
        exam.close()
        print(exam.log_tails())
        for identifier in catalog.list_tables(namespace):
            catalog.purge_table(identifier)
        with contextlib.suppress(Exception):
            trino.cursor().execute(f"DROP VIEW IF EXISTS {TRINO_CATALOG}.{namespace}.exam_scores")
        catalog.drop_namespace(namespace)
        warehouse = urlparse(catalog.properties["warehouse"])
        if warehouse.scheme == "file":
            shutil.rmtree(Path(url2pathname(warehouse.path)) / namespace, ignore_errors=True)
