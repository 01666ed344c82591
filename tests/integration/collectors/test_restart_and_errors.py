"""Restart safety (each signal exactly once on the topic, whatever the crash point) and the
error path (a source that is down: backoff, unhealthy heartbeats, no crash)."""

from __future__ import annotations

import collections
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from confluent_kafka import Consumer, TopicPartition
from prometheus_client import REGISTRY

from services.collectors.accesslogs import AccessLogCollector, LogFile
from services.collectors.accesslogs import Settings as LogSettings
from services.collectors.flink import FlinkCollector
from services.collectors.flink import Settings as FlinkSettings
from services.collectors.polling import Poller, PositionStore, murmur2_partition
from services.contract.schemas import topic_name
from services.publisher.publisher import Prepared

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[3]


class Crash(BaseException):
    """Stands for the process dying at this point (not an Exception: nothing catches it)."""


def _trino_log(path: Path, start: int, n: int) -> None:
    with path.open("a", encoding="utf-8") as fh:
        for i in range(start, start + n):
            fh.write(
                f"2026-11-27T09:{i // 60 % 60:02d}:{i % 60:02d}.000Z\t127.0.0.1\tPOST\t/v1/statement"
                f"\tuser{i % 7}\ttrino-cli\t200\t120\t900\t12\n"
            )


def _log_collector(path: Path, platform_id: str) -> AccessLogCollector:
    return AccessLogCollector(
        LogSettings(logs=(LogFile(tool="trino", path=path, format="trino"),)), platform_id
    )


def _counts(env, platform_id: str) -> collections.Counter[str]:
    return collections.Counter(
        e.event_id for e in env.read("platform.observability", platform_id) if e.type == "tool.used"
    )


