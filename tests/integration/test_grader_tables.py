"""Table maintenance through Trino and the exam_scores view, on the real catalog and Trino."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from pyiceberg.catalog import Catalog
from trino.dbapi import Connection

from services.core.events import SourcePosition
from services.grader import offsets as off
from services.grader.maintenance import MaintenanceConfig, TableMaintenance
from services.grader.rows import Evidence, TransitionRow
from services.grader.sink import IcebergSink, SinkConfig
from services.grader.views import create_exam_scores_view
from services.stack.catalog import TRINO_CATALOG, load_catalog, trino_connect
from services.stack.config import StackConfig

pytestmark = pytest.mark.integration

T0 = 1_795_000_000_000


def row(
    offset: int,
    exam: str = "exam-a",
    criterion: str = "p1.cdc_source",
    state: str = "met",
    previous: str | None = "pending",
    part: int | None = 1,
    score: float = 5.0,
    max_score: float = 5.0,
    seq: int | None = None,
) -> TransitionRow:
    return TransitionRow(
        exam_id=exam,
        candidate_id=f"cand-{exam}",
        platform_id=f"pf-{exam}",
        rubric_id="y3-final",
        rubric_version="1",
        part=part,
        criterion_id=criterion,
        state=state,
        previous_state=previous,
        score=score,
        max_score=max_score,
        reason=f"{criterion} is {state}",
        event_ts_ms=T0 + offset * 1000,
        graded_at_ms=T0 + offset * 1000 + 3,
        source=SourcePosition("exam.control", 0, offset),
        seq=seq if seq is not None else offset,
        evidence=(Evidence(f"e{offset}", "exam.control", 0, offset),),
    )


def query(conn: Connection, sql: str) -> list[list[Any]]:
    cur = conn.cursor()
    cur.execute(sql)
    rows: list[list[Any]] = cur.fetchall()
    return rows


@pytest.fixture
def sink(iceberg_catalog: Catalog, iceberg_namespace: str) -> IcebergSink:
    s = IcebergSink(
        iceberg_catalog, SinkConfig(identifier=f"{iceberg_namespace}.criterion_transitions")
    )
    s.open()
    return s


def commit(sink: IcebergSink, rows: list[TransitionRow]) -> None:
    for r in rows:
        sink.offer(r)
        sink.processed((r.source.topic, r.source.partition), r.source.offset + 1)
    assert sink.commit() is not None


def maintenance(stack_config: StackConfig, namespace: str, **config: Any) -> TableMaintenance:
    identifier = f"{namespace}.criterion_transitions"
    return TableMaintenance(
        lambda: trino_connect(stack_config),
        lambda: load_catalog(stack_config).load_table(identifier),
        TRINO_CATALOG,
        identifier,
        MaintenanceConfig(**config),
    )


def test_compaction_and_expiry_keep_the_offsets_recoverable(
    sink: IcebergSink,
    stack: Any,
    iceberg_catalog: Catalog,
    trino_connection: Connection,
    iceberg_namespace: str,
) -> None:
    config = stack.require("trino", "postgres")
    for i in range(4):
        commit(sink, [row(2 * i), row(2 * i + 1, criterion="p1.other")])
    time.sleep(2.5)  # the next commit is the newest carrying snapshot; these are older
    commit(sink, [row(8, criterion="p2.root_cause", part=2)])
    maint = maintenance(config, iceberg_namespace, snapshot_retention_s=0, protect_margin_s=1)
    before = maint.stats()
    assert before.data_files == 5 and before.snapshots == 5

    steps = maint.run()
    assert [(s.action, s.ok) for s in steps] == [
        ("optimize", True),
        ("expire_snapshots", True),
        ("remove_orphan_files", True),
    ], steps
    after = maint.stats()
    table = iceberg_catalog.load_table(f"{iceberg_namespace}.criterion_transitions")
    current = table.current_snapshot()
    assert current is not None and current.summary is not None
    assert current.summary.get(off.OFFSETS_PROPERTY) is None  # a maintenance snapshot
    assert off.read_committed(table).offsets == {("exam.control", 0): 9}
    assert after.data_files == 1  # one day partition, compacted into one file
    assert after.snapshots == 2  # newest sink commit (kept: offsets) + compaction
    assert query(
        trino_connection,
        f"SELECT count(*) FROM {TRINO_CATALOG}.{iceberg_namespace}.criterion_transitions",
    ) == [[9]]

    # Without the protection, expiry at 0 s drops the snapshot holding the offsets: the
    # protection is what keeps them.
    query(
        trino_connection,
        f"ALTER TABLE {TRINO_CATALOG}.{iceberg_namespace}.criterion_transitions "
        "EXECUTE expire_snapshots(retention_threshold => '0s')",
    )
    table = iceberg_catalog.load_table(f"{iceberg_namespace}.criterion_transitions")
    assert off.read_committed(table).offsets == {}


def test_expiry_step_fails_loudly_when_trino_is_unreachable(
    sink: IcebergSink, stack: Any, iceberg_namespace: str
) -> None:
    config = stack.require("postgres")
    commit(sink, [row(0)])
    broken = StackConfig(
        state_dir=config.state_dir, trino_port=1, postgres_port=config.postgres_port
    )
    steps = maintenance(broken, iceberg_namespace).run()
    assert [s.action for s in steps] == ["optimize", "expire_snapshots", "remove_orphan_files"]
    assert not any(s.ok for s in steps) and all(s.detail for s in steps)


@pytest.fixture
def scores_view(trino_connection: Connection, iceberg_namespace: str) -> Iterator[str]:
    create_exam_scores_view(trino_connection, TRINO_CATALOG, iceberg_namespace)
    yield f"{TRINO_CATALOG}.{iceberg_namespace}.exam_scores"
    query(trino_connection, f"DROP VIEW {TRINO_CATALOG}.{iceberg_namespace}.exam_scores")
    query(trino_connection, f"DROP VIEW {TRINO_CATALOG}.{iceberg_namespace}.review_reasons")


def test_exam_scores_view_gives_latest_states_part_scores_total_and_pass(
    sink: IcebergSink, trino_connection: Connection, scores_view: str
) -> None:
    commit(
        sink,
        [
            row(0, criterion="p1.cdc_source", state="met", score=5),
            row(1, criterion="p1.e2e", state="met", score=5),
            row(2, criterion="p1.e2e", state="failed", previous="met", score=0),  # later: wins
            row(3, criterion="p2.root_cause", part=2, state="partial", score=2, max_score=4),
            row(4, criterion="overall.pass", part=None, state="met", score=0, max_score=0),
            row(5, exam="exam-b", criterion="p1.cdc_source", state="met", score=5),
            row(
                6,
                exam="exam-b",
                criterion="overall.pass",
                part=None,
                state="failed",
                score=0,
                max_score=0,
            ),
        ],
    )
    got = query(
        trino_connection,
        f"SELECT exam_id, criterion_id, state, score, part_score, "
        f"part_max_score, total_score, total_max_score, total_pct, passed FROM {scores_view} "
        f"ORDER BY exam_id, criterion_id",
    )
    assert got == [
        ["exam-a", "overall.pass", "met", 0.0, None, None, 7.0, 14.0, 50.0, True],
        ["exam-a", "p1.cdc_source", "met", 5.0, 5.0, 10.0, 7.0, 14.0, 50.0, True],
        ["exam-a", "p1.e2e", "failed", 0.0, 5.0, 10.0, 7.0, 14.0, 50.0, True],
        ["exam-a", "p2.root_cause", "partial", 2.0, 2.0, 4.0, 7.0, 14.0, 50.0, True],
        ["exam-b", "overall.pass", "failed", 0.0, None, None, 5.0, 5.0, 100.0, False],
        ["exam-b", "p1.cdc_source", "met", 5.0, 5.0, 5.0, 5.0, 5.0, 100.0, False],
    ]


def test_open_review_notes_make_the_status_review_and_leave_the_scores_alone(
    sink: IcebergSink, trino_connection: Connection, scores_view: str, iceberg_namespace: str
) -> None:
    """Review notes are rows of the same commits (review:<kind>:<subject>, no score): the
    view leaves them out of rows and scores, counts the open ones and says 'review'."""
    note = "review:conflict:fault.injected"
    blind = "review:blind:p1.e2e"
    commit(
        sink,
        [
            row(0, criterion="p1.cdc_source", state="met", score=5),
            row(1, criterion="overall.pass", part=None, state="met", score=0, max_score=0),
            row(2, criterion=note, part=None, state="unknown", previous=None, score=0, max_score=0),
            row(3, exam="exam-b", criterion="p1.cdc_source", state="met", score=5),
            row(
                4,
                exam="exam-b",
                criterion="overall.pass",
                part=None,
                state="met",
                score=0,
                max_score=0,
            ),
            row(
                5,
                exam="exam-b",
                criterion=blind,
                part=None,
                state="unknown",
                previous=None,
                score=0,
                max_score=0,
            ),
            row(
                6,
                exam="exam-b",
                criterion=blind,
                part=None,
                state="met",
                previous="unknown",
                score=0,
                max_score=0,
            ),  # closed again: a late heartbeat covered the close
            row(7, exam="exam-c", criterion="p1.cdc_source", state="failed", score=0),
            row(
                8,
                exam="exam-c",
                criterion="overall.pass",
                part=None,
                state="failed",
                score=0,
                max_score=0,
            ),
        ],
    )
    got = query(
        trino_connection,
        f"SELECT exam_id, count(*), max(total_pct), bool_or(passed), max(open_reviews), "
        f"max(status) FROM {scores_view} GROUP BY exam_id ORDER BY exam_id",
    )
    assert got == [
        ["exam-a", 2, 100.0, True, 1, "review"],
        ["exam-b", 2, 100.0, True, 0, "pass"],
        ["exam-c", 2, 0.0, False, 0, "fail"],
    ]
    reasons = query(
        trino_connection,
        f"SELECT exam_id, kind, subject, reason FROM "
        f"{TRINO_CATALOG}.{iceberg_namespace}.review_reasons ORDER BY exam_id",
    )
    assert reasons == [["exam-a", "conflict", "fault.injected", f"{note} is unknown"]]
