"""Part 2's incidents, injected on the real systems the rehearsal runs, each with its undo.

An injector breaks the candidate's platform the way its fault kind says, measures the
break on the real system (row counts, the optimiser's statistics) and returns what it
did, which goes into the signed ``fault.injected`` note. The fix is the candidate's
(:meth:`FaultInjector.fix`, through the path a candidate would take); ``undo`` puts the
platform back whatever the candidate did. Kinds that the systems here cannot break for
real are listed in :data:`NOT_INJECTABLE` with why.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field

from services.errors import ConfigError
from services.rehearsal.lakehouse import Lakehouse, LakehouseError, orders

SINK = "orders_enriched"


@dataclass(frozen=True, slots=True)
class Injection:
    """What an injector did: the ``fault.injected`` fields and the measured break."""

    layer: str
    kind: str
    target: str
    note: str
    before: Mapping[str, object] = field(default_factory=dict)
    after: Mapping[str, object] = field(default_factory=dict)


class FaultInjector(ABC):
    """Breaks one thing for real; knows how a candidate fixes it and how to undo it."""

    layer: str
    kind: str
    system: str

    def __init__(self, lake: Lakehouse, table: str = SINK) -> None:
        self.lake = lake
        self.table = table
        self._restore: int | None = None

    @property
    def target(self) -> str:
        return self.lake.qualified(self.table)

    @abstractmethod
    def inject(self) -> Injection: ...

    @abstractmethod
    def fix(self) -> str:
        """What a candidate who found the cause does; returns what was done."""

    @abstractmethod
    def broken(self) -> bool:
        """Whether the platform still shows the fault (for the report and the tests)."""

    def undo(self) -> None:
        """Back to the state before :meth:`inject`, whether or not the candidate fixed it."""
        if self._restore is not None and self.lake.current_snapshot(self.table) != self._restore:
            t = self.lake.table(self.table)
            t.manage_snapshots().set_current_snapshot(self._restore).commit()


class StaleSnapshot(FaultInjector):
    """The table's current snapshot rolled back to an older one: readers lose rows."""

    layer, kind, system = "iceberg", "stale_snapshot", "Iceberg catalog (pyiceberg)"

    def inject(self) -> Injection:
        t = self.lake.table(self.table)
        current = t.current_snapshot()
        if current is None or current.parent_snapshot_id is None:
            raise LakehouseError(f"{self.target} needs two snapshots to roll one back")
        oldest = min(t.snapshots(), key=lambda s: s.sequence_number or 0)
        before = self.lake.count(self.table)
        self._restore = current.snapshot_id
        t.manage_snapshots().rollback_to_snapshot(oldest.snapshot_id).commit()
        after = self.lake.count(self.table)
        return Injection(
            self.layer,
            self.kind,
            self.target,
            f"rolled {self.target} back from snapshot {current.snapshot_id} to "
            f"{oldest.snapshot_id}: {before} rows became {after}",
            {"rows": before, "snapshot": current.snapshot_id},
            {"rows": after, "snapshot": oldest.snapshot_id},
        )

    def fix(self) -> str:
        assert self._restore is not None, "inject first"
        t = self.lake.table(self.table)
        t.manage_snapshots().set_current_snapshot(self._restore).commit()
        return f"set {self.target}'s current snapshot back to {self._restore}"

    def broken(self) -> bool:
        return self._restore is not None and self.lake.current_snapshot(self.table) != self._restore


class UnmergedBranch(FaultInjector):
    """Late corrections committed to a branch that never reaches ``main``."""

    layer, kind, system = "iceberg", "unmerged_branch", "Iceberg catalog (pyiceberg)"
    branch = "corrections"
    rows = 500

    def inject(self) -> Injection:
        t = self.lake.table(self.table)
        current = t.current_snapshot()
        if current is None:
            raise LakehouseError(f"{self.target} has no snapshot to branch from")
        self._restore = current.snapshot_id
        t.manage_snapshots().create_branch(current.snapshot_id, self.branch).commit()
        before = self.lake.count(self.table)
        head = self.lake.append(self.table, orders(10_000_000, self.rows), branch=self.branch)
        self._branch_head = head
        return Injection(
            self.layer,
            self.kind,
            self.target,
            f"committed {self.rows} corrected rows to branch {self.branch!r} of {self.target} "
            f"(snapshot {head}); main still reads {self.lake.count(self.table)} rows",
            {"rows": before},
            {"rows": self.lake.count(self.table), "branch_snapshot": head},
        )

    def fix(self) -> str:
        t = self.lake.table(self.table)
        t.manage_snapshots().set_current_snapshot(self._branch_head).commit()
        return (
            f"fast-forwarded main of {self.target} to branch {self.branch!r} ({self._branch_head})"
        )

    def broken(self) -> bool:
        return self.lake.current_snapshot(self.table) != self._branch_head

    def undo(self) -> None:
        super().undo()
        t = self.lake.table(self.table)
        if self.branch in t.metadata.refs:
            t.manage_snapshots().remove_branch(self.branch).commit()


