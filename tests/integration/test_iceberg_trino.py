"""pyiceberg and Trino share one Iceberg catalog: what one commits, the other reads.

The grader writes its grading table with pyiceberg and the scoreboard reads it through
Trino, which also runs the table maintenance; these tests pin each of those paths on the
real stack (PostgreSQL JDBC catalog, local file warehouse, Trino's Iceberg connector).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pyarrow as pa
import pytest
from pyiceberg.catalog import Catalog
from pyiceberg.exceptions import CommitFailedException
from pyiceberg.table import Table
from trino.dbapi import Connection
from trino.exceptions import TrinoUserError

pytestmark = pytest.mark.integration

UTC = dt.UTC

SCHEMA = pa.schema(
    [
        pa.field("name", pa.string()),
        pa.field("n", pa.int64()),
        pa.field("score", pa.float64()),
        pa.field("at", pa.timestamp("us", tz="UTC")),
        pa.field("tags", pa.list_(pa.string())),
        pa.field("attrs", pa.map_(pa.string(), pa.string())),
    ]
)

ROWS: list[dict[str, Any]] = [
    {
        "name": "alice",
        "n": -(2**40),
        "score": 12.5,
        "at": dt.datetime(2026, 3, 1, 9, 30, 0, 123456, tzinfo=UTC),
        "tags": ["p1", "exactly_once"],
        "attrs": {"part": "p1", "state": "met"},
    },
    {
        "name": "bob",
        "n": 2,
        "score": -0.25,
        "at": dt.datetime(1999, 12, 31, 23, 59, 59, tzinfo=UTC),
        "tags": [],
        "attrs": {},
    },
    {"name": None, "n": 3, "score": None, "at": None, "tags": None, "attrs": None},
]


def _rows(conn: Connection, sql: str) -> list[list[Any]]:
    cur = conn.cursor()
    cur.execute(sql)
    rows: list[list[Any]] = cur.fetchall()
    return rows


def _create(catalog: Catalog, namespace: str, name: str = "grades") -> Table:
    return catalog.create_table(f"{namespace}.{name}", schema=SCHEMA)


def _arrow(rows: list[dict[str, Any]]) -> pa.Table:
    return pa.Table.from_pylist(rows, schema=SCHEMA)


def _as_trino_row(row: dict[str, Any]) -> list[Any]:
    """The row as the trino client returns it (maps come back as dicts, lists as lists)."""
    return [row["name"], row["n"], row["score"], row["at"], row["tags"], row["attrs"]]


def test_rows_appended_by_pyiceberg_come_back_identical_through_trino(
    iceberg_catalog: Catalog, trino_connection: Connection, iceberg_namespace: str
) -> None:
    table = _create(iceberg_catalog, iceberg_namespace)
    table.append(_arrow(ROWS))

    got = _rows(
        trino_connection,
        f'SELECT name, n, score, "at", tags, attrs FROM {iceberg_namespace}.grades ORDER BY n',
    )

    assert got == [_as_trino_row(r) for r in ROWS]
    types = _rows(
        trino_connection,
        f"SELECT column_name, data_type FROM information_schema.columns "
        f"WHERE table_schema = '{iceberg_namespace}' AND table_name = 'grades' "
        "ORDER BY ordinal_position",
    )
    assert types == [
        ["name", "varchar"],
        ["n", "bigint"],
        ["score", "double"],
        ["at", "timestamp(6) with time zone"],
        ["tags", "array(varchar)"],
        ["attrs", "map(varchar, varchar)"],
    ]


def test_second_append_is_a_new_snapshot_that_trino_sees(
    iceberg_catalog: Catalog, trino_connection: Connection, iceberg_namespace: str
) -> None:
    table = _create(iceberg_catalog, iceberg_namespace)
    table.append(_arrow(ROWS[:1]))
    first = table.current_snapshot()
    assert first is not None
    assert _rows(trino_connection, f"SELECT count(*) FROM {iceberg_namespace}.grades") == [[1]]

    table.append(_arrow(ROWS[1:]))
    second = table.current_snapshot()
    assert second is not None and second.snapshot_id != first.snapshot_id

    assert _rows(trino_connection, f"SELECT count(*) FROM {iceberg_namespace}.grades") == [[3]]
    snapshots = _rows(
        trino_connection,
        f'SELECT snapshot_id, parent_id, operation FROM {iceberg_namespace}."grades$snapshots" '
        "ORDER BY committed_at",
    )
    assert snapshots == [
        [first.snapshot_id, None, "append"],
        [second.snapshot_id, first.snapshot_id, "append"],
    ]
    # Time travel to the first snapshot still shows only the first append.
    assert _rows(
        trino_connection,
        f"SELECT name FROM {iceberg_namespace}.grades FOR VERSION AS OF {first.snapshot_id}",
    ) == [["alice"]]


def test_row_inserted_by_trino_is_read_by_pyiceberg(
    iceberg_catalog: Catalog, trino_connection: Connection, iceberg_namespace: str
) -> None:
    table = _create(iceberg_catalog, iceberg_namespace)
    table.append(_arrow(ROWS[:1]))
    pyiceberg_snapshot = table.current_snapshot()
    assert pyiceberg_snapshot is not None

    _rows(
        trino_connection,
        f'INSERT INTO {iceberg_namespace}.grades (name, n, score, "at", tags, attrs) VALUES '
        "('carol', 7, 3.75, TIMESTAMP '2026-03-02 10:00:00.000001 UTC', ARRAY['a', 'b'], "
        "MAP(ARRAY['k'], ARRAY['v']))",
    )

    reloaded = iceberg_catalog.load_table(f"{iceberg_namespace}.grades")
    snapshot = reloaded.current_snapshot()
    assert snapshot is not None
    assert snapshot.parent_snapshot_id == pyiceberg_snapshot.snapshot_id
    rows = sorted(reloaded.scan().to_arrow().to_pylist(), key=lambda r: r["n"])
    assert [r["name"] for r in rows] == ["alice", "carol"]
    carol = rows[1]
    assert carol["score"] == 3.75
    assert carol["at"] == dt.datetime(2026, 3, 2, 10, 0, 0, 1, tzinfo=UTC)
    assert carol["tags"] == ["a", "b"]
    assert dict(carol["attrs"]) == {"k": "v"}


def test_stale_pyiceberg_append_is_rebased_onto_a_trino_commit(
    iceberg_catalog: Catalog, trino_connection: Connection, iceberg_namespace: str
) -> None:
    stale = _create(iceberg_catalog, iceberg_namespace)
    stale.append(_arrow(ROWS[:1]))
    _rows(
        trino_connection,
        f"INSERT INTO {iceberg_namespace}.grades (name, n) VALUES ('from_trino', 8)",
    )
    trino_snapshot = iceberg_catalog.load_table(f"{iceberg_namespace}.grades").current_snapshot()
    assert trino_snapshot is not None

    # This Table object has not seen Trino's commit; its append must land on top of it
    # instead of replacing it.
    stale.append(_arrow(ROWS[1:2]))

    names = _rows(trino_connection, f"SELECT name FROM {iceberg_namespace}.grades ORDER BY n")
    assert names == [["alice"], ["bob"], ["from_trino"]]
    head = iceberg_catalog.load_table(f"{iceberg_namespace}.grades").current_snapshot()
    assert head is not None and head.parent_snapshot_id == trino_snapshot.snapshot_id


def test_stale_pyiceberg_writer_without_retries_is_rejected(
    iceberg_catalog: Catalog, trino_connection: Connection, iceberg_namespace: str
) -> None:
    stale = iceberg_catalog.create_table(
        f"{iceberg_namespace}.grades",
        schema=SCHEMA,
        properties={"commit.retry.num-retries": "0"},
    )
    stale.append(_arrow(ROWS[:1]))
    _rows(
        trino_connection,
        f"INSERT INTO {iceberg_namespace}.grades (name, n) VALUES ('from_trino', 8)",
    )

    # The catalog row moved on under this Table object: with retries off the commit
    # fails outright; it never silently replaces Trino's snapshot.
    with pytest.raises(CommitFailedException):
        stale.append(_arrow(ROWS[1:2]))

    names = _rows(trino_connection, f"SELECT name FROM {iceberg_namespace}.grades ORDER BY n")
    assert names == [["alice"], ["from_trino"]]


def test_trino_optimize_and_expire_snapshots_on_a_pyiceberg_table(
    iceberg_catalog: Catalog, trino_connection: Connection, iceberg_namespace: str
) -> None:
    table = _create(iceberg_catalog, iceberg_namespace)
    for row in ROWS:  # one small data file per append
        table.append(_arrow([row]))
    name = f"{iceberg_namespace}.grades"
    assert len(table.inspect.files()) == 3
    before = _rows(trino_connection, f"SELECT name, n FROM {name} ORDER BY n")
    assert len(before) == 3

    _rows(trino_connection, f"ALTER TABLE {name} EXECUTE optimize")

    compacted = iceberg_catalog.load_table(name)
    current = compacted.current_snapshot()
    assert current is not None and current.summary is not None
    assert current.summary.operation.value == "replace"
    assert len(compacted.inspect.files()) == 1
    assert len(compacted.snapshots()) == 4
    assert _rows(trino_connection, f"SELECT name, n FROM {name} ORDER BY n") == before

    _rows(
        trino_connection,
        f"ALTER TABLE {name} EXECUTE expire_snapshots(retention_threshold => '0s')",
    )

    expired = iceberg_catalog.load_table(name)
    assert [s.snapshot_id for s in expired.snapshots()] == [current.snapshot_id]
    assert expired.scan().to_arrow().num_rows == 3
    # pyiceberg keeps writing on top of Trino's maintenance commits.
    expired.append(_arrow(ROWS[:1]))
    assert _rows(trino_connection, f"SELECT count(*) FROM {name}") == [[4]]


def test_trino_reports_a_table_dropped_by_pyiceberg_as_missing(
    iceberg_catalog: Catalog, trino_connection: Connection, iceberg_namespace: str
) -> None:
    table = _create(iceberg_catalog, iceberg_namespace)
    table.append(_arrow(ROWS[:1]))
    assert _rows(trino_connection, f"SELECT count(*) FROM {iceberg_namespace}.grades") == [[1]]

    iceberg_catalog.purge_table(f"{iceberg_namespace}.grades")

    with pytest.raises(TrinoUserError) as err:
        _rows(trino_connection, f"SELECT count(*) FROM {iceberg_namespace}.grades")
    assert err.value.error_name == "TABLE_NOT_FOUND"
    with pytest.raises(TrinoUserError) as err:
        _rows(trino_connection, "SELECT count(*) FROM no_such_namespace_here.grades")
    assert err.value.error_name == "SCHEMA_NOT_FOUND"
