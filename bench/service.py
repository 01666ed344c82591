"""Benchmark of the grader service on the local stack, beside three baselines, one table.

    .venv/bin/python bench/service.py [--signals 200000] [--platforms 50] [--runs 3]
                                      [--quick] [--burst] [--core 1]
                                      [--fresh-rate 4] [--fresh-seconds 30]
                                      [--burst-exams 1000] [--burst-seconds 10]

One recording of ``--signals`` platform signals over ``--platforms`` exams (the
grading core's load exam, interleaved by event time) is published in advance to a topic
prefix of its own. Then, ``--runs`` times, each on one core (``--core``), every reader
reads the same records from the start:

* plain: a confluent-kafka consumer decodes each record with the contract's wire codec
  (in this process): the ceiling of any Python reader here;
* Quix: a Quix Streams application, Avro decode (fastavro, writer schema from the
  registry) plus a keyed RocksDB state update, exactly once. quixstreams is not a
  project dependency: it runs in a virtualenv of its own, made once under
  ``~/.cache/proctor/quix-venv`` (``python -m venv`` + ``pip install quixstreams``) and
  reused (the run says which);
* Faust, decode only: a Faust agent built as the worker's (same batching, raw
  serializers, input acks off) that only decodes: Faust's own ceiling;
* the worker: ``proctor worker`` (real engine, default commit settings); sustained
  events/s from its first to its last record (``proctor_grader_records_total``).

Each reader's events/s is the median of the runs; ratios are to the plain loop, and the
worker's also to the decode-only Faust agent (target 0.8). Peak RSS (VmHWM or the
child's own ru_maxrss) is given per 1,000 exams of the recording (process base included).

Then, with the last run's worker caught up:

* freshness: a short exam of a new platform (exam.started, then exam.ended, which closes
  every criterion) at ``--fresh-rate``/s for ``--fresh-seconds``; from exam.ended
  acknowledged to the first transition row with its source position visible in Trino;
* with ``--burst``: ``--burst-exams`` exams started beforehand, then all their
  exam.ended within ``--burst-seconds`` (each closes 32 criteria); freshness p50/p99 of
  the endings and how many were not visible within 60 s (target p99 <= 5 s for 1,000
  endings in 10 s);
* Iceberg commits and data files added per minute; where the worker's time goes (the
  same records through the worker's per-record path in this process, no Faust or Kafka).

The load average is printed beside the figures: the machine is shared. Everything it
creates (topics, subjects' prefix, groups, namespace) is its own and removed at the end.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
import zlib
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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
from services.grader.telemetry import QUIET_SPAN, record_span, records_spans, trace_id_of
from services.judge.default import default_judge
from services.offline.scenarios import load_exam
from services.publisher.publisher import Delivery, Publisher
from services.rubrics import resolver
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
    decode, then the partition grader (engine and watermark), with a span per record and
    the record's trace id read from its ``traceparent`` as the worker makes them. Returns
    microseconds per record: (decode, grade, all)."""
    store = EngineStore(resolver(), default_judge())
    graders = {p: PartitionGrader(p, store) for p in range(PLATFORM_PARTITIONS)}
    encoded = [(codec.topic_for(e.type), e.platform_id, codec.encode(e)) for e in events]
    offsets: dict[tuple[str, int], int] = {}
    tracer = TracerProvider(sampler=ALWAYS_OFF).get_tracer("bench")
    spans = records_spans(tracer)  # False, as in a worker without an exporter
    traceparents = [
        f"00-{os.urandom(16).hex()}-{os.urandom(8).hex()}-01".encode() for _ in range(64)
    ]
    decode_s = grade_s = 0.0
    start = time.perf_counter()
    for topic, platform_id, value in encoded:
        p = zlib.crc32(platform_id.encode()) % PLATFORM_PARTITIONS
        offset = offsets[(topic, p)] = offsets.get((topic, p), -1) + 1
        headers = (("proctor.type", b"x"), ("traceparent", traceparents[offset % 64]))
        span = record_span(tracer, topic, p, offset, headers) if spans else QUIET_SPAN
        trace = (trace_id_of(headers), None)
        t0 = time.perf_counter()
        event = codec.decode(value, topic, p, offset)
        t1 = time.perf_counter()
        graders[p].handle(event, SourcePosition(topic, p, offset), trace)
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
        if base in (
            "proctor_grader_records_total",
            "proctor_grader_iceberg_commits_total",
            "proctor_grader_grading_seconds_sum",
            "proctor_grader_grading_seconds_count",
            "proctor_grader_batch_records_sum",
            "proctor_grader_batch_records_count",
            "proctor_grader_iceberg_commit_seconds_sum",
        ):
            if base.endswith("commits_total") and 'outcome="ok"' not in name:
                continue
            out[base] = out.get(base, 0.0) + float(value)
    return out


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def current_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


