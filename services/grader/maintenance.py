"""Table maintenance through Trino: compaction, snapshot expiry, orphan file removal.

Constant small sink commits leave many small files and snapshots. pyiceberg 0.12 expires
snapshots but does not compact, so maintenance runs Trino's ``ALTER TABLE ... EXECUTE
optimize / expire_snapshots / remove_orphan_files``. Expiry must never remove the snapshot
that holds the sink's latest offsets (maintenance snapshots made since do not carry them):
the retention threshold is stretched past that snapshot's age before each expiry, and the
offsets are read again afterwards to prove they survived.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pyiceberg.table import Table

from services.errors import SinkError
from services.grader import offsets as off
from services.grader.sql_names import _check

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class MaintenanceConfig:
    """How maintenance treats the table. Retentions must not be below the Trino catalog's
    ``iceberg.expire-snapshots.min-retention`` / ``remove-orphan-files.min-retention``."""

    interval_s: float = 600.0
    optimize_file_size_threshold: str = "32MB"
    snapshot_retention_s: int = 3600
    orphan_retention_s: int = 86400
    #: extra age kept beyond the offsets snapshot, so a commit racing expiry stays safe
    protect_margin_s: int = 300


@dataclass(frozen=True, slots=True)
class StepResult:
    """One maintenance action: what ran, how long, whether it worked."""

    action: str
    ok: bool
    duration_s: float
    detail: str = ""


@dataclass(frozen=True, slots=True)
class TableStats:
    """Size of the table's metadata: what maintenance keeps small."""

    data_files: int
    snapshots: int


def expiry_retention_s(
    now_ms: int, offsets_snapshot_ms: int | None, configured_s: int, margin_s: int
) -> int:
    """Retention for ``expire_snapshots`` that keeps the snapshot holding the offsets.

    Snapshots older than the threshold are expired, so the threshold must exceed the age
    of the offsets snapshot (plus a margin); never shorter than what was configured.
    """
    if offsets_snapshot_ms is None:
        return configured_s
    age_s = max(0, now_ms - offsets_snapshot_ms) / 1000
    return max(configured_s, math.ceil(age_s) + margin_s)


class TableMaintenance:
    """Runs the maintenance actions on one table, step by step, reporting each."""

    def __init__(
        self,
        connect: Callable[[], Any],
        load_table: Callable[[], Table],
        trino_catalog: str,
        identifier: str,
        config: MaintenanceConfig,
        clock_ms: Callable[[], int] = lambda: int(time.time() * 1000),
    ) -> None:
        namespace, name = identifier.rsplit(".", 1)
        self._fqn = f"{_check(trino_catalog, 'catalog')}.{_check(namespace, 'namespace')}"
        self._name = _check(name, "table")
        self._connect = connect
        self._load_table = load_table
        self.config = config
        self._clock_ms = clock_ms

    @property
    def table_sql(self) -> str:
        return f"{self._fqn}.{self._name}"

    def _execute(self, sql: str) -> list[list[Any]]:
        conn = self._connect()
        try:
            cur = conn.cursor()
            cur.execute(sql)
            rows: list[list[Any]] = cur.fetchall()
            return rows
        finally:
            conn.close()

    def _step(self, action: str, fn: Callable[[], str]) -> StepResult:
        start = time.perf_counter()
        try:
            detail = fn()
        except Exception as exc:
            log.warning("maintenance %s of %s failed: %s", action, self.table_sql, exc)
            return StepResult(action, False, time.perf_counter() - start, f"{exc}")
        return StepResult(action, True, time.perf_counter() - start, detail)

    def optimize(self) -> str:
        threshold = self.config.optimize_file_size_threshold
        self._execute(
            f"ALTER TABLE {self.table_sql} EXECUTE optimize(file_size_threshold => '{threshold}')"
        )
        return f"files under {threshold} rewritten"

    def expire_snapshots(self) -> str:
        before = off.read_committed(self._load_table())
        retention = expiry_retention_s(
            self._clock_ms(),
            before.timestamp_ms,
            self.config.snapshot_retention_s,
            self.config.protect_margin_s,
        )
        self._execute(
            f"ALTER TABLE {self.table_sql} EXECUTE "
            f"expire_snapshots(retention_threshold => '{retention}s')"
        )
        after = off.read_committed(self._load_table())
        if before.snapshot_id is not None and after.offsets != before.offsets:
            raise SinkError(
                f"expire_snapshots on {self.table_sql} lost the sink offsets of snapshot "
                f"{before.snapshot_id}; raise the retention or check for concurrent expiry"
            )
        return f"retention {retention}s, offsets kept in snapshot {after.snapshot_id}"

    def remove_orphan_files(self) -> str:
        retention = self.config.orphan_retention_s
        self._execute(
            f"ALTER TABLE {self.table_sql} EXECUTE "
            f"remove_orphan_files(retention_threshold => '{retention}s')"
        )
        return f"retention {retention}s"

    def stats(self) -> TableStats:
        files = self._execute(f'SELECT count(*) FROM {self._fqn}."{self._name}$files"')
        snaps = self._execute(f'SELECT count(*) FROM {self._fqn}."{self._name}$snapshots"')
        return TableStats(data_files=int(files[0][0]), snapshots=int(snaps[0][0]))

    def run(self) -> list[StepResult]:
        """Compaction first (its replaced files become expirable), then expiry, then orphans.

        Each step runs even when an earlier one failed; failures are reported, not raised.
        """
        return [
            self._step("optimize", self.optimize),
            self._step("expire_snapshots", self.expire_snapshots),
            self._step("remove_orphan_files", self.remove_orphan_files),
        ]
