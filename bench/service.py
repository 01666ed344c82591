"""Benchmark of the grader service on the local stack, beside a plain consumer in the same run.

    .venv/bin/python bench/service.py [--signals 200000] [--platforms 50] [--runs 3]
                                      [--fresh-rate 4] [--fresh-seconds 30] [--core 1]

One recording of ``--signals`` platform signals over ``--platforms`` exams (the
grading core's load exam, interleaved by event time) is published in advance to a topic
prefix of its own. Then, on one core (``--core``):

* the ceiling: a plain confluent-kafka consumer reads every input topic from the start
  and decodes each record with the contract's wire codec (median of ``--runs``);
* the worker: ``proctor worker`` (real engine, default commit settings) started as a
  process pinned to the same core; sustained events/s from its first to its last record
  (its ``proctor_grader_records_total``), and the time from start to all consumed;
* freshness: with the worker caught up, a short exam of a new platform (exam.started,
  then exam.ended, which closes every criterion) at ``--fresh-rate``/s for
  ``--fresh-seconds``; from exam.ended acknowledged to the first transition row with its
  source position visible in Trino (p50, p99);
* Iceberg commits and data files added per minute (snapshot summaries), and the
  worker's peak RSS (VmHWM);
* where the worker's time goes: the same records through the worker's per-record path
  in this process on the same core, without Faust or Kafka (wire decode, then the
  partition grader with a span per record), so the gap between the two is the cost of
  the stream machinery.

Everything it creates (topics, subjects' prefix, group, namespace) is its own; the
namespace and topics are removed at the end.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
import zlib
from pathlib import Path

import httpx
from confluent_kafka import Consumer
from confluent_kafka.admin import AdminClient
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF

from services.contract.registry import Registry
from services.contract.schemas import INPUT_TOPICS, PLATFORM_PARTITIONS, load_contract, topic_name
from services.contract.settings import ClientSettings
from services.contract.topics import ensure_topics
from services.contract.wire import WireCodec, registry_client
from services.core.engine_store import EngineStore
from services.core.events import Event, SourcePosition
from services.grader.grading import PartitionGrader
from services.grader.telemetry import record_span
from services.offline.scenarios import load_exam
from services.publisher.publisher import Publisher
from services.stack.catalog import TRINO_CATALOG, load_catalog, trino_connect
from services.stack.config import REPO_ROOT, StackConfig


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def recording(signals: int, platforms: int) -> list[Event]:
    """``platforms`` load exams of ``signals / platforms`` signals each, by event time."""
    per = max(1, signals // platforms)
    events: list[Event] = []
    for p in range(platforms):
        events.extend(load_exam(per, seed=p, platform_id=f"basecamp-b{p:03d}"))
    events.sort(key=lambda e: e.ts_ms)  # stable: each platform keeps its own order
    return events


def ceiling(bootstrap: str, topics: list[str], codec: WireCodec, total: int) -> float:
    """Events/s of consume + wire decode of every record, from the first to the last."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"bench-ceiling-{uuid.uuid4().hex}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe(topics)
    n, start = 0, None
    try:
        while n < total:
            msgs = consumer.consume(1000, 1.0)
            for msg in msgs:
                if msg.error():
                    continue
                if start is None:
                    start = time.perf_counter()
                codec.decode(msg.value(), msg.topic(), msg.partition(), msg.offset())
                n += 1
    finally:
        consumer.close()
    assert start is not None
    return n / (time.perf_counter() - start)


def in_process(events: list[Event], codec: WireCodec) -> tuple[float, float, float]:
    """The worker's per-record path without Faust or Kafka, on the same records: wire
    decode, then the partition grader (engine and watermark), with a span per record as
    the worker makes it. Returns microseconds per record: (decode, grade, all)."""
    store = EngineStore()
    graders = {p: PartitionGrader(p, store) for p in range(PLATFORM_PARTITIONS)}
    encoded = [(codec.topic_for(e.type), e.platform_id, codec.encode(e)) for e in events]
    offsets: dict[tuple[str, int], int] = {}
    tracer = TracerProvider(sampler=ALWAYS_OFF).get_tracer("bench")
    decode_s = grade_s = 0.0
    start = time.perf_counter()
    for topic, platform_id, value in encoded:
        p = zlib.crc32(platform_id.encode()) % PLATFORM_PARTITIONS
        offset = offsets[(topic, p)] = offsets.get((topic, p), -1) + 1
        span = record_span(tracer, topic, p, offset, ())
        t0 = time.perf_counter()
        event = codec.decode(value, topic, p, offset)
        t1 = time.perf_counter()
        graders[p].handle(event, SourcePosition(topic, p, offset))
        grade_s += time.perf_counter() - t1
        decode_s += t1 - t0
        span.end()
    n = len(encoded)
    return 1e6 * decode_s / n, 1e6 * grade_s / n, 1e6 * (time.perf_counter() - start) / n


