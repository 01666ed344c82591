"""A live grader on the real stack for end-to-end and fault tests (not a test module).

One :class:`LiveExam` owns a topic prefix (topics and registry subjects), a Faust app id
(consumer group and changelog topics), a state directory and an Iceberg namespace, and
runs ``proctor worker`` (the real core engine) as subprocesses, so a test can SIGKILL it.
Results are read back from the ``exam_scores`` view in Trino and shaped like
``proctor replay --json``, so the two compare directly.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlparse
from urllib.request import url2pathname

import httpx
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient
from trino.exceptions import TrinoQueryError

from services.contract.dlq import DeadLetter
from services.contract.jsonl import read_jsonl
from services.contract.registry import Registry
from services.contract.schemas import load_contract, topic_name
from services.contract.settings import ClientSettings
from services.contract.topics import ensure_topics
from services.contract.wire import WireCodec, registry_client
from services.core.events import Event
from services.publisher.publisher import Publisher
from services.stack.catalog import TRINO_CATALOG, load_catalog
from services.stack.config import REPO_ROOT, StackConfig

SCENARIOS = REPO_ROOT / "tests" / "scenarios"
PROCTOR = [sys.executable, "-m", "services.cli"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def replay_json(path: Path) -> dict[str, Any]:
    """``proctor replay --json`` of a recording, keyed by exam id."""
    out = subprocess.run(
        [*PROCTOR, "replay", "--json", str(path)],
        capture_output=True,
        check=True,
        cwd=REPO_ROOT,
    )
    return {e["exam_id"]: e for e in json.loads(out.stdout)["exams"]}


def comparable(exams: dict[str, Any]) -> dict[str, Any]:
    """What the live service must equal: per criterion state, score and max score, plus
    part scores, total percentage and pass (reasons and evidence are free text)."""
    return {
        exam_id: {
            "platform_id": e["platform_id"],
            "criteria": {
                cid: (c["state"], round(c["score"], 6), round(c["max_score"], 6))
                for cid, c in e["criteria"].items()
            },
            "parts": {
                k: (round(v["score"], 6), round(v["max_score"], 6)) for k, v in e["parts"].items()
            },
            "total_pct": round(e["total_pct"], 2),
            "passed": e["passed"],
        }
        for exam_id, e in exams.items()
    }


SCORES_SQL = """SELECT exam_id, platform_id, part, criterion_id, state, score, max_score,
       part_score, part_max_score, total_pct, passed
