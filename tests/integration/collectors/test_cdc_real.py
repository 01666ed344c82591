"""A real candidate's CDC: Debezium's PostgreSQL connector in a Kafka Connect worker reads
a source PostgreSQL through logical replication and writes the stack's broker; its value
schema goes to the stack's registry through Apicurio's Avro converter.

The project's own collectors (cdc-offsets, schemas) watch the connector's topic and the
registry; what they publish, read back from the broker, is graded by the core with the
proctor's control events. A connector paused through the REST API is a real stall: the
table keeps changing, the topic does not, and ``p1.cdc_source`` is not met while it
lasts; resumed, the slot delivers every change it held.
"""

from __future__ import annotations

import re
import struct
import time
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING

import pytest
from confluent_kafka import Consumer, TopicPartition

from services.collectors.offsets import OffsetsCollector
from services.collectors.offsets import Settings as OffsetSettings
from services.collectors.polling import Poller, now_ms
from services.collectors.registry import RegistryCollector
from services.collectors.registry import Settings as RegistrySettings
from services.core.events import Event
from services.core.model import CriterionResult
from services.core.simple_judge import KeywordJudge
from services.exam_builder import ASSETS, ExamBuilder
from services.offline.replay import replay_events
from services.platform.connect import (
    ConnectError,
    ConnectRest,
    misconfigure_connector,
    pause_connector,
    restore_connector,
    resume_connector,
)
from services.rubrics import resolver
from tests.integration.collectors.conftest import Env

if TYPE_CHECKING:
    from services.platform.connect import CandidateCdc

pytest_plugins = ["tests.platform_fixtures.cdc"]
pytestmark = [pytest.mark.integration, pytest.mark.slow]

CLUSTER = "basecamp-connect"


def offsets_poller(
    make_poller: Callable[..., Poller], kafka_bootstrap: str, topic: str, platform_id: str
) -> Poller:
    settings = OffsetSettings(bootstrap=kafka_bootstrap, topics=(topic,), cluster=CLUSTER)
    return make_poller(OffsetsCollector(settings, platform_id))


def poll_until(poller: Poller, ready: Callable[[int], bool], timeout_s: float = 60.0) -> int:
    """Step the poller until ``ready(events published by this call so far)``."""
    published = 0
    deadline = time.monotonic() + timeout_s
    while True:
        published += poller.step()
        if ready(published) or time.monotonic() > deadline:
            return published
        time.sleep(0.5)


def settle(poller: Poller, env: Env, platform_id: str, topic: str, rows: int) -> int:
    """Poll until the snapshot of ``rows`` rows is on the topic; its high watermark."""
    poll_until(
        poller,
        lambda _n: high_watermark(env.read("platform.cdc-offsets", platform_id), topic) >= rows,
    )
    hw = high_watermark(env.read("platform.cdc-offsets", platform_id), topic)
    assert hw == rows, f"the snapshot of {rows} rows gave {hw} records"
    return hw


def high_watermark(events: list[Event], topic: str) -> int:
    mine = [e for e in events if e.type == "cdc.offsets" and e.data["topic"] == topic]
    return max((e.data["high_watermark"] for e in mine), default=-1)


class Exam:
    """The proctor's control events around real signals: Part 1 opens at ``part_ms``."""

    def __init__(self, platform_id: str, topic: str, part_ms: int) -> None:
        self.b = ExamBuilder(platform_id, start_ms=part_ms - 60_000)
        self.b.control(
            "exam.started",
            0,
            candidate_id=self.b.candidate_id,
            rubric_id="y3-final",
            rubric_version="1",
        )
        self.b.control("part.started", 1, part=1)
        self.b.control("pipeline.declared", 1, assets={**ASSETS, "cdc_topic": topic})

    def grade(self, signals: list[Event], ended_ms: int, *ids: str) -> dict[str, CriterionResult]:
        """The criteria as graded when the exam ends at ``ended_ms`` (its boxes close then;
        the core closes boxes on ``exam.ended``, not on ``part.ended``)."""
        ended = self.b.control("exam.ended", (ended_ms - self.b.start_ms) / 60_000)
        try:
            result = replay_events([*self.b.events, *signals], resolver(), KeywordJudge())
        finally:
            self.b.events.remove(ended)
        (exam,) = result.results
        return {i: exam.criterion(i) for i in ids}


def collected(env: Env, platform_id: str) -> list[Event]:
    return [
        *env.read("platform.cdc-offsets", platform_id),
        *env.read("platform.schemas", platform_id),
        *env.read("platform.collectors", platform_id),
    ]


