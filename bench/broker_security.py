"""Benchmark: what broker security costs, start time and produce throughput.

Two private brokers in a temporary state directory on free ports, the same jars and
settings, one plaintext and one secured (``kafka-secure``: SASL/SCRAM-SHA-512 over TLS,
StandardAuthorizer with proctor's ACLs). Nothing of the running stack is touched; the
plain broker's cached class path is copied in, so no run resolves jars with mvn.

* start time of the secured broker: cold (empty state: CA and certificate, passwords,
  storage format with the SCRAM users, start, ACLs) and warm (restart on kept state),
  from ``start`` to healthy (and ACLs in place);
* produce throughput of one confluent-kafka producer as the publisher configures it
  (idempotent, acks=all), plaintext vs SASL_SSL as ``proctor`` on ``exam.control``,
  rounds interleaved so both see the same machine load.

    .venv/bin/python bench/broker_security.py [--starts 3] [--records 100000] [--runs 5]

Prints medians: seconds per start, records/s and MB/s per protocol and the ratio.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

from services.contract.schemas import CONTROL_TOPIC, PLATFORM_PARTITIONS
from services.stack.broker_acls import acl_plan, apply_acls
from services.stack.config import StackConfig
from services.stack.kafka import KafkaComponent
from services.stack.kafka_secure import SecureKafkaComponent


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _quiet(_message: str) -> None:
    pass


def _config(state: Path) -> StackConfig:
    return StackConfig(
        state_dir=state,
        kafka_port=_free_port(),
        kafka_controller_port=_free_port(),
        kafka_secure_port=_free_port(),
        kafka_secure_controller_port=_free_port(),
    )


def _seed_classpath(config: StackConfig) -> None:
    cached = StackConfig.from_env().component_dir("kafka") / "mvn"
    if (cached / "classpath.txt").is_file():
        shutil.copytree(cached, config.component_dir("kafka") / "mvn", dirs_exist_ok=True)


def _timed(fn: Callable[[], None]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def start_times(config: StackConfig, starts: int) -> tuple[list[float], list[float], list[float]]:
    """Seconds of the secured broker's cold starts (state removed before each) and warm
    restarts, and of the plaintext broker's warm restarts as the machine's reference."""
    secure = SecureKafkaComponent(config)
    plain = KafkaComponent(config)
    cold: list[float] = []
    for _ in range(starts):
        secure.stop(_quiet)
        shutil.rmtree(secure.dir, ignore_errors=True)
        cold.append(_timed(lambda: secure.start(_quiet)))
    secure.stop(_quiet)
    warm: list[float] = []
    plain_warm: list[float] = []
    plain.start(_quiet)
    plain.stop(_quiet)
    for _ in range(starts):  # one broker at a time, alternating, under the same load
        warm.append(_timed(lambda: secure.start(_quiet)))
        secure.stop(_quiet)
        plain_warm.append(_timed(lambda: plain.start(_quiet)))
        plain.stop(_quiet)
    return cold, warm, plain_warm


def _line(what: str, seconds: list[float]) -> str:
    runs = ", ".join(f"{s:.1f}" for s in seconds)
    return f"{what}: median {statistics.median(seconds):.1f} s ({runs})"


def _create_topic(admin: AdminClient, name: str) -> None:
    futures = admin.create_topics([NewTopic(name, PLATFORM_PARTITIONS, 1)], operation_timeout=30)
    futures[name].result(timeout=30)


def produce_rate(config: dict[str, Any], topic: str, records: int, size: int) -> float:
    """Records/s of one idempotent acks=all producer sending ``records`` values."""
    producer = Producer(
        {
            **config,
            "enable.idempotence": True,
            "acks": "all",
            "linger.ms": 5,
            "compression.type": "none",
        }
    )
    value = b"x" * size
    keys = [f"platform-{i}".encode() for i in range(64)]
    failed: list[Any] = []

    def report(err: Any, _msg: Any) -> None:
        if err is not None:
            failed.append(err)

    producer.list_topics(topic, timeout=30)  # connect and authenticate outside the clock
    start = time.perf_counter()
    for i in range(records):
        while True:
            try:
                producer.produce(topic, value, key=keys[i % 64], on_delivery=report)
                break
            except BufferError:
                producer.poll(0.01)
        producer.poll(0)
    left = producer.flush(120)
    elapsed = time.perf_counter() - start
    if left or failed:
        raise SystemExit(f"{left} records unsent, {len(failed)} failed: {failed[:1]}")
    return records / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--starts", type=int, default=3)
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--size", type=int, default=300, help="value bytes (an event's size)")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()

    state = Path(tempfile.mkdtemp(prefix="proctor-bench-security-"))
    config = _config(state)
    _seed_classpath(config)
    plain = KafkaComponent(config)
    secure = SecureKafkaComponent(config)
    try:
        print(f"load average before: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
        cold, warm, plain_warm = start_times(config, args.starts)
        print(_line("secured broker start, cold", cold))
        print(_line("secured broker start, warm", warm))
        print(_line("plaintext broker start, warm (reference)", plain_warm))

        plain.start(_quiet)
        secure.start(_quiet)
        prefix = f"bench{uuid.uuid4().hex[:6]}."
        topic = f"{prefix}{CONTROL_TOPIC}"
        plain_conf = {"bootstrap.servers": config.kafka_bootstrap}
        _create_topic(AdminClient(plain_conf), topic)
        secure_admin = AdminClient(secure.client_config("admin"))
        _create_topic(secure_admin, topic)
        apply_acls(secure_admin, acl_plan(prefix))
        secure_conf = secure.client_config("proctor")
        rates: dict[str, list[float]] = {"PLAINTEXT": [], "SASL_SSL": []}
        for _ in range(args.runs):
            rates["PLAINTEXT"].append(produce_rate(plain_conf, topic, args.records, args.size))
            rates["SASL_SSL"].append(produce_rate(secure_conf, topic, args.records, args.size))
        medians = {k: statistics.median(v) for k, v in rates.items()}
        for protocol, rate in medians.items():
            runs = ", ".join(f"{r:,.0f}" for r in rates[protocol])
            print(
                f"produce {protocol:>10}: median {rate:,.0f} records/s "
                f"({rate * args.size / 1e6:.1f} MB/s of values; runs {runs})"
            )
        print(f"SASL_SSL / PLAINTEXT: {medians['SASL_SSL'] / medians['PLAINTEXT']:.2f}")
        print(f"load average after: {os.getloadavg()[0]:.1f}")
    finally:
        secure.stop(_quiet)
        plain.stop(_quiet)
        shutil.rmtree(state, ignore_errors=True)


if __name__ == "__main__":
    main()
