"""The candidate's lakehouse table in a real Iceberg catalog, read and changed through real
Trino and pyiceberg: what the reference solution's sink and its maintenance do, and what
the Iceberg and Trino faults break.

Every method does one thing a candidate (or an injector) would do on a real platform and
returns what the system answered, so the rehearsal's report can quote it.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
from pyiceberg.catalog import Catalog
from pyiceberg.exceptions import NamespaceAlreadyExistsError, NoSuchTableError
from pyiceberg.table import Table

from services.errors import ProctorError

#: Trino catalog that serves the stack's Iceberg tables
TRINO_CATALOG = "iceberg"
#: what p1.iceberg_maintenance reads as snapshot retention
RETENTION: Mapping[str, str] = {
    "history.expire.max-snapshot-age-ms": str(7 * 24 * 3600 * 1000),
    "history.expire.min-snapshots-to-keep": "5",
}

SCHEMA = pa.schema(
    [
        pa.field("order_id", pa.int64(), nullable=False),
        pa.field("customer_id", pa.int64(), nullable=False),
        pa.field("country", pa.string(), nullable=False),
        pa.field("email", pa.string(), nullable=False),
        pa.field("amount_cents", pa.int64(), nullable=False),
        pa.field("updated_ms", pa.int64(), nullable=False),
    ]
)


class LakehouseError(ProctorError):
    """A step on the lakehouse table failed; the message says which and what answered."""


def orders(start: int, count: int, countries: int = 8) -> pa.Table:
    """``count`` enriched orders from id ``start``: deterministic, so a re-run compares."""
    ids = list(range(start, start + count))
    now = int(time.time() * 1000)
    return pa.Table.from_pydict(
        {
            "order_id": ids,
            "customer_id": [i % 997 for i in ids],
            "country": [f"C{i % countries}" for i in ids],
            "email": [f"user{i % 997}@example.com" for i in ids],
            "amount_cents": [100 + (i * 37) % 9_900 for i in ids],
            "updated_ms": [now] * count,
        },
        schema=SCHEMA,
    )


@dataclass
class Lakehouse:
    """One namespace of the catalog, seen by pyiceberg and by Trino (same JDBC catalog)."""

    catalog: Catalog
    trino: Any  # a trino.dbapi.Connection
    namespace: str

    # ------------------------------------------------------------------ reading
    def qualified(self, table: str) -> str:
        return f"{self.namespace}.{table}"

    def table(self, table: str) -> Table:
        try:
            return self.catalog.load_table(self.qualified(table))
        except NoSuchTableError as exc:
            raise LakehouseError(f"table {self.qualified(table)} does not exist") from exc

    def sql(self, statement: str) -> list[tuple[Any, ...]]:
        cur = self.trino.cursor()
        try:
            cur.execute(statement)
            return [tuple(r) for r in cur.fetchall()]
        except Exception as exc:
            raise LakehouseError(f"Trino refused {statement!r}: {exc}") from exc

    def trino_name(self, table: str) -> str:
        return f"{TRINO_CATALOG}.{self.namespace}.{table}"

    def count(self, table: str) -> int:
        return int(self.sql(f"SELECT count(*) FROM {self.trino_name(table)}")[0][0])

    def distinct_estimate(self, table: str, column: str) -> float | None:
        """Trino's statistics for ``column``: the distinct count the optimiser believes."""
        for row in self.sql(f"SHOW STATS FOR {self.trino_name(table)}"):
            if row[0] == column:
                return None if row[2] is None else float(row[2])
        return None

    def current_snapshot(self, table: str) -> int | None:
        snap = self.table(table).current_snapshot()
        return None if snap is None else snap.snapshot_id

    # ------------------------------------------------------------------ the candidate's work
    def create(self, table: str) -> None:
        with contextlib.suppress(NamespaceAlreadyExistsError):
            self.catalog.create_namespace(self.namespace)
        self.catalog.create_table(self.qualified(table), schema=SCHEMA)

    def append(self, table: str, rows: pa.Table, branch: str = "main") -> int:
        """One commit of ``rows`` (an ``append`` snapshot); returns its snapshot id."""
        t = self.table(table)
        t.append(rows, branch=branch)
        t = self.table(table)
        ref = t.metadata.refs.get(branch)
        if ref is None:
            raise LakehouseError(f"{self.qualified(table)} has no branch {branch!r} after append")
        return ref.snapshot_id

    def set_retention(self, table: str) -> dict[str, str]:
        t = self.table(table)
        with t.transaction() as tx:
            tx.set_properties(dict(RETENTION))
        return dict(self.table(table).properties)

    def compact(self, table: str) -> str | None:
        """Trino's ``optimize``: a ``replace`` snapshot when there were files to merge."""
        before = self.current_snapshot(table)
        self.sql(f"ALTER TABLE {self.trino_name(table)} EXECUTE optimize")
        snap = self.table(table).current_snapshot()
        if snap is None or snap.snapshot_id == before or snap.summary is None:
            return None
        return str(snap.summary.operation.value)

    def analyze(self, table: str) -> None:
        self.sql(f"ANALYZE {self.trino_name(table)}")

    def append_without_statistics(self, table: str, rows: int, start: int) -> None:
        """Rows written through Trino with statistics collection off for the session, so
        the table's extended statistics keep describing the old data."""
        cur = self.trino.cursor()
        try:
            cur.execute("SET SESSION iceberg.collect_extended_statistics_on_write = false")
            cur.fetchall()
            cur.execute(
                f"INSERT INTO {self.trino_name(table)} "
                "SELECT CAST(n AS bigint), CAST(n % 50000 AS bigint), 'C' || CAST(n % 500 AS varchar), "
                "'user' || CAST(n % 50000 AS varchar) || '@example.com', CAST(100 + n % 9900 AS bigint), "
                "CAST(to_unixtime(current_timestamp) * 1000 AS bigint) "
                f"FROM (SELECT {start} + hi * 10000 + lo AS n FROM "
                f"UNNEST(sequence(0, {(rows - 1) // 10000})) AS h(hi) "
                "CROSS JOIN UNNEST(sequence(0, 9999)) AS l(lo)) "
                f"WHERE n < {start + rows}"
            )
            cur.fetchall()
            cur.execute("RESET SESSION iceberg.collect_extended_statistics_on_write")
            cur.fetchall()
        except Exception as exc:
            raise LakehouseError(f"Trino could not load {rows} rows into {table}: {exc}") from exc

    def drop(self) -> None:
        """Remove the namespace and its tables (the rehearsal's own, never another's)."""
        for ident in self.catalog.list_tables(self.namespace):
            self.catalog.purge_table(ident)
        self.catalog.drop_namespace(self.namespace)