QUIX_VENV = Path.home() / ".cache" / "proctor" / "quix-venv"
BASELINES = Path(__file__).resolve().parent / "baselines"


def quix_python(venv: Path) -> Path:
    """The Quix virtualenv's interpreter, made (venv + pip install quixstreams) if missing."""
    python = venv / "bin" / "python"
    probe = [str(python), "-c", "import quixstreams"]
    if python.exists() and subprocess.run(probe, capture_output=True).returncode == 0:
        print(f"quixstreams: cached virtualenv {venv}", flush=True)
        return python
    print(f"quixstreams: creating virtualenv {venv} (venv + pip install quixstreams)", flush=True)
    venv.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run([str(python), "-m", "pip", "install", "-q", "quixstreams"], check=True)
    return python


def child(cmd: list[str], env: dict[str, str], core: int, timeout_s: float) -> dict[str, float]:
    """Run a baseline pinned to ``core``; the line of its JSON result, read from its
    stdout or its log (Faust's worker sends a child's stdout to its log). A second try
    when it fails: under load a topic it created can still be missing from the broker's
    metadata when it looks it up."""
    text = ""
    for _attempt in range(2):
        done = subprocess.run(
            ["taskset", "-c", str(core), *cmd],
            env=env,
            cwd=REPO_ROOT,
            capture_output=True,
            timeout=timeout_s,
        )
        text = done.stdout.decode() + "\n" + done.stderr.decode()
        found = [
            ln[ln.index('{"records"') :].strip() for ln in text.splitlines() if '{"records"' in ln
        ]
        if found:
            return {k: float(v) for k, v in json.loads(found[-1]).items()}
        print(f"{Path(cmd[1]).name} exited {done.returncode} without a result; again", flush=True)
    raise SystemExit(f"{cmd[1]} gave no result twice:\n{text[-2000:]}")


@dataclass
class WorkerRun:
    process: subprocess.Popen[bytes]
    port: int
    table: str
    log: Path
    sustained: float = 0.0
    to_all: float = 0.0
    started: float = 0.0

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()


def start_worker(
    env: dict[str, str], core: int, tmp: Path, app_id: str, table: str, profile: Path | None
) -> WorkerRun:
    """``proctor worker`` pinned to ``core``; under cProfile (its event loop's thread) when
    ``profile`` names where to write the stats (written when it stops)."""
    port = free_port()
    env = dict(env)
    env.update(
        PROCTOR_APP_ID=app_id,
        PROCTOR_DATA_DIR=str(tmp / app_id),
        PROCTOR_TABLE=table,
        PROCTOR_HTTP_PORT=str(port),
        PROCTOR_WORKER_ID=app_id,
    )
    log_path = tmp / f"{app_id}.log"
    log = open(log_path, "wb")  # noqa: SIM115
    profiling = [] if profile is None else ["-m", "cProfile", "-o", str(profile)]
    process = subprocess.Popen(
        ["taskset", "-c", str(core), sys.executable, *profiling, "-m", "services.cli", "worker"],
        env=env,
        stdout=log,
        stderr=log,
        cwd=REPO_ROOT,
    )
    return WorkerRun(process, port, table, log_path, started=time.perf_counter())


def records_done(run: WorkerRun) -> float:
    if run.process.poll() is not None:
        raise SystemExit(f"worker exited {run.process.returncode}; see {run.log}")
    with contextlib.suppress(httpx.HTTPError):
        return scrape(run.port).get("proctor_grader_records_total", 0.0)
    return 0.0


