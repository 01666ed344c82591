"""One span per graded record, linked to its producer's span when the record says which."""

from __future__ import annotations

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from services.errors import ConfigError
from services.grader.telemetry import record_span

pytestmark = pytest.mark.unit

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT = f"00-{TRACE_ID}-00f067aa0ba902b7-01"


@pytest.fixture
def spans() -> tuple[InMemorySpanExporter, TracerProvider]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return exporter, provider


@pytest.mark.parametrize(
    "headers",
    [
        (("traceparent", PARENT.encode()),),
        (("TraceParent", PARENT.encode()), ("other", None)),
        {"traceparent": PARENT},
    ],
    ids=["tuples", "any case", "mapping"],
)
def test_a_record_with_trace_context_links_its_producer(spans, headers) -> None:  # type: ignore[no-untyped-def]
    exporter, provider = spans
    record_span(provider.get_tracer("t"), "platform.flink", 3, 41, headers).end()
    (span,) = exporter.get_finished_spans()
    assert span.name == "grade record"
    assert [format(link.context.trace_id, "032x") for link in span.links] == [TRACE_ID]
    assert span.attributes is not None
    assert span.attributes["messaging.destination.name"] == "platform.flink"
    assert span.attributes["messaging.kafka.destination.partition"] == 3
    assert span.attributes["messaging.kafka.message.offset"] == 41


@pytest.mark.parametrize(
    "headers",
    [None, (), (("other", b"x"),), (("traceparent", b"not a trace context"),)],
    ids=["none", "empty", "unrelated", "malformed"],
)
def test_a_record_without_usable_trace_context_gets_a_span_without_links(spans, headers) -> None:  # type: ignore[no-untyped-def]
    exporter, provider = spans
    record_span(provider.get_tracer("t"), "exam.control", 0, 7, headers).end()
    (span,) = exporter.get_finished_spans()
    assert span.links == ()
    assert span.attributes is not None and span.attributes["messaging.kafka.message.offset"] == 7


def test_spans_are_recorded_only_when_they_go_somewhere(monkeypatch: pytest.MonkeyPatch) -> None:
    from services.tracing import setup_tracing

    monkeypatch.delenv("OTEL_TRACES_SAMPLER", raising=False)
    nowhere = setup_tracing("t", None).start_span("x")
    assert not nowhere.is_recording()
    monkeypatch.setenv("OTEL_TRACES_SAMPLER", "always_on")  # the SDK reads which sampler
    asked = setup_tracing("t", None, sampler="always_on").start_span("x")
    assert asked.is_recording()
    monkeypatch.delenv("OTEL_TRACES_SAMPLER")
    try:
        import opentelemetry.exporter.otlp.proto.http  # noqa: F401
    except ImportError:  # the exporter is an extra: without it an endpoint is an error
        with pytest.raises(ConfigError, match="pip install opentelemetry-exporter-otlp"):
            setup_tracing("t", "http://127.0.0.1:9/v1/traces")
    else:
        exported = setup_tracing("t", "http://127.0.0.1:9/v1/traces").start_span("x")
        assert exported.is_recording()
