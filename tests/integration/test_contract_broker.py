"""The contract on the real broker and registry: round trips, compatibility, dead letters.

Every test gets its own topic and subject prefix (``it-<hex>.``), creates the contract's
topics and registers its schemas under it, and deletes both afterwards.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import fastavro
import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.error import SchemaRegistryError

from services.contract.consumer import EventConsumer
from services.contract.dlq import DeadLetter
from services.contract.jsonl import read_jsonl
from services.contract.registry import Registry
from services.contract.schemas import (
    INPUT_TOPICS,
    TOPICS,
    TOPICS_BY_NAME,
    load_contract,
    topic_name,
)
from services.contract.settings import ClientSettings
from services.contract.topics import admin_client, delete_topics, describe_topics, ensure_topics
from services.contract.wire import HEADER, WireCodec, registry_client
from services.core.events import Event
from services.publisher import Publisher

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "schemas" / "examples.jsonl"
PROCTOR = [sys.executable, "-m", "services.cli"]


@dataclasses.dataclass
class Env:
    prefix: str
    settings: ClientSettings
    registry: Registry
    codec: WireCodec
    test_subjects: list[str]


@pytest.fixture
def env(kafka_bootstrap: str, registry_url: str) -> Iterator[Env]:
    prefix = f"it-{uuid.uuid4().hex[:10]}."
    settings = ClientSettings(kafka_bootstrap, registry_url, prefix)
    contract = load_contract()
    client = registry_client(registry_url)
    registry = Registry(client, registry_url, contract, prefix)
    admin = admin_client(kafka_bootstrap)
    ensure_topics(admin, prefix=prefix)
    registry.register_all()
    e = Env(prefix, settings, registry, WireCodec(client, contract, topic_prefix=prefix), [])
    yield e
    delete_topics(admin, [topic_name(t.name, prefix) for t in TOPICS])
    for schema in contract.schemas.values():
        _delete_subject(client, schema.subject(prefix))
    for subject in e.test_subjects:
        _delete_subject(client, subject)


def _delete_subject(client: SchemaRegistryClient, subject: str) -> None:
    for permanent in (False, True):
        # Soft delete first (permanent needs it); a subject already gone is fine.
        with contextlib.suppress(SchemaRegistryError):
            client.delete_subject(subject, permanent=permanent)


def murmur2_partition(key: bytes, partitions: int) -> int:
    """The Java client's default partitioner (murmur2, positive), for the co-partitioning check."""
    m, r, length = 0x5BD1E995, 24, len(key)
    h = (0x9747B28C ^ length) & 0xFFFFFFFF
    for i in range(0, length - length % 4, 4):
        k = int.from_bytes(key[i : i + 4], "little")
        k = (k * m) & 0xFFFFFFFF
        k ^= k >> r
        k = (k * m) & 0xFFFFFFFF
        h = ((h * m) & 0xFFFFFFFF) ^ k
    rest = length % 4
    tail = key[length - rest :]
    if rest >= 3:
        h ^= tail[2] << 16
    if rest >= 2:
        h ^= tail[1] << 8
    if rest >= 1:
        h ^= tail[0]
        h = (h * m) & 0xFFFFFFFF
    h ^= h >> 13
    h = (h * m) & 0xFFFFFFFF
    h ^= h >> 15
    return (h & 0x7FFFFFFF) % partitions


def _examples() -> list[Event]:
    return [e for e in read_jsonl(EXAMPLES) if e.type != "grading.criterion_transition"]


def test_topics_have_contract_partitions_and_configs(env: Env, kafka_bootstrap: str) -> None:
    admin = admin_client(kafka_bootstrap)
    again = ensure_topics(admin, prefix=env.prefix)  # idempotent: nothing new, configs re-set
    assert {r.status for r in again} == {"exists"}
    rows = {name: (parts, cfg) for name, parts, cfg in describe_topics(admin, prefix=env.prefix)}
    for spec in TOPICS:
        parts, cfg = rows[topic_name(spec.name, env.prefix)]
        assert parts == spec.partitions
        assert cfg["cleanup.policy"] == spec.config["cleanup.policy"]
        if "retention.ms" in spec.config:
            assert cfg["retention.ms"] == spec.config["retention.ms"]
    assert (
        rows[topic_name("grading.criterion-states", env.prefix)][1]["cleanup.policy"] == "compact"
    )
    # The command does the same, idempotently, and lists what it found.
    base = ["--prefix", env.prefix, "--bootstrap", kafka_bootstrap]
    created = subprocess.run(
        [*PROCTOR, "topics", "create", *base], capture_output=True, text=True, timeout=120, cwd=REPO
    )
    assert created.returncode == 0, created.stderr
    assert "created" not in created.stdout and "exists" in created.stdout
    listed = subprocess.run(
        [*PROCTOR, "topics", "list", *base], capture_output=True, text=True, timeout=120, cwd=REPO
    )
    assert listed.returncode == 0 and "missing" not in listed.stdout


