"""The secured broker refuses what a principal may not do, with the broker's own error.

A real Kafka (the stack's ``kafka-secure``: SASL/SCRAM-SHA-512 over TLS, StandardAuthorizer)
with the ACLs of :func:`services.stack.broker_acls.acl_plan` on this module's own topic
prefix. Each attack is a principal trying to say what it may not: a candidate writing a
control event or a platform signal, a collector writing a control event, the grader
forging one, a wrong password, a plaintext client. None reaches a topic, so none changes
a grade; the allowed paths are tested beside them so a broker that refused everything
would fail here too.
"""

from __future__ import annotations

import asyncio
import os
import socket
import struct
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer, TopicPartition
from confluent_kafka.admin import AclBindingFilter, AdminClient, NewTopic  # type: ignore[attr-defined]

from services.contract.schemas import CONTROL_TOPIC, STATES_TOPIC
from services.contract.settings import ClientSettings, KafkaSecurity
from services.stack.broker_acls import ROSTER_TOPIC, acl_bindings, acl_plan, apply_acls
from services.stack.kafka_secure import SecureKafkaComponent

pytestmark = [pytest.mark.adversarial, pytest.mark.integration]

SIGNAL_TOPIC = "platform.flink"


class Broker:
    """The secured broker and this module's topics on it."""

    def __init__(self, component: SecureKafkaComponent, prefix: str) -> None:
        self.component = component
        self.prefix = prefix
        self.grader_app = f"{prefix}grader"
        self.collector_group = f"{prefix}collector-"

    def topic(self, logical: str) -> str:
        return f"{self.prefix}{logical}"

    def config(self, principal: str, **extra: object) -> dict[str, Any]:
        return self.component.client_config(principal, **extra)


@pytest.fixture(scope="module")
def broker(stack: Any) -> Iterator[Broker]:
    """kafka-secure (started by the session if it was not running, stopped at its end
    only then), this module's topics and the ACLs of proctor's principals on them."""
    if os.environ.get("PROCTOR_STACK_MODE", "local").strip().lower() == "docker":
        pytest.skip("the secured broker is a local-stack component")
    stack.require("kafka-secure")
    component = stack.manager.get("kafka-secure")
    assert isinstance(component, SecureKafkaComponent)
    b = Broker(component, f"acl{uuid.uuid4().hex[:8]}.")
    admin = AdminClient(b.config("admin"))
    topics = [b.topic(t) for t in (CONTROL_TOPIC, ROSTER_TOPIC, SIGNAL_TOPIC, STATES_TOPIC)]
    futures = admin.create_topics([NewTopic(t, 1, 1) for t in topics], operation_timeout=30)
    for future in futures.values():
        future.result(timeout=30)
    grants = acl_plan(b.prefix, grader_app_id=b.grader_app, collector_group=b.collector_group)
    apply_acls(admin, grants)
    yield b
    filters = [
        AclBindingFilter(
            x.restype,
            x.name,
            x.resource_pattern_type,
            x.principal,
            x.host,
            x.operation,
            x.permission_type,
        )
        for x in acl_bindings(grants)
    ]
    for future in admin.delete_acls(filters, request_timeout=30).values():
        future.result(timeout=30)
    for future in admin.delete_topics(topics, operation_timeout=30).values():
        future.result(timeout=30)


def produce(
    config: dict[str, Any], topic: str, value: bytes = b"v"
) -> tuple[KafkaError | None, Message]:
    """Send one record; the delivery report's error (None when written) and message."""
    reports: list[tuple[KafkaError | None, Message]] = []
    producer = Producer({**config, "message.timeout.ms": 20000})
    producer.produce(topic, value, key=b"p1", on_delivery=lambda e, m: reports.append((e, m)))
    producer.flush(30)
    assert len(reports) == 1, "no delivery report within 30 s"
    return reports[0]


def read_all(broker: Broker, topic: str) -> list[bytes]:
    """Every value on partition 0 of ``topic``, read by the super user."""
    consumer = Consumer(
        broker.config(
            "admin",
            **{"group.id": "unused", "enable.auto.commit": False, "enable.partition.eof": True},
        )
    )
    values: list[bytes] = []
    try:
        consumer.assign([TopicPartition(topic, 0, 0)])
        while True:
            msg = consumer.poll(10)
            assert msg is not None, f"no end of {topic} within 10 s"
            err = msg.error()
            if err is not None:
                assert err.code() == KafkaError._PARTITION_EOF, err
                return values
            values.append(msg.value() or b"")
    finally:
        consumer.close()


