"""A record's W3C trace context onto its rows: the trace id read from its ``traceparent``
(malformed or ambiguous: none), the grading span in the producer's trace, both ids on
every row through the pipeline, the state's JSON, the Arrow table, and a table made
before the columns existed gaining them by schema evolution."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from opentelemetry.propagate import extract
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from services.contract.dlq import RawRecord
from services.core.events import SourcePosition
from services.core.model import Transition
from services.grader.pipeline import BatchPipeline
from services.grader.row_table import (
    TRACE_COLUMNS,
    TRANSITIONS_PARTITION_SPEC,
    TRANSITIONS_SCHEMA,
    ensure_table,
    to_arrow,
    to_arrow_by_row,
)
from services.grader.rows import TransitionRow, to_row
from services.grader.telemetry import record_span, span_id_of, trace_id_of
from tests.unit.grader.test_pipeline import TOPIC, TS_MS, Rig

pytestmark = pytest.mark.unit

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_ID = "00f067aa0ba902b7"
PARENT = f"00-{TRACE_ID}-{PARENT_ID}-01"

#: what the W3C propagator refuses, and so the rows record as no trace
MALFORMED = {
    "garbage": [("traceparent", b"not a trace context")],
    "empty": [("traceparent", b"")],
    "none value": [("traceparent", None)],
    "zero trace id": [("traceparent", f"00-{'0' * 32}-{PARENT_ID}-01".encode())],
    "zero parent id": [("traceparent", f"00-{TRACE_ID}-{'0' * 16}-01".encode())],
    "version ff": [("traceparent", f"ff-{TRACE_ID}-{PARENT_ID}-01".encode())],
    "upper case": [("traceparent", PARENT.upper().encode())],
    "00 with more": [("traceparent", f"{PARENT}-more".encode())],
    "short id": [("traceparent", f"00-{TRACE_ID[:30]}-{PARENT_ID}-01".encode())],
    "not ascii": [("traceparent", "00-é".encode())],
    "two headers": [
        ("traceparent", PARENT.encode()),
        ("traceparent", f"00-{'5' * 32}-{PARENT_ID}-01".encode()),
    ],
}


@pytest.mark.parametrize(
    "headers",
    [
        [("traceparent", PARENT.encode())],
        [("h", b"v"), ("TraceParent", PARENT.encode()), ("tracestate", b"a=b")],
        [("traceparent", f" {PARENT} ".encode())],
        [("traceparent", f"01-{TRACE_ID}-{PARENT_ID}-01-later".encode())],
        {"traceparent": PARENT},
    ],
    ids=["plain", "any case, among others", "padded", "later version", "mapping"],
)
def test_the_trace_id_of_a_record(headers: Any) -> None:
    assert trace_id_of(headers) == TRACE_ID


@pytest.mark.parametrize("headers", list(MALFORMED.values()), ids=list(MALFORMED))
def test_a_malformed_or_ambiguous_traceparent_is_no_trace(headers: Any) -> None:
    assert trace_id_of(headers) is None


def test_without_traceparent_there_is_no_trace() -> None:
    assert trace_id_of([]) is None and trace_id_of(None) is None
    assert trace_id_of([("tracestate", b"a=b")]) is None


def test_the_rule_is_the_propagators_on_what_both_read() -> None:
    """Every value read here as a trace is one the W3C propagator reads the same."""
    for value in (PARENT, f"01-{TRACE_ID}-{PARENT_ID}-00-later"):
        from opentelemetry import trace

        ctx = trace.get_current_span(extract({"traceparent": value})).get_span_context()
        assert format(ctx.trace_id, "032x") == trace_id_of([("traceparent", value.encode())])
    for headers in MALFORMED.values():
        value = headers[-1][1]
        if value is None or len(headers) > 1:
            continue
        from opentelemetry import trace

        ctx = trace.get_current_span(extract({"traceparent": value.decode()})).get_span_context()
        assert not ctx.is_valid, value


def _spans() -> tuple[InMemorySpanExporter, TracerProvider]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return exporter, provider


def test_the_grading_span_is_a_child_of_the_producers_span() -> None:
    exporter, provider = _spans()
    span = record_span(provider.get_tracer("t"), TOPIC, 0, 1, [("traceparent", PARENT.encode())])
    span_id = span_id_of(span)
    span.end()
    (done,) = exporter.get_finished_spans()
    assert format(done.context.trace_id, "032x") == TRACE_ID
    assert done.parent is not None and format(done.parent.span_id, "016x") == PARENT_ID
    assert span_id == format(done.context.span_id, "016x")


def test_a_malformed_traceparent_gives_a_root_span() -> None:
    exporter, provider = _spans()
    for headers in MALFORMED.values():
        record_span(provider.get_tracer("t"), TOPIC, 0, 1, headers).end()
    spans = exporter.get_finished_spans()
    assert len(spans) == len(MALFORMED)
    assert all(s.parent is None and s.links == () for s in spans)
    assert all(format(s.context.trace_id, "032x") != TRACE_ID for s in spans)


def test_a_span_that_goes_nowhere_has_no_id_on_the_row() -> None:
    from opentelemetry.trace import INVALID_SPAN

    assert span_id_of(INVALID_SPAN) is None


def test_with_an_exporter_the_grading_span_is_recorded_under_an_unsampled_producer() -> None:
    """A collector without an exporter marks its context unsampled; the grader with one
    still records (and exports) its span, in that trace."""
    from services.tracing import EXPORT_SAMPLER

    exporter = InMemorySpanExporter()
    provider = TracerProvider(sampler=EXPORT_SAMPLER)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    unsampled = f"00-{TRACE_ID}-{PARENT_ID}-00"
    span = record_span(provider.get_tracer("t"), TOPIC, 0, 1, [("traceparent", unsampled.encode())])
    assert span.is_recording() and span_id_of(span) is not None
    span.end()
    (done,) = exporter.get_finished_spans()
    assert format(done.context.trace_id, "032x") == TRACE_ID


def _rec(offset: int, value: bytes, headers: list[tuple[str, bytes | None]]) -> RawRecord:
    return RawRecord(TOPIC, 0, offset, b"k", value, (("h", b"v"), *headers), TS_MS + 5)


@pytest.mark.parametrize("recorded", [False, True], ids=["spans off", "spans recorded"])
def test_rows_carry_their_records_trace_through_the_pipeline(recorded: bool) -> None:
    rig = Rig()
    exporter, provider = _spans()
    if recorded:
        rig.pipeline = BatchPipeline(
            rig.pipeline._codec,
            rig.admission,
            rig.assignments,
            rig.rewind,
            rig.sink,
            rig.outbox,
            rig.metrics,
            rig.thread,
            provider.get_tracer("t"),
        )
    rig.run(
        [
            _rec(0, b"p1/e0", [("traceparent", PARENT.encode())]),
            _rec(1, b"p1/e1", MALFORMED["two headers"]),
            _rec(2, b"p2/e2", []),
            _rec(3, b"p2/e3", MALFORMED["garbage"]),
        ]
    )
    rows = {r.criterion_id: r for r in rig.sink.rows}
    assert [rows[f"c.e{i}"].trace_id for i in range(4)] == [TRACE_ID, None, None, None]
    assert rig.outbox.dead == [], "a bad traceparent is no reason to dead-letter a record"
    assert rig.outcome("graded") == 4
    span_ids = [rows[f"c.e{i}"].grade_span_id for i in range(4)]
    if not recorded:
        assert span_ids == [None] * 4
        return
    spans = {format(s.context.span_id, "016x"): s for s in exporter.get_finished_spans()}
    assert len(spans) == 4 and set(span_ids) == set(spans)
    first = spans[span_ids[0]]  # type: ignore[index]
    assert first.parent is not None and format(first.parent.span_id, "016x") == PARENT_ID


def _row(**trace: str | None) -> TransitionRow:
    t = Transition(
        "exam-1", "cand", "p1", "y3-final", "1", "1", "c.1", "met", "pending", 1.0, 1.0, "seen",
        ("e1",), TS_MS,
    )  # fmt: skip
    return to_row(
        t,
        1,
        SourcePosition(TOPIC, 0, 7),
        "e1",
        TS_MS,
        (trace.get("trace_id"), trace.get("grade_span_id")),
    )


def test_the_trace_is_kept_with_the_row_but_is_not_the_change() -> None:
    row = _row(trace_id=TRACE_ID, grade_span_id=PARENT_ID)
    assert row.transition_id == _row().transition_id, "the same change, whatever its trace"
    again = TransitionRow.from_json_obj(row.to_json_obj())
    assert (again.trace_id, again.grade_span_id) == (TRACE_ID, PARENT_ID)
    old = row.to_json_obj()
    del old["trace_id"], old["grade_span_id"]  # kept by a worker before the columns
    assert TransitionRow.from_json_obj(old).trace_id is None


def test_the_arrow_table_carries_the_trace_columns() -> None:
    rows = [_row(trace_id=TRACE_ID, grade_span_id=PARENT_ID), _row()]
    fast, slow = to_arrow(rows), to_arrow_by_row(rows)
    assert fast.column("trace_id").to_pylist() == [TRACE_ID, None]
    assert fast.column("grade_span_id").to_pylist() == [PARENT_ID, None]
    assert fast.to_pylist() == slow.to_pylist()
    assert all(fast.schema.field(name).nullable for name in TRACE_COLUMNS)


def test_a_table_made_before_the_trace_columns_gains_them_without_a_rewrite(
    tmp_path: Path,
) -> None:
    from pyiceberg.catalog.sql import SqlCatalog
    from pyiceberg.schema import Schema

    catalog = SqlCatalog(
        "t", uri=f"sqlite:///{tmp_path}/catalog.db", warehouse=f"file://{tmp_path}/wh"
    )
    catalog.create_namespace("grading")
    old = Schema(*(f for f in TRANSITIONS_SCHEMA.fields if f.name not in TRACE_COLUMNS))
    table = catalog.create_table(
        "grading.criterion_transitions", schema=old, partition_spec=TRANSITIONS_PARTITION_SPEC
    )
    table.append(to_arrow([_row()], table.schema().as_arrow()))
    (before,) = [t.file.file_path for t in table.scan().plan_files()]
    ids_before = {f.name: f.field_id for f in table.schema().fields}

    evolved = ensure_table(catalog, "grading.criterion_transitions")
    fields = {f.name: f for f in evolved.schema().fields}
    assert all(name in fields and not fields[name].required for name in TRACE_COLUMNS)
    assert all(fields[n].field_id == i for n, i in ids_before.items()), "ids kept"
    assert len({f.field_id for f in fields.values()}) == len(fields), "new ids, none reused"
    assert [t.file.file_path for t in evolved.scan().plan_files()] == [before]
    evolved.append(to_arrow([_row(trace_id=TRACE_ID)], evolved.schema().as_arrow()))
    read = evolved.scan().to_arrow().sort_by([("trace_id", "ascending")])
    assert read.column("trace_id").to_pylist() == [TRACE_ID, None]
    assert isinstance(read, pa.Table)
    schema_id = evolved.schema().schema_id
    assert ensure_table(catalog, "grading.criterion_transitions").schema().schema_id == schema_id


def test_a_producer_without_a_tracer_still_starts_a_trace_the_grader_reads() -> None:
    """An entry point that set no tracer provider up: each record a new trace (not
    sampled); inside a caller's span (a receiver's request), the caller's trace."""
    from opentelemetry import trace
    from opentelemetry.trace import NoOpTracer

    from services.tracing import traced_headers

    sent: list[list[tuple[str, str | bytes | None]]] = [[], []]
    for headers in sent:
        with traced_headers("publish x", headers, {}, NoOpTracer()):
            pass
    ids = [trace_id_of(h) for h in sent]  # type: ignore[arg-type]
    assert None not in ids and ids[0] != ids[1]
    assert all(dict(h)["traceparent"].endswith(b"-00") for h in sent)  # type: ignore[union-attr]

    _exporter, provider = _spans()
    inside: list[tuple[str, str | bytes | None]] = []
    with (
        provider.get_tracer("t").start_as_current_span("request") as request,
        traced_headers("publish x", inside, {}, NoOpTracer()),
    ):
        pass
    assert trace_id_of(inside) == format(request.get_span_context().trace_id, "032x")  # type: ignore[arg-type]
    assert trace.get_current_span() is trace.INVALID_SPAN


def test_the_otlp_exporter_is_in_the_image_and_the_dev_environment() -> None:
    """A runtime dependency (not an extra), so the image's wheels carry it; the image
    installs the package with its dependencies; this environment imports it."""
    import re
    import tomllib

    root = Path(__file__).resolve().parents[3]
    deps = tomllib.loads((root / "pyproject.toml").read_text())["project"]["dependencies"]
    assert any(re.match(r"opentelemetry-exporter-otlp-proto-http\b", d) for d in deps)
    dockerfile = (root / "Dockerfile").read_text()
    assert "pip wheel --wheel-dir /wheels ." in dockerfile
    assert "--find-links /wheels --no-compile proctor" in dockerfile
    assert "--no-deps" not in dockerfile
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    assert OTLPSpanExporter is not None
