"""The push receivers on the real broker and registry.

Every test module run gets its own topic and subject prefix; records are read back from
the topics themselves. What is checked here is what a sender relies on: 2xx only once the
event is on the topic, 401 publishes nothing, 400 leaves a dead letter with the reason,
a retry carries the same event id, and a broker that does not acknowledge gives 503.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.schema_registry.error import SchemaRegistryError

from services.collectors.receivers import ALL_SOURCES
from services.collectors.webhook import Receiver, ReceiverSettings
from services.collectors.webhook_auth import derive_secret, secret_env, sign
from services.collectors.webhook_guard import StaticRoster
from services.collectors.webhook_run import BackgroundReceiver, build_receiver
from services.contract.registry import Registry
from services.contract.schemas import TOPICS_BY_NAME, load_contract, topic_name
from services.contract.settings import ClientSettings
from services.contract.topics import admin_client, delete_topics, ensure_topics
from services.contract.wire import WireCodec, registry_client
from services.core.events import Event

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "fixtures"
SECRET = "it-secret-" + "0123456789abcdef" * 2
PLATFORM = "basecamp-it"
TOPICS = (
    "platform.argocd",
    "platform.k8s-audit",
    "platform.gitops",
    "platform.openlineage",
    "platform.trino",
    "platform.collectors",
    "grading.dlq",
)
TYPES = [
    "argocd.sync",
    "k8s.audit",
    "gitops.merge",
    "openlineage.run",
    "trino.query",
    "collector.heartbeat",
    "grading.dead_letter",
]


@dataclass
class Rig:
    prefix: str
    settings: ClientSettings
    codec: WireCodec

    def topic(self, logical: str) -> str:
        return topic_name(logical, self.prefix)

    def end(self, logical: str) -> int:
        """Sum of the high watermarks: how many records the topic has ever taken."""
        name = self.topic(logical)
        consumer = Consumer(self.settings.kafka_config(**{"group.id": "unused"}))
        try:
            parts = consumer.list_topics(name, timeout=10).topics[name].partitions
            return sum(
                consumer.get_watermark_offsets(TopicPartition(name, p), timeout=10)[1]
                for p in parts
            )
        finally:
            consumer.close()

    def ends(self) -> dict[str, int]:
        return {t: self.end(t) for t in TOPICS}

    def read(self, logical: str) -> list[Event]:
        """Every event on the topic, decoded with the contract."""
        name = self.topic(logical)
        consumer = Consumer(
            self.settings.kafka_config(
                **{"group.id": f"read-{uuid.uuid4().hex}", "enable.auto.commit": False}
            )
        )
        try:
            parts = consumer.list_topics(name, timeout=10).topics[name].partitions
            ends = {}
            for p in parts:
                low, high = consumer.get_watermark_offsets(TopicPartition(name, p), timeout=10)
                if high > low:
                    ends[p] = high
            consumer.assign([TopicPartition(name, p, 0) for p in ends])
            events: list[Event] = []
            deadline = time.monotonic() + 30
            while ends and time.monotonic() < deadline:
                msg = consumer.poll(1.0)
                if msg is None:
                    continue
                err = msg.error()
                if err is not None:
                    assert err.code() == KafkaError._PARTITION_EOF, err
                    continue
                partition, offset = msg.partition() or 0, msg.offset() or 0
                events.append(self.codec.decode(msg.value(), name, partition, offset))
                if offset + 1 >= ends.get(partition, 0):
                    ends.pop(partition, None)
            assert not ends, f"could not read {name} to its end"
            return events
        finally:
            consumer.close()


def _wait_for_leaders(rig: Rig) -> None:
    """New topics answer offset requests only once every partition has its leader."""
    deadline = time.monotonic() + 30
    while True:
        try:
            rig.ends()
            return
        except KafkaException:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


@pytest.fixture(scope="module")
def rig(kafka_bootstrap: str, registry_url: str) -> Iterator[Rig]:
    prefix = f"it-rcv-{uuid.uuid4().hex[:8]}."
    settings = ClientSettings(kafka_bootstrap, registry_url, prefix)
    contract = load_contract()
    client = registry_client(registry_url)
    admin = admin_client(kafka_bootstrap)
    specs = [TOPICS_BY_NAME[t] for t in TOPICS]
    ensure_topics(admin, prefix=prefix, specs=specs)
    Registry(client, registry_url, contract, prefix).register_all(TYPES)
    rig = Rig(prefix, settings, WireCodec(client, contract, topic_prefix=prefix))
    _wait_for_leaders(rig)
    yield rig
    delete_topics(admin, [topic_name(t, prefix) for t in TOPICS])
    for event_type in TYPES:
        subject = contract.schema(event_type).subject(prefix)
        for permanent in (False, True):
            with contextlib.suppress(SchemaRegistryError):
                client.delete_subject(subject, permanent=permanent)


def _env() -> dict[str, str]:
    return {secret_env(s.name): SECRET for s in ALL_SOURCES}


def _receiver(settings: ClientSettings, **kwargs: object) -> Receiver:
    """The receiver of the sender-contract tests: shared-secret mode, two known platforms.

    Per-platform secrets (the default) and the roster are tested in the hardening section
    below and in tests/adversarial/test_receivers.py.
    """
    options: dict[str, object] = {"platforms": (PLATFORM,), "heartbeat_s": 3600.0, **kwargs}
    return build_receiver(
        ALL_SOURCES,
        settings,
        ReceiverSettings(**options),  # type: ignore[arg-type]
        per_platform_secrets=False,
        known_platforms=StaticRoster.of((PLATFORM, "basecamp-alice")),
        env=_env(),
    )


@pytest.fixture(scope="module")
def url(rig: Rig) -> Iterator[str]:
    receiver = _receiver(rig.settings)
    with BackgroundReceiver(receiver) as port:
        yield f"http://127.0.0.1:{port}"


def bearer(token: str = SECRET) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}


def github(body: bytes, event: str, secret: str = SECRET) -> dict[str, str]:
    return {
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": str(uuid.uuid4()),
        "X-Hub-Signature-256": sign(secret, body),
        "Content-Type": "application/json",
    }


def fixture(path: str) -> bytes:
    return (FIXTURES / path).read_bytes()


# ---- the receiver contract -----------------------------------------------------------------


def test_an_accepted_event_is_on_the_topic_before_the_answer(rig: Rig, url: str) -> None:
    before = rig.end("platform.argocd")
    body = fixture("argocd/notification-automated-succeeded.json")
    response = httpx.post(f"{url}/platforms/basecamp-alice/argocd", content=body, headers=bearer())
    assert response.status_code == 200, response.text
    # No waiting: the record was acknowledged before the answer was written.
    assert rig.end("platform.argocd") == before + 1
    answer = response.json()
    assert answer["accepted"] == 1 and answer["dead_lettered"] == 0
    (event,) = [e for e in rig.read("platform.argocd") if e.event_id == answer["event_ids"][0]]
    assert event.platform_id == "basecamp-alice"
    assert event.data["app"] == "orders-pipeline" and event.data["initiated_by"] == "automated"
    assert event.source is not None and event.source.topic == rig.topic("platform.argocd")


def test_a_resent_signed_delivery_is_refused_and_on_the_topic_once(rig: Rig, url: str) -> None:
    body = fixture("gitops/push-main.json")
    first = httpx.post(f"{url}/gitops", content=body, headers=github(body, "push"))
    assert first.status_code == 200
    # The same signed bytes under a new delivery id: GitHub's signature covers the body only.
    again = httpx.post(f"{url}/gitops", content=body, headers=github(body, "push"))
    assert again.status_code == 409
    event_id = first.json()["event_ids"][0]
    copies = [e for e in rig.read("platform.gitops") if e.event_id == event_id]
    assert len(copies) == 1
    assert copies[0].platform_id == PLATFORM  # posted without /platforms/<id>: the default


@pytest.mark.parametrize(
    ("path", "headers_for"),
    [
        ("/gitops", lambda body: github(body, "push", secret="wrong-secret-0123456789")),
        ("/gitops", lambda body: {"X-GitHub-Event": "push", "Content-Type": "application/json"}),
        ("/platforms/basecamp-alice/argocd", lambda body: bearer("wrong-token-0123456789")),
        ("/platforms/basecamp-alice/k8s-audit", lambda body: {"Content-Type": "application/json"}),
        ("/api/v1/lineage", lambda body: {"Authorization": f"Basic {SECRET}"}),
    ],
)
def test_bad_or_missing_authentication_is_401_and_publishes_nothing(
    rig: Rig, url: str, path: str, headers_for: object
) -> None:
    body = fixture("gitops/push-main.json")
    before = rig.ends()
    response = httpx.post(f"{url}{path}", content=body, headers=headers_for(body))  # type: ignore[operator]
    assert response.status_code == 401
    assert response.json()["error"]
    time.sleep(0.5)  # anything produced by mistake would have been acknowledged by now
    assert rig.ends() == before  # not the signal topic, not the DLQ, not a heartbeat


def test_a_malformed_payload_is_400_with_a_dead_letter(rig: Rig, url: str) -> None:
    before = rig.ends()
    body = b'{"kind": "proctor.argocd.sync/v1", "app": '  # cut off mid-document
    response = httpx.post(f"{url}/platforms/basecamp-alice/argocd", content=body, headers=bearer())
    assert response.status_code == 400
    reason = response.json()["error"]
    assert "not JSON" in reason
    assert rig.end("platform.argocd") == before["platform.argocd"]
    assert rig.end("grading.dlq") == before["grading.dlq"] + 1
    dead = [e for e in rig.read("grading.dlq") if e.data.get("raw_value") is not None]
    letter = next(
        e for e in dead if e.data["source"] == "webhook:argocd" and e.data["reason"] == reason
    )
    assert letter.platform_id == "basecamp-alice"
    assert letter.data["error_class"] == "corrupt_bytes"
    assert letter.data["raw_value"] == __import__("base64").b64encode(body).decode()
    header_keys = {h["key"] for h in letter.data["headers"]}
    assert "authorization" not in header_keys and "content-type" in header_keys


def test_a_payload_the_contract_refuses_is_400_with_a_dead_letter(rig: Rig, url: str) -> None:
    doc = json.loads(fixture("argocd/notification-manual-failed.json"))
    doc["phase"] = "Exploded"
    body = json.dumps(doc).encode()
    before = rig.end("grading.dlq")
    response = httpx.post(f"{url}/argocd", content=body, headers=bearer())
    assert response.status_code == 400
    assert "phase: 'Exploded' is not one of" in response.json()["error"]
    assert rig.end("grading.dlq") == before + 1


def test_an_audit_batch_with_one_bad_item_keeps_the_good_ones(rig: Rig, url: str) -> None:
    before = rig.ends()
    body = fixture("k8s-audit/eventlist-one-bad-item.json")
    response = httpx.post(
        f"{url}/platforms/basecamp-alice/k8s-audit", content=body, headers=bearer()
    )
    assert response.status_code == 200
    assert response.json() | {"event_ids": None} == {
        "accepted": 1,
        "event_ids": None,
        "dead_lettered": 1,
        "ignored": 0,
    }
    assert rig.end("platform.k8s-audit") == before["platform.k8s-audit"] + 1
    assert rig.end("grading.dlq") == before["grading.dlq"] + 1
    (letter,) = [e for e in rig.read("grading.dlq") if e.data["reason"] == "items[1].verb: missing"]
    raw = json.loads(__import__("base64").b64decode(letter.data["raw_value"]))
    assert raw["auditID"] == "3c8d0e5f-7a92-4b4c-8d3e-6f7a8b9c0d1e"


def test_deliveries_without_a_signal_are_accepted_and_publish_nothing(rig: Rig, url: str) -> None:
    before = rig.ends()
    ping = fixture("gitops/ping.json")
    response = httpx.post(f"{url}/gitops", content=ping, headers=github(ping, "ping"))
    assert response.status_code == 200 and response.json()["ignored"] == 1
    assert rig.ends() == before


def test_unknown_platform_paths_are_refused(url: str) -> None:
    response = httpx.post(f"{url}/platforms/bad%20id/argocd", content=b"{}", headers=bearer())
    assert response.status_code == 404
    assert "not a platform id" in response.json()["error"]


def test_metrics_and_health(url: str) -> None:
    assert httpx.get(f"{url}/healthz").json()["state"] == "serving"
    assert httpx.get(f"{url}/readyz").status_code == 200
    metrics = httpx.get(f"{url}/metrics").text
    assert 'proctor_webhook_requests_total{source="argocd",status="200"}' in metrics
    assert "proctor_webhook_auth_failures_total" in metrics
    assert 'proctor_webhook_events_published_total{source="gitops",type="gitops.merge"}' in metrics


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_a_broker_that_does_not_acknowledge_gives_503(rig: Rig, registry_url: str) -> None:
    down = ClientSettings(f"127.0.0.1:{_closed_port()}", registry_url, rig.prefix)
    receiver = _receiver(down, ack_timeout_s=2.0)
    with BackgroundReceiver(receiver) as port:
        body = fixture("argocd/notification-automated-succeeded.json")
        response = httpx.post(f"http://127.0.0.1:{port}/argocd", content=body, headers=bearer())
        assert response.status_code == 503
        assert response.headers["Retry-After"] == "5"
        assert "not acknowledged" in response.json()["error"]
        assert httpx.get(f"http://127.0.0.1:{port}/readyz").status_code == 503
        # A malformed payload cannot be dead-lettered either: 503, not a silent 400.
        bad = httpx.post(f"http://127.0.0.1:{port}/argocd", content=b"{", headers=bearer())
        assert bad.status_code == 503 and "cannot dead-letter" in bad.json()["error"]


def test_heartbeats_name_the_collector_and_platform(rig: Rig) -> None:
    receiver = _receiver(rig.settings, heartbeat_s=0.2)
    with BackgroundReceiver(receiver):
        deadline = time.monotonic() + 20
        beats: list[Event] = []
        while time.monotonic() < deadline:
            beats = [e for e in rig.read("platform.collectors") if e.platform_id == PLATFORM]
            if {b.data["collector"] for b in beats} >= {s.name for s in ALL_SOURCES}:
                break
            time.sleep(0.2)
    names = {b.data["collector"] for b in beats}
    assert names >= {"argocd", "k8s-audit", "gitops", "openlineage", "trino"}
    assert all(b.data["healthy"] is True and b.data["error"] is None for b in beats)
    assert all(b.data["source"].startswith("webhook http://127.0.0.1:") for b in beats)


def test_the_cli_serves_until_sigterm(rig: Rig, kafka_bootstrap: str, registry_url: str) -> None:
    port = _closed_port()
    env = {
        **os.environ,
        secret_env("argocd"): SECRET,
        "PROCTOR_KAFKA_BOOTSTRAP": kafka_bootstrap,
        "PROCTOR_SCHEMA_REGISTRY_URL": registry_url,
        "PROCTOR_TOPIC_PREFIX": rig.prefix,
    }
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "services.cli",
            "collect",
            "argocd",
            "--port",
            str(port),
            "--platform",
            "basecamp-cli",
        ],
        env=env,
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200:
                    break
            assert proc.poll() is None, proc.communicate()
            time.sleep(0.2)
        body = fixture("argocd/notification-manual-failed.json")
        # Per-platform secrets are the default: the platform's derived token is the one.
        shared = httpx.post(f"http://127.0.0.1:{port}/argocd", content=body, headers=bearer())
        assert shared.status_code == 401
        token = derive_secret(SECRET, "argocd", "basecamp-cli", 1)
        response = httpx.post(
            f"http://127.0.0.1:{port}/argocd", content=body, headers=bearer(token)
        )
        assert response.status_code == 200
        proc.send_signal(signal.SIGTERM)
        _out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
    finally:
        if proc.poll() is None:
            proc.kill()
    syncs = [e for e in rig.read("platform.argocd") if e.platform_id == "basecamp-cli"]
    assert [e.data["app"] for e in syncs] == ["trino-analyze"]
    beats = [e for e in rig.read("platform.collectors") if e.platform_id == "basecamp-cli"]
    assert beats and beats[-1].data["position"].startswith("1 events accepted")


# ---- OpenLineage with the real client ------------------------------------------------------


def _run_event(run_id: str, state: str = "COMPLETE") -> object:
    from openlineage.client.event_v2 import (
        InputDataset,
        Job,
        OutputDataset,
        Run,
        RunEvent,
        RunState,
    )

    return RunEvent(
        eventType=getattr(RunState, state),
        eventTime="2026-11-27T10:01:00.123456+00:00",
        run=Run(runId=run_id),
        job=Job(namespace="flink", name="orders-enrich"),
        producer="https://github.com/apache/flink",
        inputs=[InputDataset(namespace="kafka://redpanda:9092", name="cdc.public.orders")],
        outputs=[OutputDataset(namespace="iceberg://lake", name="lake.orders_enriched")],
    )


@pytest.mark.parametrize("compression", [None, "gzip"])
def test_openlineage_http_transport(rig: Rig, url: str, compression: str | None) -> None:
    from openlineage.client import OpenLineageClient
    from openlineage.client.transport.http import HttpConfig, HttpTransport

    config = HttpConfig.from_dict(
        {
            "type": "http",
            "url": f"{url}/platforms/basecamp-alice/",
            "auth": {"type": "api_key", "apiKey": SECRET},
            **({"compression": compression} if compression else {}),
        }
    )
    client = OpenLineageClient(transport=HttpTransport(config))
    run_id = str(uuid.uuid4())
    client.emit(_run_event(run_id))  # type: ignore[arg-type]
    runs = [e for e in rig.read("platform.openlineage") if e.data["run"]["runId"] == run_id]
    assert len(runs) == 1
    assert runs[0].platform_id == "basecamp-alice"
    assert runs[0].data["job"]["name"] == "orders-enrich"
    assert runs[0].data["outputs"][0]["name"] == "lake.orders_enriched"


def test_openlineage_http_transport_with_a_wrong_key_publishes_nothing(rig: Rig, url: str) -> None:
    from openlineage.client import OpenLineageClient
    from openlineage.client.transport.http import HttpConfig, HttpTransport

    config = HttpConfig.from_dict(
        {
            "type": "http",
            "url": f"{url}/",
            "auth": {"type": "api_key", "apiKey": "not-the-key-123456"},
        }
    )
    before = rig.end("platform.openlineage")
    with pytest.raises(Exception, match="401"):
        OpenLineageClient(transport=HttpTransport(config)).emit(_run_event(str(uuid.uuid4())))  # type: ignore[arg-type]
    assert rig.end("platform.openlineage") == before


def test_openlineage_kafka_transport_bridge(
    rig: Rig, kafka_bootstrap: str, new_topic: object
) -> None:
    from openlineage.client import OpenLineageClient
    from openlineage.client.transport.kafka import KafkaConfig, KafkaTransport

    from services.collectors.openlineage_kafka import LineageBridge

    source = new_topic("ol-source", partitions=2)  # type: ignore[operator]
    transport = KafkaTransport(
        KafkaConfig(config={"bootstrap.servers": kafka_bootstrap}, topic=source, flush=True)
    )
    client = OpenLineageClient(transport=transport)
    run_ids = [str(uuid.uuid4()), str(uuid.uuid4())]
    client.emit(_run_event(run_ids[0], "START"))  # type: ignore[arg-type]
    client.emit(_run_event(run_ids[1], "COMPLETE"))  # type: ignore[arg-type]
    garbage = Producer({"bootstrap.servers": kafka_bootstrap})
    garbage.produce(source, key=b"run:flink/orders-enrich", value=b"\x00not json")
    garbage.flush(10)
    group = f"it-bridge-{uuid.uuid4().hex[:8]}"

    def bridge(settings: ClientSettings) -> LineageBridge:
        return LineageBridge(
            settings,
            source_bootstrap=kafka_bootstrap,
            topic=source,
            group_id=group,
            platform_id="basecamp-alice",
            send_timeout_s=3.0,
        )

    def drain(b: LineageBridge) -> tuple[int, int]:
        published = dead = 0
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and published + dead < 3:
            result = b.poll_once(1.0)
            published, dead = published + result.published, dead + result.dead_lettered
        return published, dead

    # A bridge whose broker never acknowledges reads the records, fails, commits nothing.
    down = bridge(
        ClientSettings(f"127.0.0.1:{_closed_port()}", rig.settings.registry_url, rig.prefix)
    )
    try:
        with pytest.raises(Exception, match="not acknowledged"):
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                down.poll_once(1.0)
    finally:
        down._stop.set()
        down.consumer.close()
        down.sender.producer.purge()
        down.sender.close(1.0)

    # The next bridge of the same group reads them all again: nothing skipped.
    first = bridge(rig.settings)
    try:
        assert drain(first) == (2, 1)
        first.heartbeat()
    finally:
        first.stop()
    runs = [e for e in rig.read("platform.openlineage") if e.data["run"]["runId"] in run_ids]
    assert sorted(e.data["eventType"] for e in runs) == ["COMPLETE", "START"]
    letters = [e for e in rig.read("grading.dlq") if e.data.get("source_topic") == source]
    assert len(letters) == 1 and letters[0].data["error_class"] == "corrupt_bytes"
    assert letters[0].platform_id == "run:flink/orders-enrich"  # the record's own key
    beats = [e for e in rig.read("platform.collectors") if e.data["source"].endswith(source)]
    assert beats and beats[-1].data["healthy"] is True

    # Restarted after committing: only what came since is read, nothing twice.
    later = str(uuid.uuid4())
    client.emit(_run_event(later, "COMPLETE"))  # type: ignore[arg-type]
    again = bridge(rig.settings)
    try:
        published = 0
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and published == 0:
            result = again.poll_once(1.0)
            assert result.dead_lettered == 0
            published += result.published
        assert published == 1
        assert again.poll_once(2.0).records == 0
    finally:
        again.stop()
    mine = [
        e for e in rig.read("platform.openlineage") if e.data["run"]["runId"] in {*run_ids, later}
    ]
    assert len(mine) == 3


# ---- Trino's HTTP event listener, on the real Trino -----------------------------------------


def test_the_trino_http_event_listener_plugin_posts_to_the_receiver(
    rig: Rig, stack_config: object
) -> None:
    """The plugin Trino loads (its own factory, HTTP client and JSON codec), configured from
    the properties the stack writes, posting two completed queries to a receiver."""
    from services.stack import jvm, maven
    from services.stack.trino import (
        FULL_SERVER_ARTIFACT,
        JAVA_MAJOR,
        event_listener_properties,
        install_dir,
        install_event_listener,
        render_properties,
    )

    home = install_dir()
    if not (home / "lib").is_dir():
        pytest.skip(f"Trino is not installed at {home} (`proctor stack up trino`)")
    plugin = install_event_listener(maven.fetch(FULL_SERVER_ARTIFACT, print), home, print)
    java = jvm.java(stack_config.java25_home, JAVA_MAJOR)  # type: ignore[attr-defined]
    token = uuid.uuid4().hex * 2
    receiver = build_receiver(
        [s for s in ALL_SOURCES if s.name == "trino"],
        rig.settings,
        ReceiverSettings(platforms=("basecamp-listener",), heartbeat_s=3600.0),
        per_platform_secrets=False,  # the stack's one Trino: a single-platform deployment
        env={secret_env("trino"): token},
    )
    with BackgroundReceiver(receiver) as port, contextlib.ExitStack() as stack:
        props = event_listener_properties(stack_config, token)  # type: ignore[arg-type]
        props["http-event-listener.connect-ingest-uri"] = f"http://127.0.0.1:{port}/trino"
        path = Path(stack.enter_context(_tempdir())) / "http-event-listener.properties"
        path.write_text(render_properties(props))
        done = subprocess.run(
            [
                str(java),
                "-cp",
                f"{plugin}/*:{home}/lib/*",
                str(FIXTURES / "trino" / "java" / "TrinoEvents.java"),
                "post",
                str(path),
                f"http://127.0.0.1:{port}/metrics",
            ],
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, done.stderr[-3000:]
    queries = {
        e.data["query_id"]: e
        for e in rig.read("platform.trino")
        if e.platform_id == "basecamp-listener"
    }
    select = queries["20261127_112500_00042_abcde"]
    assert select.data["columns"] == [
        "iceberg.lake.orders_enriched.email",
        "iceberg.lake.orders_enriched.order_id",
    ]
    assert select.ts_ms == 1795778700187
    denied = queries["20261127_113000_00051_abcde"]
    assert (denied.data["state"], denied.data["error_code"]) == ("FAILED", "PERMISSION_DENIED")


@contextlib.contextmanager
def _tempdir() -> Iterator[str]:
    import tempfile

    with tempfile.TemporaryDirectory() as name:
        yield name


def _listener_problem(config: object) -> str | None:
    """Why the running Trino does not post to a receiver here, or None when it does."""
    from services.stack.trino import EVENT_LISTENER_PLUGIN, TrinoComponent

    component = TrinoComponent(config)  # type: ignore[arg-type]
    pid = component.pid()
    server_config = component.etc_dir / "config.properties"
    if pid is None or not server_config.is_file():
        return "Trino is not running"
    if "event-listener.config-files" not in server_config.read_text():
        return (
            f"Trino's {EVENT_LISTENER_PLUGIN} plugin was not installed when Trino was prepared "
            "(services.stack.trino.install_event_listener), so Trino posts no query events"
        )
    if Path(f"/proc/{pid}").stat().st_ctime < server_config.stat().st_mtime:
        return "Trino was started before its event listener was configured; restart Trino"
    return None


def test_trino_queries_arrive_from_the_real_event_listener(
    rig: Rig, stack: object, trino_connection: object, iceberg_namespace: str
) -> None:
    from services.stack.catalog import TRINO_USER
    from services.stack.trino import EVENT_LISTENER_PORT, TrinoComponent

    config = stack.config  # type: ignore[attr-defined]
    problem = _listener_problem(config)
    if problem is not None:
        pytest.skip(problem)
    token = TrinoComponent(config).event_listener_token()
    receiver = build_receiver(
        [s for s in ALL_SOURCES if s.name == "trino"],
        rig.settings,
        ReceiverSettings(
            port=EVENT_LISTENER_PORT, platforms=("basecamp-trino",), heartbeat_s=3600.0
        ),
        per_platform_secrets=False,  # the stack's one Trino: a single-platform deployment
        env={secret_env("trino"): token},
    )
    table = f"iceberg.{iceberg_namespace}.orders"
    with BackgroundReceiver(receiver):
        cur = trino_connection.cursor()  # type: ignore[attr-defined]
        cur.execute(f"CREATE TABLE {table} AS SELECT 1 AS order_id, 'a@example.com' AS email")
        cur.fetchall()
        cur.execute(f"SELECT email FROM {table}")
        assert cur.fetchall() == [["a@example.com"]]
        select_id = cur.query_id
        with pytest.raises(Exception, match="does not exist"):
            cur.execute(f"SELECT nothing FROM iceberg.{iceberg_namespace}.missing")
            cur.fetchall()
        failed_id = cur.query_id
        wanted = {select_id, failed_id}
        deadline = time.monotonic() + 60
        found: dict[str, Event] = {}
        while time.monotonic() < deadline and set(found) != wanted:
            found = {
                e.data["query_id"]: e
                for e in rig.read("platform.trino")
                if e.data["query_id"] in wanted
            }
            time.sleep(0.5)
    assert set(found) == wanted, "Trino did not post both queries to the receiver"
    select = found[select_id]
    assert select.platform_id == "basecamp-trino"
    assert (select.data["user"], select.data["state"]) == (TRINO_USER, "FINISHED")
    assert select.data["tables"] == [table]
    assert select.data["columns"] == [f"{table}.email"]
    failed = found[failed_id]
    assert (failed.data["state"], failed.data["error_code"]) == ("FAILED", "TABLE_NOT_FOUND")


# ---- hardening: per-platform secrets, other Git hosts, timeouts, replays ---------------------


@pytest.fixture(scope="module")
def strict_url(rig: Rig) -> Iterator[str]:
    """The default deployment: per-platform secrets, the roster's platforms only."""
    receiver = build_receiver(
        ALL_SOURCES,
        rig.settings,
        ReceiverSettings(heartbeat_s=3600.0, body_timeout_s=1.0),
        known_platforms=StaticRoster.of(("basecamp-strict",)),
        env=_env(),
    )
    with BackgroundReceiver(receiver) as port:
        yield f"http://127.0.0.1:{port}"