# --- who may write a control event -----------------------------------------------------------
def test_proctor_from_the_environment_may_produce_to_exam_control(
    broker: Broker, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the path of every confluent-kafka client of the project: PROCTOR_KAFKA_* -> config
    for name, value in broker.component.client_env("proctor").items():
        monkeypatch.setenv(name, value)
    settings = ClientSettings.from_env(registry_url="http://unused")
    assert settings.kafka_security["security.protocol"] == "SASL_SSL"
    value = f"control-{uuid.uuid4().hex}".encode()
    err, msg = produce(
        settings.kafka_config(**{"enable.idempotence": True, "acks": "all"}),
        broker.topic(CONTROL_TOPIC),
        value,
    )
    assert err is None and msg.offset() is not None and msg.offset() >= 0
    assert value in read_all(broker, broker.topic(CONTROL_TOPIC))


def test_submission_endpoint_may_produce_to_exam_control(broker: Broker) -> None:
    err, _ = produce(broker.config("submission"), broker.topic(CONTROL_TOPIC))
    assert err is None


@pytest.mark.parametrize("idempotent", [False, True])
def test_candidate_is_refused_on_exam_control(broker: Broker, idempotent: bool) -> None:
    value = f"forged-{uuid.uuid4().hex}".encode()
    err, _ = produce(
        broker.config("candidate", **{"enable.idempotence": idempotent}),
        broker.topic(CONTROL_TOPIC),
        value,
    )
    assert err is not None and err.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED, err
    assert value not in read_all(broker, broker.topic(CONTROL_TOPIC))


def test_candidate_is_refused_on_platform_topics(broker: Broker) -> None:
    value = f"forged-signal-{uuid.uuid4().hex}".encode()
    err, _ = produce(broker.config("candidate"), broker.topic(SIGNAL_TOPIC), value)
    assert err is not None and err.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED, err
    assert value not in read_all(broker, broker.topic(SIGNAL_TOPIC))


def test_candidate_may_not_read_exam_control(broker: Broker) -> None:
    topic = broker.topic(CONTROL_TOPIC)
    assert produce(broker.config("proctor"), topic)[0] is None
    for principal, refused in (("grader", False), ("candidate", True)):
        consumer = Consumer(broker.config(principal, **{"group.id": "unused"}))
        try:
            meta = consumer.list_topics(topic, timeout=10).topics[topic]
            if not refused:  # the same request from the grader is served
                assert meta.error is None and len(meta.partitions) == 1
                assert consumer.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)[1] > 0
                continue
            assert meta.error is not None
            assert meta.error.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED, meta.error
            # with no partition to see, the candidate has nothing to fetch from
            with pytest.raises(KafkaException):
                consumer.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)
        finally:
            consumer.close()


def test_collector_is_refused_on_exam_control_and_allowed_on_platform(broker: Broker) -> None:
    value = f"collector-control-{uuid.uuid4().hex}".encode()
    err, _ = produce(broker.config("collector"), broker.topic(CONTROL_TOPIC), value)
    assert err is not None and err.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED, err
    assert value not in read_all(broker, broker.topic(CONTROL_TOPIC))
    signal = f"signal-{uuid.uuid4().hex}".encode()
    err, _ = produce(broker.config("collector"), broker.topic(SIGNAL_TOPIC), signal)
    assert err is None
    assert signal in read_all(broker, broker.topic(SIGNAL_TOPIC))


def test_collector_reads_back_its_platform_topic_as_a_poller_does(broker: Broker) -> None:
    # a poller finishing an interrupted batch: a consumer with its own group id, assigned
    signal = f"batch-{uuid.uuid4().hex}".encode()
    topic = broker.topic(SIGNAL_TOPIC)
    assert produce(broker.config("collector"), topic, signal)[0] is None
    group = f"{broker.collector_group}{uuid.uuid4().hex}"
    conf = {"group.id": group, "enable.auto.commit": False, "enable.partition.eof": True}
    consumer = Consumer(broker.config("collector", **conf))
    values: list[bytes] = []
    try:
        _, end = consumer.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)
        consumer.assign([TopicPartition(topic, 0, 0)])
        while True:
            msg = consumer.poll(10)
            assert msg is not None, "no end of the topic within 10 s"
            err = msg.error()
            if err is not None:
                assert err.code() == KafkaError._PARTITION_EOF, err
                break
            values.append(msg.value() or b"")
    finally:
        consumer.close()
    assert signal in values and len(values) == end