def scrape(port: int) -> dict[str, float]:
    """Sums of the worker's counters that the bench reads, by metric name."""
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    out: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("#") or not line:
            continue
        name, _, value = line.rpartition(" ")
        base = name.split("{", 1)[0]
        if base in ("proctor_grader_records_total", "proctor_grader_iceberg_commits_total"):
            if base.endswith("commits_total") and 'outcome="ok"' not in name:
                continue
            out[base] = out.get(base, 0.0) + float(value)
    return out


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--signals", type=int, default=200_000)
    ap.add_argument("--platforms", type=int, default=50)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--fresh-rate", type=float, default=4.0)
    ap.add_argument("--fresh-seconds", type=float, default=30.0)
    ap.add_argument("--core", type=int, default=1)
    args = ap.parse_args()

    config = StackConfig.from_env()
    # the worker grades only signed and MACed input (docs/trust.md): the local stack's keys
    from services.trust.local import ensure_local_trust

    for name, value in ensure_local_trust(config.state_dir / "keys").items():
        os.environ.setdefault(name, value)
    bootstrap, registry_url = config.kafka_bootstrap, config.registry_url
    prefix = f"b{uuid.uuid4().hex[:8]}."
    app_id = f"bench-grader-{uuid.uuid4().hex[:8]}"
    namespace = f"bench_{uuid.uuid4().hex[:8]}"
    client = registry_client(registry_url)
    contract = load_contract()
    Registry(client, registry_url, contract, prefix).register_all()
    codec = WireCodec(client, contract, topic_prefix=prefix)
    admin = AdminClient({"bootstrap.servers": bootstrap})
    ensure_topics(admin, prefix=prefix)
    catalog = load_catalog(config)
    catalog.create_namespace(namespace)
    topics = [topic_name(t, prefix) for t in INPUT_TOPICS]
    tmp = Path(tempfile.mkdtemp(prefix="bench-service-"))
    worker: subprocess.Popen[bytes] | None = None
    try:
        events = recording(args.signals, args.platforms)
        total = len(events)
        t0 = time.perf_counter()
        settings = ClientSettings(bootstrap, registry_url, prefix)
        with Publisher(settings, codec=codec) as pub:
            pub.publish_many(events, timeout_s=600)
        print(f"published {total} events in {time.perf_counter() - t0:.1f} s", flush=True)

        mine = os.sched_getaffinity(0)
        os.sched_setaffinity(0, {args.core})
        rates = [ceiling(bootstrap, topics, codec, total) for _ in range(args.runs)]
        os.sched_setaffinity(0, mine)
        plain = statistics.median(rates)
        print(f"ceiling runs: {[round(r) for r in rates]} events/s", flush=True)

        port = free_port()
        env = dict(os.environ)
        env.update(
            PROCTOR_KAFKA_BOOTSTRAP=bootstrap,
            PROCTOR_SCHEMA_REGISTRY_URL=registry_url,
            PROCTOR_TOPIC_PREFIX=prefix,
            PROCTOR_APP_ID=app_id,
            PROCTOR_DATA_DIR=str(tmp / "state"),
            PROCTOR_TABLE=f"{namespace}.criterion_transitions",
            PROCTOR_CATALOG_URI=config.catalog_uri,
            PROCTOR_WAREHOUSE=config.warehouse,
            PROCTOR_TRINO_URL=config.trino_url,
            PROCTOR_HTTP_PORT=str(port),
            PROCTOR_LOG_LEVEL="WARNING",
            PROCTOR_MAINTENANCE_INTERVAL_S="3600",
        )
        log = open(tmp / "worker.log", "wb")  # noqa: SIM115
        started = time.perf_counter()
        worker = subprocess.Popen(
            ["taskset", "-c", str(args.core), sys.executable, "-m", "services.cli", "worker"],
            env=env,
            stdout=log,
            stderr=log,
            cwd=REPO_ROOT,
        )
        first_at: float | None = None
        first_n = 0.0
        done = 0.0
        while done < total:
            if worker.poll() is not None:
                raise SystemExit(f"worker exited {worker.returncode}; see {tmp / 'worker.log'}")
            time.sleep(0.2)
            with contextlib.suppress(httpx.HTTPError):
                done = scrape(port).get("proctor_grader_records_total", 0.0)
                if first_at is None and done > 0:
                    first_at, first_n = time.perf_counter(), done
        end = time.perf_counter()
        assert first_at is not None
        sustained = (done - first_n) / max(1e-9, end - first_at)
        to_all = end - started
        print(f"worker consumed {int(done)} records in {to_all:.1f} s from start", flush=True)

        fresh = freshness(config, codec, prefix, namespace, args.fresh_rate, args.fresh_seconds)
        metrics = scrape(port)
        elapsed_min = (time.perf_counter() - started) / 60
        table = catalog.load_table(f"{namespace}.criterion_transitions")
        summaries = [s.summary for s in table.snapshots() if s.summary is not None]
        files_added = sum(
            int(s.additional_properties.get("added-data-files", 0)) for s in summaries
        )
        rss = peak_rss_mb(worker.pid)
        commits = metrics.get("proctor_grader_iceberg_commits_total", 0.0)

        os.sched_setaffinity(0, {args.core})
        decode_us, grade_us, all_us = in_process(events, codec)
        os.sched_setaffinity(0, mine)
        worker_us = 1e6 / sustained

        rows = [
            ("events", f"{total}"),
            ("plain consume+decode, events/s (median)", f"{plain:,.0f}"),
            ("worker sustained, events/s", f"{sustained:,.0f}"),
            ("worker / plain", f"{sustained / plain:.3f}"),
            ("worker, us per record", f"{worker_us:.1f}"),
            ("same path in process, no Faust/Kafka, events/s", f"{1e6 / all_us:,.0f}"),
            ("  of which decode / grade, us per record", f"{decode_us:.1f} / {grade_us:.1f}"),
            ("in process / plain", f"{1e6 / all_us / plain:.3f}"),
            ("worker start -> all consumed, s", f"{to_all:.1f}"),
            ("freshness p50, s", f"{percentile(fresh, 0.5):.2f}"),
            ("freshness p99, s", f"{percentile(fresh, 0.99):.2f}"),
            ("freshness samples", f"{len(fresh)}"),
            ("Iceberg commits / min", f"{commits / elapsed_min:.1f}"),
            ("Iceberg data files added / min", f"{files_added / elapsed_min:.1f}"),
            ("worker peak RSS, MB", f"{rss:.0f}"),
        ]
        width = max(len(k) for k, _ in rows)
        print()
        for k, v in rows:
            print(f"{k:<{width}}  {v:>12}")
    finally:
        if worker is not None and worker.poll() is None:
            worker.terminate()
            try:
                worker.wait(30)
            except subprocess.TimeoutExpired:
                worker.kill()
        names = [n for n in admin.list_topics(timeout=10).topics if n.startswith((prefix, app_id))]
        if names:
            for fut in admin.delete_topics(names, operation_timeout=30).values():
                with contextlib.suppress(Exception):
                    fut.result(30)
        for identifier in catalog.list_tables(namespace):
            catalog.purge_table(identifier)
        with contextlib.closing(trino_connect(config)) as conn, contextlib.suppress(Exception):
            conn.cursor().execute(f"DROP VIEW IF EXISTS {TRINO_CATALOG}.{namespace}.exam_scores")
        with contextlib.suppress(Exception):
            catalog.drop_namespace(namespace)


