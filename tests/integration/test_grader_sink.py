"""The Iceberg sink on the real catalog, read back through the real Trino.

Each test gets its own namespace (iceberg_namespace fixture), so the table, its snapshots
and its offsets belong to that test alone.
"""

from __future__ import annotations

from typing import Any

import pytest
from pyiceberg.catalog import Catalog
from trino.dbapi import Connection

from services.core.events import SourcePosition
from services.errors import SinkError
from services.grader import offsets as off
from services.grader.rows import Evidence, TransitionRow
from services.grader.sink import IcebergSink, SinkConfig
from services.stack.catalog import TRINO_CATALOG

pytestmark = pytest.mark.integration

T0_MS = 1_795_000_000_000  # 2026-11-18, an arbitrary exam day


def row(
    offset: int,
    *,
    exam_id: str = "exam-1",
    criterion_id: str = "p1.cdc_source",
    state: str = "met",
    previous_state: str | None = "pending",
    part: int | None = 1,
    score: float = 5.0,
    max_score: float = 5.0,
    topic: str = "exam.control",
    partition: int = 0,
    seq: int | None = None,
    ts_ms: int | None = None,
) -> TransitionRow:
    """A transition attributed to ``topic/partition/offset``; distinct offsets, distinct ids."""
    return TransitionRow(
        exam_id=exam_id,
        candidate_id="alice",
        platform_id="basecamp-alice",
        rubric_id="y3-final",
        rubric_version="1",
        part=part,
        criterion_id=criterion_id,
        state=state,
        previous_state=previous_state,
        score=score,
        max_score=max_score,
        reason=f"decided by record {offset}",
        event_ts_ms=ts_ms if ts_ms is not None else T0_MS + offset * 1000,
        graded_at_ms=T0_MS + offset * 1000 + 5,
        source=SourcePosition(topic, partition, offset),
        seq=seq if seq is not None else offset,
        evidence=(Evidence(f"evt-{topic}-{partition}-{offset}", topic, partition, offset),),
    )


def query(conn: Any, sql: str) -> list[list[Any]]:
    cur = conn.cursor()
    cur.execute(sql)
    rows: list[list[Any]] = cur.fetchall()
    return rows