def test_collector_is_refused_on_the_roster_and_grading_topics(broker: Broker) -> None:
    for logical in (ROSTER_TOPIC, STATES_TOPIC):
        err, _ = produce(broker.config("collector"), broker.topic(logical))
        assert err is not None and err.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED, logical


# --- authentication and transport ------------------------------------------------------------
def test_wrong_password_is_refused_by_the_broker(broker: Broker) -> None:
    from aiokafka.conn import create_conn
    from aiokafka.errors import SaslAuthenticationFailed

    wrong = broker.component.security("proctor", password="not-the-password")

    async def connect() -> None:
        conn = await create_conn("127.0.0.1", broker.component.port, **wrong.aiokafka())
        conn.close()

    with pytest.raises(SaslAuthenticationFailed, match="invalid credentials"):
        asyncio.run(connect())
    # librdkafka reports the broker's refusal through its error callback
    errors: list[KafkaError] = []
    config = {
        "bootstrap.servers": broker.component.address,
        **wrong.librdkafka(),
        "error_cb": errors.append,
    }
    producer = Producer(config)
    producer.produce(broker.topic(CONTROL_TOPIC), b"x")
    producer.flush(10)
    auth = [e for e in errors if e.code() == KafkaError._AUTHENTICATION]
    assert auth and "invalid credentials" in auth[0].str(), errors


def test_unknown_user_is_refused(broker: Broker) -> None:
    from aiokafka.conn import create_conn
    from aiokafka.errors import SaslAuthenticationFailed

    stranger = KafkaSecurity(
        "SASL_SSL", "SCRAM-SHA-512", "mallory", "guess", str(broker.component.ca_file)
    )

    async def connect() -> None:
        conn = await create_conn("127.0.0.1", broker.component.port, **stranger.aiokafka())
        conn.close()

    with pytest.raises(SaslAuthenticationFailed):
        asyncio.run(connect())


def _api_versions(port: int) -> bytes:
    """Send a plaintext Kafka ApiVersions request (correlation id 7); the raw answer."""
    body = struct.pack(">hhih", 18, 0, 7, 5) + b"probe"
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(struct.pack(">i", len(body)) + body)
        data = b""
        while len(data) < 8:
            chunk = sock.recv(4096)
            if not chunk:
                break
            data += chunk
    return data


def test_plaintext_connection_to_the_tls_listener_fails(
    broker: Broker, kafka_bootstrap: str
) -> None:
    # the plaintext broker answers the request (correlation id 7): the probe is a valid one
    plain_port = int(kafka_bootstrap.rsplit(":", 1)[1])
    answer = _api_versions(plain_port)
    assert struct.unpack(">i", answer[4:8])[0] == 7
    # the TLS listener answers with a fatal TLS alert record, not a Kafka response
    answer = _api_versions(broker.component.port)
    assert answer[:1] == b"\x15" and answer[5:6] == b"\x02", answer
    # and a PLAINTEXT client never gets metadata from it
    admin = AdminClient({"bootstrap.servers": broker.component.address, "socket.timeout.ms": 3000})
    with pytest.raises(KafkaException) as failure:
        admin.list_topics(timeout=5)
    assert failure.value.args[0].code() in (KafkaError._TRANSPORT, KafkaError._TIMED_OUT)


def test_tls_without_the_stack_ca_fails_certificate_verification(broker: Broker) -> None:
    proctor = broker.component.security("proctor")
    no_ca = KafkaSecurity(
        proctor.protocol, proctor.mechanism, proctor.username, proctor.password, ca_location=None
    )
    errors: list[KafkaError] = []
    producer = Producer(
        {
            "bootstrap.servers": broker.component.address,
            **no_ca.librdkafka(),
            "error_cb": errors.append,
        }
    )
    producer.produce(broker.topic(CONTROL_TOPIC), b"x")
    producer.flush(10)
    assert any("certificate verify failed" in e.str() for e in errors), errors


