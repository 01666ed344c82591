"""The producers of signals MAC what they send, through the real broker: the publisher
(polled collectors and heartbeats) and the receivers' acking sender; the worker's
admission check admits what comes back, and refuses it for another platform's key."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient

from services.collectors.webhook_delivery import AckingSender, OutRecord
from services.contract.admission import RecordFacts
from services.contract.dlq import RawRecord, safe_decode
from services.contract.registry import Registry
from services.contract.schemas import load_contract, topic_name
from services.contract.settings import ClientSettings
from services.contract.topics import ensure_topics
from services.contract.wire import WireCodec, registry_client
from services.core.events import Event
from services.publisher.publisher import Publisher
from services.trust.admission import TrustAdmission
from services.trust.credentials import SignalKey, SignalKeys
from services.trust.keys import Keyring
from services.trust.producing import RecordAuth
from services.trust.roster import RosterEntry
from tests.conftest import TrustEnv

pytestmark = pytest.mark.integration
TS = 1_790_000_000_000


@pytest.fixture
def prefix(kafka_bootstrap: str, registry_url: str) -> Iterator[str]:
    p = f"t{uuid.uuid4().hex[:8]}."
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    ensure_topics(admin, prefix=p)
    client = registry_client(registry_url)
    Registry(client, registry_url, load_contract(), p).register_all()
    yield p
    names = [n for n in admin.list_topics(timeout=10).topics if n.startswith(p)]
    for fut in admin.delete_topics(names, operation_timeout=30).values():
        fut.result(30)


def _read(bootstrap: str, topic: str, n: int) -> list[RawRecord]:
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"t-{uuid.uuid4().hex}",
            "auto.offset.reset": "earliest",
        }
    )
    consumer.subscribe([topic])
    out: list[RawRecord] = []
    try:
        for _ in range(60):
            msg = consumer.poll(1.0)
            if msg is None or msg.error():
                if len(out) >= n:
                    break
                continue
            out.append(
                RawRecord(
                    msg.topic() or "",
                    msg.partition() or 0,
                    msg.offset() or 0,
                    msg.key(),
                    msg.value(),
                    tuple(msg.headers() or ()),
                    msg.timestamp()[1],
                )
            )
    finally:
        consumer.close()
    return out


def _tool(pid: str, i: int) -> Event:
    return Event(
        "tool.used",
        pid,
        f"{pid}-{i}",
        TS + i,
        {"tool": "grafana", "action": "explore", "target": "Orders SLO", "user": "a"},
    )


def test_publisher_and_receiver_signals_are_admitted(
    kafka_bootstrap: str, registry_url: str, prefix: str, trust_env: TrustEnv
) -> None:
    codec = WireCodec(registry_client(registry_url), topic_prefix=prefix)
    settings = ClientSettings(kafka_bootstrap, registry_url, prefix)
    # a collector of one platform: only PROCTOR_SIGNAL_KEY, no signing key
    single = RecordAuth(
        None, SignalKeys(single=SignalKey.derive(trust_env.master, "basecamp-a", 1))
    )
    with Publisher(settings, codec=codec, auth=single) as pub:
        pub.publish_many([_tool("basecamp-a", 0), _tool("basecamp-a", 1)])
    # a receiver serving many platforms: the master secret
    sender = AckingSender(
        Producer({"bootstrap.servers": kafka_bootstrap}), signal_keys=SignalKeys(trust_env.master)
    )
    try:
        ev = _tool("basecamp-b", 2)
        topic = codec.topic_for(ev.type)
        sender.send_blocking([OutRecord(topic, b"basecamp-b", codec.encode(ev))], 30)
    finally:
        sender.close()

    records = _read(kafka_bootstrap, topic_name("platform.observability", prefix), 3)
    assert len(records) == 3
    roster = {p: RosterEntry(p, "x", p) for p in ("basecamp-a", "basecamp-b")}
    admission = TrustAdmission(Keyring.from_file(trust_env.keyring_path), roster, trust_env.master)
    for raw in records:
        event = safe_decode(raw, codec)
        assert isinstance(event, Event)
        facts = RecordFacts(
            raw.topic_name,
            0,
            raw.offset_no,
            raw.key_bytes,
            raw.value_bytes or b"",
            raw.header_list,
            raw.timestamp_ms,
        )
        assert admission.admit(event, facts) is None, event.event_id
        # the same record under another roster generation is refused
        roster[event.platform_id] = RosterEntry(event.platform_id, "x", "c", generation=2)
        refusal = admission.admit(event, facts)
        assert refusal is not None and refusal.error_class == "forbidden"
        roster[event.platform_id] = RosterEntry(event.platform_id, "x", event.platform_id)


def test_a_single_platform_collector_cannot_speak_for_another(
    kafka_bootstrap: str, registry_url: str, prefix: str, trust_env: TrustEnv
) -> None:
    from services.errors import ConfigError

    codec = WireCodec(registry_client(registry_url), topic_prefix=prefix)
    settings = ClientSettings(kafka_bootstrap, registry_url, prefix)
    single = RecordAuth(
        None, SignalKeys(single=SignalKey.derive(trust_env.master, "basecamp-a", 1))
    )
    with (
        Publisher(settings, codec=codec, auth=single) as pub,
        pytest.raises(ConfigError, match="cannot sign signals of 'basecamp-z'"),
    ):
        pub.publish(_tool("basecamp-z", 0))
