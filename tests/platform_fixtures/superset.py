"""A candidate's real Superset 6.1 for the collector tests, started once per module.

A separate instance (services/platform/superset.py: its own work directory, free port,
SQLite metadata and secrets; the scoreboard's Superset is neither used nor touched) with
alerts & reports on and a Celery worker whose beat evaluates alerts every minute. What a
candidate would build is then made through the REST API: a database connection to the
shared stack's Trino (catalog ``iceberg``), three datasets over tables in a schema of this
module's own, a chart on each, and two alerts:

* ``orders_hourly``: chart + an active alert (evaluated by the beat before tests run);
* ``orders_daily``: chart + an alert created inactive (never evaluated);
* ``orders_weekly``: chart, no alert.

Use by importing the fixtures into a test module (``from tests.platform_fixtures.superset
import superset_platform``). Needs the stack's Trino; the Superset venv is built on first
use (``SupersetComponent.install``, cached under ~/.cache/proctor).
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from services.errors import StackError
from services.platform.superset import CandidateSuperset
from services.platform.superset_api import Alert, SupersetApi
from services.stack.catalog import TRINO_CATALOG, TRINO_USER, trino_connect
from services.stack.config import StackConfig

TABLES = ("orders_hourly", "orders_daily", "orders_weekly")
CHART_NAMES = {
    "orders_hourly": "Orders per hour",
    "orders_daily": "Orders per day",
    "orders_weekly": "Orders per week",
}
DATABASE_NAME = "trino-iceberg"
#: the alert fires when more than a million orders arrive: it evaluates "Not triggered"
THRESHOLD = 1_000_000.0
#: a beat tick is at most 60 s away, plus the worker's run of the alert's query on Trino
EVALUATION_TIMEOUT_S = 240.0


@dataclass(frozen=True)
class SupersetPlatform:
    """The candidate's Superset and what was built in it."""

    superset: CandidateSuperset
    trino: StackConfig
    schema: str
    database_id: int
    charts: dict[str, int]
    alerts: dict[str, Alert]
    #: what was built, for assertions: table -> chart name, the database's name, the
    #: alerts' threshold
    chart_names: tuple[tuple[str, str], ...] = tuple(CHART_NAMES.items())
    database_name: str = DATABASE_NAME
    threshold: float = THRESHOLD

    @property
    def url(self) -> str:
        return self.superset.address

    def api(self) -> SupersetApi:
        """A logged-in API session (close it, or use it as a context manager)."""
        api = SupersetApi(self.url, self.superset.user, self.superset.password)
        api.login()
        return api

    def dataset(self, table: str) -> str:
        return f"{self.schema}.{table}"

    def wait_evaluated(self, table: str, after: str | None = None) -> dict[str, Any]:
        """The alert on ``table`` once its ``last_eval_dttm`` is set (and differs from
        ``after``); fails with both logs when the beat has not evaluated it in time."""
        alert_id = self.alerts[table].id
        deadline = time.monotonic() + EVALUATION_TIMEOUT_S
        with self.api() as api:
            while True:
                try:
                    found = api.alert(alert_id)
                except StackError as exc:  # a request cut on a loaded machine: ask again
                    found = {"error": str(exc)}
                if found.get("last_eval_dttm") and found["last_eval_dttm"] != after:
                    return found
                if time.monotonic() > deadline:
                    pytest.fail(
                        f"alert {alert_id} on {table} not evaluated in "
                        f"{EVALUATION_TIMEOUT_S:.0f}s: {found}\n{self.superset.logs()}"
                    )
                time.sleep(2.0)


@pytest.fixture(scope="module")
def candidate_superset(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CandidateSuperset]:
    """A started candidate Superset (web server + worker/beat), stopped after the module."""
    superset = CandidateSuperset(Path(tmp_path_factory.mktemp("candidate-superset")))
    superset.start(lambda m: print(m, flush=True))
    print(f"candidate superset started in {superset.started_s:.1f}s at {superset.address}")
    try:
        yield superset
    finally:
        superset.stop()


@pytest.fixture(scope="module")
def superset_tables(stack: Any) -> Iterator[tuple[StackConfig, str]]:
    """Three small Iceberg tables through the stack's Trino, in a schema of their own."""
    config: StackConfig = stack.require("trino")
    schema = f"it_superset_{uuid.uuid4().hex[:8]}"
    with contextlib.closing(trino_connect(config)) as conn:
        cur = conn.cursor()

        def run(sql: str) -> None:
            cur.execute(sql)
            cur.fetchall()

        run(f"CREATE SCHEMA {TRINO_CATALOG}.{schema}")
        try:
            for table in TABLES:
                run(f"CREATE TABLE {schema}.{table} (period timestamp(6), orders bigint)")
                run(
                    f"INSERT INTO {schema}.{table} VALUES "
                    "(TIMESTAMP '2026-11-27 10:00:00', 42), (TIMESTAMP '2026-11-27 11:00:00', 17)"
                )
            yield config, schema
        finally:
            for table in TABLES:
                with contextlib.suppress(Exception):
                    run(f"DROP TABLE IF EXISTS {schema}.{table}")
            with contextlib.suppress(Exception):
                run(f"DROP SCHEMA IF EXISTS {TRINO_CATALOG}.{schema}")


@pytest.fixture(scope="module")
def superset_platform(
    candidate_superset: CandidateSuperset, superset_tables: tuple[StackConfig, str]
) -> SupersetPlatform:
    """What a candidate builds through the REST API; returns once the active alert ran."""
    config, schema = superset_tables
    uri = f"trino://{TRINO_USER}@{config.host}:{config.trino_port}/{TRINO_CATALOG}"
    with SupersetApi(
        candidate_superset.address, candidate_superset.user, candidate_superset.password
    ) as api:
        database_id = api.create_database(DATABASE_NAME, uri)
        charts = {
            t: api.create_chart(CHART_NAMES[t], api.create_dataset(database_id, schema, t))
            for t in TABLES
        }
        # the inactive one first, so the beat tick that evaluates the active one came
        # after both existed: not evaluating it was the scheduler's choice
        alerts = {
            table: api.create_alert(
                f"{table} surge",
                charts[table],
                database_id,
                f"SELECT count(*) FROM {schema}.{table}",
                ">",
                THRESHOLD,
                active=active,
            )
            for table, active in (("orders_daily", False), ("orders_hourly", True))
        }
    platform = SupersetPlatform(candidate_superset, config, schema, database_id, charts, alerts)
    platform.wait_evaluated("orders_hourly")
    return platform
