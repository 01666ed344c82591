"""Fixtures for the Iceberg catalog and Trino of the real local stack.

Both build on the session's ``stack`` fixture (tests/conftest.py), which reuses running
components and starts missing ones. ``iceberg_namespace`` gives each test its own
namespace (a Trino schema) and purges it afterwards, so tests never see each other's
tables and reruns never collide.
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
from trino.dbapi import Connection

from services.stack.catalog import load_catalog, trino_connect


@pytest.fixture(scope="session")
def iceberg_catalog(stack: Any) -> Iterator[Catalog]:
    """pyiceberg's view of the stack's JDBC catalog (PostgreSQL started if needed)."""
    config = stack.require("postgres")
    catalog = load_catalog(config)
    yield catalog
    if isinstance(catalog, SqlCatalog):
        catalog.engine.dispose()


@pytest.fixture(scope="session")
def trino_connection(stack: Any) -> Iterator[Connection]:
    """A Trino DB-API connection on the ``iceberg`` catalog (Trino started if needed)."""
    config = stack.require("trino")
    with contextlib.closing(trino_connect(config)) as conn:
        yield conn


@pytest.fixture
def iceberg_namespace(iceberg_catalog: Catalog, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh namespace for one test, lower case so Trino names it the same way."""
    test = re.sub(r"[^a-z0-9]+", "_", request.node.name.lower()).strip("_")[:30]
    namespace = f"it_{test}_{uuid.uuid4().hex[:8]}"
    iceberg_catalog.create_namespace(namespace)
    yield namespace
    for identifier in iceberg_catalog.list_tables(namespace):
        iceberg_catalog.purge_table(identifier)
    iceberg_catalog.drop_namespace(namespace)
    # Purging removes the files; the local warehouse keeps empty folders otherwise.
    warehouse = urlparse(iceberg_catalog.properties["warehouse"])
    if warehouse.scheme == "file":
        shutil.rmtree(Path(url2pathname(warehouse.path)) / namespace, ignore_errors=True)
