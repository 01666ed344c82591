"""The pages' cohort comes from the signed roster: the scoreboard's sampler copies the
verified roster (real broker) into an Iceberg table Trino made, and the grader's views
join it. A roster record the proctor did not sign puts no platform in a cohort."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient

from services.contract.settings import ClientSettings
from services.core.events import SourcePosition
from services.grader.row_table import to_arrow
from services.grader.rows import TransitionRow
from services.grader.sink import ensure_table
from services.grader.views import create_exam_scores_view
from services.scoreboard.roster_table import RosterSnapshot, ensure_roster_table
from services.stack.catalog import TRINO_CATALOG
from services.trust.keys import Keyring
from services.trust.roster import RosterEntry, RosterView, publish_entries, roster_topic
from tests.conftest import TrustEnv

pytestmark = pytest.mark.integration

T0 = 1_795_770_000_000


def _row(who: str, cid: str, state: str, seq: int) -> TransitionRow:
    return TransitionRow(
        f"e-{who}", who, f"basecamp-{who}", "y3-final", "1", 1, cid, state, "pending",
        2.0 if state == "met" else 0.0, 2.0, "r", T0 + seq * 60_000, T0,
        SourcePosition("t", 0, seq), seq,
    )  # fmt: skip


def _cohorts(trino: Any, namespace: str) -> dict[str, str | None]:
    cur = trino.cursor()
    cur.execute(
        f"SELECT DISTINCT candidate_id, cohort FROM {TRINO_CATALOG}.{namespace}.candidate_criteria"
    )
    return {c: k for c, k in cur.fetchall()}


def test_the_cohort_filter_reads_the_verified_roster(
    iceberg_catalog: Any,
    iceberg_namespace: str,
    trino_connection: Any,
    kafka_bootstrap: str,
    registry_url: str,
    trust_env: TrustEnv,
) -> None:
    ns = iceberg_namespace
    table = ensure_table(iceberg_catalog, f"{ns}.criterion_transitions")
    rows = [_row(w, "p1.cdc_source", "met", i) for i, w in enumerate(("alice", "bob", "mallory"))]
    table.append(to_arrow(rows, table.schema().as_arrow()))
    create_exam_scores_view(trino_connection, TRINO_CATALOG, ns)
    # before any roster snapshot the table exists (made by Trino) and no one has a cohort
    assert _cohorts(trino_connection, ns) == {"alice": None, "bob": None, "mallory": None}

    settings = ClientSettings(kafka_bootstrap, registry_url, f"t{uuid.uuid4().hex[:8]}.")
    publish_entries(
        settings,
        [RosterEntry(f"basecamp-{w}", f"e-{w}", w, 1, False, {}, 1, cohort="y3-board")
         for w in ("alice", "bob")],
        trust_env.proctor,
    )  # fmt: skip
    forged = RosterEntry("basecamp-mallory", "e-mallory", "mallory", 1, False, {}, 1,
                         cohort="y3-board")  # fmt: skip
    producer = Producer({"bootstrap.servers": kafka_bootstrap})
    producer.produce(roster_topic(settings.topic_prefix), forged.to_bytes(), b"basecamp-mallory")
    assert producer.flush(10) == 0

    view = RosterView(settings, Keyring.from_file(trust_env.keyring_path))
    try:
        snapshot = RosterSnapshot(view, ensure_roster_table(iceberg_catalog, f"{ns}.cohort_roster"))
        assert snapshot.once() is True
        assert snapshot.once() is False  # nothing new on the topic: no commit
        assert view.ignored == 1  # the unsigned record
        assert _cohorts(trino_connection, ns) == {
            "alice": "y3-board",
            "bob": "y3-board",
            "mallory": None,
        }
        cur = trino_connection.cursor()
        cur.execute(
            f"SELECT cohort, exams, met FROM {TRINO_CATALOG}.{ns}.stuck_criteria "
            "WHERE criterion_id = 'p1.cdc_source' ORDER BY cohort NULLS LAST"
        )
        assert cur.fetchall() == [["y3-board", 2, 2], [None, 1, 1]]

        # a revoke by the proctor reaches the table at the next sample
        publish_entries(
            settings,
            [RosterEntry("basecamp-bob", "e-bob", "bob", 1, False, {}, 2,
                         cohort="y3-board").revoke()],
            trust_env.proctor,
        )  # fmt: skip
        assert snapshot.once() is True
        cur.execute(
            f"SELECT platform_id, revoked, generation FROM {TRINO_CATALOG}.{ns}.cohort_roster "
            "ORDER BY platform_id"
        )
        assert cur.fetchall() == [["basecamp-alice", False, 1], ["basecamp-bob", True, 2]]
        assert snapshot.writes == 2
    finally:
        view.close()
        admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
        for fut in admin.delete_topics([roster_topic(settings.topic_prefix)]).values():
            fut.result(30)