def test_every_event_type_round_trips_through_the_broker(env: Env) -> None:
    events = _examples()
    with Publisher(env.settings) as publisher:
        deliveries = publisher.publish_many(events)
    assert [d.event_id for d in deliveries] == [e.event_id for e in events]
    for d in deliveries:
        spec = TOPICS_BY_NAME[d.topic[len(env.prefix) :]]
        if spec.key == "platform_id":  # keyed by platform, partitioned like the Java client
            assert d.partition == murmur2_partition(d.platform_id.encode(), spec.partitions)
    topics = [t.name for t in TOPICS]
    with EventConsumer(env.settings, f"it-{uuid.uuid4().hex}", topics) as consumer:
        received = consumer.consume(len(events), timeout_s=60)
        assert consumer.dead_letters == []
    assert len(received) == len(events)
    by_id = {e.event_id: e for e in received}
    for event, delivery in zip(events, deliveries, strict=True):
        got = by_id[event.event_id]
        assert dataclasses.replace(got, source=None) == event
        assert got.source is not None
        assert (got.source.topic, got.source.partition, got.source.offset) == (
            delivery.topic,
            delivery.partition,
            delivery.offset,
        )


def _check(env: Env, schemas_dir: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            *PROCTOR,
            "schemas",
            "check",
            "--prefix",
            env.prefix,
            "--schemas-dir",
            str(schemas_dir),
            "--registry-url",
            env.settings.registry_url,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
    )


def test_incompatible_change_is_rejected_by_schemas_check(env: Env, tmp_path: Path) -> None:
    changed = tmp_path / "schemas"
    shutil.copytree(REPO / "schemas", changed)
    unchanged = _check(env, changed)
    assert unchanged.returncode == 0, unchanged.stderr
    # A compatible change: a new optional field.
    raw = json.loads((changed / "flink.checkpoint.avsc").read_text())
    raw["fields"].append(
        {"name": "external_path", "type": ["null", "string"], "default": None, "doc": "d"}
    )
    (changed / "flink.checkpoint.avsc").write_text(json.dumps(raw))
    compatible = _check(env, changed)
    assert compatible.returncode == 0, compatible.stderr
    assert "compatible" in compatible.stdout
    # Incompatible: a required field without a default, and a field changing type.
    raw = json.loads((changed / "exam.started.avsc").read_text())
    raw["fields"].append({"name": "proctor_id", "type": "string", "doc": "who proctors"})
    (changed / "exam.started.avsc").write_text(json.dumps(raw))
    raw = json.loads((changed / "cdc.offsets.avsc").read_text())
    next(f for f in raw["fields"] if f["name"] == "high_watermark")["type"] = "string"
    (changed / "cdc.offsets.avsc").write_text(json.dumps(raw))
    result = _check(env, changed)
    assert result.returncode == 1
    assert "INCOMPATIBLE exam.started" in result.stderr and "field 'proctor_id'" in result.stderr
    assert "INCOMPATIBLE cdc.offsets" in result.stderr
    assert "field 'high_watermark': written as long, read as string" in result.stderr
    assert "flink.checkpoint" not in result.stderr
    # The registry itself refuses to register it, and the error names the field too.
    registry = Registry(
        env.registry.client, env.settings.registry_url, load_contract(changed), env.prefix
    )
    with pytest.raises(Exception, match="proctor_id"):
        registry.register_all(["exam.started"])


def _frame(sid: int, raw: dict[str, object], datum: dict[str, object]) -> bytes:
    buf = io.BytesIO()
    buf.write(HEADER.pack(0, sid))
    fastavro.schemaless_writer(buf, fastavro.parse_schema(raw, named_schemas={}), datum)
    return buf.getvalue()


def _register_test_schema(env: Env, raw: dict[str, object]) -> int:
    subject = f"{env.prefix}test-{uuid.uuid4().hex[:8]}"
    env.test_subjects.append(subject)
    return int(env.registry.client.register_schema(subject, Schema(json.dumps(raw), "AVRO")))