def freshness(
    config: StackConfig, codec: WireCodec, prefix: str, namespace: str, rate: float, seconds: float
) -> list[float]:
    """Seconds from each exam.ended being acknowledged to its first row in Trino."""
    settings = ClientSettings(config.kafka_bootstrap, config.registry_url, prefix)
    pending: dict[tuple[int, int], float] = {}
    seen: list[float] = []
    topic = codec.topic_for("exam.ended")
    n = int(rate * seconds)
    sql = (
        f"SELECT DISTINCT source_partition, source_offset FROM "
        f"{TRINO_CATALOG}.{namespace}.criterion_transitions WHERE source_topic = '{topic}'"
    )
    with Publisher(settings, codec=codec) as pub, contextlib.closing(trino_connect(config)) as conn:
        cur = conn.cursor()
        next_at = time.perf_counter()
        sent = 0
        deadline = next_at + seconds + 60
        while (sent < n or pending) and time.perf_counter() < deadline:
            now = time.perf_counter()
            if sent < n and now >= next_at:
                # exam.started alone changes no criterion; its exam.ended closes every
                # time box at once: the ended record is the one timed
                pid = f"fresh-{sent:04d}"
                ts = int(time.time() * 1000)
                started = {
                    "exam_id": f"exam-{pid}",
                    "candidate_id": pid,
                    "rubric_id": "y3-final",
                    "rubric_version": "1",
                }
                pub.publish(Event("exam.started", pid, f"{pid}-start", ts, started))
                ended = Event("exam.ended", pid, f"{pid}-end", ts + 1, {"exam_id": f"exam-{pid}"})
                d = pub.publish(ended)
                pending[(d.partition, d.offset)] = time.perf_counter()
                sent += 1
                next_at += 1 / rate
                continue
            cur.execute(sql)
            found = time.perf_counter()
            for partition, offset in cur.fetchall():
                at = pending.pop((partition, offset), None)
                if at is not None:
                    seen.append(found - at)
            time.sleep(0.05)
    if pending:
        print(f"{len(pending)} events not visible within 60 s", flush=True)
    return seen


if __name__ == "__main__":
    main()