@pytest.mark.parametrize("where", ["before_send", "half_sent", "after_ack"])
def test_crash_anywhere_in_a_batch_gives_each_signal_once(
    env, make_poller: Callable[..., Poller], tmp_path: Path, platform_id: str, where: str
) -> None:
    log = tmp_path / "http-request.log"
    _trino_log(log, 0, 40)
    poller = make_poller(_log_collector(log, platform_id))
    real_send = poller.publisher.send

    def crashing_send(prepared: list[Prepared], **kw: object) -> object:
        if where == "half_sent":
            real_send(prepared[: len(prepared) // 2])
        if where in ("before_send", "half_sent"):
            raise Crash(where)
        result = real_send(prepared)
        return result

    def crashing_commit(position: dict) -> None:
        raise Crash(where)

    poller.publisher.send = crashing_send  # type: ignore[method-assign,assignment]
    if where == "after_ack":
        poller.store.commit = crashing_commit  # type: ignore[method-assign,assignment]
    with pytest.raises(Crash):
        poller.step()
    stored = PositionStore(tmp_path / "state", "access-logs", platform_id).load()
    assert stored.pending is not None and len(stored.pending.events) == 40

    _trino_log(log, 40, 5)
    restarted = make_poller(_log_collector(log, platform_id))
    assert restarted.step() == 5
    counts = _counts(env, platform_id)
    assert len(counts) == 45
    assert set(counts.values()) == {1}, f"duplicates after a crash {where}"
    assert PositionStore(tmp_path / "state", "access-logs", platform_id).load().pending is None


def test_pending_partition_is_the_publishers(
    env, make_poller: Callable[..., Poller], tmp_path: Path, platform_id: str
) -> None:
    """The partition noted before sending is where the record lands (murmur2 like the producer)."""
    log = tmp_path / "http-request.log"
    _trino_log(log, 0, 1)
    poller = make_poller(_log_collector(log, platform_id))
    [delivery] = poller.publisher.publish_many(poller.collector.poll({}).events)
    assert delivery.partition == murmur2_partition(platform_id.encode(), 6)


def _end_offset(env, platform_id: str) -> int:
    name = topic_name("platform.observability", env.prefix)
    consumer = Consumer(env.settings.kafka_config(**{"group.id": "probe"}))
    try:
        part = murmur2_partition(platform_id.encode(), 6)
        return int(consumer.get_watermark_offsets(TopicPartition(name, part), timeout=10)[1])
    finally:
        consumer.close()


def test_killed_process_restarts_without_repeating_or_skipping(
    env, tmp_path: Path, platform_id: str
) -> None:
    """SIGKILL a real `proctor collect access-logs` while it publishes, restart it: each once."""
    log = tmp_path / "http-request.log"
    _trino_log(log, 0, 20000)
    base = _end_offset(env, platform_id)
    args = [
        sys.executable,
        "-m",
        "services.cli",
        "collect",
        "access-logs",
        "--log",
        f"trino:trino:{log}",
        "--platform-id",
        platform_id,
        "--state-dir",
        str(tmp_path / "state"),
        "--interval",
        "0.2",
        "--bootstrap",
        env.settings.bootstrap,
        "--registry-url",
        env.settings.registry_url,
        "--topic-prefix",
        env.prefix,
    ]
    proc = subprocess.Popen(args, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while _end_offset(env, platform_id) == base and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(30)
    landed = _end_offset(env, platform_id) - base
    assert landed > 0
    again = subprocess.run([*args, "--once"], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr[-2000:]
    if landed < 20000:  # killed mid-batch: the restart finished it from the pending batch
        assert "finished an interrupted batch" in again.stderr
    counts = _counts(env, platform_id)
    assert len(counts) == 20000
    assert set(counts.values()) == {1}


def _metric(name: str, collector: str, platform_id: str) -> float:
    value = REGISTRY.get_sample_value(name, {"collector": collector, "platform_id": platform_id})
    return value or 0.0


def test_source_down_backs_off_and_reports_unhealthy(
    env, make_poller: Callable[..., Poller], platform_id: str, unused_port: int
) -> None:
    url = f"http://127.0.0.1:{unused_port}"
    poller = make_poller(FlinkCollector(FlinkSettings(url=url), platform_id), interval_s=0.1)
    stop = threading.Event()
    thread = threading.Thread(target=poller.run, args=(stop,))
    thread.start()
    deadline = time.monotonic() + 30
    while (
        _metric("proctor_collector_errors_total", "flink", platform_id) < 3
        and time.monotonic() < deadline
    ):
        time.sleep(0.05)
    stop.set()
    thread.join(30)
    assert not thread.is_alive()
    assert _metric("proctor_collector_errors_total", "flink", platform_id) >= 3
    assert poller.backoff.attempt >= 3  # kept backing off instead of polling every 0.1 s
    beats = [e for e in env.read("platform.collectors", platform_id)]
    assert len(beats) >= 3 and all(not b.data["healthy"] for b in beats)
    assert all(url in (b.data["error"] or "") for b in beats)
    assert {b.data["collector"] for b in beats} == {"flink"}
    assert beats[0].data["source"] == f"flink {url}"


def test_running_collectors_beat_recover_and_serve_metrics(
    env, tmp_path: Path, platform_id: str, unused_port: int
) -> None:
    """Two collectors in threads: healthy heartbeats, a source that comes back, /metrics."""
    import httpx

    from services.collectors.runner import RunOptions, make_poller, run_pollers
    from services.collectors.trino_rules import Settings as RulesSettings
    from services.collectors.trino_rules import TrinoRulesCollector

    rules = tmp_path / "rules.json"  # not there yet: the rules collector fails at first
    log = tmp_path / "http-request.log"
    _trino_log(log, 0, 3)
    opts = RunOptions(platform_id, tmp_path / "state", env.settings, metrics_port=unused_port)
    pollers = [
        make_poller(TrinoRulesCollector(RulesSettings(path=rules), platform_id), 0.1, opts),
        make_poller(_log_collector(log, platform_id), 0.1, opts),
    ]
    for p in pollers:
        p.heartbeat_s = 0.3
        p.backoff.initial_s, p.backoff.max_s = 0.1, 0.2
    stop = threading.Event()
    thread = threading.Thread(target=run_pollers, args=(pollers, opts, stop))
    thread.start()
    try:
        time.sleep(1.0)
        rules.write_text('{"tables": [{"table": "t", "columns": [{"name": "c", "mask": "NULL"}]}]}')
        time.sleep(1.0)
        metrics = httpx.get(f"http://127.0.0.1:{unused_port}/metrics").text
    finally:
        stop.set()
        thread.join(30)
    assert not thread.is_alive()
    assert (
        f'proctor_collector_polls_total{{collector="access-logs",platform_id="{platform_id}"}}'
        in metrics
    )
    assert (
        f'proctor_collector_errors_total{{collector="trino-rules",platform_id="{platform_id}"}}'
        in metrics
    )
    assert "proctor_collector_events_published_total" in metrics
    assert "proctor_collector_source_lag" in metrics
    beats = env.read("platform.collectors", platform_id)
    trino = [b.data for b in beats if b.data["collector"] == "trino"]
    logs = [b.data for b in beats if b.data["collector"] == "observability"]
    assert len(logs) >= 3 and all(b["healthy"] for b in logs)  # every 0.3 s while healthy
    assert logs[-1]["position"].startswith("http-request.log@")
    assert not trino[0]["healthy"] and "cannot read Trino rules" in trino[0]["error"]
    assert trino[-1]["healthy"] and trino[-1]["error"] is None  # recovered, said so
    assert [e.data["column"] for e in env.read("platform.trino", platform_id)] == ["c"]