# --- the grader ---------------------------------------------------------------------------------
def test_grader_consumes_inputs_and_writes_only_its_own_topics(
    broker: Broker, monkeypatch: pytest.MonkeyPatch
) -> None:
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
    from aiokafka import TopicPartition as AioTp
    from aiokafka.errors import TopicAuthorizationFailedError

    from services.grader.settings import GraderSettings

    control = f"c-{uuid.uuid4().hex}".encode()
    signal = f"s-{uuid.uuid4().hex}".encode()
    assert produce(broker.config("proctor"), broker.topic(CONTROL_TOPIC), control)[0] is None
    assert produce(broker.config("collector"), broker.topic(SIGNAL_TOPIC), signal)[0] is None
    # the grader's settings from the environment, as the worker reads them
    for name, value in broker.component.client_env("grader").items():
        monkeypatch.setenv(name, value)
    settings = GraderSettings(app_id=broker.grader_app)
    assert settings.aiokafka_auth()["broker_credentials"].username == "grader"
    auth = settings.kafka_security.aiokafka()
    inputs = [broker.topic(CONTROL_TOPIC), broker.topic(SIGNAL_TOPIC)]

    async def run() -> tuple[set[bytes], Any, Exception | None]:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=settings.kafka_bootstrap,
            group_id=broker.grader_app,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            **auth,
        )
        await consumer.start()
        seen: set[bytes] = set()
        try:
            consumer.assign([AioTp(t, 0) for t in inputs])
            for tp in consumer.assignment():
                await consumer.seek_to_beginning(tp)
            deadline = asyncio.get_running_loop().time() + 30
            while {control, signal} - seen and asyncio.get_running_loop().time() < deadline:
                batch = await consumer.getmany(timeout_ms=1000)
                seen |= {r.value for records in batch.values() for r in records if r.value}
            await consumer.commit()  # the grader's group is its own
        finally:
            await consumer.stop()
        producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, **auth)
        await producer.start()
        forged: Exception | None = None
        try:
            written = await producer.send_and_wait(broker.topic(STATES_TOPIC), b"state", key=b"k")
            try:
                await producer.send_and_wait(broker.topic(CONTROL_TOPIC), b"forged", key=b"k")
            except TopicAuthorizationFailedError as exc:
                forged = exc
        finally:
            await producer.stop()
        return seen, written, forged

    seen, written, forged = asyncio.run(run())
    assert {control, signal} <= seen
    assert written.topic == broker.topic(STATES_TOPIC) and written.offset >= 0
    assert isinstance(forged, TopicAuthorizationFailedError), forged
    assert b"forged" not in read_all(broker, broker.topic(CONTROL_TOPIC))


def test_the_grader_worker_runs_on_the_secured_broker_from_its_environment(
    broker: Broker, tmp_path: Path
) -> None:
    # Faust, as the worker builds it (GraderSettings -> aiokafka_auth), in its own process:
    # it joins its group, reads exam.control, declares and writes its table's changelog
    control = f"w-{uuid.uuid4().hex}"
    assert (
        produce(broker.config("proctor"), broker.topic(CONTROL_TOPIC), control.encode())[0] is None
    )
    env = {
        **os.environ,
        **broker.component.client_env("grader"),
        "PROCTOR_APP_ID": broker.grader_app,
        "PROCTOR_DATA_DIR": str(tmp_path / "worker"),
    }
    probe = Path(__file__).with_name("faust_probe.py")
    done = subprocess.run(
        [sys.executable, str(probe), broker.topic(CONTROL_TOPIC)],
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-3000:]
    assert f"RECORD {control}" in output
    assert "AuthorizationFailed" not in output and "SaslAuthentication" not in output
    changelog = f"{broker.grader_app}-platforms-changelog"
    admin = AdminClient(broker.config("admin"))
    assert changelog in admin.list_topics(timeout=10).topics
    assert control.encode() in read_all(broker, changelog)
    # the worker's own topics are not left behind
    made = [t for t in admin.list_topics(timeout=10).topics if t.startswith(broker.grader_app)]
    for future in admin.delete_topics(made, operation_timeout=30).values():
        future.result(timeout=30)
