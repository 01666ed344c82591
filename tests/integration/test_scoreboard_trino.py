"""The scoreboard on the real stack: its tables and view exist, every dataset's SQL runs
on Trino and returns the columns the bundle declares, the watch table reads graded rows,
and the health sampler measures the grader's lag and the dead letters from the broker."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient

from services.contract.schemas import DLQ_TOPIC, topic_name
from services.contract.topics import ensure_topics
from services.core.events import SourcePosition
from services.core.model import NO_FACTS, ExamFacts
from services.errors import StackError
from services.grader.row_table import to_arrow
from services.grader.rows import TransitionRow
from services.grader.sink import ensure_table
from services.grader.views import create_exam_scores_view
from services.scoreboard.bundle import load_bundle
from services.scoreboard.health import HealthSampler, ensure_health_table, group_consumer
from services.scoreboard.tables import GraderTables, ensure_scoreboard_tables
from services.scoreboard.watch import fetch_rows
from services.stack.catalog import TRINO_CATALOG, catalog_settings, trino_settings

pytestmark = pytest.mark.integration
GRADER = GraderTables(ensure_table, create_exam_scores_view)  # as `scoreboard up` hands them


def _run(conn: Any, sql: str) -> tuple[list[str], list[Any]]:
    cur = conn.cursor()
    cur.execute(sql)
    rows = cur.fetchall()
    return [d[0] for d in cur.description], rows


def test_every_dataset_runs_on_trino_with_its_declared_columns(
    stack: Any, trino_connection: Any
) -> None:
    config = stack.require("postgres", "trino")
    ensure_scoreboard_tables(catalog_settings(config), trino_settings(config), GRADER)
    ensure_scoreboard_tables(catalog_settings(config), trino_settings(config), GRADER)  # idempotent
    for path, ds in load_bundle().datasets.items():
        source = ds["sql"] or f"SELECT * FROM {TRINO_CATALOG}.{ds['schema']}.{ds['table_name']}"
        names, _ = _run(trino_connection, f"SELECT * FROM ({source}) d LIMIT 0")
        physical = [c["column_name"] for c in ds["columns"] if not c.get("expression")]
        assert names == physical, path  # calculated columns are Superset's, not Trino's


def _row(
    exam: str,
    cand: str,
    part: int | None,
    cid: str,
    state: str,
    score: float,
    mx: float,
    seq: int,
    reason: str = "r",
    facts: ExamFacts = NO_FACTS,
) -> TransitionRow:
    return TransitionRow(
        exam,
        cand,
        f"basecamp-{cand}",
        "y3-final",
        "1",
        part,
        cid,
        state,
        "pending",
        score,
        mx,
        reason,
        1_795_770_000_000 + seq * 60_000,
        1_795_770_000_000,
        SourcePosition("t", 0, seq),
        seq,
        facts=facts,
    )


#: when alice's root cause criterion was decided (its row's event time: seq 4)
FOUND = 1_795_770_000_000 + 4 * 60_000


def test_the_summary_sql_turns_transitions_into_a_scoreboard(
    iceberg_catalog: Any, iceberg_namespace: str, trino_connection: Any
) -> None:
    """The bundle's summary SQL over a view made by the grader's own SQL, on known rows."""
    table = ensure_table(iceberg_catalog, f"{iceberg_namespace}.criterion_transitions")
    rows = [
        _row("e-a", "alice", 1, "p1.cdc_source", "met", 2, 2, 1),
        _row("e-a", "alice", 1, "p1.e2e_100k", "met", 4, 4, 2),
        _row("e-a", "alice", 2, "p2.root_cause", "met", 8, 8, 3),
        _row(
            "e-a",
            "alice",
            2,
            "p2.root_cause_90min",
            "met",
            4,
            4,
            4,
            "Root cause found 42 minutes after the fault.",  # not read: the columns are
            ExamFacts(
                fault_layer="trino", fault_kind="stale_statistics", fault_ms=FOUND - 42 * 60_000
            ),
        ),
        _row("e-a", "alice", None, "overall.pass", "met", 0, 0, 5),
        _row("e-b", "bob", 1, "p1.cdc_source", "met", 2, 2, 1),
        _row("e-b", "bob", 1, "p1.zero_manual_apply", "failed", 0, 4, 2),
        _row("e-b", "bob", 2, "p2.root_cause", "failed", 0, 8, 3),
        _row("e-b", "bob", None, "overall.pass", "failed", 0, 0, 4),
    ]
    table.append(to_arrow(rows, table.schema().as_arrow()))
    create_exam_scores_view(trino_connection, TRINO_CATALOG, iceberg_namespace)

    class Renamed:
        """The same connection, with the bundle's grading namespace mapped to the test's."""

        def cursor(self) -> Any:
            inner = trino_connection.cursor()

            class Cur:
                description: Any = None

                def execute(self, sql: str, params: Any = None) -> None:
                    sql = sql.replace("iceberg.grading.", f"iceberg.{iceberg_namespace}.")
                    inner.execute(sql, params) if params else inner.execute(sql)

                def fetchall(self) -> Any:
                    out = inner.fetchall()
                    self.description = inner.description
                    return out

            return Cur()

    got = {r.candidate_id: r for r in fetch_rows(Renamed())}
    assert set(got) == {"alice", "bob"}
    a, b = got["alice"], got["bob"]
    assert (a.part_1, a.part_2, a.part_3, a.total_score, a.total_pct) == (6, 12, 0, 18, 100.0)
    assert (a.verdict, a.passed, a.root_cause, a.root_cause_minutes) == ("pass", True, "met", 42)
    assert (b.part_1, b.part_2, b.total_score, b.total_pct, b.verdict) == (
        2,
        0,
        2,
        14.29,
        "fail",
    )  # 2 of 2 + 4 + 8
    assert (b.met, b.failed, b.root_cause_minutes) == (1, 3, None)  # overall.pass counts too
    only_bob = fetch_rows(Renamed(), ["e-b"])
    assert [r.exam_id for r in only_bob] == ["e-b"]


@pytest.fixture
def prefixed_topics(kafka_bootstrap: str) -> Iterator[str]:
    prefix = f"hs{uuid.uuid4().hex[:8]}."
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    results = ensure_topics(admin, prefix=prefix)
    yield prefix
    names = [r.name for r in results]
    for future in admin.delete_topics(names, operation_timeout=30).values():
        future.result(timeout=30)


def test_the_sampler_measures_lag_and_dead_letters(
    kafka_bootstrap: str,
    prefixed_topics: str,
    iceberg_catalog: Any,
    iceberg_namespace: str,
    trino_connection: Any,
) -> None:
    prefix = prefixed_topics
    control = topic_name("exam.control", prefix)
    dlq = topic_name(DLQ_TOPIC, prefix)
    producer = Producer({"bootstrap.servers": kafka_bootstrap})
    landed: set[int] = set()
    for i in range(7):
        producer.produce(
            control,
            key=b"basecamp-x",
            value=f"v{i}".encode(),
            on_delivery=lambda err, msg: landed.add(msg.partition()) if err is None else None,
        )
    for i in range(3):
        producer.produce(dlq, key=b"k", value=f"bad{i}".encode())
    assert producer.flush(30) == 0
    group = f"grader-{uuid.uuid4().hex[:8]}"
    # the "grader" has consumed 5 of the 7 control records (all on one partition)
    reader = Consumer(
        {"bootstrap.servers": kafka_bootstrap, "group.id": group, "enable.auto.commit": False}
    )
    assert len(landed) == 1  # one key, one partition
    partition = landed.pop()
    reader.commit(offsets=[TopicPartition(control, partition, 5)], asynchronous=False)
    reader.close()

    table = ensure_health_table(iceberg_catalog, f"{iceberg_namespace}.pipeline_health")
    consumer = group_consumer(kafka_bootstrap, group)
    try:
        sampler = HealthSampler(consumer, table, group, prefix=prefix, interval_s=1)
        written = 0
        for _ in range(30):  # new topics elect their partition leaders in a few seconds
            try:
                written = sampler.once()
                break
            except StackError:
                time.sleep(1)
    finally:
        consumer.close()
    assert written == 15  # 14 input topics and the dead-letter topic
    names, rows = _run(
        trino_connection,
        f"SELECT topic, kind, records, committed, lag FROM iceberg.{iceberg_namespace}.pipeline_health",
    )
    got = {r[0]: dict(zip(names, r, strict=True)) for r in rows}
    assert got[control] == {
        "topic": control,
        "kind": "input",
        "records": 7,
        "committed": 5,
        "lag": 2,
    }
    assert got[dlq] == {"topic": dlq, "kind": "dlq", "records": 3, "committed": None, "lag": None}
    others = [r for t, r in got.items() if t not in (control, dlq)]
    assert len(others) == 13 and all(r["records"] == 0 and r["lag"] == 0 for r in others)