def wait_for_records(run: WorkerRun, total: float) -> None:
    """Until the worker counted ``total`` records; sets its sustained rate."""
    first_at: float | None = None
    first_n = done = 0.0
    trace: list[str] = []
    next_trace = 0.0
    while done < total:
        time.sleep(0.5)  # each scrape costs the worker ~10 ms of its core
        done = records_done(run)
        now = time.perf_counter()
        if first_at is None and done > 0:
            first_at, first_n = now, done
        if first_at is not None and now >= next_trace:
            trace.append(f"{now - first_at:.0f}s:{done:.0f}")
            next_trace = now + 5
    end = time.perf_counter()
    print("worker progress (s since its first record: records): " + " ".join(trace), flush=True)
    assert first_at is not None
    run.sustained = (done - first_n) / max(1e-9, end - first_at)
    run.to_all = end - run.started


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--signals", type=int, default=200_000)
    ap.add_argument("--platforms", type=int, default=50)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="40,000 signals, 10 s of freshness")
    ap.add_argument("--fresh-rate", type=float, default=4.0)
    ap.add_argument("--fresh-seconds", type=float, default=30.0)
    ap.add_argument("--burst", action="store_true", help="also the burst of exam endings")
    ap.add_argument("--burst-exams", type=int, default=1000)
    ap.add_argument("--burst-seconds", type=float, default=10.0)
    ap.add_argument("--core", type=int, default=1)
    ap.add_argument("--quix-venv", type=Path, default=QUIX_VENV)
    ap.add_argument(
        "--profile-worker",
        type=Path,
        help="run the last worker under cProfile, stats to this file (slows it down)",
    )
    args = ap.parse_args()
    if args.quick:
        args.signals, args.fresh_seconds = min(args.signals, 40_000), min(args.fresh_seconds, 10)

    load_before = os.getloadavg()
    config = StackConfig.from_env()
    # the worker grades only signed and MACed input (docs/trust.md): the local stack's keys
    from services.trust.local import ensure_local_trust

    for name, value in ensure_local_trust(config.state_dir / "keys").items():
        os.environ.setdefault(name, value)
    quix = quix_python(args.quix_venv)
    bootstrap, registry_url = config.kafka_bootstrap, config.registry_url
    prefix = f"b{uuid.uuid4().hex[:8]}."
    app_base = f"bench-grader-{uuid.uuid4().hex[:8]}"
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
    env = dict(os.environ)
    env.update(
        PROCTOR_KAFKA_BOOTSTRAP=bootstrap,
        PROCTOR_SCHEMA_REGISTRY_URL=registry_url,
        PROCTOR_TOPIC_PREFIX=prefix,
        PROCTOR_CATALOG_URI=config.catalog_uri,
        PROCTOR_WAREHOUSE=config.warehouse,
        PROCTOR_TRINO_URL=config.trino_url,
        PROCTOR_LOG_LEVEL="WARNING",
        PROCTOR_MAINTENANCE_INTERVAL_S="3600",
        PYTHONPATH=str(REPO_ROOT),
    )
    worker: WorkerRun | None = None
    try:
        events = recording(args.signals, args.platforms)
        total = len(events)
        t0 = time.perf_counter()
        settings = ClientSettings(bootstrap, registry_url, prefix)
        with Publisher(settings, codec=codec) as pub:
            pub.publish_many(events, timeout_s=600)
        print(f"published {total} events in {time.perf_counter() - t0:.1f} s", flush=True)

        rates: dict[str, list[float]] = {"plain": [], "quix": [], "faust": [], "worker": []}
        rss: dict[str, list[float]] = {"quix": [], "faust": [], "worker": []}
        mine = os.sched_getaffinity(0)
        for run in range(args.runs):
            os.sched_setaffinity(0, {args.core})
            rates["plain"].append(ceiling(bootstrap, topics, codec, total))
            os.sched_setaffinity(0, mine)
            script = str(BASELINES / "quix_app.py")
            out = child(
                [
                    str(quix),
                    script,
                    bootstrap,
                    registry_url,
                    f"{app_base}-quix-r{run}",
                    str(total),
                    *topics,
                ],
                env,
                args.core,
                900,
            )
            rates["quix"].append(out["events_per_s"])
            rss["quix"].append(out["rss_mb"])
            script = str(BASELINES / "faust_decode.py")
            out = child(
                [sys.executable, script, f"{app_base}-faust-r{run}", str(total), *topics],
                env,
                args.core,
                900,
            )
            rates["faust"].append(out["events_per_s"])
            rss["faust"].append(out["rss_mb"])
            if worker is not None:
                worker.stop()
            worker = start_worker(
                env,
                args.core,
                tmp,
                f"{app_base}-r{run}",
                f"{namespace}.transitions_r{run}",
                args.profile_worker if run == args.runs - 1 else None,
            )
            wait_for_records(worker, total)
            rates["worker"].append(worker.sustained)
            rss["worker"].append(peak_rss_mb(worker.process.pid))
            print(
                f"run {run + 1}: "
                + ", ".join(f"{k} {v[-1]:,.0f}" for k, v in rates.items())
                + " events/s",
                flush=True,
            )
        assert worker is not None
        med = {k: statistics.median(v) for k, v in rates.items()}
        exams_k = args.platforms / 1000

        fresh, fresh_lost = freshness(
            config, codec, prefix, worker.table, args.fresh_rate, args.fresh_seconds
        )
        burst: tuple[list[float], int] | None = None
        burst_mb = 0.0
        if args.burst:
            rss_before = current_rss_mb(worker.process.pid)
            burst = burst_freshness(
                config, codec, prefix, worker, args.burst_exams, args.burst_seconds
            )
            burst_mb = (peak_rss_mb(worker.process.pid) - rss_before) * 1000 / args.burst_exams
        metrics = scrape(worker.port)
        elapsed_min = (time.perf_counter() - worker.started) / 60
        table = catalog.load_table(worker.table)
        summaries = [s.summary for s in table.snapshots() if s.summary is not None]
        files_added = sum(
            int(s.additional_properties.get("added-data-files", 0)) for s in summaries
        )
        last_rss = peak_rss_mb(worker.process.pid)
        commits = metrics.get("proctor_grader_iceberg_commits_total", 0.0)

        os.sched_setaffinity(0, {args.core})
        decode_us, grade_us, all_us = in_process(events, codec)
        os.sched_setaffinity(0, mine)
        load_after = os.getloadavg()

        print()
        print(
            f"{total:,} events of {args.platforms} exams, {args.runs} runs on core "
            f"{args.core}; load average {load_before[0]:.1f} before, {load_after[0]:.1f} "
            f"after ({load_after[1]:.1f} over 5 min)"
        )
        head = ("reader", "events/s", "x plain", "x Faust", "runs", "peak RSS MB", "per 1k exams")
        print(
            f"{head[0]:<40} {head[1]:>10} {head[2]:>8} {head[3]:>8}  {head[4]:<26} "
            f"{head[5]:>11} {head[6]:>12}"
        )
        names = {
            "plain": "plain confluent-kafka consume+decode",
            "quix": "Quix Streams decode+state, exactly once",
            "faust": "Faust agent, decode only",
            "worker": "proctor worker",
        }
        for key, label in names.items():
            peak = statistics.median(rss[key]) if key in rss else float("nan")
            per_k = f"{peak / exams_k:,.0f}" if key in rss else "n/a"
            vs_faust = f"{med[key] / med['faust']:.2f}" if key == "worker" else ""
            runs = " ".join(f"{r:,.0f}" for r in rates[key])
            print(
                f"{label:<40} {med[key]:>10,.0f} {med[key] / med['plain']:>8.2f} "
                f"{vs_faust:>8}  {runs:<26} {peak:>11.0f} {per_k:>12}"
            )
        target = "met" if med["worker"] >= 0.8 * med["faust"] else "missed"
        print(
            f"worker / decode-only Faust agent: {med['worker'] / med['faust']:.2f} "
            f"(target 0.80: {target})"
        )
        per_record = metrics.get("proctor_grader_grading_seconds_sum", 0.0) / max(
            1.0, metrics.get("proctor_grader_grading_seconds_count", 0.0)
        )
        per_batch = metrics.get("proctor_grader_batch_records_sum", 0.0) / max(
            1.0, metrics.get("proctor_grader_batch_records_count", 0.0)
        )
        per_commit = metrics.get("proctor_grader_iceberg_commit_seconds_sum", 0.0) / max(
            1.0, commits
        )
        rows = [
            ("worker, us per record", f"{1e6 / med['worker']:.1f}"),
            ("  of which decode+admit+grade (its histogram), us", f"{1e6 * per_record:.1f}"),
            ("worker: records per batch (mean)", f"{per_batch:.0f}"),
            ("worker: seconds per Iceberg commit (mean)", f"{per_commit:.2f}"),
            ("same path in process, no Faust/Kafka, events/s", f"{1e6 / all_us:,.0f}"),
            ("  of which decode / grade, us per record", f"{decode_us:.1f} / {grade_us:.1f}"),
            ("worker start -> all consumed (last run), s", f"{worker.to_all:.1f}"),
            (
                "freshness p50 / p99, s",
                f"{percentile(fresh, 0.5):.2f} / {percentile(fresh, 0.99):.2f}",
            ),
            ("freshness samples / not visible in 60 s", f"{len(fresh)} / {fresh_lost}"),
        ]
        if burst is not None:
            seen, lost = burst
            rows += [
                (
                    f"burst: {args.burst_exams} endings in {args.burst_seconds:.0f} s, p50 / p99, s",
                    f"{percentile(seen, 0.5):.2f} / {percentile(seen, 0.99):.2f}",
                ),
                ("burst: visible / not visible within 60 s", f"{len(seen)} / {lost}"),
                ("burst: worker RSS growth per 1,000 exams, MB", f"{burst_mb:.0f}"),
                (
                    "burst: target p99 <= 5 s",
                    "met" if lost == 0 and percentile(seen, 0.99) <= 5 else "missed",
                ),
            ]
        rows += [
            ("Iceberg commits / min (last worker)", f"{commits / elapsed_min:.1f}"),
            ("Iceberg data files added / min", f"{files_added / elapsed_min:.1f}"),
            ("last worker's peak RSS at the end, MB", f"{last_rss:.0f}"),
        ]
        width = max(len(k) for k, _ in rows)
        for k, v in rows:
            print(f"{k:<{width}}  {v:>16}")
    finally:
        if worker is not None:
            worker.stop()
        names_gone = [
            n for n in admin.list_topics(timeout=10).topics if n.startswith(prefix) or app_base in n
        ]
        if names_gone:
            for fut in admin.delete_topics(names_gone, operation_timeout=30).values():
                with contextlib.suppress(Exception):
                    fut.result(30)
        for identifier in catalog.list_tables(namespace):
            catalog.purge_table(identifier)
        with contextlib.closing(trino_connect(config)) as conn, contextlib.suppress(Exception):
            conn.cursor().execute(f"DROP VIEW IF EXISTS {TRINO_CATALOG}.{namespace}.exam_scores")
        with contextlib.suppress(Exception):
            catalog.drop_namespace(namespace)


