"""Fixtures for the collector tests: the contract's topics and schemas under a prefix of
their own on the real broker and registry, a reader of what landed on a topic, and a
poller factory with a position directory per test."""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition
from confluent_kafka.schema_registry.error import SchemaRegistryError

from services.collectors.polling import Backoff, Collector, Poller, PositionStore
from services.contract.registry import Registry
from services.contract.schemas import TOPICS_BY_NAME, load_contract, topic_name
from services.contract.settings import ClientSettings
from services.contract.topics import admin_client, delete_topics, ensure_topics
from services.contract.wire import WireCodec, registry_client
from services.core.events import Event
from services.publisher.publisher import Publisher

#: the topics and event types the polling collectors publish
TOPICS = (
    "platform.cdc-offsets",
    "platform.schemas",
    "platform.flink",
    "platform.iceberg",
    "platform.dbt",
    "platform.superset",
    "platform.trino",
    "platform.observability",
    "platform.collectors",
)
TYPES = [
    "cdc.offsets",
    "schema.registered",
    "flink.job",
    "flink.checkpoint",
    "iceberg.commit",
    "dbt.run",
    "superset.chart",
    "superset.alert",
    "trino.column_mask",
    "pillar.seen",
    "tool.used",
    "collector.heartbeat",
]


@dataclass
class Env:
    prefix: str
    settings: ClientSettings
    codec: WireCodec

    def read(self, topic: str, platform_id: str | None = None) -> list[Event]:
        """Every event on the (prefixed) contract topic, optionally of one platform."""
        name = topic_name(topic, self.prefix)
        consumer = Consumer(
            self.settings.kafka_config(
                **{
                    "group.id": f"read-{uuid.uuid4().hex}",
                    "enable.auto.commit": False,
                    "enable.partition.eof": True,
                }
            )
        )
        try:
            meta = consumer.list_topics(name, timeout=10).topics[name]
            ends = {}
            for p in meta.partitions:
                low, high = consumer.get_watermark_offsets(TopicPartition(name, p), timeout=10)
                if high > low:
                    ends[p] = high
            consumer.assign([TopicPartition(name, p, 0) for p in ends])
            events: list[Event] = []
            done: set[int] = set()
            while len(done) < len(ends):
                msg = consumer.poll(5.0)
                assert msg is not None, f"timed out reading {name}"
                err = msg.error()
                if err is not None:
                    assert err.code() == KafkaError._PARTITION_EOF, err.str()
                    done.add(msg.partition() or 0)
                    continue
                events.append(
                    self.codec.decode(msg.value(), name, msg.partition() or 0, msg.offset() or 0)
                )
                if (msg.offset() or 0) + 1 >= ends[msg.partition() or 0]:
                    done.add(msg.partition() or 0)
            return [e for e in events if platform_id is None or e.platform_id == platform_id]
        finally:
            consumer.close()


def _wait_for_leaders(settings: ClientSettings, topics: list[str]) -> None:
    """New topics answer "not leader" for a moment; wait until every partition answers."""
    consumer = Consumer(settings.kafka_config(**{"group.id": f"wait-{uuid.uuid4().hex}"}))
    deadline = time.monotonic() + 60
    try:
        for name in topics:
            for p in consumer.list_topics(name, timeout=10).topics[name].partitions:
                while True:
                    try:
                        consumer.get_watermark_offsets(TopicPartition(name, p), timeout=5)
                        break
                    except KafkaException:
                        assert time.monotonic() < deadline, f"{name}/{p} has no leader"
                        time.sleep(0.1)
    finally:
        consumer.close()


@contextlib.contextmanager
def contract_env(
    kafka_bootstrap: str,
    registry_url: str,
    tag: str,
    topics: Sequence[str] = TOPICS,
    types: Sequence[str] = TYPES,
) -> Iterator[Env]:
    """``topics`` and the schemas of ``types`` under a prefix of their own
    (``it-<tag>-<hex>.``), every partition led; all removed afterwards."""
    prefix = f"it-{tag}-{uuid.uuid4().hex[:8]}."
    settings = ClientSettings(kafka_bootstrap, registry_url, prefix)
    contract = load_contract()
    client = registry_client(registry_url)
    admin = admin_client(kafka_bootstrap)
    ensure_topics(admin, prefix=prefix, specs=[TOPICS_BY_NAME[t] for t in topics])
    Registry(client, registry_url, contract, prefix).register_all(list(types))
    _wait_for_leaders(settings, [topic_name(t, prefix) for t in topics])
    try:
        yield Env(prefix, settings, WireCodec(client, contract, topic_prefix=prefix))
    finally:
        delete_topics(admin, [topic_name(t, prefix) for t in topics])
        for t in types:
            for permanent in (False, True):
                with contextlib.suppress(SchemaRegistryError):
                    client.delete_subject(contract.schema(t).subject(prefix), permanent=permanent)


@pytest.fixture(scope="module")
def env(kafka_bootstrap: str, registry_url: str) -> Iterator[Env]:
    with contract_env(kafka_bootstrap, registry_url, "col") as e:
        yield e


@pytest.fixture
def platform_id() -> str:
    return f"basecamp-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def make_poller(env: Env, tmp_path: Path) -> Iterator[Callable[..., Poller]]:
    """``make_poller(collector)``: a Poller publishing to the test's topics, its position
    file under the test's tmp dir (a second call for the same collector resumes it)."""
    made: list[Poller] = []

    def make(collector: Collector, **kwargs: object) -> Poller:
        poller = Poller(
            collector,
            Publisher(env.settings),
            PositionStore(tmp_path / "state", collector.store_key, collector.platform_id),
            backoff=Backoff(initial_s=0.2, max_s=0.5),
            **kwargs,  # type: ignore[arg-type]
        )
        made.append(poller)
        return poller

    yield make
    for p in made:
        with contextlib.suppress(Exception):
            p.close()


@pytest.fixture
def unused_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def unused_port_module() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
