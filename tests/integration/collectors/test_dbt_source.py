"""dbt.run from the artifacts of a real `dbt build` (dbt-core + dbt-duckdb, its own venv)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from services.collectors.dbt import DbtCollector, Settings
from services.collectors.polling import Poller

pytestmark = [pytest.mark.integration, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[3]
PROJECT = REPO / "tests" / "fixtures" / "dbt_project"
DBT_VENV = REPO / ".stack" / "tools" / "dbt"


@pytest.fixture(scope="session")
def dbt_bin() -> Path:
    """dbt in a venv of its own (its pathspec pin conflicts with mypy's), made on first use."""
    found = os.environ.get("PROCTOR_DBT_BIN")
    if found:
        return Path(found)
    dbt = DBT_VENV / "bin" / "dbt"
    if not dbt.exists():
        subprocess.run([sys.executable, "-m", "venv", str(DBT_VENV)], check=True)
        subprocess.run(
            [
                str(DBT_VENV / "bin" / "pip"),
                "install",
                "-q",
                "-r",
                str(PROJECT / "requirements-dbt.txt"),
            ],
            check=True,
            timeout=900,
        )
    return dbt


def _build(dbt: Path, project: Path) -> None:
    env = {
        **os.environ,
        "DBT_DUCKDB_PATH": str(project / "shop.duckdb"),
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
    }
    done = subprocess.run(
        [str(dbt), "build", "--project-dir", str(project), "--profiles-dir", str(project)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert (project / "target" / "run_results.json").exists(), done.stdout[-3000:]


def test_dbt_runs_from_real_artifacts(
    env, make_poller: Callable[..., Poller], tmp_path: Path, platform_id: str, dbt_bin: Path
) -> None:
    project = tmp_path / "shop"
    shutil.copytree(PROJECT, project, ignore=shutil.ignore_patterns("target", "*.duckdb"))
    _build(dbt_bin, project)
    poller = make_poller(DbtCollector(Settings(path=project / "target"), platform_id))
    assert poller.step() == 1
    assert poller.step() == 0
    [run] = env.read("platform.dbt", platform_id)
    assert run.data["command"] == "build"
    results = {r["unique_id"]: r for r in run.data["results"]}
    model = results["model.shop.orders_hourly"]
    assert model["resource_type"] == "model" and model["status"] == "success"
    assert model["materialization"] == "table"
    assert model["depends_on"] == ["seed.shop.orders"]
    assert model["relation_name"] == "shop.main.orders_hourly"
    tests = [r for r in results.values() if r["resource_type"] == "test"]
    assert len(tests) == 4
    assert all(t["status"] == "pass" and t["failures"] == 0 for t in tests)
    assert all(t["depends_on"] == ["model.shop.orders_hourly"] for t in tests)
    assert results["seed.shop.orders"]["resource_type"] == "seed"

    # a broken upstream row: the next build's test on the model fails, one more event
    with (project / "seeds" / "orders.csv").open("a") as fh:
        fh.write("4,12,-99.00,2026-11-27 11:00:00\n")
    _build(dbt_bin, project)
    assert poller.step() == 1
    runs = env.read("platform.dbt", platform_id)
    assert len(runs) == 2 and runs[1].data["invocation_id"] != run.data["invocation_id"]
    failing = [r for r in runs[1].data["results"] if r["status"] == "fail"]
    assert [r["unique_id"].split(".")[2] for r in failing] == ["non_negative_orders_hourly_revenue"]
    assert failing[0]["failures"] == 1
    assert runs[1].ts_ms > run.ts_ms


def test_half_written_artifacts_wait_for_the_next_poll(
    env, make_poller: Callable[..., Poller], tmp_path: Path, platform_id: str
) -> None:
    target = tmp_path / "target"
    target.mkdir()
    (target / "run_results.json").write_text('{"metadata": {"invocation_id": "abc"')
    poller = make_poller(DbtCollector(Settings(path=target), platform_id))
    assert poller.step() == 0
    assert env.read("platform.dbt", platform_id) == []