def test_a_real_connector_grades_cdc_source_and_schema_registered(
    cdc_platform: CandidateCdc,
    env: Env,
    make_poller: Callable[..., Poller],
    kafka_bootstrap: str,
    registry_url: str,
    platform_id: str,
) -> None:
    part_ms = now_ms()
    rows = cdc_platform.load.count()
    conn = cdc_platform.register()
    offsets = offsets_poller(make_poller, kafka_bootstrap, conn.topic, platform_id)
    # the snapshot of the rows already there creates the topic
    snapshot = settle(offsets, env, platform_id, conn.topic, rows)

    ids = cdc_platform.load.insert(10)
    assert cdc_platform.load.update(ids[:5]) == 5
    poll_until(
        offsets,
        lambda _n: (
            high_watermark(env.read("platform.cdc-offsets", platform_id), conn.topic)
            >= snapshot + 15
        ),
    )
    registry = make_poller(
        RegistryCollector(
            RegistrySettings(url=registry_url, subject_pattern=re.escape(f"{conn.topic}-value")),
            platform_id,
        )
    )
    assert registry.step() == 1
    offsets.heartbeat()

    events = env.read("platform.cdc-offsets", platform_id)
    assert {(e.data["cluster"], e.data["topic"], e.data["partition"]) for e in events} == {
        (CLUSTER, conn.topic, 0)
    }
    assert {e.data["log_start_offset"] for e in events} == {0}
    assert high_watermark(events, conn.topic) == snapshot + 15  # 10 inserts, 5 updates
    (schema,) = env.read("platform.schemas", platform_id)
    assert schema.data["subject"] == f"{conn.topic}-value"
    assert schema.data["version"] == 1 and schema.data["schema_type"] == "AVRO"

    # the records on the topic carry that schema's id in the Confluent framing
    consumer = Consumer({"bootstrap.servers": kafka_bootstrap, "group.id": uuid.uuid4().hex})
    try:
        consumer.assign([TopicPartition(conn.topic, 0, 0)])
        msg = consumer.poll(15)
        assert msg is not None and msg.error() is None
        value = msg.value()
        assert value is not None and value[0] == 0
        assert struct.unpack(">I", value[1:5])[0] == schema.data["schema_id"]
    finally:
        consumer.close()

    signals = collected(env, platform_id)
    got = Exam(platform_id, conn.topic, part_ms).grade(
        signals, now_ms() + 1000, "p1.cdc_source", "p1.schema_registered"
    )
    cdc = got["p1.cdc_source"]
    assert cdc.state == "met", cdc.reason
    # the connector started after Part 1 did: growth counts from the first observation
    # (the topic may be seen empty before the snapshot lands in it)
    first = min(events, key=lambda e: e.ts_ms).data["high_watermark"]
    assert conn.topic in cdc.reason, cdc.reason
    assert f"grew by {snapshot + 15 - first} " in cdc.reason, cdc.reason
    assert set(cdc.evidence) <= {e.event_id for e in events} and cdc.evidence
    reg = got["p1.schema_registered"]
    assert reg.state == "met", reg.reason
    assert schema.event_id in reg.evidence


def test_a_paused_connector_is_a_real_stall_and_resumed_delivers_every_change(
    cdc_platform: CandidateCdc,
    env: Env,
    make_poller: Callable[..., Poller],
    kafka_bootstrap: str,
    platform_id: str,
) -> None:
    rows = cdc_platform.load.count()
    conn = cdc_platform.register(registry=False)
    offsets = offsets_poller(make_poller, kafka_bootstrap, conn.topic, platform_id)
    before = settle(offsets, env, platform_id, conn.topic, rows)

    # the proctor's fault: pause through the REST API, as an operator would
    status = pause_connector(cdc_platform.rest_url, conn.name)
    assert status.state == "PAUSED" and status.tasks == ("PAUSED",)
    part_ms = now_ms()
    ids = cdc_platform.load.insert(20)
    cdc_platform.load.update(ids[:4], status="shipped")
    stalled = 0
    for _ in range(8):  # the table changed 24 times; the topic must not move
        stalled += offsets.step()
        time.sleep(0.5)
    assert stalled == 0
    settings = OffsetSettings(bootstrap=kafka_bootstrap, topics=(conn.topic,))
    direct = OffsetsCollector(settings, platform_id).offsets({conn.topic: 1})
    assert direct == {f"{conn.topic}/0": (before, 0)}
    offsets.heartbeat()
    stall_end = now_ms() + 1000
    exam = Exam(platform_id, conn.topic, part_ms)
    during = exam.grade(collected(env, platform_id), stall_end, "p1.cdc_source")["p1.cdc_source"]
    assert during.state == "expired", during.reason
    assert "grew by 0" in during.reason or "0 of" in during.reason, during.reason

    # undo: resumed, the connector streams what the slot kept, nothing lost or repeated
    resumed_at = now_ms()
    resumed = resume_connector(cdc_platform.rest_url, conn.name)
    assert resumed.state == "RUNNING"
    poll_until(
        offsets,
        lambda _n: (
            high_watermark(env.read("platform.cdc-offsets", platform_id), conn.topic) >= before + 24
        ),
    )
    time.sleep(2)
    offsets.step()
    offsets.heartbeat()
    events = env.read("platform.cdc-offsets", platform_id)
    assert high_watermark(events, conn.topic) == before + 24
    after = exam.grade(collected(env, platform_id), now_ms() + 1000, "p1.cdc_source")
    cdc = after["p1.cdc_source"]
    assert cdc.state == "met", cdc.reason
    assert "grew by 24" in cdc.reason, cdc.reason
    grown = [e for e in events if e.event_id in cdc.evidence]
    assert grown and max(e.ts_ms for e in grown) > resumed_at  # decided by the resumed growth
    assert set(cdc.evidence) != set(during.evidence)