def _started(pid: str, ts: int) -> Event:
    data = {
        "exam_id": f"exam-{pid}",
        "candidate_id": pid,
        "rubric_id": "y3-final",
        "rubric_version": "1",
    }
    return Event("exam.started", pid, f"{pid}-start", ts, data)


def _ended(pid: str, ts: int) -> Event:
    return Event("exam.ended", pid, f"{pid}-end", ts, {"exam_id": f"exam-{pid}"})


def _visible_sql(codec: WireCodec, table: str) -> str:
    topic = codec.topic_for("exam.ended")
    return (
        f"SELECT DISTINCT source_partition, source_offset FROM {TRINO_CATALOG}.{table} "
        f"WHERE source_topic = '{topic}'"
    )


def _watch(
    cur: Any,
    sql: str,
    pending: dict[tuple[int, int], float],
    seen: list[float],
    lock: contextlib.AbstractContextManager[Any] | None = None,
) -> None:
    """Query Trino once; each pending position found is seen now. ``lock`` guards
    ``pending`` against the ack callbacks, held only after the query, not during it."""
    cur.execute(sql)
    rows = cur.fetchall()
    found = time.perf_counter()
    with lock or contextlib.nullcontext():
        for partition, offset in rows:
            at = pending.pop((partition, offset), None)
            if at is not None:
                seen.append(found - at)


