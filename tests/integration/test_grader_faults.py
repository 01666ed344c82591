"""Faults under the real grader (``proctor worker``, real core engine) on the real stack.

Each test publishes many exams (copies of a recorded Part 2 fault scenario, renamed per
copy) plus a few corrupt records, breaks something in the middle of the work, and then
requires that Trino's ``exam_scores`` equals ``proctor replay --json`` of the same
recording, that no transition row is in Iceberg twice, and that the dead-letter topic
holds exactly the corrupt records.

The broker restart uses a broker of its own (the stack's Kafka component on other ports
and another state directory): the shared broker serves other processes.
"""

from __future__ import annotations

import contextlib
import dataclasses
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from trino.dbapi import Connection

from services.contract.schemas import PLATFORM_PARTITIONS, topic_name
from services.stack.config import StackConfig
from services.stack.kafka import KafkaComponent
from services.stack.postgres import PostgresComponent
from tests.integration.grader.live import (
    SCENARIOS,
    LiveExam,
    comparable,
    duplicates,
    free_port,
    replay_json,
    settle,
    transition_counts,
    trino_scores,
    wait_for,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SCENARIO = "p2_cdc_dropped_events.jsonl"
NAMES = ("alice", "bob", "carol")
BAD = [
    ("platform.flink", b"basecamp-alice00", b"\x00\x00\x00\x00"),  # header without a body
    ("exam.control", b"basecamp-bob01", b"not avro at all"),
    ("platform.dbt", b"basecamp-carol02", b"\x00\x7f\xff\xff\xff{}"),  # unknown schema id
]


def recording(tmp: Path, copies: int) -> Path:
    """``copies`` renamed copies of the scenario (3 exams each), one JSON Lines file."""
    lines = (SCENARIOS / SCENARIO).read_text().splitlines()
    out = []
    for k in range(copies):
        for line in lines:
            for name in NAMES:
                line = line.replace(name, f"{name}{k:02d}")
            out.append(line)
    path = tmp / f"{copies}x_{SCENARIO}"
    path.write_text("\n".join(out) + "\n")
    return path


def assert_equals_replay(live: LiveExam, trino: Connection, expected: dict[str, Any]) -> None:
    got = settle(lambda: trino_scores(trino, live.namespace), expected, live.procs, 240)
    assert set(got) == set(expected)
    wrong = [e for e in expected if got[e] != expected[e]]
    if wrong:
        have, want = got[wrong[0]], expected[wrong[0]]
        diff = {
            c: (have["criteria"].get(c), s)
            for c, s in want["criteria"].items()
            if have["criteria"].get(c) != s
        }
        history = transitions_of(trino, live.namespace, wrong[0], next(iter(diff), ""))
        raise AssertionError(
            f"{len(wrong)} exams differ from the replay; {wrong[0]} (trino, replay): {diff}, "
            f"parts {have['parts']} vs {want['parts']}; its transitions: {history}"
        )
    time.sleep(3)  # a duplicate commit would land by now
    total, distinct = transition_counts(trino, live.namespace)
    assert distinct > 0
    assert total == distinct, (
        f"{total} rows for {distinct} transition ids:\n{duplicates(trino, live.namespace)}"
    )


def start_on(
    live: LiveExam, trino: Connection, events: list[Any], **settings: str
) -> subprocess.Popen[bytes]:
    """Publish ``events`` and the first bad record, start a worker and wait for its first
    Iceberg commit: every fault test breaks something after this point."""
    live.publish(events)
    live.produce_bad(BAD[:1])
    worker = live.start_worker(**settings)
    wait_for(
        lambda: transition_counts(trino, live.namespace)[0] > 0, 120, "a first commit", live.procs
    )
    return worker


def transitions_of(trino: Connection, namespace: str, exam_id: str, criterion_id: str) -> list:
    """A criterion's rows in the transitions table, for the message of a failed check."""
    cur = trino.cursor()
    cur.execute(
        f"SELECT seq, previous_state, state, event_ts, source_topic, source_partition, "
        f"source_offset, graded_at FROM iceberg.{namespace}.criterion_transitions "
        f"WHERE exam_id = '{exam_id}' AND criterion_id = '{criterion_id}' ORDER BY seq"
    )
    return cur.fetchall()


def assert_dead_letters_are_the_bad_records(live: LiveExam) -> None:
    dead = live.dead_letters(expect=len(BAD))
    sent = {(topic_name(t, live.prefix), v) for t, _k, v in BAD}
    assert {(d.source_topic, d.raw_value) for d in dead} == sent
    # At least once: a kill between the DLQ ack and the partition marker sends a dead
    # letter again, with the same source position (its natural key).
    positions = {(d.source_topic, d.source_partition, d.source_offset) for d in dead}
    assert len(positions) == len(BAD), f"{len(dead)} dead letters at {sorted(positions)}"
    assert all(d.reason for d in dead)


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
        with contextlib.suppress(Exception):
            trino_connection.cursor().execute(
                f"DROP VIEW IF EXISTS iceberg.{iceberg_namespace}.exam_scores"
            )


def test_kill_9_mid_batch_then_restart_equals_replay(
    live: LiveExam, trino_connection: Connection, tmp_path: Path
) -> None:
    path = recording(tmp_path, copies=12)
    expected = comparable(replay_json(path))
    events = live.events(str(path))
    quarter = len(events) // 4
    first = start_on(
        live,
        trino_connection,
        events[:quarter],
        PROCTOR_COMMIT_ROWS="100000",
        PROCTOR_COMMIT_INTERVAL_S="3",
    )
    live.publish(events[quarter:])
    live.produce_bad(BAD[1:])
    time.sleep(1.0)
    first.send_signal(signal.SIGKILL)
    first.wait(10)
    landed = transition_counts(trino_connection, live.namespace)[0]

    live.start_worker()
    live.wait_ready()
    assert_equals_replay(live, trino_connection, expected)
    final = transition_counts(trino_connection, live.namespace)[0]
    print(f"killed with {landed} of {final} transition rows in Iceberg")
    assert 0 < landed < final, "the kill did not land in the middle of the work"
    assert_dead_letters_are_the_bad_records(live)


@pytest.fixture
def own_broker(stack_config: StackConfig, tmp_path: Path) -> Iterator[KafkaComponent]:
    """A broker of this test's own on free ports, its jars shared with the stack's."""
    config = dataclasses.replace(
        stack_config,
        state_dir=tmp_path / "stack",
        kafka_port=free_port(),
        kafka_controller_port=free_port(),
    )
    kafka = KafkaComponent(config)
    kafka.dir.mkdir(parents=True)
    shared = stack_config.component_dir("kafka") / "mvn"
    if shared.is_dir():
        (kafka.dir / "mvn").symlink_to(shared)
    kafka.start(print)
    try:
        yield kafka
    finally:
        kafka.stop(print)


def test_broker_restart_mid_exam_equals_replay(
    own_broker: KafkaComponent,
    registry_url: str,
    iceberg_namespace: str,
    trino_connection: Connection,
    tmp_path: Path,
) -> None:
    live = LiveExam(own_broker.address, registry_url, iceberg_namespace, tmp_path)
    try:
        path = recording(tmp_path, copies=6)
        expected = comparable(replay_json(path))
        events = live.events(str(path))
        half = len(events) // 2
        start_on(live, trino_connection, events[:half])
        own_broker.stop(print)
        time.sleep(5)  # the worker keeps running without a broker
        assert live.procs[0].poll() is None, "the worker died with the broker"
        own_broker.start(print)
        live.publish(events[half:])
        live.produce_bad(BAD[1:])
        assert_equals_replay(live, trino_connection, expected)
        assert_dead_letters_are_the_bad_records(live)
        assert live.procs[0].poll() is None and len(live.procs) == 1
    finally:
        live.close()
        print(live.log_tails())
        with contextlib.suppress(Exception):
            trino_connection.cursor().execute(
                f"DROP VIEW IF EXISTS iceberg.{iceberg_namespace}.exam_scores"
            )


@pytest.mark.disruptive
def test_catalog_database_stop_mid_exam_equals_replay(
    live: LiveExam,
    trino_connection: Connection,
    stack_config: StackConfig,
    tmp_path: Path,
) -> None:
    """The catalog's PostgreSQL (which also holds the registry's schemas) goes away for a
    while: commits fail and are retried, schema lookups wait; nothing is lost."""
    path = recording(tmp_path, copies=6)
    expected = comparable(replay_json(path))
    events = live.events(str(path))
    half = len(events) // 2
    start_on(live, trino_connection, events[:half])
    postgres = PostgresComponent(stack_config)
    postgres.stop(print)
    try:
        live.publish(events[half:])  # the publisher's schema ids are cached
        live.produce_bad(BAD[1:])
        time.sleep(12)  # commits fail while the database is away; the worker keeps going
        assert live.procs[0].poll() is None, "the worker died with the catalog database"
        health = live.readiness()
        assert health["ready"] is True, health
        assert live.metric("proctor_grader_iceberg_commits_total", outcome="failed") > 0
    finally:
        postgres.start(print)
    # Trino's catalog connections died with the database: its first queries may fail.
    wait_for(lambda: trino_answers(trino_connection, live.namespace), 120, "Trino", live.procs)
    assert_equals_replay(live, trino_connection, expected)
    assert_dead_letters_are_the_bad_records(live)
    assert live.procs[0].poll() is None and len(live.procs) == 1


def trino_answers(trino: Connection, namespace: str) -> bool:
    try:
        transition_counts(trino, namespace)
    except Exception:
        return False
    return True


def test_adding_and_losing_workers_rebalances_without_losing_or_repeating_a_grade(
    live: LiveExam, trino_connection: Connection, tmp_path: Path
) -> None:
    """One worker, then a second joins the group mid-exam (the partitions are split),
    then the first is killed (the second takes them all)."""
    path = recording(tmp_path, copies=9)
    expected = comparable(replay_json(path))
    events = live.events(str(path))
    third = len(events) // 3
    first = start_on(live, trino_connection, events[:third])
    second = live.start_worker(**live.second_worker_env("b"))
    live.wait_assigned(second, timeout_s=120)
    live.publish(events[third : 2 * third])
    live.produce_bad(BAD[1:2])
    time.sleep(2.0)
    first.send_signal(signal.SIGKILL)
    first.wait(10)
    live.publish(events[2 * third :])
    live.produce_bad(BAD[2:])
    live.wait_assigned(second, timeout_s=240, partitions=PLATFORM_PARTITIONS)
    assert_equals_replay(live, trino_connection, expected)
    assert_dead_letters_are_the_bad_records(live)
    assert second.poll() is None
