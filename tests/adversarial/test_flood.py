"""A platform without an exam floods signals: the worker keeps grading (issue 13).

A second platform, enrolled in the roster but never starting an exam, sits on the same
partition as a real candidate and publishes 100,000 authentic signals (every tenth of
50 to 100 KB: ``tool.used`` targets and ``openlineage.run`` facets), interleaved in event
time with the candidate's whole exam (``clean_pass``). The worker must stay up and ready
throughout, write no state record the changelog's message limit would refuse, and grade
the candidate exactly as ``proctor replay`` grades the recording.
"""

from __future__ import annotations

import dataclasses
import heapq
import json
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import ConfigResource, ResourceType

from services.collectors.polling import murmur2_partition
from services.contract.jsonl import parse_line
from services.contract.schemas import PLATFORM_PARTITIONS
from services.core.events import Event
from services.trust.producing import RecordAuth
from tests.conftest import TrustEnv
from tests.integration.grader.live import (
    SCENARIOS,
    LiveExam,
    comparable,
    replay_json,
    settle,
    trino_scores,
    wait_for,
)

pytestmark = [pytest.mark.adversarial, pytest.mark.integration, pytest.mark.slow]

SCENARIO = "clean_pass.jsonl"
SIGNALS = 100_000
#: every LARGE_EVERY-th signal carries 50 to 100 KB
LARGE_EVERY = 10
#: what the broker refuses above by default (a topic without max.message.bytes of its own)
BROKER_DEFAULT_LIMIT = 1_048_588

LINEAGE = parse_line(
    '{"type": "openlineage.run", "platform_id": "x", "event_id": "x", '
    '"ts": "2026-11-27T09:40:00.000Z", "eventType": "COMPLETE", '
    '"eventTime": "2026-11-27T09:40:00.000Z", "run": {"runId": "run-1", "facets": {}}, '
    '"job": {"namespace": "noise", "name": "noise-job", "facets": {}}, '
    '"inputs": [{"namespace": "noise", "name": "in"}], '
    '"outputs": [{"namespace": "noise", "name": "out"}], "producer": "noise", '
    '"schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent"}'
)


def same_partition_platform(candidate: str) -> str:
    """A platform id the publisher's murmur2 partitioner puts where ``candidate`` is."""
    want = murmur2_partition(candidate.encode(), PLATFORM_PARTITIONS)
    for i in range(1000):
        pid = f"basecamp-noisy-{i}"
        if murmur2_partition(pid.encode(), PLATFORM_PARTITIONS) == want:
            return pid
    raise AssertionError(f"no noisy platform id found on partition {want}")


def noise(platform: str, start_ms: int, end_ms: int, run: str) -> Iterator[Event]:
    """``SIGNALS`` signals of ``platform`` spread evenly over [start_ms, end_ms)."""
    step = (end_ms - start_ms) / SIGNALS
    for i in range(SIGNALS):
        ts = start_ms + int(i * step)
        large = i % LARGE_EVERY == 0
        size = 50_000 + (i * 7919) % 50_000
        event_id = f"{run}-{i}"
        if large and i % (2 * LARGE_EVERY) == 0:
            run_data = {"runId": event_id, "facets": {"noise": json.dumps({"n": "n" * size})}}
            yield dataclasses.replace(
                LINEAGE,
                platform_id=platform,
                event_id=event_id,
                ts_ms=ts,
                data={**LINEAGE.data, "run": run_data},
            )
        else:
            target = "t" * size if large else f"dashboard-{i % 97}"
            data = {"tool": "grafana", "action": "explore", "target": target, "user": "noisy"}
            yield Event("tool.used", platform, event_id, ts, data)


class Watch:
    """Polls the worker's /readyz every second in a thread: every answer, every refusal."""

    def __init__(self, live: LiveExam) -> None:
        self.live = live
        self.samples = 0
        self.failures: list[str] = []
        self.commit_errors: set[str] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Watch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(30)

    def _run(self) -> None:
        while not self._stop.wait(1.0):
            proc = self.live.procs[0]
            if proc.poll() is not None:
                self.failures.append(f"the worker exited with {proc.returncode}")
                return
            try:
                resp = httpx.get(f"http://127.0.0.1:{self.live.port}/readyz", timeout=15)
                body = resp.json()
            except (httpx.HTTPError, ValueError) as exc:
                self.failures.append(f"/readyz did not answer: {exc!r}")
                continue
            self.samples += 1
            if resp.status_code != 200 or not body.get("ready"):
                self.failures.append(f"/readyz {resp.status_code}: {body}")
            if body.get("last_commit_error"):
                self.commit_errors.add(str(body["last_commit_error"]))