def test_a_connector_on_a_wrong_table_fails_and_the_topic_stays_still(
    cdc_platform: CandidateCdc,
    env: Env,
    make_poller: Callable[..., Poller],
    kafka_bootstrap: str,
    platform_id: str,
) -> None:
    part_ms = now_ms()
    conn = cdc_platform.register(table="public.order", registry=False, wait=False)  # a typo'd table
    status = ConnectRest(cdc_platform.rest_url).wait_failed(conn.name)
    assert status.tasks == ("FAILED",)
    assert "No table filters found for filtered publication" in status.trace
    cdc_platform.load.insert(5)
    offsets = offsets_poller(make_poller, kafka_bootstrap, conn.topic, platform_id)
    assert sum(offsets.step() for _ in range(4)) == 0  # no topic, nothing to publish
    offsets.heartbeat()
    got = Exam(platform_id, conn.topic, part_ms).grade(
        collected(env, platform_id), now_ms() + 1000, "p1.cdc_source"
    )
    assert got["p1.cdc_source"].state == "expired", got["p1.cdc_source"].reason


def test_a_misconfigured_connector_stalls_the_topic_until_restored(
    cdc_platform: CandidateCdc,
    env: Env,
    make_poller: Callable[..., Poller],
    kafka_bootstrap: str,
    platform_id: str,
) -> None:
    rows = cdc_platform.load.count()
    conn = cdc_platform.register(registry=False)
    offsets = offsets_poller(make_poller, kafka_bootstrap, conn.topic, platform_id)
    before = settle(offsets, env, platform_id, conn.topic, rows)
    rest = ConnectRest(cdc_platform.rest_url)

    saved = misconfigure_connector(rest.url, conn.name)
    assert saved["table.include.list"] == "public.orders"
    assert rest.status(conn.name).state == "RUNNING"
    cdc_platform.load.insert(3)
    assert sum(offsets.step() for _ in range(6)) == 0

    restored = restore_connector(rest.url, conn.name, saved)
    assert restored.state == "RUNNING"
    cdc_platform.load.insert(2)
    poll_until(
        offsets,
        lambda _n: (
            high_watermark(env.read("platform.cdc-offsets", platform_id), conn.topic) >= before + 2
        ),
    )
    time.sleep(3)
    offsets.step()
    grown = high_watermark(env.read("platform.cdc-offsets", platform_id), conn.topic) - before
    # the filtered changes were never acknowledged to the slot: restored, the connector
    # reads them again, so this fault delays the 3 changes made meanwhile but loses none
    assert grown == 5


def test_a_bad_slot_name_is_refused_with_the_connectors_reason(cdc_platform: CandidateCdc) -> None:
    with pytest.raises(ConnectError, match=r"slot\.name: .*replication slot name"):
        cdc_platform.register(slot="Bad-Slot!", registry=False)


def test_fault_functions_say_when_connect_is_down(
    cdc_platform: CandidateCdc, unused_port: int
) -> None:
    down = f"http://127.0.0.1:{unused_port}"
    assert not ConnectRest(down).healthy()
    with pytest.raises(ConnectError, match="not reachable"):
        pause_connector(down, "orders")
    with pytest.raises(ConnectError, match="not reachable"):
        resume_connector(down, "orders")
    with pytest.raises(ConnectError, match="404"):
        pause_connector(cdc_platform.rest_url, "no-such-connector")


def test_connect_down_stalls_the_topic_and_back_up_delivers_what_it_missed(
    cdc_platform: CandidateCdc,
    env: Env,
    make_poller: Callable[..., Poller],
    kafka_bootstrap: str,
    platform_id: str,
) -> None:
    rows = cdc_platform.load.count()
    conn = cdc_platform.register(registry=False)
    offsets = offsets_poller(make_poller, kafka_bootstrap, conn.topic, platform_id)
    before = settle(offsets, env, platform_id, conn.topic, rows)
    rest_url = cdc_platform.rest_url
    cdc_platform.stop_worker()  # the worker's process, by its pid
    assert not ConnectRest(rest_url).healthy()
    with pytest.raises(ConnectError, match="not reachable"):
        pause_connector(rest_url, conn.name)
    cdc_platform.load.insert(5)
    assert sum(offsets.step() for _ in range(4)) == 0

    cdc_platform.ensure_worker()  # the undo: the worker again, its connectors registered
    assert ConnectRest(rest_url).status(conn.name).state == "RUNNING"
    poll_until(
        offsets,
        lambda _n: (
            high_watermark(env.read("platform.cdc-offsets", platform_id), conn.topic) >= before + 5
        ),
    )
    time.sleep(2)
    offsets.step()
    # offsets were flushed when the worker stopped: nothing is read twice, nothing lost
    assert high_watermark(env.read("platform.cdc-offsets", platform_id), conn.topic) == before + 5