def _own(source: str) -> str:
    return derive_secret(SECRET, source, "basecamp-strict", 1)


def test_gitlab_token_and_gogs_signature_are_checked_per_platform(
    rig: Rig, strict_url: str
) -> None:
    body = fixture("gitops/ping.json")
    url = f"{strict_url}/platforms/basecamp-strict/gitops"
    before = rig.ends()
    wrong = {"X-Gitlab-Event": "System Hook", "X-Gitlab-Token": SECRET}  # the master: no
    assert httpx.post(url, content=body, headers=wrong).status_code == 401
    gogs_wrong = {"X-Gogs-Event": "ping", "X-Gogs-Signature": sign(SECRET, body, prefix="")}
    assert httpx.post(url, content=body, headers=gogs_wrong).status_code == 401
    assert rig.ends() == before
    gitlab = {
        "X-Gitlab-Event": "System Hook",
        "X-Gitlab-Token": _own("gitops"),
        "X-Gitlab-Event-UUID": str(uuid.uuid4()),
    }
    assert httpx.post(url, content=body, headers=gitlab).status_code != 401
    gogs = {
        "X-Gogs-Event": "ping",
        "X-Gogs-Delivery": str(uuid.uuid4()),
        "X-Gogs-Signature": sign(_own("gitops"), body, prefix=""),
    }
    first = httpx.post(url, content=body, headers=gogs)
    assert first.status_code != 401, first.text
    replay = httpx.post(url, content=body, headers=gogs)
    assert replay.status_code == 409


