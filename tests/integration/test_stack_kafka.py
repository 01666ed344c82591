"""The broker and registry of the stack behave as the grader relies on.

Real Kafka, real registry: Avro through the registry between two independent clients,
transactional isolation, and no implicit topic creation.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Callable

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer
from confluent_kafka.admin import AdminClient
from confluent_kafka.schema_registry import Schema
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.schema_registry.error import SchemaRegistryError
from confluent_kafka.serialization import MessageField, SerializationContext, SerializationError

from services.contract.wire import registry_client

pytestmark = pytest.mark.integration

SUBMISSION_V1 = {
    "type": "record",
    "name": "Submission",
    "namespace": "proctor.test",
    "fields": [
        {"name": "student", "type": "string"},
        {"name": "task", "type": "int"},
        {"name": "score", "type": ["null", "double"], "default": None},
    ],
}
#: adds a field with a default: BACKWARD compatible
SUBMISSION_V2 = {
    **SUBMISSION_V1,
    "fields": [*SUBMISSION_V1["fields"], {"name": "attempt", "type": "int", "default": 1}],
}
#: adds a field without a default: not BACKWARD compatible
SUBMISSION_BAD = {
    **SUBMISSION_V1,
    "fields": [*SUBMISSION_V1["fields"], {"name": "grader", "type": "string"}],
}


def _consume(bootstrap: str, topic: str, expected: int, **settings: object) -> list[bytes]:
    """Read from the start of ``topic`` until ``expected`` values or 30 s of polling."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"{topic}.reader",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            **settings,
        }
    )
    consumer.subscribe([topic])
    values: list[bytes] = []
    try:
        for _ in range(60):
            msg = consumer.poll(0.5)
            if msg is None:
                if len(values) >= expected:
                    break
                continue
            if msg.error():
                raise KafkaException(msg.error())
            value = msg.value()
            assert value is not None
            values.append(value)
    finally:
        consumer.close()
    return values


def test_avro_record_round_trips_through_registry(
    kafka_bootstrap: str,
    registry_url: str,
    new_topic: Callable[..., str],
) -> None:
    topic = new_topic("avro")
    subject = f"{topic}-value"
    writer_registry = registry_client(registry_url)
    schema_id = writer_registry.register_schema(subject, Schema(json.dumps(SUBMISSION_V1), "AVRO"))
    writer_registry.set_compatibility(subject, "BACKWARD")

    serializer = AvroSerializer(
        writer_registry,
        json.dumps(SUBMISSION_V1),
        conf={"auto.register.schemas": False, "use.latest.version": True},
    )
    record = {"student": "s-042", "task": 3, "score": 7.5}
    producer = Producer({"bootstrap.servers": kafka_bootstrap, "acks": "all"})
    producer.produce(
        topic, value=serializer(record, SerializationContext(topic, MessageField.VALUE))
    )
    assert producer.flush(15) == 0

    # A second client with its own registry connection decodes what the first wrote.
    (raw,) = _consume(kafka_bootstrap, topic, expected=1)
    magic, wire_id = struct.unpack(">bI", raw[:5])
    assert (magic, wire_id) == (0, schema_id)
    reader_registry = registry_client(registry_url)
    decoded = AvroDeserializer(reader_registry)(
        raw, SerializationContext(topic, MessageField.VALUE)
    )
    assert decoded == record

    latest = reader_registry.get_latest_version(subject)
    assert latest.schema_id == schema_id
    assert json.loads(latest.schema.schema_str)["name"] == "Submission"


def test_registry_enforces_backward_compatibility(
    registry_url: str, unique_name: Callable[[str], str]
) -> None:
    subject = f"{unique_name('compat')}-value"
    registry = registry_client(registry_url)
    first = registry.register_schema(subject, Schema(json.dumps(SUBMISSION_V1), "AVRO"))
    registry.set_compatibility(subject, "BACKWARD")
    assert registry.get_compatibility(subject) == "BACKWARD"

    assert registry.test_compatibility(subject, Schema(json.dumps(SUBMISSION_V2), "AVRO"))
    assert not registry.test_compatibility(subject, Schema(json.dumps(SUBMISSION_BAD), "AVRO"))
    with pytest.raises(SchemaRegistryError) as refused:
        registry.register_schema(subject, Schema(json.dumps(SUBMISSION_BAD), "AVRO"))
    assert refused.value.http_status_code == 409

    second = registry.register_schema(subject, Schema(json.dumps(SUBMISSION_V2), "AVRO"))
    assert second != first
    assert registry.get_latest_version(subject).version == 2


def test_serializer_rejects_record_not_matching_schema(
    registry_url: str, unique_name: Callable[[str], str]
) -> None:
    topic = unique_name("badrec")
    serializer = AvroSerializer(registry_client(registry_url), json.dumps(SUBMISSION_V1))
    # fastavro names the offending field; the record never reaches the broker.
    with pytest.raises((SerializationError, TypeError, ValueError), match="task"):
        serializer(
            {"student": "s-1", "task": "three"}, SerializationContext(topic, MessageField.VALUE)
        )


def test_read_committed_consumer_skips_aborted_records(
    kafka_bootstrap: str, new_topic: Callable[..., str]
) -> None:
    topic = new_topic("txn")
    producer = Producer(
        {"bootstrap.servers": kafka_bootstrap, "transactional.id": f"{topic}.producer"}
    )
    producer.init_transactions(30)
    for value, commit in ((b"committed-1", True), (b"aborted-1", False), (b"committed-2", True)):
        producer.begin_transaction()
        producer.produce(topic, value=value)
        producer.flush(15)
        if commit:
            producer.commit_transaction(30)
        else:
            producer.abort_transaction(30)

    committed = _consume(
        kafka_bootstrap, topic, expected=2, **{"isolation.level": "read_committed"}
    )
    assert committed == [b"committed-1", b"committed-2"]
    # The aborted record is really in the log: an uncommitted reader does see it.
    everything = _consume(
        kafka_bootstrap, topic, expected=3, **{"isolation.level": "read_uncommitted"}
    )
    assert everything == [b"committed-1", b"aborted-1", b"committed-2"]


def test_producing_to_missing_topic_fails_and_creates_nothing(
    kafka_bootstrap: str, unique_name: Callable[[str], str]
) -> None:
    topic = unique_name("missing")
    errors: list[KafkaError] = []
    producer = Producer(
        {
            "bootstrap.servers": kafka_bootstrap,
            "message.timeout.ms": 20000,
            # report a topic the broker does not know instead of waiting for it to appear
            "topic.metadata.propagation.max.ms": 1000,
        }
    )
    producer.produce(topic, value=b"x", on_delivery=lambda err, _msg: errors.append(err))
    producer.flush(30)
    assert len(errors) == 1 and errors[0] is not None
    assert errors[0].code() == KafkaError.UNKNOWN_TOPIC_OR_PART

    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    assert topic not in admin.list_topics(timeout=10).topics