def freshness(
    config: StackConfig, codec: WireCodec, prefix: str, table: str, rate: float, seconds: float
) -> tuple[list[float], int]:
    """Seconds from each exam.ended being acknowledged to its first row in Trino, and
    how many were not visible within 60 s."""
    settings = ClientSettings(config.kafka_bootstrap, config.registry_url, prefix)
    pending: dict[tuple[int, int], float] = {}
    seen: list[float] = []
    n = int(rate * seconds)
    sql = _visible_sql(codec, table)
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
                pub.publish(_started(pid, ts))
                d = pub.publish(_ended(pid, ts + 1))
                pending[(d.partition, d.offset)] = time.perf_counter()
                sent += 1
                next_at += 1 / rate
                continue
            _watch(cur, sql, pending, seen)
            time.sleep(0.05)
    return seen, len(pending)


def burst_freshness(
    config: StackConfig,
    codec: WireCodec,
    prefix: str,
    worker: WorkerRun,
    exams: int,
    seconds: float,
) -> tuple[list[float], int]:
    """``exams`` exams started (and graded) first, then all their endings within
    ``seconds`` in groups every 0.1 s: seconds from each group's ack to each ending's
    first row in Trino, and how many endings were not visible within 60 s of the last."""
    settings = ClientSettings(config.kafka_bootstrap, config.registry_url, prefix)
    pids = [f"burst-{i:05d}" for i in range(exams)]
    ts = int(time.time() * 1000)
    before = records_done(worker)
    # one publisher for both phases: its trust state learns the new platforms' roster
    # entries with the starts, so the timed endings do not each read the roster again
    pub = Publisher(settings, codec=codec)
    pub.publish_many([_started(pid, ts) for pid in pids], timeout_s=120)
    while records_done(worker) < before + exams:
        time.sleep(0.2)
    print(f"burst: {exams} exams started and graded; ending them", flush=True)
    pending: dict[tuple[int, int], float] = {}
    seen: list[float] = []
    sql = _visible_sql(codec, table=worker.table)
    groups = max(1, round(seconds / 0.1))
    per = -(-exams // groups)
    lock = threading.Lock()

    def acked(d: Delivery) -> None:
        with lock:
            pending[(d.partition, d.offset)] = time.perf_counter()

    with pub, contextlib.closing(trino_connect(config)) as conn, ThreadPoolExecutor(8) as senders:
        cur = conn.cursor()
        # each group is sent from a thread of its own and timed at its broker ack (the
        # delivery callback), so a slow ack does not hold the next group back; this
        # thread watches Trino meanwhile
        start = time.perf_counter()
        sends: list[Future[Any]] = []

        def schedule() -> None:
            for g in range(groups):
                chunk = pids[g * per : (g + 1) * per]
                if not chunk:
                    break
                delay = start + g * seconds / groups - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
                now_ms = int(time.time() * 1000)
                events = [_ended(pid, now_ms) for pid in chunk]
                sends.append(senders.submit(pub.publish_many, events, on_delivery=acked))
            for fut in sends:
                fut.result()

        scheduler = threading.Thread(target=schedule)
        scheduler.start()
        sent_in: float | None = None
        deadline = float("inf")
        while time.perf_counter() < deadline:
            if sent_in is None and not scheduler.is_alive():
                sent_in = time.perf_counter() - start
                deadline = time.perf_counter() + 60
                print(f"burst: {exams} endings sent in {sent_in:.1f} s", flush=True)
            with lock:
                if sent_in is not None and not pending:
                    break
            _watch(cur, sql, pending, seen, lock)
            time.sleep(0.05)
        scheduler.join()
    return seen, len(pending)


if __name__ == "__main__":
    main()