FROM {catalog}.{namespace}.exam_scores"""


def trino_scores(conn: Any, namespace: str) -> dict[str, Any]:
    """The ``exam_scores`` view in the shape of :func:`comparable` (empty before the
    worker has created it)."""
    cur = conn.cursor()
    try:
        cur.execute(SCORES_SQL.format(catalog=TRINO_CATALOG, namespace=namespace))
        rows = cur.fetchall()
    except Exception as exc:
        if "does not exist" in str(exc):
            return {}
        raise
    exams: dict[str, Any] = {}
    for exam_id, pid, part, cid, state, score, max_score, p_score, p_max, pct, passed in rows:
        e = exams.setdefault(
            exam_id,
            {"platform_id": pid, "criteria": {}, "parts": {}, "total_pct": 0.0, "passed": False},
        )
        e["criteria"][cid] = (state, round(float(score), 6), round(float(max_score), 6))
        if part is not None:
            e["parts"][str(part)] = (round(float(p_score), 6), round(float(p_max), 6))
        e["total_pct"] = round(float(pct), 2)
        e["passed"] = bool(passed)
    return exams


def transition_counts(conn: Any, namespace: str) -> tuple[int, int]:
    """(rows, distinct transition ids) of the transitions table; (0, 0) before it exists."""
    cur = conn.cursor()
    try:
        cur.execute(
            f"SELECT count(*), count(DISTINCT transition_id) "
            f"FROM {TRINO_CATALOG}.{namespace}.criterion_transitions"
        )
        total, distinct = cur.fetchall()[0]
        return int(total), int(distinct)
    except Exception as exc:
        if "does not exist" in str(exc):
            return 0, 0
        raise


def duplicates(conn: Any, namespace: str) -> str:
    """The rows whose transition id is in the table more than once, with the snapshot
    (time, writer) that added each copy: what a duplicate-row failure must show to be
    diagnosed. Snapshots come from the catalog (Trino's ``$entries`` cannot read the
    files' manifest entries here)."""
    table = f"{TRINO_CATALOG}.{namespace}.criterion_transitions"
    cur = conn.cursor()
    cur.execute(
        f"""SELECT transition_id, platform_id, criterion_id, seq, source_topic,
        source_partition, source_offset, graded_at, "$path" FROM {table}
        WHERE transition_id IN (
            SELECT transition_id FROM {table} GROUP BY transition_id HAVING count(*) > 1)
        ORDER BY transition_id, graded_at"""
    )
    rows = cur.fetchall()
    added: dict[str, tuple[str, str | None]] = {}
    with contextlib.suppress(Exception):
        iceberg = load_catalog(StackConfig.from_env()).load_table(
            f"{namespace}.criterion_transitions"
        )
        when = {s.snapshot_id: s for s in iceberg.snapshots()}
        entries = iceberg.inspect.entries().to_pylist()
        for e in entries:
            snap = when.get(e["snapshot_id"])
            if snap is not None:
                added[e["data_file"]["file_path"]] = (
                    str(snap.timestamp_ms),
                    snap.summary.additional_properties.get("proctor.writer")
                    if snap.summary
                    else None,
                )
    return "\n".join(
        f"{r[:-1]} added {added.get(r[-1], '?')} in {r[-1].rsplit('/', 1)[-1]}" for r in rows
    )


def wait_for(
    predicate: Callable[[], bool],
    timeout_s: float,
    what: str,
    procs: Iterable[subprocess.Popen[bytes]] = (),
) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        dead = [p for p in procs if p.poll() is not None and p.returncode not in (0, -9)]
        assert not dead, f"worker exited with {dead[0].returncode} while waiting for {what}"
        time.sleep(0.5)
    raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")


class LiveExam:
    """One test's topics, subjects, consumer group, state, namespace and workers."""

    def __init__(
        self,
        bootstrap: str,
        registry_url: str,
        namespace: str,
        tmp: Path,
        config: StackConfig | None = None,
    ) -> None:
        self.prefix = f"t{uuid.uuid4().hex[:8]}."
        self.bootstrap = bootstrap
        self.registry_url = registry_url
        self.namespace = namespace
        self.tmp = tmp
        self.config = config or StackConfig.from_env()
        self.app_id = f"grader-{uuid.uuid4().hex[:8]}"
        self.port = free_port()
        client = registry_client(registry_url)
        contract = load_contract()
        Registry(client, registry_url, contract, self.prefix).register_all()
        self.codec = WireCodec(client, contract, topic_prefix=self.prefix)
        self.admin = AdminClient({"bootstrap.servers": bootstrap})
        ensure_topics(self.admin, prefix=self.prefix)
        self.procs: list[subprocess.Popen[bytes]] = []
        #: each worker's HTTP port, by pid
        self.ports: dict[int, int] = {}

    def worker_env(self, **extra: str) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            PROCTOR_KAFKA_BOOTSTRAP=self.bootstrap,
            PROCTOR_SCHEMA_REGISTRY_URL=self.registry_url,
            PROCTOR_TOPIC_PREFIX=self.prefix,
            PROCTOR_APP_ID=self.app_id,
            PROCTOR_DATA_DIR=str(self.tmp / "state"),
            PROCTOR_TABLE=f"{self.namespace}.criterion_transitions",
            PROCTOR_CATALOG_URI=self.config.catalog_uri,
            PROCTOR_WAREHOUSE=self.config.warehouse,
            PROCTOR_TRINO_URL=self.config.trino_url,
            PROCTOR_HTTP_PORT=str(self.port),
            PROCTOR_COMMIT_ROWS="50",
            PROCTOR_COMMIT_INTERVAL_S="0.5",
            PROCTOR_MAINTENANCE_INTERVAL_S="3600",
        )
        env.update(extra)
        return env

    def worker_command(self) -> list[str]:
        return [*PROCTOR, "worker"]

    def start_worker(self, **extra: str) -> subprocess.Popen[bytes]:
        """``proctor worker`` with the real engine, its output in ``worker-N.log``."""
        log = open(self.tmp / f"worker-{len(self.procs)}.log", "wb")  # noqa: SIM115
        proc = subprocess.Popen(
            self.worker_command(),
            env=self.worker_env(**extra),
            stdout=log,
            stderr=log,
            cwd=REPO_ROOT,
        )
        self.procs.append(proc)
        self.ports[proc.pid] = int(self.worker_env(**extra)["PROCTOR_HTTP_PORT"])
        return proc

    def wait_ready(self, timeout_s: float = 240) -> None:
        """Until the newest worker's /readyz says every assigned partition is restored (after
        a kill the group first waits out the dead member's session)."""

        def ready() -> bool:
            try:
                return httpx.get(f"http://127.0.0.1:{self.port}/readyz", timeout=5).is_success
            except httpx.HTTPError:
                return False

        wait_for(ready, timeout_s, "the worker to be ready", self.procs)

    def readiness(self, port: int | None = None) -> dict[str, Any]:
        """The /readyz body of the worker on ``port`` (the first worker's by default)."""
        resp = httpx.get(f"http://127.0.0.1:{port or self.port}/readyz", timeout=5)
        body: dict[str, Any] = resp.json()
        return body

    def metric(self, name: str, port: int | None = None, **labels: str) -> float:
        """The sum of a Prometheus sample of the worker over series matching ``labels``."""
        text = httpx.get(f"http://127.0.0.1:{port or self.port}/metrics", timeout=5).text
        total = 0.0
        for line in text.splitlines():
            if not line.startswith(name):
                continue
            series, _, value = line.rpartition(" ")
            if series.split("{", 1)[0] != name:
                continue
            if all(f'{k}="{v}"' in series for k, v in labels.items()):
                total += float(value)
        return total

    def second_worker_env(self, name: str) -> dict[str, str]:
        """Settings of another member of the same group: own port, state dir and id."""
        port = free_port()
        return {
            "PROCTOR_HTTP_PORT": str(port),
            "PROCTOR_DATA_DIR": str(self.tmp / f"state-{name}"),
            "PROCTOR_WORKER_ID": name,
        }

    def wait_assigned(
        self, proc: subprocess.Popen[bytes], timeout_s: float = 120, partitions: int = 1
    ) -> None:
        """Until the worker ``proc`` is ready with at least ``partitions`` input partitions
        (after a kill the group first waits out the dead member's session)."""
        port = self.ports[proc.pid]

        def assigned() -> bool:
            try:
                body = self.readiness(port)
            except (httpx.HTTPError, ValueError):
                return False
            return bool(body.get("ready")) and len(body.get("partitions") or ()) >= partitions

        wait_for(assigned, timeout_s, f"the worker to own {partitions} partitions", [proc])

    def events(self, *names: str) -> list[Event]:
        out: list[Event] = []
        for name in names:
            out.extend(read_jsonl(SCENARIOS / name))
        return out

    def publish(self, events: list[Event]) -> None:
        with Publisher(self.client_settings(), codec=self.codec) as pub:
            pub.publish_many(events)

    def client_settings(self) -> ClientSettings:
        return ClientSettings(self.bootstrap, self.registry_url, self.prefix)

    def authenticated(
        self, events: Iterable[Event]
    ) -> list[tuple[str, bytes, bytes, list[tuple[str, bytes]]]]:
        """(topic, key, value, headers) of each event, signed or MACed with the session's
        keys (tests/conftest.py ``trust_env``), its platforms enrolled in the roster."""
        from services.trust.producing import RecordAuth

        auth = RecordAuth.from_env()
        assert auth is not None, "no trust keys in the environment (the trust_env fixture)"
        events = list(events)
        auth.prepare_platforms(self.client_settings(), events)
        out = []
        for ev in events:
            topic, key, value = (
                self.codec.topic_for(ev.type),
                ev.platform_id.encode(),
                self.codec.encode(ev),
            )
            out.append((topic, key, value, auth.headers(ev, topic, key, value)))
        return out

    def produce_bad(self, bad: Iterable[tuple[str, bytes, bytes]]) -> None:
        producer = Producer({"bootstrap.servers": self.bootstrap})
        for topic, key, value in bad:
            producer.produce(topic_name(topic, self.prefix), key=key, value=value)
        assert producer.flush(30) == 0

    def dead_letters(self, expect: int, timeout_s: float = 30) -> list[DeadLetter]:
        """The DLQ's records: waits for ``expect`` of them, then 3 s more for extras."""
        consumer = Consumer(
            {
                "bootstrap.servers": self.bootstrap,
                "group.id": f"dlq-{uuid.uuid4().hex}",
                "auto.offset.reset": "earliest",
                "enable.auto.commit": False,
            }
        )
        consumer.subscribe([topic_name("grading.dlq", self.prefix)])
        out: list[DeadLetter] = []
        deadline = time.monotonic() + timeout_s
        extra_until: float | None = None
        try:
            while True:
                now = time.monotonic()
                if extra_until is None and (len(out) >= expect or now > deadline):
                    extra_until = now + 3
                if extra_until is not None and now > extra_until:
                    break
                msg = consumer.poll(0.5)
                if msg is None or msg.error():
                    continue
                ev = self.codec.decode(msg.value(), msg.topic(), msg.partition(), msg.offset())
                out.append(DeadLetter.from_event(ev))
        finally:
            consumer.close()
        return out

    def stop_workers(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(30)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(10)

    def close(self) -> None:
        self.stop_workers()
        names = [
            n
            for n in self.admin.list_topics(timeout=10).topics
            if n.startswith((self.prefix, self.app_id))
        ]
        if names:
            for fut in self.admin.delete_topics(names, operation_timeout=30).values():
                with contextlib.suppress(Exception):
                    fut.result(30)

    def log_tails(self, lines: int = 20) -> str:
        out = []
        for log in sorted(self.tmp.glob("worker-*.log")):
            tail = log.read_text(errors="replace").splitlines()[-lines:]
            out.append(f"--- {log.name} (tail)\n" + "\n".join(tail))
        return "\n".join(out)


def settle(
    read: Callable[[], dict[str, Any]],
    expected: dict[str, Any],
    procs: Iterable[subprocess.Popen[bytes]],
    timeout_s: float = 180,
    quiet_s: float = 15,
) -> dict[str, Any]:
    """Poll Trino until it equals ``expected`` or stops changing for ``quiet_s``; returns
    the last result (the caller asserts, so a mismatch shows the difference).

    A query error while the worker is still (re)placing its views is not a result: the
    poll goes on, and the last error is raised if no read ever succeeded."""
    deadline = time.monotonic() + timeout_s
    last: dict[str, Any] | None = None
    last_change = time.monotonic()
    procs = list(procs)
    error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            now_result = read()
        except TrinoQueryError as exc:
            error = exc
            time.sleep(1.0)
            continue
        if now_result == expected:
            return now_result
        if now_result != last:
            last, last_change = now_result, time.monotonic()
        elif now_result and time.monotonic() - last_change > quiet_s:
            return now_result
        dead = [p for p in procs if p.poll() is not None and p.returncode not in (0, -9)]
        assert not dead, f"worker exited with {dead[0].returncode}"
        time.sleep(1.0)
    if last is None and error is not None:
        raise error
    return last or {}


@contextlib.contextmanager
def live_exam(
    prefix: str,
    name: str,
    kafka_bootstrap: str,
    registry_url: str,
    catalog: Any,
    trino: Any,
    tmp_path: Path,
    width: int = 24,
) -> Iterator[LiveExam]:
    """A :class:`LiveExam` in a namespace of its own (named after the test, cut to
    ``width``), removed with its tables, views and warehouse files afterwards."""
    test = re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")[:width]
    namespace = f"{prefix}_{test}_{uuid.uuid4().hex[:8]}"
    catalog.create_namespace(namespace)
    exam = LiveExam(kafka_bootstrap, registry_url, namespace, tmp_path)
    try:
        yield exam
    finally:
        exam.close()
        print(exam.log_tails())
        for identifier in catalog.list_tables(namespace):
            catalog.purge_table(identifier)
        for view in ("exam_scores", "review_reasons", "review_queue"):
            with contextlib.suppress(Exception):
                trino.cursor().execute(f"DROP VIEW IF EXISTS {TRINO_CATALOG}.{namespace}.{view}")
        catalog.drop_namespace(namespace)
        warehouse = urlparse(catalog.properties["warehouse"])
        if warehouse.scheme == "file":
            shutil.rmtree(Path(url2pathname(warehouse.path)) / namespace, ignore_errors=True)