def publish_interleaved(
    live: LiveExam, candidate: list[Event], flood: Iterator[Event]
) -> tuple[int, dict[bytes, set[int]]]:
    """Both streams in event-time order through one fast producer (lz4, large batches),
    each record authenticated as its sender would: the candidate's control events signed
    by the proctor, every signal MACed with its platform's key. Returns the records sent
    and the partitions each platform's records landed in."""
    auth = RecordAuth.from_env()
    assert auth is not None and auth.signal_keys is not None, "no trust keys (trust_env)"
    first = next(flood)
    # both platforms enrolled in the roster (the noisy one with no exam)
    auth.prepare_platforms(live.client_settings(), [*candidate, first])
    keys = {pid: auth.signal_keys.for_platform(pid) for pid in (first.platform_id,)}
    producer = Producer(
        {
            "bootstrap.servers": live.bootstrap,
            "partitioner": "murmur2_random",
            "enable.idempotence": True,
            "acks": "all",
            "compression.type": "lz4",
            "linger.ms": 50,
            "batch.size": 1_000_000,
            "batch.num.messages": 10_000,
            "queue.buffering.max.kbytes": 262_144,
        }
    )
    failed: list[str] = []
    landed: dict[bytes, set[int]] = {}

    def report(err: Any, msg: Any) -> None:
        if err is not None:
            failed.append(str(err))
        else:
            landed.setdefault(msg.key(), set()).add(msg.partition())

    sent = 0
    merged = heapq.merge(candidate, [first], flood, key=lambda e: e.ts_ms)
    for ev in merged:
        topic, key = live.codec.topic_for(ev.type), ev.platform_id.encode()
        value = live.codec.encode(ev)
        signer = keys.get(ev.platform_id)
        headers = (
            signer.headers(topic, key, value)
            if signer is not None
            else auth.headers(ev, topic, key, value)
        )
        while True:
            try:
                producer.produce(topic, key=key, value=value, headers=headers, on_delivery=report)
                break
            except BufferError:
                producer.poll(0.5)
        producer.poll(0)
        sent += 1
    assert producer.flush(120) == 0
    assert not failed, failed[:5]
    return sent, landed


def changelog_sizes(live: LiveExam) -> tuple[str, dict[bytes, int], int]:
    """(topic, largest value size per key, the topic's message limit) of the worker's
    state table changelog, read from its start to its end."""
    topic = f"{live.app_id}-platforms-changelog"
    resource = ConfigResource(ResourceType.TOPIC, topic)
    configs = live.admin.describe_configs([resource])[resource].result(30)
    limit = int(configs["max.message.bytes"].value or BROKER_DEFAULT_LIMIT)
    consumer = Consumer(
        {
            "bootstrap.servers": live.bootstrap,
            "group.id": f"changelog-{uuid.uuid4().hex}",
            "enable.auto.commit": False,
            "fetch.max.bytes": 64 * 1024 * 1024,
        }
    )
    largest: dict[bytes, int] = {}
    try:
        meta = consumer.list_topics(topic, timeout=30).topics[topic]
        ends = {}
        for p in meta.partitions:
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=30)
            if high > low:
                ends[p] = high
        consumer.assign([TopicPartition(topic, p, 0) for p in ends])
        deadline = time.monotonic() + 120
        done: set[int] = set()
        while len(done) < len(ends) and time.monotonic() < deadline:
            msg = consumer.poll(1.0)
            if msg is None or msg.error():
                continue
            size = len(msg.value() or b"")
            largest[msg.key()] = max(largest.get(msg.key(), 0), size)
            if msg.offset() + 1 >= ends[msg.partition()]:
                done.add(msg.partition())
        assert len(done) == len(ends), f"read {sorted(done)} of {sorted(ends)} to their end"
    finally:
        consumer.close()
    return topic, largest, limit


def test_a_platform_without_an_exam_flooding_signals_never_stops_the_worker(
    live: LiveExam, trino: Any, trust_env: TrustEnv
) -> None:
    expected = comparable(replay_json(SCENARIOS / SCENARIO))
    candidate = sorted(live.events(SCENARIO), key=lambda e: (e.ts_ms, e.event_id))
    (candidate_pid,) = {e.platform_id for e in candidate}
    noisy = same_partition_platform(candidate_pid)
    assert {e["platform_id"] for e in expected.values()} == {candidate_pid}
    flood = noise(noisy, candidate[0].ts_ms + 500, candidate[-1].ts_ms, uuid.uuid4().hex[:8])

    live.start_worker()
    live.wait_ready()
    started = time.monotonic()
    with Watch(live) as watch:
        sent, landed = publish_interleaved(live, candidate, flood)
        published = time.monotonic()
        assert sent == SIGNALS + len(candidate)
        # one partition number holds both platforms, on every topic
        assert landed[noisy.encode()] == landed[candidate_pid.encode()]
        assert len(landed[noisy.encode()]) == 1
        wait_for(
            lambda: (
                live.metric("proctor_grader_records_total", outcome="graded")
                + live.metric("proctor_grader_records_total", outcome="dead_letter")
                >= sent
            ),
            400,
            "the worker to read every record",
            live.procs,
        )
        graded = time.monotonic()
        got = settle(lambda: trino_scores(trino, live.namespace), expected, live.procs)
    print(
        f"published {sent} records in {published - started:.1f}s; all read after "
        f"{graded - started:.1f}s; /readyz polled {watch.samples} times"
    )

    # the worker stayed up and ready the whole time, and every commit went through
    assert live.procs[0].poll() is None, "the worker exited"
    assert watch.samples > 0
    assert watch.failures == [], watch.failures[:5]
    assert watch.commit_errors == set()
    # every flood signal was authentic and graded, none refused
    assert live.metric("proctor_grader_records_total", outcome="graded") >= sent
    assert live.metric("proctor_grader_dead_letters_total") == 0
    # the candidate's grades are the replay's; the noisy platform has no exam
    assert got == expected
    # no state record reached the changelog's message limit; the noisy platform's state
    # was written (so its size was measured, not missed)
    topic, largest, limit = changelog_sizes(live)
    print(f"{topic}: largest record {max(largest.values())} bytes; limit {limit}")
    print({k.decode(errors="replace"): v for k, v in sorted(largest.items())})
    assert noisy.encode() in largest, f"no state record of {noisy} in {topic}"
    assert candidate_pid.encode() in largest
    assert max(largest.values()) < limit
