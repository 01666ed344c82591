"""Telemetry of the worker: Prometheus metrics, OpenTelemetry spans, JSON logs.

Instruments are created once, in :class:`Metrics`, on a registry of their own (tests make
as many workers as they like); dimensions go in labels, never in metric names. Each graded
record gets a span linked to the producer's span when the record carries a W3C
``traceparent`` header; log lines carry the current trace and span ids.
"""

from __future__ import annotations

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


def producer_link(headers: Any) -> list[Link]:
    """A link to the producer's span when the record carries W3C trace context (looked
    for first: the propagator's parse costs, and most records carry none)."""
    carrier = _header_carrier(headers)
    if "traceparent" not in carrier:
        return []
    ctx: Context = extract(carrier)
    span_context = trace.get_current_span(ctx).get_span_context()
    return [Link(span_context)] if span_context.is_valid else []


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
    """A span for grading one record (the caller ends it), linked to its producer's span
    when the record carries W3C trace context."""
    return tracer.start_span(
        "grade record",
        kind=trace.SpanKind.CONSUMER,
        links=producer_link(headers),
        attributes={
            "messaging.system": "kafka",
            "messaging.destination.name": topic,
            "messaging.kafka.destination.partition": partition,
            "messaging.kafka.message.offset": offset,
        },
    )
