"""The Iceberg side of the worker: opening the sink, the scoreboard view, maintenance.

Each step talks to a catalog or Trino that may not be up yet (the worker starts first in
a fresh stack, and the catalog database can go away for a while): they retry in the
background and never stop grading. Blocking clients run in the default executor.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from pyiceberg.catalog import Catalog

from services.grader.maintenance import MaintenanceConfig, TableMaintenance
from services.grader.settings import GraderSettings
from services.grader.sink import IcebergSink, SinkConfig
from services.grader.telemetry import Metrics
from services.grader.views import create_exam_scores_view

log = logging.getLogger(__name__)

RETRY_S = 2.0


class TableSide:
    """Owns the catalog and Trino connections' factories and the sink once open."""

    def __init__(
        self,
        settings: GraderSettings,
        catalog_factory: Callable[[], Catalog],
        trino_factory: Callable[[], Any],
        metrics: Metrics,
        retry_s: float = RETRY_S,
    ) -> None:
        self._settings = settings
        self._catalog_factory = catalog_factory
        self._trino_factory = trino_factory
        self._metrics = metrics
        self._retry_s = retry_s
        self.sink: IcebergSink | None = None

    def _new_sink(self) -> IcebergSink:
        s = self._settings
        config = SinkConfig(
            identifier=s.table,
            commit_rows=s.commit_rows,
            commit_interval_s=s.commit_interval_s,
            writer_id=f"{s.app_id}/{s.worker_id}",
        )
        return IcebergSink(self._catalog_factory(), config)

    async def open_sink(self) -> IcebergSink:
        """Open (or create) the table, retrying until the catalog answers."""
        loop = asyncio.get_running_loop()
        while True:
            try:
                sink = await loop.run_in_executor(None, self._new_sink)
                committed = await loop.run_in_executor(None, sink.open)
            except Exception as exc:
                log.warning("cannot open the Iceberg table yet: %s; retrying", exc)
                await asyncio.sleep(self._retry_s)
                continue
            log.info("sink open; offsets in the table: %s", dict(committed.offsets))
            self.sink = sink
            return sink

    async def create_view(self) -> None:
        """Create (or replace) the ``exam_scores`` view beside the table: the scoreboard
        and the end-to-end checks read it. Trino may start after the worker: retry."""
        s = self._settings
        namespace, table = s.table.split(".", 1)
        loop = asyncio.get_running_loop()

        def create() -> None:
            conn = self._trino_factory()
            try:
                create_exam_scores_view(conn, s.trino_catalog, namespace, table)
            finally:
                conn.close()

        while True:
            try:
                await loop.run_in_executor(None, create)
            except Exception as exc:
                log.warning("cannot create the exam_scores view yet: %s; retrying", exc)
                await asyncio.sleep(self._retry_s)
                continue
            log.info("view %s.%s.exam_scores is in place", s.trino_catalog, namespace)
            return

    async def maintain(self) -> None:
        """One maintenance round (the leader's timer): compaction, expiry, orphans."""
        if self.sink is None:
            return
        s = self._settings
        maint = TableMaintenance(
            self._trino_factory,
            lambda: self._catalog_factory().load_table(s.table),
            s.trino_catalog,
            s.table,
            MaintenanceConfig(
                interval_s=s.maintenance_interval_s,
                snapshot_retention_s=s.snapshot_retention_s,
                orphan_retention_s=s.orphan_retention_s,
            ),
        )
        loop = asyncio.get_running_loop()
        metrics = self._metrics
        for step in await loop.run_in_executor(None, maint.run):
            metrics.maintenance_seconds.labels(step.action).observe(step.duration_s)
            metrics.maintenance_runs.labels(step.action, "ok" if step.ok else "failed").inc()
            log.info(
                "maintenance %s: %s (%s)", step.action, "ok" if step.ok else "failed", step.detail
            )
        try:
            stats = await loop.run_in_executor(None, maint.stats)
        except Exception as exc:
            log.warning("table stats unavailable: %s", exc)
            return
        metrics.table_files.set(stats.data_files)
        metrics.table_snapshots.set(stats.snapshots)
