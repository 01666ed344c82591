"""The catalog helpers' settings and their error when the database is not there."""

from __future__ import annotations

import contextlib
import socket
from pathlib import Path

import pytest

from services.errors import StackError
from services.stack.catalog import (
    TRINO_CATALOG,
    catalog_properties,
    load_catalog,
    trino_connect,
)
from services.stack.config import StackConfig

pytestmark = pytest.mark.unit


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def test_pyiceberg_uses_the_stack_database_and_warehouse(tmp_path: Path) -> None:
    config = StackConfig(state_dir=tmp_path, postgres_port=25432)
    props = catalog_properties(config)
    assert props["uri"] == "postgresql+psycopg2://proctor@127.0.0.1:25432/iceberg"
    assert props["warehouse"] == (tmp_path / "warehouse").as_uri()


def test_load_catalog_without_a_database_says_to_start_the_stack(tmp_path: Path) -> None:
    config = StackConfig(state_dir=tmp_path, postgres_port=_free_port())
    with pytest.raises(StackError, match=r"not reachable.*proctor stack up"):
        load_catalog(config)


def test_trino_connect_targets_the_iceberg_catalog_without_a_round_trip(tmp_path: Path) -> None:
    config = StackConfig(state_dir=tmp_path, trino_port=_free_port())
    with contextlib.closing(trino_connect(config, schema="grading")) as conn:
        assert (conn.host, conn.port) == ("127.0.0.1", config.trino_port)
        assert conn.catalog == TRINO_CATALOG
        assert conn.schema == "grading"
