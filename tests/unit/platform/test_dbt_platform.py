"""The dbt platform's pure parts: where it writes, what the OpenLineage client is told,
the venv's cache key, and the dropped-test injector on a copy of the project."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from services.errors import ConfigError
from services.platform.dbt import (
    BROKEN_ROW_TEST,
    PROJECT,
    DbtProject,
    DbtVenv,
    LineageTarget,
    TrinoTarget,
    venv_dir,
)

pytestmark = pytest.mark.unit


def test_a_unique_target_is_a_fresh_plain_schema_on_the_given_trino() -> None:
    a = TrinoTarget.unique("It-Dbt build!", url="http://127.0.0.1:18080")
    b = TrinoTarget.unique("It-Dbt build!", url="http://127.0.0.1:18080")
    assert (a.host, a.port, a.catalog) == ("127.0.0.1", 18080, "iceberg")
    assert a.schema.startswith("it_dbt_build__") and a.schema != b.schema
    assert a.namespace == "trino://127.0.0.1:18080"
    assert a.relation("orders_hourly") == f"iceberg.{a.schema}.orders_hourly"


@pytest.mark.parametrize("schema", ["x; drop table y", "Upper", "a.b", "", '"q"'])
def test_a_schema_that_is_not_a_plain_name_is_refused(schema: str) -> None:
    with pytest.raises(ConfigError, match="plain lower-case SQL name"):
        TrinoTarget("127.0.0.1", 18080, schema)


def test_a_trino_url_that_is_not_host_and_port_is_refused() -> None:
    with pytest.raises(ConfigError, match="http://host:port"):
        TrinoTarget.unique("x", url="trino.example:8080/catalog")


def test_the_lineage_client_is_told_the_receivers_url_and_key() -> None:
    env = LineageTarget("http://127.0.0.1:18094/platforms/basecamp-a/", "k").environment()
    assert env == {
        "OPENLINEAGE_URL": "http://127.0.0.1:18094/platforms/basecamp-a/",
        "OPENLINEAGE_ENDPOINT": "api/v1/lineage",
        "OPENLINEAGE_API_KEY": "k",
        "OPENLINEAGE_NAMESPACE": "dbt",
    }


def test_the_venv_is_keyed_by_the_requirements(tmp_path: Path) -> None:
    one, two = tmp_path / "a.txt", tmp_path / "b.txt"
    one.write_text("dbt-core==1.11.16\n")
    two.write_text("dbt-core==1.11.15\n")
    assert venv_dir(tmp_path, one) != venv_dir(tmp_path, two)
    assert venv_dir(tmp_path, one) == venv_dir(tmp_path, one)


def test_a_dropped_test_is_out_of_the_project_until_put_back(tmp_path: Path) -> None:
    project = DbtProject(tmp_path, DbtVenv(tmp_path / "venv"), TrinoTarget("h", 1, "s"))
    shutil.copytree(PROJECT, project.project_dir)
    assert project.tests() == [BROKEN_ROW_TEST]
    project.drop_test()
    assert project.tests() == []
    with pytest.raises(ConfigError, match="not in the project"):
        project.drop_test()
    project.restore_test()
    assert project.tests() == [BROKEN_ROW_TEST]
    with pytest.raises(ConfigError, match="was not dropped"):
        project.restore_test()
