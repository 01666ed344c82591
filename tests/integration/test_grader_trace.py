"""A signal's trace from the publisher through ``proctor worker`` to its Iceberg row, on
the real stack (broker, registry, Iceberg JDBC catalog, Trino).

Three exams of a recorded Part 2 scenario: two published by the real publisher with a
tracer (each record carries its producer span's W3C ``traceparent``), one produced with
the same signatures and MACs but a malformed ``traceparent`` on every record. The worker
exports its spans to a small OTLP/HTTP receiver of the test (``PROCTOR_OTLP_ENDPOINT``,
the real ``opentelemetry-exporter-otlp-proto-http``), into a transitions table made by
an earlier version, without the trace columns. Required:

- the table gained ``trace_id`` and ``grade_span_id`` by schema evolution, its earlier
  data file untouched and its row null in both;
- every row of a traced record carries its producer span's trace id, and the id of an
  exported ``grade record`` span of that trace whose parent is the producer's span;
- every row of a record with a malformed ``traceparent`` has a null trace id; none of
  those records is dead-lettered, and all three exams equal ``proctor replay --json``.
"""

from __future__ import annotations

import gzip
import itertools
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Producer
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from pyiceberg.catalog import Catalog
from pyiceberg.schema import Schema
from trino.dbapi import Connection

from services.contract.jsonl import read_jsonl
from services.core.events import Event, SourcePosition
from services.grader.row_table import (
    TRACE_COLUMNS,
    TRANSITIONS_PARTITION_SPEC,
    TRANSITIONS_SCHEMA,
    TRANSITIONS_SORT_ORDER,
    to_arrow,
)
from services.grader.rows import TransitionRow
from services.publisher.publisher import Publisher
from services.stack.catalog import TRINO_CATALOG
from tests.integration.grader.live import (
    SCENARIOS,
    LiveExam,
    comparable,
    replay_json,
    settle,
    trino_scores,
    wait_for,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SCENARIO = "p2_cdc_dropped_events.jsonl"
TRACED = ("alice", "carol")
UNTRACED = "bob"
LEGACY_EXAM = "exam-legacy"
#: traceparent values the W3C propagator refuses (each record of the untraced exam gets
#: one in turn; the last entry stands for two traceparent headers on one record)
MALFORMED: list[list[bytes]] = [
    [b"not a trace context"],
    [b"00-" + b"0" * 32 + b"-00f067aa0ba902b7-01"],  # all-zero trace id
    [b"00-4bf92f3577b34da6a3ce929d0e0e4736-" + b"0" * 16 + b"-01"],  # all-zero parent
    [b"ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"],  # forbidden version
    [b"00-4BF92F3577B34DA6A3CE929D0E0E4736-00F067AA0BA902B7-01"],  # upper-case hex
    [b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra"],  # 00 with more
    [b"00-4bf92f3577b34da6a3ce929d0e0e47-00f067aa0ba902b7-01"],  # short trace id
    [b""],
    [
        b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        b"00-5bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
    ],
]


class Receiver:
    """An OTLP/HTTP trace receiver on a free port: it keeps every span it is sent."""

    def __init__(self) -> None:
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
            ExportTraceServiceRequest,
            ExportTraceServiceResponse,
        )

        spans: list[Any] = []
        lock = threading.Lock()
        ok = ExportTraceServiceResponse().SerializeToString()

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                request = ExportTraceServiceRequest()
                request.ParseFromString(body)
                with lock:
                    for resource in request.resource_spans:
                        for scope in resource.scope_spans:
                            spans.extend(scope.spans)
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(ok)))
                self.end_headers()
                self.wfile.write(ok)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._spans, self._lock = spans, lock
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1/traces"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def spans(self) -> list[Any]:
        with self._lock:
            return list(self._spans)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    try:
        yield r
    finally:
        r.close()


@pytest.fixture
def live(
    kafka_bootstrap: str,
    registry_url: str,
    iceberg_namespace: str,
    tmp_path: Path,
    trino_connection: Connection,
) -> Iterator[LiveExam]:
    exam = LiveExam(kafka_bootstrap, registry_url, iceberg_namespace, tmp_path)
    try:
        yield exam
    finally:
        exam.close()
        print(exam.log_tails())


def _events(name: str) -> list[Event]:
    """The scenario's events of one of its candidates."""
    return [e for e in read_jsonl(SCENARIOS / SCENARIO) if e.platform_id == f"basecamp-{name}"]


def _legacy_table(catalog: Catalog, identifier: str) -> str:
    """The transitions table as an earlier version made it (no trace columns), with one
    row in one data file; returns that file's path."""
    old = Schema(*(f for f in TRANSITIONS_SCHEMA.fields if f.name not in TRACE_COLUMNS))
    table = catalog.create_table(
        identifier,
        schema=old,
        partition_spec=TRANSITIONS_PARTITION_SPEC,
        sort_order=TRANSITIONS_SORT_ORDER,
        properties={"format-version": "2"},
    )
    row = TransitionRow(
        exam_id=LEGACY_EXAM,
        candidate_id="legacy",
        platform_id="basecamp-legacy",
        rubric_id="y3-final",
        rubric_version="1",
        part=1,
        criterion_id="p1.legacy",
        state="met",
        previous_state=None,
        score=1.0,
        max_score=1.0,
        reason="graded before rows carried their trace",
        event_ts_ms=1_790_000_000_000,
        graded_at_ms=1_790_000_000_000,
        source=SourcePosition("legacy.topic", 0, 0),
        seq=1,
    )
    table.append(to_arrow([row], table.schema().as_arrow()))
    (task,) = table.scan().plan_files()
    return task.file.file_path