class FakeClock:
    """Monotonic seconds the test moves by hand (only the commit interval reads it)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _sink(catalog: Catalog, namespace: str, **kw: Any) -> IcebergSink:
    clock = kw.pop("clock", FakeClock())
    config = SinkConfig(identifier=f"{namespace}.criterion_transitions", **kw)
    sink = IcebergSink(catalog, config, clock=clock)
    sink.open()
    return sink


def _trino_ids(conn: Connection, namespace: str) -> list[str]:
    rows = query(
        conn,
        f"SELECT transition_id FROM {TRINO_CATALOG}.{namespace}.criterion_transitions",
    )
    return [r[0] for r in rows]


def test_batch_commit_is_visible_in_trino_with_every_column(
    iceberg_catalog: Catalog, trino_connection: Connection, iceberg_namespace: str
) -> None:
    sink = _sink(iceberg_catalog, iceberg_namespace, commit_rows=3)
    rows = [row(i) for i in range(3)]
    for r in rows[:2]:
        assert sink.offer(r)
        sink.processed(("exam.control", 0), r.source.offset + 1)
    assert not sink.due()  # 2 rows < commit_rows and the interval has not passed
    sink.offer(rows[2])
    sink.processed(("exam.control", 0), 3)
    assert sink.due()
    result = sink.commit()
    assert result is not None and result.rows == 3

    got = query(
        trino_connection,
        f"SELECT transition_id, exam_id, criterion_id, state, previous_state, score, part, "
        f"evidence[1].event_id, evidence[1].offset, source_offset, seq, "
        f"to_unixtime(event_ts) "
        f"FROM {TRINO_CATALOG}.{iceberg_namespace}.criterion_transitions ORDER BY seq",
    )
    assert [g[0] for g in got] == [r.transition_id for r in rows]
    first = got[0]
    assert first[1:9] == [
        "exam-1",
        "p1.cdc_source",
        "met",
        "pending",
        5.0,
        1,
        rows[0].evidence[0].event_id,
        0,
    ]
    assert first[9:11] == [0, 0]
    assert first[11] == pytest.approx(rows[0].event_ts_ms / 1000)

    # The same snapshot carries the offsets, and the table is partitioned by event day.
    assert off.read_committed(sink.table).offsets == {("exam.control", 0): 3}
    parts = query(
        trino_connection,
        f'SELECT count(*) FROM {TRINO_CATALOG}.{iceberg_namespace}."criterion_transitions$partitions"',
    )
    assert parts == [[1]]


def test_interval_commits_a_small_batch_and_offsets_alone(
    iceberg_catalog: Catalog, iceberg_namespace: str
) -> None:
    clock = FakeClock()
    config = SinkConfig(
        identifier=f"{iceberg_namespace}.criterion_transitions",
        commit_rows=1000,
        commit_interval_s=5,
    )
    sink = IcebergSink(iceberg_catalog, config, clock=clock)
    sink.open()
    sink.offer(row(0))
    sink.processed(("exam.control", 0), 1)
    clock.now += 4.9
    assert not sink.due()
    clock.now += 0.2
    assert sink.due()
    assert sink.commit() is not None

    # Records that produced no transition still move the offsets on, by time.
    sink.processed(("exam.control", 0), 7)
    clock.now += 5.1
    assert sink.due()
    result = sink.commit()
    assert result is not None and result.rows == 0
    assert off.read_committed(sink.table).offsets == {("exam.control", 0): 7}
    # Nothing new: no commit is due however long it waits.
    clock.now += 100
    assert not sink.due() and sink.take() is None


def test_restart_after_iceberg_commit_without_kafka_commit_neither_loses_nor_duplicates(
    iceberg_catalog: Catalog, trino_connection: Connection, iceberg_namespace: str
) -> None:
    tp = ("platform.flink", 2)
    first = _sink(iceberg_catalog, iceberg_namespace, commit_rows=100)
    for i in range(10):
        first.offer(row(i, topic=tp[0], partition=tp[1]))
        first.processed(tp, i + 1)
    first.commit()
    # Records 10..11 were graded but the process died before their batch was committed.
    for i in range(10, 12):
        first.offer(row(i, topic=tp[0], partition=tp[1]))
        first.processed(tp, i + 1)
    del first

    # Kafka's committed offset was 4: the new worker re-grades records 4..14.
    second = _sink(iceberg_catalog, iceberg_namespace, commit_rows=100)
    assert second.committed.next_offset(tp) == 10
    offered = [second.offer(row(i, topic=tp[0], partition=tp[1])) for i in range(4, 15)]
    assert offered == [False] * 6 + [True] * 5
    second.processed(tp, 15)
    second.commit()

    ids = _trino_ids(trino_connection, iceberg_namespace)
    assert sorted(ids) == sorted(
        row(i, topic=tp[0], partition=tp[1]).transition_id for i in range(15)
    )
    assert len(ids) == len(set(ids)) == 15


def test_a_row_offered_twice_before_commit_is_written_once(
    iceberg_catalog: Catalog, trino_connection: Connection, iceberg_namespace: str
) -> None:
    sink = _sink(iceberg_catalog, iceberg_namespace)
    assert sink.offer(row(3))
    assert not sink.offer(row(3))
    sink.processed(("exam.control", 0), 4)
    sink.commit()
    assert _trino_ids(trino_connection, iceberg_namespace) == [row(3).transition_id]


def test_two_writers_merge_their_offsets_through_conflicts(
    iceberg_catalog: Catalog, iceberg_namespace: str
) -> None:
    a = _sink(iceberg_catalog, iceberg_namespace)
    b = _sink(iceberg_catalog, iceberg_namespace)  # loaded before a commits: stale metadata
    a.offer(row(0, partition=0))
    a.processed(("exam.control", 0), 1)
    a.commit()
    b.offer(row(0, partition=1))
    b.processed(("exam.control", 1), 1)
    result = b.commit()
    assert result is not None
    table = iceberg_catalog.load_table(f"{iceberg_namespace}.criterion_transitions")
    # b lost the race, reloaded and merged again: its snapshot carries both writers' offsets.
    assert result.attempts == 2
    newest = table.current_snapshot()
    assert newest is not None and newest.summary is not None
    assert off.decode_offsets(newest.summary[off.OFFSETS_PROPERTY]) == {
        ("exam.control", 0): 1,
        ("exam.control", 1): 1,
    }
    assert off.read_committed(table).offsets == {("exam.control", 0): 1, ("exam.control", 1): 1}
    assert len(table.scan().to_arrow()) == 2


def test_a_writer_that_lost_the_race_drops_the_rows_the_winner_committed(
    iceberg_catalog: Catalog, trino_connection: Connection, iceberg_namespace: str
) -> None:
    """A rebalance: the old owner commits a record's rows while the new owner, whose view
    of the table is older, grades the same record again; the rows land once."""
    old_owner = _sink(iceberg_catalog, iceberg_namespace)
    new_owner = _sink(iceberg_catalog, iceberg_namespace)
    for sink in (old_owner, new_owner):
        sink.offer(row(0))
        sink.offer(row(1))
        sink.processed(("exam.control", 0), 2)
    old_owner.commit()
    new_owner.offer(row(2))
    new_owner.processed(("exam.control", 0), 3)
    result = new_owner.commit()
    assert result is not None and result.rows == 1 and result.attempts == 2
    ids = _trino_ids(trino_connection, iceberg_namespace)
    assert sorted(ids) == sorted(row(i).transition_id for i in range(3))


def test_the_table_never_lets_pyiceberg_retry_a_commit_blind(
    iceberg_catalog: Catalog, iceberg_namespace: str
) -> None:
    identifier = f"{iceberg_namespace}.criterion_transitions"
    sink = _sink(iceberg_catalog, iceberg_namespace)
    assert sink.table.properties["commit.retry.num-retries"] == "0"
    # A table made by an older version (library retries on) gets the property on open.
    with sink.table.transaction() as tx:
        tx.remove_properties("commit.retry.num-retries")
    assert "commit.retry.num-retries" not in iceberg_catalog.load_table(identifier).properties
    reopened = _sink(iceberg_catalog, iceberg_namespace)
    assert reopened.table.properties["commit.retry.num-retries"] == "0"


def test_failed_commit_keeps_the_batch_for_the_next_try(
    iceberg_catalog: Catalog, trino_connection: Connection, iceberg_namespace: str
) -> None:
    sink = _sink(iceberg_catalog, iceberg_namespace)
    sink.offer(row(0))
    sink.processed(("exam.control", 0), 1)
    # The table disappears under the sink (as when the catalog is reset by hand).
    iceberg_catalog.drop_table(f"{iceberg_namespace}.criterion_transitions")
    with pytest.raises(SinkError, match="commit of 1 rows"):
        sink.commit()
    assert sink.buffered_rows == 1
    sink.open()  # the table is back (empty); the kept batch lands on the retry
    sink.offer(row(1))
    sink.processed(("exam.control", 0), 2)
    sink.commit()
    assert sorted(_trino_ids(trino_connection, iceberg_namespace)) == sorted(
        [row(0).transition_id, row(1).transition_id]
    )


def test_damaged_offsets_property_is_an_error_not_a_reset(
    iceberg_catalog: Catalog, iceberg_namespace: str
) -> None:
    sink = _sink(iceberg_catalog, iceberg_namespace)
    sink.table.append(
        sink.table.scan().to_arrow(), snapshot_properties={off.OFFSETS_PROPERTY: "not json"}
    )
    with pytest.raises(SinkError, match="reset the sink"):
        _sink(iceberg_catalog, iceberg_namespace)
