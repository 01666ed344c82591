"""Telemetry of the worker: Prometheus metrics, OpenTelemetry spans, JSON logs.

Instruments are created once, in :class:`Metrics`, on a registry of their own (tests make
as many workers as they like); dimensions go in labels, never in metric names. Each graded
record gets a span in its producer's trace (child of and linked to the producer's span)
when the record carries a W3C ``traceparent`` header; log lines carry the current trace
and span ids. The record's trace id (:func:`trace_id_of`, a header read, no span needed)
and the grading span's id go on every row the record produces, so a row in Iceberg leads
back to the trace of the signal that decided it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.propagate import extract
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF
from opentelemetry.trace import Link, Span
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

TRACER_NAME = "proctor.grader"


class Metrics:
    """Every metric of the worker, registered once."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.records = Counter(
            "proctor_grader_records",
            "Input records by topic and outcome",
            ["topic", "outcome"],
            registry=r,
        )
        self.grading_seconds = Histogram(
            "proctor_grader_grading_seconds",
            "Time to grade one record (decode to rows)",
            buckets=(0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5),
            registry=r,
        )
        self.batch_records = Histogram(
            "proctor_grader_batch_records",
            "Records per batch the worker takes from its stream",
            buckets=(1, 5, 10, 50, 100, 250, 500, 1000),
            registry=r,
        )
        self.dead_letters = Counter(
            "proctor_grader_dead_letters",
            "Records sent to the DLQ",
            ["topic", "error_class"],
            registry=r,
        )
        self.lag = Gauge(
            "proctor_grader_consumer_lag",
            "High watermark minus next offset",
            ["topic", "partition"],
            registry=r,
        )
        self.transitions = Counter(
            "proctor_grader_transitions", "Criterion changes produced", ["state"], registry=r
        )
        self.criteria = Gauge(
            "proctor_grader_criteria",
            "Criteria by latest state (seen by this worker)",
            ["state"],
            registry=r,
        )
        self.commit_seconds = Histogram(
            "proctor_grader_iceberg_commit_seconds",
            "Duration of one Iceberg commit",
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
            registry=r,
        )
        self.commit_rows = Counter(
            "proctor_grader_iceberg_commit_rows", "Rows committed to Iceberg", registry=r
        )
        self.commits = Counter(
            "proctor_grader_iceberg_commits", "Iceberg commits by outcome", ["outcome"], registry=r
        )
        self.state_records = Counter(
            "proctor_grader_state_records",
            "Grader state records (platforms and partition markers) written to the changelog",
            registry=r,
        )
        self.position_gaps = Counter(
            "proctor_grader_position_gaps",
            "Records that arrived past the state's position (the partition is read again)",
            ["topic"],
            registry=r,
        )
        self.buffered_rows = Gauge(
            "proctor_grader_sink_buffered_rows", "Rows waiting for the next commit", registry=r
        )
        self.maintenance_seconds = Histogram(
            "proctor_grader_maintenance_seconds",
            "Duration of a maintenance action",
            ["action"],
            buckets=(0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
            registry=r,
        )
        self.maintenance_runs = Counter(
            "proctor_grader_maintenance_runs",
            "Maintenance actions by outcome",
            ["action", "outcome"],
            registry=r,
        )
        self.table_files = Gauge(
            "proctor_grader_table_data_files", "Data files of the transitions table", registry=r
        )
        self.table_snapshots = Gauge(
            "proctor_grader_table_snapshots", "Snapshots of the transitions table", registry=r
        )

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


class CriterionStates:
    """Latest state per criterion seen by this worker, for the ``criteria`` gauge."""

    def __init__(self, gauge: Gauge) -> None:
        self._gauge = gauge
        self._latest: dict[str, str] = {}

    def update(self, key: str, state: str) -> None:
        previous = self._latest.get(key)
        if previous == state:
            return
        if previous is not None:
            self._gauge.labels(previous).dec()
        self._gauge.labels(state).inc()
        self._latest[key] = state


# --- tracing: spans per record, linked to their producers (services/tracing.py sets up) --
def _header_carrier(
    headers: Iterable[tuple[str, bytes | None]] | Mapping[str, Any] | None,
) -> dict[str, str]:
    items = headers.items() if isinstance(headers, Mapping) else (headers or ())
    out: dict[str, str] = {}
    for key, value in items:
        if value is None:
            continue
        out[str(key).lower()] = value.decode("latin-1") if isinstance(value, bytes) else str(value)
    return out


def _producer_context(headers: Any) -> Context | None:
    """The producer's context when the record carries valid W3C trace context (the same
    rule as :func:`trace_id_of`, looked at first: the propagator's parse costs)."""
    if trace_id_of(headers) is None:
        return None
    carrier = _header_carrier(headers)
    ctx: Context = extract(carrier)
    return ctx if trace.get_current_span(ctx).get_span_context().is_valid else None


def producer_link(headers: Any) -> list[Link]:
    """A link to the producer's span when the record carries W3C trace context."""
    ctx = _producer_context(headers)
    return [] if ctx is None else [Link(trace.get_current_span(ctx).get_span_context())]


#: a W3C ``traceparent``: version, trace id, parent span id, flags (what the
#: propagator accepts: lower-case hex, a later version may append ``-`` and more)
_TRACEPARENT = re.compile(
    rb"[ \t]*([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-[0-9a-f]{2}(-.*)?[ \t]*"
)
_ZERO_TRACE = b"0" * 32
_ZERO_SPAN = b"0" * 16


def trace_id_of(
    headers: Iterable[tuple[str, bytes | str | None]] | Mapping[str, Any] | None,
) -> str | None:
    """The trace id (32 lower-case hex) of a record's W3C ``traceparent`` header; None
    when it has none, or it is malformed or ambiguous (more than one; version ``ff``;
    an all-zero id; version 00 with more fields), as the W3C propagator decides.

    Per record on the worker's hot path: a scan of a few headers and one regex, no
    context or span (the propagator's parse cost several times that)."""
    found: bytes | str | None = None
    items = headers.items() if isinstance(headers, Mapping) else (headers or ())
    for key, value in items:
        if key == "traceparent" or (len(key) == 11 and key.lower() == "traceparent"):
            if found is not None or value is None:
                return None
            found = value
    if isinstance(found, str):
        found = found.encode("latin-1", "replace")
    if found is None:
        return None
    match = _TRACEPARENT.fullmatch(found)
    if match is None:
        return None
    version, trace_id, span_id, rest = match.groups()
    if version == b"ff" or (version == b"00" and rest) or trace_id == _ZERO_TRACE:
        return None
    if span_id == _ZERO_SPAN:
        return None
    return trace_id.decode("ascii")


def span_id_of(span: Span) -> str | None:
    """The id (16 lower-case hex) of a span that is recorded (and so exported); None for
    one that goes nowhere."""
    if not span.is_recording():
        return None
    return format(span.get_span_context().span_id, "016x")


#: a record's span when spans go nowhere: every call on it does nothing, and it is free
QUIET_SPAN: Span = trace.INVALID_SPAN


def records_spans(tracer: trace.Tracer) -> bool:
    """Whether ``tracer`` can record a span. An SDK tracer that samples nothing (no
    exporter configured, see :func:`setup_tracing`) cannot: the worker skips its
    per-record span then (starting one costs as much as admitting the record)."""
    return getattr(tracer, "sampler", None) is not ALWAYS_OFF


def record_span(
    tracer: trace.Tracer, topic: str, partition: int, offset: int, headers: Any
) -> Span:
    """A span for grading one record (the caller ends it). When the record carries W3C
    trace context the span is in the producer's trace (a child of its span, and linked
    to it), so the trace id on the record's rows finds it."""
    parent = _producer_context(headers)
    links = [] if parent is None else [Link(trace.get_current_span(parent).get_span_context())]
    return tracer.start_span(
        "grade record",
        context=parent,
        kind=trace.SpanKind.CONSUMER,
        links=links,
        attributes={
            "messaging.system": "kafka",
            "messaging.destination.name": topic,
            "messaging.kafka.destination.partition": partition,
            "messaging.kafka.message.offset": offset,
        },
    )
