"""Latency of the push receivers on loopback, beside a baseline in the same run.

    .venv/bin/python bench/webhooks.py [--requests 500] [--runs 3] [--concurrency 16]

Needs the local stack's broker and registry (``proctor stack up kafka registry``); uses
topics and subjects under a prefix of its own and deletes them afterwards. Prints, each as
the median of ``--runs`` runs, p50 and p99 in milliseconds of:

* ``baseline``: GET /healthz on the same server (HTTP on loopback, no broker);
* ``argocd``: one Argo CD notification, answered after the broker acknowledged it
  (authentication, parsing, Avro encoding, produce with acks=all, delivery report);
* ``k8s-audit``: a batch of 7 audit events (5 published, 2 ignored);
* ``401``: a request with a wrong token (answered without touching the broker);

with the ratio of each p50 to the baseline's, and the throughput of ``--concurrency``
clients posting notifications at once (requests/s).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import statistics
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
from confluent_kafka.schema_registry.error import SchemaRegistryError

from services.collectors.receivers import ALL_SOURCES
from services.collectors.webhook import ReceiverSettings
from services.collectors.webhook_auth import derive_secret, secret_env
from services.collectors.webhook_run import BackgroundReceiver, build_receiver
from services.contract.registry import Registry
from services.contract.schemas import TOPICS_BY_NAME, load_contract, topic_name
from services.contract.settings import ClientSettings, default_bootstrap, default_registry_url
from services.contract.topics import admin_client, delete_topics, ensure_topics
from services.contract.wire import registry_client

FIXTURES = Path(__file__).resolve().parents[1] / "tests" / "fixtures"
SECRET = "bench-secret-" + uuid.uuid4().hex
TOPICS = ("platform.argocd", "platform.k8s-audit", "platform.collectors", "grading.dlq")
TYPES = [s for src in ALL_SOURCES for s in src.event_types] + [
    "collector.heartbeat",
    "grading.dead_letter",
]


def percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return statistics.median(ordered), p99


def measure(
    client: httpx.Client, n: int, send: Callable[[httpx.Client], httpx.Response]
) -> list[float]:
    out = []
    for _ in range(n):
        start = time.perf_counter()
        response = send(client)
        out.append((time.perf_counter() - start) * 1000)
        response.read()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    logging.getLogger("proctor.collectors.webhook").setLevel(logging.ERROR)  # the 401 case

    prefix = f"bench-{uuid.uuid4().hex[:8]}."
    bootstrap, registry_url = default_bootstrap(), default_registry_url()
    settings = ClientSettings(bootstrap, registry_url, prefix)
    admin = admin_client(bootstrap)
    contract = load_contract()
    client = registry_client(registry_url)
    ensure_topics(admin, prefix=prefix, specs=[TOPICS_BY_NAME[t] for t in TOPICS])
    Registry(client, registry_url, contract, prefix).register_all(TYPES)
    try:
        receiver = build_receiver(
            ALL_SOURCES,
            settings,
            ReceiverSettings(platforms=("basecamp-bench",), heartbeat_s=3600.0),
            env={secret_env(s.name): SECRET for s in ALL_SOURCES},
        )
        with BackgroundReceiver(receiver) as port:
            run(port, args)
    finally:
        delete_topics(admin, [topic_name(t, prefix) for t in TOPICS])
        for event_type in TYPES:
            for permanent in (False, True):
                with contextlib.suppress(SchemaRegistryError):
                    client.delete_subject(
                        contract.schema(event_type).subject(prefix), permanent=permanent
                    )


def run(port: int, args: argparse.Namespace) -> None:
    base = f"http://127.0.0.1:{port}"

    def auth(source: str) -> dict[str, str]:
        token = derive_secret(SECRET, source, "basecamp-bench", 1)  # per-platform secrets
        return {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}

    notification = (FIXTURES / "argocd" / "notification-automated-succeeded.json").read_bytes()
    batch = (FIXTURES / "k8s-audit" / "eventlist-batch.json").read_bytes()
    cases: dict[str, Callable[[httpx.Client], httpx.Response]] = {
        "baseline": lambda c: c.get(f"{base}/healthz"),
        "argocd": lambda c: c.post(f"{base}/argocd", content=notification, headers=auth("argocd")),
        "k8s-audit": lambda c: c.post(
            f"{base}/k8s-audit", content=batch, headers=auth("k8s-audit")
        ),
        "401": lambda c: c.post(
            f"{base}/argocd", content=notification, headers={"Authorization": "Bearer nope"}
        ),
    }
    results: dict[str, list[tuple[float, float]]] = {name: [] for name in cases}
    with httpx.Client() as client:
        for send in cases.values():  # warm up: connections and cached schema ids
            measure(client, 20, send)
        for _ in range(args.runs):
            for name, send in cases.items():
                results[name].append(percentiles(measure(client, args.requests, send)))
    base_p50 = statistics.median(p50 for p50, _ in results["baseline"])
    print(f"{args.requests} sequential requests per case, median of {args.runs} runs (ms)")
    print(f"{'case':<10} {'p50':>8} {'p99':>8} {'p50/baseline':>13}")
    for name, rows in results.items():
        p50 = statistics.median(r[0] for r in rows)
        p99 = statistics.median(r[1] for r in rows)
        print(f"{name:<10} {p50:>8.2f} {p99:>8.2f} {p50 / base_p50:>13.1f}")

    def post(_: int) -> int:
        with httpx.Client() as c:
            return sum(
                c.post(f"{base}/argocd", content=notification, headers=auth("argocd")).status_code
                == 200
                for _ in range(args.requests // args.concurrency)
            )

    rates = []
    for _ in range(args.runs):
        start = time.perf_counter()
        with ThreadPoolExecutor(args.concurrency) as pool:
            ok = sum(pool.map(post, range(args.concurrency)))
        rates.append(ok / (time.perf_counter() - start))
    print(
        f"throughput with {args.concurrency} concurrent clients: {statistics.median(rates):.0f} accepted notifications/s"
    )


if __name__ == "__main__":
    main()
