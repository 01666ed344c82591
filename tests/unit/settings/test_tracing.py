"""W3C trace context on produced records, and the grader's link back to it."""

from __future__ import annotations

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF

from services.grader.telemetry import producer_link, record_span
from services.tracing import traced_headers

pytestmark = pytest.mark.unit


def test_a_record_carries_its_producer_span_and_the_grader_links_to_it() -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("t")
    headers: list[tuple[str, str | bytes | None]] = [("proctor-type", b"tool.used")]
    with traced_headers("publish tool.used", headers, {"messaging.system": "kafka"}, tracer):
        pass
    (produced,) = exporter.get_finished_spans()
    assert produced.kind == trace.SpanKind.PRODUCER
    names = [name for name, _ in headers]
    assert names[0] == "proctor-type" and "traceparent" in names  # the MAC headers stay first
    (link,) = producer_link(headers)
    assert link.context.trace_id == produced.context.trace_id
    assert link.context.span_id == produced.context.span_id
    record_span(tracer, "platform.observability", 0, 5, headers).end()
    graded = exporter.get_finished_spans()[-1]
    assert graded.links[0].context.span_id == produced.context.span_id


def test_unrecorded_spans_still_carry_their_trace_id() -> None:
    """Without an exporter spans are not recorded, but the ids travel, so a trace can be
    followed once one is configured downstream."""
    tracer = TracerProvider(sampler=ALWAYS_OFF).get_tracer("t")
    headers: list[tuple[str, str | bytes | None]] = []
    with traced_headers("publish x", headers, {}, tracer):
        current = trace.get_current_span().get_span_context()
    ((name, value),) = headers
    assert name == "traceparent" and isinstance(value, bytes)
    version, trace_id, span_id, flags = value.decode().split("-")
    assert version == "00" and int(flags, 16) & 1 == 0  # not sampled
    assert (int(trace_id, 16), int(span_id, 16)) == (current.trace_id, current.span_id)


def test_no_tracer_provider_still_starts_a_trace_per_record() -> None:
    """An entry point that set no tracer up: each record a new trace of its own, not
    sampled (nothing recorded its span), which the grader reads and links to."""
    sent: list[list[tuple[str, str | bytes | None]]] = [[], []]
    for headers in sent:
        with traced_headers("publish x", headers, {}, trace.NoOpTracer()):
            pass
    ids = set()
    for headers in sent:
        ((name, value),) = headers
        assert name == "traceparent" and isinstance(value, bytes)
        assert value.endswith(b"-00")  # not sampled
        (link,) = producer_link(headers)
        ids.add(link.context.trace_id)
    assert len(ids) == 2


def test_a_malformed_traceparent_links_to_nothing() -> None:
    assert producer_link([("traceparent", b"00-not-a-trace-01")]) == []


def test_without_a_provider_the_record_keeps_the_callers_trace() -> None:
    """A receiver answering a traced request, in a process with no tracer provider."""
    outer = TracerProvider().get_tracer("t")
    headers: list[tuple[str, str | bytes | None]] = []
    with (
        outer.start_as_current_span("request") as request,
        traced_headers("publish x", headers, {}, trace.NoOpTracer()),
    ):
        pass
    (link,) = producer_link(headers)
    assert link.context.trace_id == request.get_span_context().trace_id
