"""The candidate's real Trino 476 (services/platform/trino.py): file-based access control
masks ``customers.email`` for ``analyst`` and not for ``auditor``; its HTTP event listener
posts every completed query to the trino receiver, and the rules collector reads the rules
through Trino's own access-control.properties. The signals are read back from the broker
and graded by the core.

What is checked is what p1.column_masking relies on: Trino's answers (masked for the
masked user, real for the other), the trino.column_mask and trino.query fields (the masked
read names the column although a constant mask makes Trino skip reading it), the grade met
with the mask and not met without it or with it on the wrong column, and the failure
paths: rules Trino cannot parse, an event-listener post that does not parse, Trino down.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from trino.exceptions import TrinoUserError

from services.collectors import trino_events
from services.collectors.http import SourceError
from services.collectors.polling import Backoff, Poller, PositionStore
from services.collectors.trino_rules import Settings as RulesSettings
from services.collectors.trino_rules import TrinoRulesCollector
from services.collectors.webhook import ReceiverSettings
from services.collectors.webhook_auth import secret_env
from services.collectors.webhook_run import BackgroundReceiver, build_receiver
from services.core.events import Event
from services.core.simple_judge import KeywordJudge
from services.offline.replay import replay_events
from services.offline.scenarios import ASSETS, ExamBuilder
from services.platform.trino import (
    ADMIN,
    EventListener,
    drop_mask,
    mask_wrong_column,
    stale_statistics,
    write_atomic,
)
from services.publisher.publisher import Publisher
from services.rubrics import resolver
from tests.integration.collectors.conftest import Env, contract_env
from tests.integration.collectors.recorded import serve
from tests.platform_fixtures.trino import (
    MASKED_USER,
    ROWS,
    UNMASKED_USER,
    TrinoFactory,
    TrinoPlatform,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]
pytest_plugins = ["tests.platform_fixtures.trino"]

SECRET = "it-trino-" + uuid.uuid4().hex
PLATFORM = f"basecamp-{uuid.uuid4().hex[:8]}"
TOPICS = ("platform.trino", "platform.collectors", "grading.dlq")
TYPES = ["trino.query", "trino.column_mask", "collector.heartbeat", "grading.dead_letter"]
RECORDED = Path(__file__).resolve().parents[2] / "fixtures" / "trino" / "recorded-476"

MASKED = [[i, "***"] for i, _, _ in ROWS]
MASK_COLUMN = {"name": "email", "mask": "'***'"}
REAL = [[i, e] for i, e, _ in ROWS]


@pytest.fixture(scope="module")
def env(kafka_bootstrap: str, registry_url: str) -> Iterator[Env]:
    with contract_env(kafka_bootstrap, registry_url, "trino", TOPICS, TYPES) as e:
        yield e


@dataclass
class Rig:
    platform: TrinoPlatform
    env: Env
    receiver_url: str
    token: str
    rules: Poller

    @property
    def pii(self) -> str:
        """The pii_column as a candidate declares it (schema.table.column)."""
        return f"{self.platform.schema}.customers.email"

    def col(self, name: str) -> str:
        return f"{self.platform.table}.{name}"

    def queries(self, *ids: str, timeout_s: float = 60.0) -> dict[str, Event]:
        """The trino.query events of ``ids``, once all arrived (Trino posts them as each
        query completes; the listener's client sends them on its own threads)."""
        deadline = time.monotonic() + timeout_s
        while True:
            got = {
                e.data["query_id"]: e
                for e in self.env.read("platform.trino", PLATFORM)
                if e.type == "trino.query" and e.data["query_id"] in ids
            }
            if len(got) == len(ids) or time.monotonic() > deadline:
                assert set(got) == set(ids), f"queries never arrived: {set(ids) - set(got)}"
                return got
            time.sleep(0.5)

    def masks(self, since_ms: int = 0) -> list[Event]:
        return [
            e
            for e in self.env.read("platform.trino", PLATFORM)
            if e.type == "trino.column_mask" and e.ts_ms >= since_ms
        ]

    def heartbeats(self) -> list[Event]:
        return [e for e in self.env.read("platform.collectors", PLATFORM)]

    def post(self, body: bytes) -> httpx.Response:
        return httpx.post(
            self.receiver_url,
            content=body,
            headers={"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"},
            timeout=30,
        )


@pytest.fixture(scope="module")
def rig(
    env: Env, candidate_trino: TrinoFactory, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Rig]:
    receiver = build_receiver(
        [trino_events.SOURCE],
        env.settings,
        ReceiverSettings(platforms=(PLATFORM,), heartbeat_s=3600.0),
        env={secret_env(trino_events.NAME): SECRET},
    )
    # Trino holds the platform's own secret, derived per platform (the receiver's default)
    token = receiver.secrets.secret(trino_events.NAME, PLATFORM, 1)
    with BackgroundReceiver(receiver) as port:
        url = f"http://127.0.0.1:{port}/platforms/{PLATFORM}/trino"
        platform = candidate_trino(EventListener(url, token))
        # the collector reads the rules where Trino does: its access-control.properties
        settings = RulesSettings(access_control=platform.trino.access_control_path)
        poller = Poller(
            TrinoRulesCollector(settings, PLATFORM),
            Publisher(env.settings),
            PositionStore(tmp_path_factory.mktemp("rules-state"), "trino-rules", PLATFORM),
            backoff=Backoff(initial_s=0.2, max_s=0.5),
        )
        try:
            yield Rig(platform, env, url, token, poller)
        finally:
            poller.close()


def grade(rig: Rig, events: list[Event]) -> tuple[str, str]:
    """p1.column_masking over an exam whose Part 1 spans ``events``, the candidate having
    declared the table's email column as the PII column."""
    first = min(e.ts_ms for e in events)
    b = ExamBuilder(PLATFORM, start_ms=first - 3 * 60_000)
    b.start()
    b.events = [
        Event(
            e.type,
            e.platform_id,
            e.event_id,
            e.ts_ms,
            {**e.data, "assets": {**ASSETS, "pii_column": rig.pii}},
        )
        if e.type == "pipeline.declared"
        else e
        for e in b.events
    ]
    b.events.extend(events)
    b.finish()
    (exam,) = replay_events(b.events, resolver(), KeywordJudge()).results
    c = exam.criterion("p1.column_masking")
    return c.state, c.reason


def wait_for(rig: Rig, user: str, rows: list[list[object]], columns: str = "id, email") -> str:
    """Wait until Trino answers ``user`` with ``rows`` (the rules reloaded); its query id."""
    seen: list[str] = []

    def check() -> bool:
        got, qid = rig.platform.select(user, columns)
        seen.append(qid)
        return got == rows

    rig.platform.trino.wait_applied(check, what=f"rules giving {user} {rows}")
    return seen[-1]


def test_masked_user_reads_the_mask_the_unmasked_user_the_values_and_it_grades_met(
    rig: Rig,
) -> None:
    assert rig.rules.step() == 1
    (mask,) = rig.masks()
    assert mask.data == {
        "catalog": "iceberg",
        "schema": rig.platform.schema,
        "table": "customers",
        "column": "email",
        "mask_expression": "'***'",
        "applies_to": [MASKED_USER],
    }
    assert rig.rules.step() == 0  # unchanged rules publish nothing

    masked_rows, masked_id = rig.platform.select(MASKED_USER)
    real_rows, real_id = rig.platform.select(UNMASKED_USER)
    assert masked_rows == MASKED  # Trino's own answer, the mask applied
    assert real_rows == REAL
    with pytest.raises(TrinoUserError, match=r"PERMISSION_DENIED|Access Denied"):
        rig.platform.select("mallory")

    events = rig.queries(masked_id, real_id)
    masked, real = events[masked_id], events[real_id]
    assert (masked.data["user"], masked.data["state"]) == (MASKED_USER, "FINISHED")
    assert masked.data["tables"] == [rig.platform.table]
    # a constant mask needs no read of the column: only access control's view names it
    assert masked.data["columns"] == [rig.col("id"), rig.col("email")]
    assert masked.data["masked_columns"] == [rig.col("email")]
    assert masked.data["query"].startswith("SELECT id, email FROM")
    assert (real.data["user"], real.data["masked_columns"]) == (UNMASKED_USER, [])
    assert real.data["columns"] == [rig.col("id"), rig.col("email")]
    assert masked.ts_ms >= mask.ts_ms

    state, reason = grade(rig, [mask, masked, real])
    assert state == "met", reason
    assert rig.pii in reason
    # the unmasked user's read alone verifies nothing
    state, reason = grade(rig, [mask, real])
    assert state == "expired", reason
    assert "no finished query by a masked user" in reason


def test_without_the_mask_or_with_it_on_the_wrong_column_it_is_not_met(rig: Rig) -> None:
    trino = rig.platform.trino
    rig.rules.step()  # whatever the module's earlier tests left unpublished
    undo = drop_mask(trino)
    try:
        since = time.time_ns() // 1_000_000 - 1000
        qid = wait_for(rig, MASKED_USER, REAL)  # Trino no longer masks: real values
        assert rig.rules.step() == 0  # no mask to publish
        (query,) = rig.queries(qid).values()
        assert query.data["masked_columns"] == []
        state, reason = grade(rig, [*rig.masks(since), query])
        assert state == "expired", reason
        assert f"no Trino column mask on {rig.pii}" in reason
    finally:
        undo()
    wait_for(rig, MASKED_USER, MASKED)

    undo = mask_wrong_column(trino, rig.platform.mask, "city")
    try:
        since = time.time_ns() // 1_000_000 - 1000
        wrong = [[i, e, "***"] for i, e, _ in ROWS]
        qid = wait_for(rig, MASKED_USER, wrong, "id, email, city")
        assert rig.rules.step() == 1
        (mask,) = rig.masks(since)
        assert (mask.data["column"], mask.data["applies_to"]) == ("city", [MASKED_USER])
        (query,) = rig.queries(qid).values()
        assert query.data["masked_columns"] == [rig.col("city")]
        state, reason = grade(rig, [mask, query])
        assert state == "expired", reason
        assert f"no Trino column mask on {rig.pii}" in reason
    finally:
        undo()
    wait_for(rig, MASKED_USER, MASKED)
    assert rig.rules.step() == 1  # the mask back on email: published again


def test_rules_that_cannot_be_read_are_an_unhealthy_heartbeat_and_the_collector_recovers(
    rig: Rig,
) -> None:
    trino = rig.platform.trino
    good = trino.rules
    rig.rules.step()
    write_atomic(trino.rules_path, '{"tables": [')  # what Trino reloads is not JSON
    try:
        rig.rules.attempt()
        assert not rig.rules.healthy
        assert rig.rules.last_error_kind == "payload"
        assert "not JSON" in (rig.rules.last_error or "")
        beats = [e for e in rig.heartbeats() if e.data["collector"] == "trino"]
        assert beats and beats[-1].data["healthy"] is False
        assert "not JSON" in beats[-1].data["error"]
        # Trino itself cannot apply such rules: the masked user's query fails, not unmasked
        time.sleep(3)
        with pytest.raises(Exception) as err:
            rig.platform.select(MASKED_USER)
        assert "***" not in str(err.value) and "ann@example.com" not in str(err.value)

        os.remove(trino.rules_path)
        rig.rules.attempt()
        assert not rig.rules.healthy and "cannot read Trino rules" in (rig.rules.last_error or "")
    finally:
        trino.set_rules(good)
    wait_for(rig, MASKED_USER, MASKED)
    rig.rules.attempt()
    assert rig.rules.healthy
    assert rig.rules.step() == 0  # the same mask as before: nothing new


def _mangled(change: Callable[[dict[str, object]], None]) -> bytes:
    doc: dict[str, object] = json.loads((RECORDED / "masked-select.json").read_text())
    change(doc)
    return json.dumps(doc).encode()


def test_a_listener_post_that_does_not_parse_is_dead_lettered_and_the_receiver_goes_on(
    rig: Rig,
) -> None:
    def no_column_name(doc: dict[str, object]) -> None:
        doc["metadata"]["tables"][0]["columns"][1] = {"mask": "'***'"}  # type: ignore[index]

    cut = (RECORDED / "masked-select.json").read_bytes()[:500]
    for body, why in ((_mangled(no_column_name), "metadata.tables[0].columns[1]"), (cut, "JSON")):
        resp = rig.post(body)
        assert resp.status_code == 400, resp.text
        assert why in resp.json()["error"]
    dead = [e for e in rig.env.read("grading.dlq") if e.platform_id == PLATFORM]
    reasons = [e.data["reason"] for e in dead]
    assert any("metadata.tables[0].columns[1]" in r for r in reasons), reasons
    assert all(e.data["source"] == "webhook:trino" for e in dead)
    # the receiver keeps taking Trino's real posts
    rows, qid = rig.platform.select(MASKED_USER)
    assert rows == MASKED
    (query,) = rig.queries(qid).values()
    assert query.data["masked_columns"] == [rig.col("email")]


def test_stale_statistics_injector_drops_the_column_statistics_and_its_undo_analyzes(
    rig: Rig,
) -> None:
    trino = rig.platform.trino

    def distinct_emails() -> object:
        rows = trino.query(ADMIN, f"SHOW STATS FOR {rig.platform.table}")
        (email,) = [r for r in rows if r[0] == "email"]
        return email[2]  # distinct_values_count

    trino.query(ADMIN, f"ANALYZE {rig.platform.table}")
    assert distinct_emails() == pytest.approx(len(ROWS), abs=1)
    undo = stale_statistics(trino, rig.platform.table)
    assert distinct_emails() is None  # the optimiser plans without them now
    undo()
    assert distinct_emails() == pytest.approx(len(ROWS), abs=1)


def test_trino_down_leaves_the_collectors_running_and_publishing_nothing_false(
    rig: Rig,
) -> None:
    trino = rig.platform.trino
    pid = trino.pid()
    assert pid is not None
    # Trino posts query events after the queries end: let earlier tests' posts land first
    before, deadline = -1, time.monotonic() + 30
    while time.monotonic() < deadline:
        now = len(rig.env.read("platform.trino", PLATFORM))
        if now == before:
            break
        before = now
        time.sleep(2)
    trino.stop()
    assert trino.pid() is None and not trino.healthy()
    with pytest.raises(OSError):
        os.kill(pid, 0)  # the JVM is gone, stopped by its own pid
    with pytest.raises(Exception):  # noqa: B017 - the client's connection error
        trino.query(MASKED_USER, "SELECT 1")
    # the rules are where Trino reads them, not in Trino: still read, nothing new
    rig.rules.attempt()
    assert rig.rules.healthy
    health = httpx.get(rig.receiver_url.split("/platforms/")[0] + "/healthz", timeout=10)
    assert health.status_code == 200
    time.sleep(2)
    assert len(rig.env.read("platform.trino", PLATFORM)) == before


def test_rules_from_the_rest_endpoint_trino_reads_with_its_json_pointer() -> None:
    """Trino can read its rules from a REST endpoint (``security.config-file=http...``,
    ``security.json-pointer``); the collector reads the same answer the same way, and an
    endpoint that fails is an error of the right kind, not a crash."""
    rules = {"tables": [{"user": MASKED_USER, "table": "customers", "columns": [MASK_COLUMN]}]}
    status = {"code": 200}

    def handler(method: str, path: str, *_: object) -> tuple[int, object]:
        if (method, path) != ("GET", "/trino/rules"):
            return 404, {"error": "no such rules"}
        return status["code"], {"data": rules} if status["code"] == 200 else {"error": "down"}

    with serve(handler) as (base, seen):
        settings = RulesSettings(url=f"{base}/trino/rules", json_pointer="/data")
        collector = TrinoRulesCollector(settings, PLATFORM)
        (event,) = collector.poll({}).events
        assert (event.data["column"], event.data["applies_to"]) == ("email", [MASKED_USER])
        status["code"] = 503
        with pytest.raises(SourceError, match="HTTP 503") as err:
            collector.poll({})
        assert err.value.kind == "platform"
        assert seen == [("GET", "/trino/rules")] * 2
    with pytest.raises(SourceError, match="cannot fetch Trino rules"):
        collector.poll({})  # the endpoint is gone
