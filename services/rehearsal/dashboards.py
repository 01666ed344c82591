"""The candidate's Superset in a rehearsal: a separate Superset 6.1 with alerts & reports
(services/platform/superset.py), where the candidate connects the stack's Trino, makes a
chart on the dbt model's table and an alert on that chart, which Superset's Celery beat
evaluates within a minute. One per rehearsal (the first exam whose dbt model is built):
a Superset web server and its Celery worker are heavy on two cores.
"""

from __future__ import annotations

import contextlib
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from services.errors import StackError
from services.platform.superset import CandidateSuperset
from services.platform.superset_api import Alert, SupersetApi
from services.stack.catalog import TRINO_CATALOG, TRINO_USER
from services.stack.config import StackConfig

#: the chart's name, as the exam's superset_chart asset says
CHART = "Orders per hour"
#: the alert fires above a million orders: it evaluates "Not triggered" (a Success)
THRESHOLD = 1_000_000.0


@dataclass
class PlatformSuperset:
    """The candidate's Superset and what they built in it."""

    superset: CandidateSuperset
    password_env: str
    alert: Alert | None = None

    @classmethod
    def start(cls, workdir: Path, run_id: str) -> PlatformSuperset:
        """Web server and Celery worker/beat up; the admin's password in an environment
        variable of this process only, for the collector (which reads it from there)."""
        superset = CandidateSuperset(workdir)
        superset.start()
        env = f"PROCTOR_REHEARSAL_{run_id.upper()}_SUPERSET_PASSWORD"
        os.environ[env] = superset.password
        return cls(superset, env)

    @property
    def url(self) -> str:
        return self.superset.address

    def api(self) -> SupersetApi:
        api = SupersetApi(self.url, self.superset.user, self.superset.password)
        api.login()
        return api

    def build(self, config: StackConfig, schema: str, table: str) -> str:
        """A database on the stack's Trino, a dataset and a chart on ``schema.table`` (the dbt
        model), and an active alert on that chart evaluated every minute."""
        uri = f"trino://{TRINO_USER}@{config.host}:{config.trino_port}/{TRINO_CATALOG}"
        with contextlib.closing(self.api()) as api:
            database = api.create_database("trino-iceberg", uri)
            chart = api.create_chart(CHART, api.create_dataset(database, schema, table))
            self.alert = api.create_alert(
                f"{table} surge",
                chart,
                database,
                f"SELECT count(*) FROM {schema}.{table}",
                ">",
                THRESHOLD,
            )
        return (
            f"chart {chart} ({CHART!r}) on {schema}.{table} and alert {self.alert.id} "
            f"(count > {THRESHOLD:,.0f}, every minute) made through the REST API"
        )

    def wait_evaluated(self, timeout_s: float = 240.0) -> str:
        """Until Superset's beat has evaluated the alert (a beat tick is at most a minute
        away, then the worker runs the alert's query on Trino)."""
        assert self.alert is not None, "build first"
        deadline = time.monotonic() + timeout_s
        found: dict[str, Any] = {}
        with contextlib.closing(self.api()) as api:
            while time.monotonic() < deadline:
                with contextlib.suppress(StackError):  # a request cut on a busy machine
                    found = api.alert(self.alert.id)
                if found.get("last_eval_dttm"):
                    return (
                        f"alert {self.alert.id} evaluated at {found['last_eval_dttm']}: "
                        f"{found['last_state']}"
                    )
                time.sleep(2.0)
        raise StackError(
            f"Superset's beat did not evaluate alert {self.alert.id} in {timeout_s:.0f}s "
            f"(last answer {found}):\n{self.superset.logs()}"
        )

    def stop(self) -> None:
        os.environ.pop(self.password_env, None)
        self.superset.stop()