class StaleStatistics(FaultInjector):
    """Rows loaded with statistics collection off: the optimiser plans on old numbers."""

    layer, kind, system = "trino", "stale_statistics", "Trino (Iceberg connector)"
    column = "country"

    def __init__(self, lake: Lakehouse, table: str = SINK, rows: int = 20_000) -> None:
        super().__init__(lake, table)
        self.rows = rows

    def inject(self) -> Injection:
        self.lake.analyze(self.table)
        believed = self.lake.distinct_estimate(self.table, self.column)
        self._restore = self.lake.current_snapshot(self.table)
        self.lake.append_without_statistics(self.table, self.rows, start=20_000_000)
        stale = self.lake.distinct_estimate(self.table, self.column)
        real = self._distinct()
        return Injection(
            self.layer,
            self.kind,
            self.target,
            f"loaded {self.rows} rows into {self.target} with statistics collection off: "
            f"Trino believes {stale:g} distinct {self.column} values, the table has {real}",
            {"ndv_believed": believed},
            {"ndv_believed": stale, "ndv_real": int(real)},
        )

    def fix(self) -> str:
        self.lake.analyze(self.table)
        return f"ANALYZE {self.lake.trino_name(self.table)}"

    def _distinct(self) -> int:
        sql = f"SELECT count(DISTINCT {self.column}) FROM {self.lake.trino_name(self.table)}"
        return int(self.lake.sql(sql)[0][0])

    def broken(self) -> bool:
        believed = self.lake.distinct_estimate(self.table, self.column) or 0.0
        real = self._distinct()
        return abs(believed - real) > 0.1 * real

    def undo(self) -> None:
        super().undo()
        self.lake.analyze(self.table)


#: injectors by kind, for the faults the rehearsal's own systems can break for real
INJECTORS: dict[str, type[FaultInjector]] = {
    cls.kind: cls for cls in (StaleSnapshot, UnmergedBranch, StaleStatistics)
}

#: the rubric's other kinds, and why the rehearsal here cannot break them for real
NOT_INJECTABLE: dict[str, str] = {
    "stale_cache": "no result cache runs in front of Trino here (Trino 476 has no query "
    "result cache; the exam's cache layer is the candidate's own)",
    "dynamic_filtering_off": "a Trino-wide setting (enable-dynamic-filtering) that needs a "
    "restart of the shared Trino; a session property would fault only the injector's session",
    "wrong_join_order": "needs join-order hints a candidate's dashboards send; Trino's "
    "join_reordering_strategy is per session, so nothing the candidate runs would see it",
    "compaction_race": "a streaming writer runs here (the Flink job of a candidate's first "
    "exam), but optimize losing a race with its commit is a timing accident (Iceberg's "
    "Flink committer retries the conflict): no injector can make it happen on demand",
    "model_regressed": "needs the candidate's dbt project on the platform (a dbt run)",
    "test_missing": "needs the candidate's dbt project on the platform (a dbt run)",
    "wrong_backfill_partition": "no Spark or Airflow runs here",
    "dropped_events": "needs the Debezium connector of the platform (Kafka Connect)",
    "lost_messages": "needs the Debezium connector of the platform (Kafka Connect)",
}


def injector(kind: str, lake: Lakehouse, table: str = SINK) -> FaultInjector:
    """The injector of ``kind`` (ConfigError naming why when none can run here)."""
    cls = INJECTORS.get(kind)
    if cls is None:
        why = NOT_INJECTABLE.get(kind)
        if why is None:
            raise ConfigError(
                f"unknown fault kind {kind!r}; the rubric's kinds are "
                f"{', '.join(sorted([*INJECTORS, *NOT_INJECTABLE]))}"
            )
        raise ConfigError(f"fault {kind!r} cannot be injected for real here: {why}")
    return cls(lake, table)
