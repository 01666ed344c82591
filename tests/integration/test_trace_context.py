"""W3C trace context crosses the real broker: a record sent by the publisher (polled
collectors, ``proctor publish``, the simulator) or by the receivers' acking sender
carries its producer span's ``traceparent``, and the grader's span links to it."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from services.collectors.webhook_delivery import AckingSender, OutRecord
from services.contract.registry import Registry
from services.contract.schemas import load_contract, topic_name
from services.contract.settings import ClientSettings
from services.contract.topics import ensure_topics
from services.contract.wire import WireCodec, registry_client
from services.core.events import Event
from services.grader.telemetry import producer_link
from services.publisher.publisher import Publisher

pytestmark = pytest.mark.integration
TS = 1_790_000_000_000


@pytest.fixture
def prefix(kafka_bootstrap: str, registry_url: str) -> Iterator[str]:
    p = f"trace{uuid.uuid4().hex[:8]}."
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    ensure_topics(admin, prefix=p)
    Registry(registry_client(registry_url), registry_url, load_contract(), p).register_all()
    yield p
    names = [n for n in admin.list_topics(timeout=10).topics if n.startswith(p)]
    for fut in admin.delete_topics(names, operation_timeout=30).values():
        fut.result(30)


def _headers(bootstrap: str, topic: str, n: int) -> list[list[tuple[str, bytes]]]:
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"t-{uuid.uuid4().hex}",
            "auto.offset.reset": "earliest",
        }
    )
    consumer.subscribe([topic])
    out: list[list[tuple[str, bytes]]] = []
    try:
        for _ in range(60):
            msg = consumer.poll(1.0)
            if msg is not None and not msg.error():
                out.append(list(msg.headers() or ()))
            if len(out) >= n:
                break
    finally:
        consumer.close()
    return out


def _tool(pid: str, i: int) -> Event:
    return Event(
        "tool.used",
        pid,
        f"{pid}-{i}",
        TS + i,
        {"tool": "grafana", "action": "explore", "target": "t", "user": "a"},
    )


def test_published_and_received_records_carry_their_producer_span(
    kafka_bootstrap: str, registry_url: str, prefix: str
) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("test")
    codec = WireCodec(registry_client(registry_url), topic_prefix=prefix)
    settings = ClientSettings(kafka_bootstrap, registry_url, prefix)
    with Publisher(settings, codec=codec, auth=None, tracer=tracer) as pub:
        pub.publish_many([_tool("basecamp-a", 0), _tool("basecamp-a", 1)])
    published = {s.context.span_id for s in exporter.get_finished_spans()}
    assert len(published) == 2

    sender = AckingSender(Producer({"bootstrap.servers": kafka_bootstrap}), signal_keys=None)
    ev = _tool("basecamp-b", 2)
    try:
        with tracer.start_as_current_span("receive webhook") as request:
            sender.send_blocking(
                [OutRecord(codec.topic_for(ev.type), b"basecamp-b", codec.encode(ev))], 30
            )
    finally:
        sender.close()

    records = _headers(kafka_bootstrap, topic_name("platform.observability", prefix), 3)
    assert len(records) == 3
    links = [producer_link(h) for h in records]
    assert all(len(link) == 1 for link in links), records
    by_publisher = {link[0].context.span_id for link in links[:2]}
    assert by_publisher == published
    # the receiver's record belongs to the trace of the request it answered
    assert links[2][0].context.trace_id == request.get_span_context().trace_id
