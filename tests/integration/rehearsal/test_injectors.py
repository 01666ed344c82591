"""Each fault the rehearsal injects, on the stack's real Iceberg catalog and Trino: the
break is measured on the system, the candidate's fix removes it, the undo restores it."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from services.rehearsal.faults import StaleSnapshot, StaleStatistics, UnmergedBranch
from services.rehearsal.lakehouse import Lakehouse, LakehouseError, orders
from services.stack.catalog import load_catalog, trino_connect

pytestmark = pytest.mark.integration

SINK = "orders_enriched"


@pytest.fixture
def lake(stack: Any) -> Iterator[Lakehouse]:
    config = stack.require("postgres", "trino")
    with contextlib.closing(trino_connect(config)) as trino:
        lh = Lakehouse(load_catalog(config), trino, f"it_rh_{uuid.uuid4().hex[:8]}")
        lh.create(SINK)
        lh.append(SINK, orders(0, 600))
        lh.append(SINK, orders(600, 600))
        yield lh
        lh.drop()


def test_stale_snapshot_loses_rows_until_fixed(lake: Lakehouse) -> None:
    inj = StaleSnapshot(lake, SINK)
    injection = inj.inject()
    assert (injection.layer, injection.kind) == ("iceberg", "stale_snapshot")
    assert injection.before["rows"] == 1200 and injection.after["rows"] == 600
    assert lake.count(SINK) == 600 and inj.broken()
    inj.fix()
    assert lake.count(SINK) == 1200 and not inj.broken()


def test_stale_snapshot_undo_restores_what_the_candidate_left_broken(lake: Lakehouse) -> None:
    inj = StaleSnapshot(lake, SINK)
    inj.inject()
    inj.undo()
    assert lake.count(SINK) == 1200 and not inj.broken()


def test_unmerged_branch_keeps_rows_off_main_until_merged(lake: Lakehouse) -> None:
    inj = UnmergedBranch(lake, SINK)
    injection = inj.inject()
    assert injection.after["rows"] == 1200  # main does not see the branch's 500
    assert inj.broken()
    inj.fix()
    assert lake.count(SINK) == 1700 and not inj.broken()
    inj.undo()
    assert lake.count(SINK) == 1200
    assert "corrections" not in lake.table(SINK).metadata.refs


def test_stale_statistics_mislead_the_optimiser_until_analyzed(lake: Lakehouse) -> None:
    inj = StaleStatistics(lake, SINK, rows=12_000)
    injection = inj.inject()
    believed, real = injection.after["ndv_believed"], injection.after["ndv_real"]
    assert isinstance(believed, float) and isinstance(real, int)
    assert real == 500 and believed < real / 2, injection.note
    assert inj.broken()
    inj.fix()
    assert not inj.broken()
    inj.undo()  # back to the rows before the load, with statistics that describe them
    assert lake.count(SINK) == 1200 and not inj.broken()


def test_a_table_with_one_snapshot_cannot_be_rolled_back(stack: Any) -> None:
    config = stack.require("postgres", "trino")
    with contextlib.closing(trino_connect(config)) as trino:
        lh = Lakehouse(load_catalog(config), trino, f"it_rh_{uuid.uuid4().hex[:8]}")
        lh.create(SINK)
        try:
            lh.append(SINK, orders(0, 10))
            with pytest.raises(LakehouseError, match="needs two snapshots"):
                StaleSnapshot(lh, SINK).inject()
            assert lh.count(SINK) == 10
        finally:
            lh.drop()


def test_a_missing_table_is_a_clear_error(stack: Any) -> None:
    config = stack.require("postgres", "trino")
    with contextlib.closing(trino_connect(config)) as trino:
        lh = Lakehouse(load_catalog(config), trino, f"it_rh_{uuid.uuid4().hex[:8]}")
        with pytest.raises(LakehouseError, match=r"it_rh_\w+\.orders_enriched does not exist"):
            StaleSnapshot(lh, SINK).inject()
