"""The grader worker on the real stack: Kafka 4, registry, Iceberg catalog, Trino.

The worker runs as its own process (so it can be killed with SIGKILL), driven by the
stand-in engine of ``grader/standin_worker.py`` until the grading core's engine lands.
Every test uses its own topic prefix, consumer group, state directory and namespace.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from confluent_kafka import Producer
from trino.dbapi import Connection

from services.contract.schemas import topic_name
from services.core.events import Event
from services.stack.catalog import TRINO_CATALOG
from tests.integration.grader.live import LiveExam

pytestmark = [pytest.mark.integration, pytest.mark.slow]

RUNNER = Path(__file__).parent / "grader" / "standin_worker.py"
#: table store of the kill test's workers
STORE = os.environ.get("PROCTOR_TEST_GRADER_STORE", "memory")
T0 = 1_795_000_000_000


class Env(LiveExam):
    """A :class:`LiveExam` whose workers run the stand-in engine and commit small batches."""

    def worker_command(self) -> list[str]:
        return [sys.executable, str(RUNNER)]

    def worker_env(self, **extra: str) -> dict[str, str]:
        return super().worker_env(**{"PROCTOR_COMMIT_ROWS": "10", **extra})

    def produce(self, events: list[Event], bad: list[tuple[str, bytes, bytes]] = ()) -> None:  # type: ignore[assignment]
        producer = Producer({"bootstrap.servers": self.bootstrap, "partitioner": "murmur2_random"})
        for topic, key, value, headers in self.authenticated(events):
            producer.produce(topic, key=key, value=value, headers=headers)
        for topic, key, value in bad:
            producer.produce(topic_name(topic, self.prefix), key=key, value=value)
        assert producer.flush(30) == 0


@pytest.fixture
def env(
    kafka_bootstrap: str,
    registry_url: str,
    iceberg_namespace: str,
    tmp_path: Path,
    trino_connection: Connection,
) -> Iterator[Env]:
    e = Env(kafka_bootstrap, registry_url, iceberg_namespace, tmp_path)
    try:
        yield e
    finally:
        e.close()
        print(e.log_tails(15))


def exam_events(platforms: int, per_platform: int) -> list[Event]:
    """tool.used signals: each platform's own events span 6 s, so both stand-in criteria
    end met whatever partition it lands in."""
    out = []
    for p in range(platforms):
        pid = f"basecamp-{p:03d}"
        for i in range(per_platform):
            ts = T0 + p * 10 + i * (6000 // max(1, per_platform - 1))
            out.append(
                Event(
                    "tool.used",
                    pid,
                    f"{pid}-e{i}",
                    ts,
                    {
                        "tool": "grafana",
                        "action": "explore",
                        "target": "Orders SLO",
                        "user": "alice",
                    },
                )
            )
    return out


def trino_rows(conn: Connection, namespace: str) -> list[list[Any]]:
    cur = conn.cursor()
    try:
        cur.execute(
            f"SELECT transition_id, exam_id, criterion_id, state FROM "
            f"{TRINO_CATALOG}.{namespace}.criterion_transitions"
        )
        rows: list[list[Any]] = cur.fetchall()
        return rows
    except Exception as exc:  # the table appears at the worker's first start
        if "does not exist" in str(exc):
            return []
        raise


def wait_for(predicate: Callable[[], bool], timeout_s: float, what: str, procs: list[Any]) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        dead = [p for p in procs if p.poll() is not None and p.returncode not in (0, -9)]
        assert not dead, f"worker exited with {dead[0].returncode} while waiting for {what}"
        time.sleep(0.3)
    raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")


BAD = [
    ("platform.flink", b"basecamp-000", b"\x00\x00\x00\x00"),  # header without a body
    ("exam.control", b"basecamp-001", b"not avro at all"),
]


def test_worker_grades_into_trino_and_dead_letters_bad_records(
    env: Env, trino_connection: Connection
) -> None:
    events = exam_events(platforms=12, per_platform=4)
    env.produce(events, BAD)
    env.start_worker()
    expected = {(f"exam-basecamp-{p:03d}", c) for p in range(12) for c in ("p1.seen", "p1.tick")}
    wait_for(
        lambda: len(trino_rows(trino_connection, env.namespace)) >= len(expected),
        120,
        "all transitions in Trino",
        env.procs,
    )
    rows = trino_rows(trino_connection, env.namespace)
    assert {(r[1], r[2]) for r in rows} == expected and {r[3] for r in rows} == {"met"}
    assert len({r[0] for r in rows}) == len(rows) == len(expected)

    dead = env.dead_letters(expect=2)
    assert sorted((d.source_topic, d.raw_value) for d in dead) == sorted(
        (topic_name(t, env.prefix), v) for t, _k, v in BAD
    )
    assert all(d.reason for d in dead)

    base = f"http://127.0.0.1:{env.port}"
    wait_for(
        lambda: httpx.get(f"{base}/readyz", timeout=5).status_code == 200, 30, "ready", env.procs
    )
    assert httpx.get(f"{base}/healthz", timeout=5).json() == {"status": "ok"}
    metrics = httpx.get(f"{base}/metrics", timeout=5).text
    assert 'proctor_grader_records_total{outcome="dead_letter"' in metrics
    assert "proctor_grader_iceberg_commit_rows_total 24.0" in metrics


def test_kill_9_mid_batch_then_restart_neither_loses_nor_duplicates(
    env: Env, trino_connection: Connection
) -> None:
    # Commits every 3 s: the kill lands after the first commit and before the next, while
    # the second half is graded (changelog written, Kafka offsets maybe committed).
    platforms = 400
    events = exam_events(platforms=platforms, per_platform=5)
    half = len(events) // 4
    env.produce(events[:half], BAD)
    first = env.start_worker(
        PROCTOR_COMMIT_ROWS="100000", PROCTOR_COMMIT_INTERVAL_S="3", PROCTOR_STORE=STORE
    )
    expected = {
        (f"exam-basecamp-{p:03d}", c) for p in range(platforms) for c in ("p1.seen", "p1.tick")
    }
    wait_for(
        lambda: len(trino_rows(trino_connection, env.namespace)) > 0,
        120,
        "a first commit",
        env.procs,
    )
    env.produce(events[half:])
    time.sleep(1.0)
    first.send_signal(signal.SIGKILL)
    first.wait(10)
    landed = len(trino_rows(trino_connection, env.namespace))
    print(f"killed with {landed} of {len(expected)} rows in Iceberg")
    assert 0 < landed < len(expected), "the kill did not land in the middle of the work"

    env.start_worker(PROCTOR_STORE=STORE)
    wait_for(
        lambda: len(trino_rows(trino_connection, env.namespace)) >= len(expected),
        180,
        "all transitions after the restart",
        env.procs,
    )
    time.sleep(3)  # a duplicate would be committed by now
    rows = trino_rows(trino_connection, env.namespace)
    assert {(r[1], r[2]) for r in rows} == expected
    assert len(rows) == len({r[0] for r in rows}) == len(expected), "duplicate rows after restart"

    # Dead letters are at least once: a kill between the DLQ ack and the position marker
    # sends one again, with the same source position (its natural dedupe key).
    dead = env.dead_letters(expect=2)
    assert {(d.source_topic, d.raw_value) for d in dead} == {
        (topic_name(t, env.prefix), v) for t, _k, v in BAD
    }
    print(f"dead letters: {len(dead)} records for 2 bad inputs")