def _query(conn: Connection, sql: str) -> list[list[Any]]:
    cur = conn.cursor()
    cur.execute(sql)
    rows: list[list[Any]] = cur.fetchall()
    return rows


def test_rows_carry_the_trace_of_their_source_record(
    live: LiveExam,
    receiver: Receiver,
    iceberg_catalog: Catalog,
    trino_connection: Connection,
    tmp_path: Path,
) -> None:
    table_id = f"{live.namespace}.criterion_transitions"
    legacy_file = _legacy_table(iceberg_catalog, table_id)

    # the traced exams through the real publisher, each record in its producer span
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    traced = [e for name in TRACED for e in _events(name)]
    with Publisher(
        live.client_settings(), codec=live.codec, tracer=provider.get_tracer("test")
    ) as pub:
        deliveries = pub.publish_many(traced)
    producer_spans = exporter.get_finished_spans()
    assert len(producer_spans) == len(deliveries) == len(traced)
    #: source position -> (trace id, producer span id)
    sent: dict[tuple[str, int, int], tuple[str, str]] = {}
    for delivery, span in zip(deliveries, producer_spans, strict=True):
        assert span.name == f"publish {delivery.type}"
        sent[(delivery.topic, delivery.partition, delivery.offset)] = (
            format(span.context.trace_id, "032x"),
            format(span.context.span_id, "016x"),
        )

    # the untraced exam: authentic records, each with a malformed traceparent
    untraced = _events(UNTRACED)
    malformed: set[tuple[str, int, int]] = set()

    def landed(err: Any, msg: Any) -> None:
        assert err is None, err
        malformed.add((msg.topic(), msg.partition(), msg.offset()))

    producer = Producer({"bootstrap.servers": live.bootstrap, "partitioner": "murmur2_random"})
    for (topic, key, value, headers), bad in zip(
        live.authenticated(untraced), itertools.cycle(MALFORMED), strict=False
    ):
        producer.produce(
            topic,
            key=key,
            value=value,
            headers=[*headers, *(("traceparent", v) for v in bad)],
            on_delivery=landed,
        )
    assert producer.flush(30) == 0
    assert len(malformed) == len(untraced)

    live.start_worker(PROCTOR_OTLP_ENDPOINT=receiver.url)
    recording = tmp_path / "recording.jsonl"
    recording.write_text(
        "".join(
            line + "\n"
            for line in (SCENARIOS / SCENARIO).read_text().splitlines()
            if any(f"basecamp-{n}" in line for n in (*TRACED, UNTRACED))
        )
    )
    expected = comparable(replay_json(recording))
    assert len(expected) == 3

    def scores() -> dict[str, Any]:
        got = trino_scores(trino_connection, live.namespace)
        got.pop(LEGACY_EXAM, None)
        return got

    got = settle(scores, expected, live.procs, 300)
    assert got == expected, "a traceparent, good or bad, changed a grade"

    table = f"{TRINO_CATALOG}.{live.namespace}.criterion_transitions"
    rows = _query(
        trino_connection,
        f"SELECT exam_id, source_topic, source_partition, source_offset, trace_id, "
        f"grade_span_id FROM {table}",
    )
    # the legacy row: untouched file, null in the new columns
    assert [r[4:] for r in rows if r[0] == LEGACY_EXAM] == [[None, None]]
    evolved = iceberg_catalog.load_table(table_id)
    assert [f.name for f in evolved.schema().fields][-2:] == list(TRACE_COLUMNS)
    assert legacy_file in {t.file.file_path for t in evolved.scan().plan_files()}

    # a row belongs to the record whose processing produced it (a time box closed by
    # another platform's record is that record's): its trace is that record's
    graded = [r for r in rows if r[0] != LEGACY_EXAM]
    from_traced = [r for r in graded if tuple(r[1:4]) in sent]
    from_malformed = [r for r in graded if tuple(r[1:4]) in malformed]
    assert len(from_traced) + len(from_malformed) == len(graded), "a row of an unknown record"
    assert from_traced and from_malformed
    for exam_id, topic, partition, offset, trace_id, _span in from_traced:
        assert trace_id == sent[(topic, partition, offset)][0], (exam_id, topic, offset)
    assert [r for r in from_malformed if r[4] is not None] == []

    # the grading spans went to the OTLP endpoint, in the producers' traces
    def exported() -> dict[str, Any]:
        return {s.span_id.hex(): s for s in receiver.spans() if s.name == "grade record"}

    wanted = {r[5] for r in graded}
    assert None not in wanted, "a row without its grading span's id (spans are recorded)"
    wait_for(lambda: wanted <= set(exported()), 90, "the grading spans exported", live.procs)
    spans = exported()
    for exam_id, topic, partition, offset, trace_id, span_id in from_traced:
        span = spans[span_id]
        assert span.trace_id.hex() == trace_id
        assert span.parent_span_id.hex() == sent[(topic, partition, offset)][1], exam_id
        assert [link.span_id.hex() for link in span.links] == [span.parent_span_id.hex()]
    for row in from_malformed:
        span = spans[row[5]]
        assert not span.parent_span_id and not span.links, "a malformed traceparent was used"

    # none of the malformed-traceparent records was dead-lettered
    assert live.dead_letters(expect=0, timeout_s=5) == []
    assert live.metric("proctor_grader_records_total", outcome="dead_letter") == 0
