"""cdc.offsets from the real broker and schema.registered from the real registry."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from confluent_kafka import Producer
from confluent_kafka.schema_registry import Schema

from services.collectors.offsets import OffsetsCollector
from services.collectors.offsets import Settings as OffsetSettings
from services.collectors.polling import Poller
from services.collectors.registry import RegistryCollector
from services.collectors.registry import Settings as RegistrySettings
from services.contract.wire import registry_client

pytestmark = pytest.mark.integration


def _produce(bootstrap: str, topic: str, partition: int, n: int) -> None:
    producer = Producer({"bootstrap.servers": bootstrap})
    for i in range(n):
        producer.produce(topic, value=f"row-{i}".encode(), partition=partition)
    assert producer.flush(30) == 0


def test_offsets_follow_the_broker(
    env, make_poller: Callable[..., Poller], new_topic, kafka_bootstrap: str, platform_id: str
) -> None:
    cdc = new_topic("cdc", partitions=2)
    _produce(kafka_bootstrap, cdc, 0, 5)
    _produce(kafka_bootstrap, cdc, 1, 3)
    settings = OffsetSettings(bootstrap=kafka_bootstrap, topics=(cdc,), cluster="basecamp")
    poller = make_poller(OffsetsCollector(settings, platform_id))

    assert poller.step() == 2
    first = env.read("platform.cdc-offsets", platform_id)
    assert sorted((e.data["partition"], e.data["high_watermark"]) for e in first) == [
        (0, 5),
        (1, 3),
    ]
    assert {e.data["log_start_offset"] for e in first} == {0}
    assert {(e.data["topic"], e.data["cluster"]) for e in first} == {(cdc, "basecamp")}

    assert poller.step() == 0  # nothing moved: nothing repeated
    _produce(kafka_bootstrap, cdc, 0, 4)
    assert poller.step() == 1
    events = env.read("platform.cdc-offsets", platform_id)
    assert len(events) == 3
    assert events[-1].data["partition"] == 0 and events[-1].data["high_watermark"] == 9
    assert events[-1].ts_ms >= first[0].ts_ms


def test_offsets_of_a_topic_not_created_yet_are_no_error(
    env, make_poller: Callable[..., Poller], kafka_bootstrap: str, platform_id: str, unique_name
) -> None:
    settings = OffsetSettings(bootstrap=kafka_bootstrap, topics=(unique_name("absent"),))
    poller = make_poller(OffsetsCollector(settings, platform_id))
    assert poller.step() == 0
    assert env.read("platform.cdc-offsets", platform_id) == []


def test_registry_versions_are_published_once_each(
    env, make_poller: Callable[..., Poller], registry_url: str, platform_id: str, unique_name
) -> None:
    client = registry_client(registry_url)
    subject = unique_name("cdc.public.orders") + "-value"
    v1 = '{"type":"record","name":"Order","fields":[{"name":"id","type":"long"}]}'
    v2 = (
        '{"type":"record","name":"Order","fields":[{"name":"id","type":"long"},'
        '{"name":"note","type":["null","string"],"default":null}]}'
    )
    try:
        id1 = client.register_schema(subject, Schema(v1, "AVRO"))
        settings = RegistrySettings(url=registry_url, subject_pattern=re.escape(subject))
        poller = make_poller(RegistryCollector(settings, platform_id))
        assert poller.step() == 1
        assert poller.step() == 0
        id2 = client.register_schema(subject, Schema(v2, "AVRO"))
        assert poller.step() == 1
        events = env.read("platform.schemas", platform_id)
        got = sorted((e.data["subject"], e.data["version"], e.data["schema_id"]) for e in events)
        assert got == [(subject, 1, id1), (subject, 2, id2)]
        assert {e.data["schema_type"] for e in events} == {"AVRO"}
    finally:
        client.delete_subject(subject)
        client.delete_subject(subject, permanent=True)