def test_bad_records_end_in_the_dlq_and_the_consumer_goes_on(
    env: Env, kafka_bootstrap: str
) -> None:
    contract = env.codec.contract
    examples = {e.type: e for e in _examples()}
    good = [dataclasses.replace(examples["exam.started"], event_id=f"good-{i}") for i in range(3)]
    encoded_good = [env.codec.encode(e) for e in good]
    # Corrupt bytes: JSON where Avro should be.
    corrupt = b'{"type": "exam.started", "platform_id": "basecamp-alice"}'
    # A wire header whose schema id no registry knows.
    unknown_id = HEADER.pack(0, 2_000_000_000) + encoded_good[0][5:]
    # An event type the contract does not have, registered so its id resolves.
    paused = json.loads(contract.schema("exam.ended").text)
    paused["name"] = "ExamPaused"
    paused_value = _frame(
        _register_test_schema(env, paused),
        paused,
        {
            "type": "exam.paused",
            "platform_id": "basecamp-alice",
            "event_id": "p1",
            "ts": 1,
            "exam_id": "x",
        },
    )
    # exam.started written by a producer whose schema lacks candidate_id.
    lacking = json.loads(contract.schema("exam.started").text)
    lacking["fields"] = [f for f in lacking["fields"] if f["name"] != "candidate_id"]
    lacking_value = _frame(
        _register_test_schema(env, lacking),
        lacking,
        {
            "type": "exam.started",
            "platform_id": "basecamp-alice",
            "event_id": "m1",
            "ts": 1,
            "exam_id": "x",
            "rubric_id": "y3-final",
            "rubric_version": "1",
        },
    )
    sequence = [
        encoded_good[0],
        corrupt,
        unknown_id,
        encoded_good[1],
        paused_value,
        lacking_value,
        encoded_good[2],
    ]
    control = topic_name("exam.control", env.prefix)
    producer = Producer(
        {
            "bootstrap.servers": kafka_bootstrap,
            "enable.idempotence": True,
            "partitioner": "murmur2_random",
        }
    )
    for value in sequence:
        producer.produce(control, value=value, key=b"basecamp-alice", headers=[("case", b"x")])
    assert producer.flush(30) == 0

    with EventConsumer(env.settings, f"it-{uuid.uuid4().hex}", ["exam.control"]) as consumer:
        events = consumer.consume(3, timeout_s=60)
        dead = list(consumer.dead_letters)
    assert [e.event_id for e in events] == ["good-0", "good-1", "good-2"]
    assert [(d.error_class, d.raw_value) for d in dead] == [
        ("corrupt_bytes", corrupt),
        ("unknown_schema_id", unknown_id),
        ("unknown_event_type", paused_value),
        ("missing_required_field", lacking_value),
    ]
    partition = murmur2_partition(b"basecamp-alice", TOPICS_BY_NAME["exam.control"].partitions)
    assert [d.source_offset for d in dead] == [1, 2, 4, 5]
    assert all(d.source_topic == control and d.source_partition == partition for d in dead)
    assert "not the magic byte 0" in dead[0].reason
    assert "schema id 2000000000 is not in the registry" in dead[1].reason
    assert "ExamPaused" in dead[2].reason
    assert "candidate_id" in dead[3].reason

    # The DLQ topic holds the four, with reasons, positions and the raw bytes.
    dlq = topic_name("grading.dlq", env.prefix)
    reader = Consumer(
        {
            "bootstrap.servers": kafka_bootstrap,
            "group.id": f"it-{uuid.uuid4().hex}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    reader.assign(
        [TopicPartition(dlq, p, 0) for p in range(TOPICS_BY_NAME["grading.dlq"].partitions)]
    )
    stored: list[DeadLetter] = []
    for _ in range(60):
        for msg in reader.consume(10, timeout=1.0):
            assert msg.error() is None
            stored.append(
                DeadLetter.from_event(
                    env.codec.decode(
                        msg.value(), msg.topic() or "", msg.partition() or 0, msg.offset() or 0
                    )
                )
            )
        if len(stored) >= 4:
            break
    reader.close()
    assert sorted(stored, key=lambda d: d.source_offset or 0) == dead
    assert all(d.headers == (("case", b"x"),) and d.raw_key == b"basecamp-alice" for d in stored)


def test_wrong_topic_record_is_dead_lettered(env: Env, kafka_bootstrap: str) -> None:
    value = env.codec.encode(next(e for e in _examples() if e.type == "flink.job"))
    producer = Producer({"bootstrap.servers": kafka_bootstrap})
    producer.produce(topic_name("exam.control", env.prefix), value=value, key=b"basecamp-bob")
    assert producer.flush(30) == 0
    with EventConsumer(env.settings, f"it-{uuid.uuid4().hex}", ["exam.control"]) as consumer:
        assert consumer.consume(1, timeout_s=10) == []
        assert [d.error_class for d in consumer.dead_letters] == ["wrong_topic"]


def _end_offsets(kafka_bootstrap: str, topic: str, partitions: int) -> int:
    consumer = Consumer(
        {"bootstrap.servers": kafka_bootstrap, "group.id": f"it-{uuid.uuid4().hex}"}
    )
    total = 0
    for p in range(partitions):
        total += _high_watermark(consumer, TopicPartition(topic, p))
    consumer.close()
    return total


def _high_watermark(consumer: Consumer, tp: TopicPartition, attempts: int = 20) -> int:
    # A partition created moments ago may still be electing its leader on a loaded broker;
    # that answer (NOT_LEADER_FOR_PARTITION) is retriable, anything else is not.
    for attempt in range(attempts):
        try:
            return int(consumer.get_watermark_offsets(tp, timeout=10)[1])
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError.NOT_LEADER_FOR_PARTITION or attempt == attempts - 1:
                raise
            time.sleep(0.5)
    raise AssertionError("unreachable")


def test_publisher_cli_publishes_a_recording(
    env: Env, kafka_bootstrap: str, tmp_path: Path
) -> None:
    recording = tmp_path / "exam.jsonl"
    recording.write_text(
        "".join(
            line + "\n"
            for line in EXAMPLES.read_text().splitlines()
            if "criterion_transition" not in line
        )
    )
    base = [
        "--prefix",
        env.prefix,
        "--bootstrap",
        kafka_bootstrap,
        "--registry-url",
        env.settings.registry_url,
    ]
    result = subprocess.run(
        [*PROCTOR, "publish", "--file", str(recording), "--json", *base],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
    )
    assert result.returncode == 0, result.stderr
    landed = [json.loads(line) for line in result.stdout.splitlines()]
    events = read_jsonl(recording)
    assert sorted(d["event_id"] for d in landed) == sorted(e.event_id for e in events)
    assert f"published {len(events)} events" in result.stderr
    with EventConsumer(
        env.settings, f"it-{uuid.uuid4().hex}", [t.name for t in TOPICS]
    ) as consumer:
        received = consumer.consume(len(events), timeout_s=60)
    assert sorted(
        (e.event_id, e.data == {x.event_id: x for x in events}[e.event_id].data) for e in received
    ) == sorted((e.event_id, True) for e in events)
    # A single control event, with where it landed.
    one = subprocess.run(
        [
            *PROCTOR,
            "publish",
            "exam.ended",
            "--platform",
            "basecamp-alice",
            "--exam-id",
            "x1",
            *base,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
    )
    assert one.returncode == 0, one.stderr
    assert one.stdout.startswith("exam.ended ") and f"-> {env.prefix}exam.control/" in one.stdout


def test_a_bad_recording_sends_nothing(env: Env, kafka_bootstrap: str, tmp_path: Path) -> None:
    lines = [
        line
        for line in EXAMPLES.read_text().splitlines()
        if line.startswith('{"type":"exam.') or '"part.' in line
    ]
    bad = json.loads(lines[1])
    bad["part"] = 5
    recording = tmp_path / "exam.jsonl"
    recording.write_text("\n".join([lines[0], json.dumps(bad), *lines[2:]]) + "\n")
    result = subprocess.run(
        [
            *PROCTOR,
            "publish",
            "--file",
            str(recording),
            "--prefix",
            env.prefix,
            "--bootstrap",
            kafka_bootstrap,
            "--registry-url",
            env.settings.registry_url,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
    )
    assert result.returncode != 0
    assert "exam.jsonl line 2:" in result.stderr and "field 'part'" in result.stderr
    control = topic_name("exam.control", env.prefix)
    assert _end_offsets(kafka_bootstrap, control, TOPICS_BY_NAME["exam.control"].partitions) == 0


def test_consumers_of_every_input_topic_share_one_partition_per_platform(env: Env) -> None:
    platform = f"basecamp-{uuid.uuid4().hex[:6]}"
    events = [
        dataclasses.replace(e, platform_id=platform)
        for e in _examples()
        if e.type != "grading.dead_letter"
    ]
    with Publisher(env.settings) as publisher:
        deliveries = publisher.publish_many(events)
    input_deliveries = [d for d in deliveries if d.topic[len(env.prefix) :] in INPUT_TOPICS]
    assert len({d.partition for d in input_deliveries}) == 1
