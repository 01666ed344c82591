"""iceberg.commit from the stack's real Iceberg catalog (JDBC catalog in PostgreSQL)."""

from __future__ import annotations

from collections.abc import Callable

import pyarrow as pa
import pytest
from pyiceberg.catalog import Catalog
from pyiceberg.schema import Schema
from pyiceberg.types import LongType, NestedField, StringType

from services.collectors.iceberg import IcebergCollector, Settings
from services.collectors.polling import Poller
from services.stack.catalog import CATALOG_NAME, catalog_properties

pytestmark = pytest.mark.integration

SCHEMA = Schema(
    NestedField(1, "order_id", LongType(), required=False),
    NestedField(2, "status", StringType(), required=False),
)


def _rows(start: int, n: int) -> pa.Table:
    return pa.table(
        {
            "order_id": pa.array(range(start, start + n), pa.int64()),
            "status": pa.array(["new"] * n, pa.string()),
        }
    )


def test_commits_with_summary_and_properties(
    env,
    make_poller: Callable[..., Poller],
    iceberg_catalog: Catalog,
    iceberg_namespace: str,
    stack_config,
    platform_id: str,
) -> None:
    name = f"{iceberg_namespace}.orders_sink"
    table = iceberg_catalog.create_table(
        name, SCHEMA, properties={"history.expire.max-snapshot-age-ms": "86400000"}
    )
    table.append(_rows(0, 3))
    settings = Settings(
        catalog_name=CATALOG_NAME,
        properties={"type": "sql", **catalog_properties(stack_config)},
        tables=(name, f"{iceberg_namespace}.not_created_yet"),
    )
    poller = make_poller(IcebergCollector(settings, platform_id))

    assert poller.step() == 1
    [first] = env.read("platform.iceberg", platform_id)
    snap = table.refresh().current_snapshot()
    assert snap is not None
    assert first.data["table"] == name and first.data["catalog"] == CATALOG_NAME
    assert first.data["snapshot_id"] == snap.snapshot_id
    assert first.data["parent_snapshot_id"] is None
    assert first.data["operation"] == "append"
    assert first.data["summary"]["added-records"] == "3"
    assert first.data["summary"]["total-records"] == "3"
    assert first.data["table_properties"]["history.expire.max-snapshot-age-ms"] == "86400000"
    assert first.ts_ms == snap.timestamp_ms

    assert poller.step() == 0
    table.append(_rows(3, 2))
    assert poller.step() == 1
    events = env.read("platform.iceberg", platform_id)
    assert len(events) == 2
    second = events[1].data
    assert second["parent_snapshot_id"] == first.data["snapshot_id"]
    assert second["summary"]["added-records"] == "2" and second["summary"]["total-records"] == "5"

    # A property change makes no snapshot; the current one is announced again with it.
    with table.transaction() as tx:
        tx.set_properties({"write.target-file-size-bytes": "134217728"})
    assert poller.step() == 1
    third = env.read("platform.iceberg", platform_id)[2].data
    assert third["snapshot_id"] == second["snapshot_id"]
    assert third["table_properties"]["write.target-file-size-bytes"] == "134217728"
    assert poller.step() == 0


def test_a_restarted_collector_resumes_after_the_last_snapshot(
    env,
    make_poller: Callable[..., Poller],
    iceberg_catalog: Catalog,
    iceberg_namespace: str,
    stack_config,
    platform_id: str,
) -> None:
    name = f"{iceberg_namespace}.orders"
    table = iceberg_catalog.create_table(name, SCHEMA)
    for i in range(3):
        table.append(_rows(i * 10, 1))
    settings = Settings(
        catalog_name=CATALOG_NAME,
        properties={"type": "sql", **catalog_properties(stack_config)},
        tables=(name,),
    )
    assert make_poller(IcebergCollector(settings, platform_id)).step() == 3
    table.append(_rows(100, 1))
    # a new process: new collector, new publisher, same position file
    assert make_poller(IcebergCollector(settings, platform_id)).step() == 1
    events = env.read("platform.iceberg", platform_id)
    ids = [e.data["snapshot_id"] for e in events]
    assert len(ids) == len(set(ids)) == 4
    assert ids == [s.snapshot_id for s in table.refresh().snapshots()]