def test_a_platform_outside_the_roster_is_404_and_leaves_no_state(
    rig: Rig, strict_url: str
) -> None:
    body = fixture("argocd/notification-automated-succeeded.json")
    before = rig.ends()
    token = derive_secret(SECRET, "argocd", "basecamp-elsewhere", 1)
    response = httpx.post(
        f"{strict_url}/platforms/basecamp-elsewhere/argocd", content=body, headers=bearer(token)
    )
    assert response.status_code == 404
    assert "roster" in response.json()["error"]
    time.sleep(0.5)
    assert rig.ends() == before


def test_a_body_that_does_not_arrive_in_time_is_408(rig: Rig, strict_url: str) -> None:
    port = int(strict_url.rsplit(":", 1)[1])
    before = rig.ends()
    with socket.create_connection(("127.0.0.1", port), timeout=15) as sock:
        sock.sendall(
            b"POST /platforms/basecamp-strict/argocd HTTP/1.1\r\nHost: x\r\n"
            + f"Authorization: Bearer {_own('argocd')}\r\n".encode()
            + b'Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"kind"'
        )
        answer = sock.recv(200)
    assert answer.startswith(b"HTTP/1.1 408"), answer
    assert rig.ends() == before


def test_an_authentic_body_over_the_cap_is_413_with_a_dead_letter(
    rig: Rig, strict_url: str
) -> None:
    body = b'{"pad": "' + b"y" * (2 * 1024 * 1024) + b'"}'
    before = rig.ends()
    response = httpx.post(
        f"{strict_url}/platforms/basecamp-strict/k8s-audit",
        content=body,
        headers=bearer(_own("k8s-audit")),
    )
    assert response.status_code == 413
    assert rig.end("grading.dlq") == before["grading.dlq"] + 1
    assert rig.end("platform.k8s-audit") == before["platform.k8s-audit"]
    (letter,) = [
        e
        for e in rig.read("grading.dlq")
        if e.data["source"] == "webhook:k8s-audit" and e.data["error_class"] == "oversized"
    ]
    raw = __import__("base64").b64decode(letter.data["raw_value"])
    assert len(raw) == 1024 * 1024 and "truncated" in letter.data["reason"]


def test_a_delivery_answered_503_may_be_retried(rig: Rig, registry_url: str) -> None:
    down = ClientSettings(f"127.0.0.1:{_closed_port()}", registry_url, rig.prefix)
    receiver = _receiver(down, ack_timeout_s=1.0)
    with BackgroundReceiver(receiver) as port:
        body = fixture("argocd/notification-automated-succeeded.json")
        headers = {**bearer(), "X-Proctor-Delivery": "delivery-1"}
        first = httpx.post(f"http://127.0.0.1:{port}/argocd", content=body, headers=headers)
        again = httpx.post(f"http://127.0.0.1:{port}/argocd", content=body, headers=headers)
    assert first.status_code == again.status_code == 503  # not 409: the retry is let in
