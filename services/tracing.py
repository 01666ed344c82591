"""Tracing shared by every service: the tracer provider, and W3C trace context on the
records a service produces.

Each entry point calls :func:`setup_tracing` with the settings' telemetry section
(``PROCTOR_OTLP_ENDPOINT``, ``OTEL_TRACES_SAMPLER``). The publisher (and so every
collector and receiver, which publish through it) opens a producer span per record and
writes its ``traceparent`` into the record's headers (:func:`traced_headers`); the grader
grades the record in a span of that trace (``services.grader.telemetry.record_span``)
and writes the trace id on the record's Iceberg rows. Without an endpoint spans are not
recorded, but their trace ids still travel; a producer whose entry point set no tracer
up still starts a trace per record.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.propagate import inject
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.id_generator import RandomIdGenerator
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ALWAYS_ON, ParentBased, Sampler

from services.errors import ConfigError
from services.settings import TelemetrySettings

TRACER_NAME = "proctor"

#: with an exporter: every span, in the trace of its parent when it has one
EXPORT_SAMPLER: Sampler = ParentBased(ALWAYS_ON, remote_parent_not_sampled=ALWAYS_ON)


def setup_tracing(
    service_name: str, otlp_endpoint: str | None, sampler: str | None = None
) -> trace.Tracer:
    """A tracer; spans go to an OTLP collector when an endpoint is configured.

    Without one, spans are not recorded (they would go nowhere, and recording one per
    record was a tenth of the worker's time); ``OTEL_TRACES_SAMPLER`` still decides when
    it is set (``sampler``: the settings' ``OTEL_TRACES_SAMPLER``).

    With an endpoint and no sampler asked for, a span whose remote parent was not sampled
    is recorded all the same (:data:`EXPORT_SAMPLER`): a collector without an exporter
    marks its records' context unsampled because nothing records its spans, not because
    it decided the trace should go unseen, and the grader's span of such a record must
    still be exported.
    """
    resource = Resource.create({"service.name": service_name})
    if sampler:
        provider = TracerProvider(resource=resource)  # the SDK reads OTEL_TRACES_SAMPLER
    elif otlp_endpoint:
        provider = TracerProvider(resource=resource, sampler=EXPORT_SAMPLER)
    else:
        provider = TracerProvider(resource=resource, sampler=ALWAYS_OFF)
    if otlp_endpoint:
        try:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
            from opentelemetry.sdk.trace.export import BatchSpanProcessor
        except ImportError as exc:
            raise ConfigError(
                "PROCTOR_OTLP_ENDPOINT is set but the OTLP exporter is missing: "
                "pip install opentelemetry-exporter-otlp-proto-http"
            ) from exc
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=otlp_endpoint)))
    trace.set_tracer_provider(provider)
    return provider.get_tracer(TRACER_NAME)


@contextmanager
def traced_headers(
    name: str,
    headers: list[tuple[str, str | bytes | None]],
    attributes: dict[str, str],
    tracer: trace.Tracer | None = None,
) -> Iterator[None]:
    """A producer span around sending one record, its W3C ``traceparent`` (and
    ``tracestate``) added to ``headers``. Without a tracer provider the span is invalid:
    the record then carries the caller's context, if it has one (a receiver's request),
    else a new trace of its own (flag: not sampled), so every record a proctor producer
    sends starts a trace whatever its entry point set up. ``tracer``: the global
    provider's by default."""
    tracer = tracer or trace.get_tracer(TRACER_NAME)
    outer = otel_context.get_current()
    with tracer.start_as_current_span(
        name, kind=trace.SpanKind.PRODUCER, attributes=attributes
    ) as span:
        carrier: dict[str, str] = {}
        if span.get_span_context().is_valid:
            inject(carrier)
        elif trace.get_current_span(outer).get_span_context().is_valid:
            inject(carrier, context=outer)
        else:
            carrier["traceparent"] = _new_traceparent()
        headers.extend((key, value.encode("latin-1")) for key, value in carrier.items())
        yield


_IDS = RandomIdGenerator()


def _new_traceparent() -> str:
    """A new trace's W3C ``traceparent``, not sampled (no span of it is recorded)."""
    return f"00-{_IDS.generate_trace_id():032x}-{_IDS.generate_span_id():016x}-00"


def setup_service_tracing(service_name: str, telemetry: TelemetrySettings) -> trace.Tracer:
    """:func:`setup_tracing` from the settings' telemetry section (an entry point's call)."""
    return setup_tracing(service_name, telemetry.otlp_endpoint, telemetry.traces_sampler)
