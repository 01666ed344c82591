"""The verified roster as an Iceberg table, so the scoreboard can filter by cohort.

The roster lives on the compacted topic ``proctor.roster`` (services/trust/roster.py),
each record signed by the proctor; Trino cannot read it. The scoreboard's sampler holds
the proctor's keyring, reads the topic as the worker does (an unsigned or forged record is
ignored, never shown) and overwrites ``cohort_roster`` with what it holds whenever that
changes. The grader's views join it (services/grader/board_views.py), so a page's cohort
comes from the signed roster, never from what a platform sends.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Protocol

import pyarrow as pa
from pyiceberg.catalog import Catalog
from pyiceberg.exceptions import NoSuchTableError
from pyiceberg.schema import Schema
from pyiceberg.table import Table
from pyiceberg.types import BooleanType, IntegerType, NestedField, StringType, TimestamptzType

from services.trust.roster import RosterEntry

#: the table the grader's views join (board_views.ROSTER_TABLE in the grader's namespace)
ROSTER_IDENTIFIER = "grading.cohort_roster"
ROSTER_SCHEMA = Schema(
    NestedField(1, "platform_id", StringType(), required=True),
    NestedField(2, "candidate_id", StringType(), required=True),
    NestedField(3, "exam_id", StringType(), required=True),
    NestedField(4, "cohort", StringType(), required=False),
    NestedField(5, "revoked", BooleanType(), required=True),
    NestedField(6, "generation", IntegerType(), required=True),
    NestedField(7, "snapshot_at", TimestamptzType(), required=True),
)


class Roster(Protocol):
    """What the snapshot reads: services.trust.roster.RosterView's surface."""

    @property
    def entries(self) -> Mapping[str, RosterEntry]: ...

    def refresh(self, timeout_s: float = ...) -> int: ...


def ensure_roster_table(catalog: Catalog, identifier: str = ROSTER_IDENTIFIER) -> Table:
    try:
        return catalog.load_table(identifier)
    except NoSuchTableError:
        pass
    catalog.create_namespace_if_not_exists(identifier.rsplit(".", 1)[0])
    return catalog.create_table_if_not_exists(
        identifier, schema=ROSTER_SCHEMA, properties={"format-version": "2"}
    )


def roster_to_arrow(entries: Iterable[RosterEntry], at: datetime, schema: pa.Schema) -> pa.Table:
    rows = sorted(entries, key=lambda e: e.platform_id)
    return pa.Table.from_pydict(
        {
            "platform_id": [e.platform_id for e in rows],
            "candidate_id": [e.candidate_id for e in rows],
            "exam_id": [e.exam_id for e in rows],
            "cohort": [e.cohort or None for e in rows],
            "revoked": [e.revoked for e in rows],
            "generation": [e.generation for e in rows],
            "snapshot_at": [at for _ in rows],
        },
        schema=schema,
    )


class RosterSnapshot:
    """Keeps ``table`` equal to the verified roster; writes only when the roster changed."""

    def __init__(
        self,
        roster: Roster,
        table: Table,
        now: Callable[[], datetime] = lambda: datetime.now(tz=UTC),
    ) -> None:
        self.roster = roster
        self.table = table
        self.now = now
        self.writes = 0
        self._written: tuple[RosterEntry, ...] | None = None

    def once(self) -> bool:
        """Read what is new on the roster topic; overwrite the table if the roster changed."""
        self.roster.refresh()
        held = tuple(sorted(self.roster.entries.values(), key=lambda e: e.platform_id))
        if held == self._written:
            return False
        schema = self.table.schema().as_arrow()
        self.table.overwrite(roster_to_arrow(held, self.now(), schema))
        self._written = held
        self.writes += 1
        return True


__all__ = [
    "ROSTER_IDENTIFIER",
    "ROSTER_SCHEMA",
    "RosterSnapshot",
    "ensure_roster_table",
    "roster_to_arrow",
]
