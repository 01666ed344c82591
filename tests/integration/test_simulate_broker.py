"""``proctor simulate`` on the real broker and registry: every event lands on its
contract topic, keyed by its platform, decodable, exactly what the recording says."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from confluent_kafka import Consumer
from confluent_kafka.admin import AdminClient

from services.cli import cli
from services.contract.jsonl import read_jsonl
from services.contract.registry import Registry
from services.contract.schemas import TYPE_TOPICS, load_contract, topic_name
from services.contract.topics import ensure_topics
from services.contract.wire import WireCodec, registry_client

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture
def prefix(kafka_bootstrap: str, registry_url: str) -> Iterator[str]:
    name = f"sim{uuid.uuid4().hex[:8]}."
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    results = ensure_topics(admin, prefix=name)
    Registry(registry_client(registry_url), registry_url, load_contract(), name).register_all()
    yield name
    for future in admin.delete_topics([r.name for r in results], operation_timeout=30).values():
        future.result(timeout=30)


def test_simulated_platforms_publish_like_collectors_and_proctors(
    kafka_bootstrap: str, registry_url: str, prefix: str, tmp_path: Path, stack: Any
) -> None:
    record = tmp_path / "run.jsonl"
    state = tmp_path / "stack"
    result = CliRunner(env={"PROCTOR_STACK_DIR": str(state)}).invoke(
        cli,
        [
            "simulate",
            "--speed",
            "0",
            "--record",
            str(record),
            "--prefix",
            prefix,
            "--bootstrap",
            kafka_bootstrap,
            "--registry-url",
            registry_url,
            "-c",
            "hana=clean_pass",
            "-c",
            "ivan=late_diagnosis:fault=cache/stale_cache",
            "--poll-seconds",
            "60",
        ],
    )
    assert result.exit_code == 0, result.output
    sent = read_jsonl(record)
    by_id = {e.event_id: e for e in sent}
    # the next run on this stack starts after this one's last event
    assert int((state / "simulator" / "last-event-ts").read_text()) == max(e.ts_ms for e in sent)

    codec = WireCodec(registry_client(registry_url), topic_prefix=prefix)
    consumer = Consumer(
        {
            "bootstrap.servers": kafka_bootstrap,
            "group.id": f"check-{uuid.uuid4().hex[:8]}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    topics = sorted(
        {topic_name(t, prefix) for t in TYPE_TOPICS.values() if t and not t.startswith("grading.")}
    )
    consumer.subscribe(topics)
    seen: Counter[str] = Counter()
    partitions: dict[str, set[tuple[str, int]]] = {}
    got = 0
    try:
        idle = 0
        while got < len(sent) and idle < 20:
            batch = consumer.consume(1000, timeout=1.0)
            idle = idle + 1 if not batch else 0
            for msg in batch:
                assert msg.error() is None
                event = codec.decode(
                    msg.value(), msg.topic() or "", msg.partition() or 0, msg.offset() or 0
                )
                original = by_id[event.event_id]
                assert msg.key() == original.platform_id.encode()
                assert msg.topic() == topic_name(TYPE_TOPICS[event.type] or "", prefix)
                assert (event.type, event.ts_ms, event.platform_id) == (
                    original.type,
                    original.ts_ms,
                    original.platform_id,
                )
                seen[event.event_id] += 1
                partitions.setdefault(event.platform_id, set()).add((msg.topic(), msg.partition()))
                got += 1
    finally:
        consumer.close()
    assert got == len(sent)
    assert set(seen) == set(by_id) and max(seen.values()) == 1
    # one platform, one partition number on every topic: its exam is in one place
    for platform, places in partitions.items():
        assert len({p for _, p in places}) == 1, platform
