"""A real Flink session running the exam's kind of job against the stack (``flink_rig``).

One module-scoped rig: a CDC topic on the stack's broker written with Debezium-shaped
records, a customers dimension table in the stack's PostgreSQL, an Iceberg namespace in
the stack's JDBC catalog, and a Flink MiniCluster session (services/platform/flink.py)
whose jobs join the topic with the table and write Iceberg. A test module registers it by
importing it (``from tests.platform_fixtures.flink import flink_rig``). Everything is
removed afterwards.

The first run downloads the Flink, Iceberg and connector jars with ``mvn`` (cached in
~/.m2) and compiles the session class (cached under ~/.cache/proctor/flink-<version>).
"""

from __future__ import annotations

import contextlib
import json
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse
from urllib.request import url2pathname

import psycopg2
import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic
from pyiceberg.catalog import Catalog

from services.platform.flink import (
    Checkpointing,
    FlinkRuntime,
    FlinkSession,
    PipelineJob,
    ensure_runtime,
)
from services.stack.config import StackConfig

#: the dimension rows the lookup join reads: customer_id -> (name, region)
CUSTOMERS = {1: ("ann", "eu"), 2: ("bob", "us"), 3: ("cyd", "apac")}
#: orders created by the CDC stream; order 3 is then updated, order 4 deleted
ORDERS = 10


def cdc_records() -> list[dict[str, Any]]:
    """Debezium change events (the JSON converter without schemas) for the orders table."""
    src = {"connector": "postgresql", "db": "shop", "schema": "public", "table": "orders"}

    def row(i: int, amount: float) -> dict[str, Any]:
        return {"order_id": i, "customer_id": 1 + i % 3, "amount": amount}

    out = [
        {"before": None, "after": row(i, 10.0 + i), "op": "c", "source": src} for i in range(ORDERS)
    ]
    out.append({"before": row(3, 13.0), "after": row(3, 99.5), "op": "u", "source": src})
    out.append({"before": row(4, 14.0), "after": None, "op": "d", "source": src})
    return out


def expected_rows() -> dict[int, tuple[int, float, str, str]]:
    """order_id -> (customer_id, amount, customer name, region) after the stream."""
    rows = {i: (1 + i % 3, 10.0 + i, *CUSTOMERS[1 + i % 3]) for i in range(ORDERS) if i != 4}
    rows[3] = (1, 99.5, "ann", "eu")
    return rows


@dataclass
class FlinkRig:
    session: FlinkSession
    config: StackConfig
    topic: str
    dimension_table: str
    namespace: str
    suffix: str
    jobs: dict[str, PipelineJob] = field(default_factory=dict)
    ids: dict[str, str] = field(default_factory=dict)

    def job(self, mode: Checkpointing) -> PipelineJob:
        """The job of one checkpointing variant: its own name, sink table and group."""
        short = {"exactly_once": "eo", "at_least_once": "alo", "off": "nocp"}[mode]
        return PipelineJob.on_stack(
            self.config,
            name=f"orders-enrich-{short}-{self.suffix}",
            topic=self.topic,
            dimension_table=self.dimension_table,
            table=f"{self.namespace}.orders_enriched_{short}",
            checkpointing=mode,
            checkpoint_interval_ms=1000,
            table_properties=(("history.expire.max-snapshot-age-ms", "86400000"),),
        )

    def sink(self, mode: Checkpointing) -> str:
        j = self.job(mode)
        return f"{j.namespace}.{j.table}"


def _runtime() -> FlinkRuntime:
    if shutil.which("javac") is None or shutil.which("mvn") is None:
        pytest.skip("needs a JDK (javac) and mvn: apt-get install openjdk-17-jdk-headless maven")
    return ensure_runtime(print)


@pytest.fixture(scope="module")
def flink_rig(
    stack: Any, iceberg_catalog: Catalog, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[FlinkRig]:
    """A Flink session with one job per checkpointing mode, all RUNNING, on fresh inputs."""
    config: StackConfig = stack.require("kafka")
    stack.require("postgres")
    stack.require("trino")
    runtime = _runtime()
    suffix = uuid.uuid4().hex[:8]
    topic = f"it-flink-{suffix}.shop.public.orders"
    dimension = f"it_flink_customers_{suffix}"
    namespace = f"it_flink_{suffix}"

    admin = AdminClient({"bootstrap.servers": config.kafka_bootstrap})
    for fut in admin.create_topics([NewTopic(topic, 1, 1)]).values():
        fut.result()
    pg = psycopg2.connect(
        host=config.host,
        port=config.postgres_port,
        user=config.postgres_user,
        dbname=config.postgres_db,
    )
    pg.autocommit = True
    try:
        with pg.cursor() as cur:
            cur.execute(
                f"CREATE TABLE {dimension} (customer_id BIGINT PRIMARY KEY, name TEXT, region TEXT)"
            )
            cur.executemany(
                f"INSERT INTO {dimension} VALUES (%s, %s, %s)",
                [(k, n, r) for k, (n, r) in CUSTOMERS.items()],
            )
        producer = Producer({"bootstrap.servers": config.kafka_bootstrap})
        for rec in cdc_records():
            key = {"order_id": (rec["after"] or rec["before"])["order_id"]}
            producer.produce(topic, json.dumps(rec), json.dumps(key))
        assert producer.flush(30) == 0, "the CDC records were not all delivered"

        workdir = tmp_path_factory.mktemp("flink")
        with FlinkSession(workdir, runtime) as session:
            rig = FlinkRig(session, config, topic, dimension, namespace, suffix)
            for mode in ("exactly_once", "at_least_once", "off"):
                job = rig.job(mode)
                rig.jobs[mode] = job
                rig.ids[mode] = session.submit(job)
            for job_id in rig.ids.values():
                session.wait_state(job_id, ("RUNNING",))
            yield rig
    finally:
        with contextlib.suppress(Exception):
            for ident in iceberg_catalog.list_tables(namespace):
                iceberg_catalog.purge_table(ident)
            iceberg_catalog.drop_namespace(namespace)
        warehouse = urlparse(config.warehouse)
        shutil.rmtree(Path(url2pathname(warehouse.path)) / namespace, ignore_errors=True)
        with contextlib.suppress(Exception), pg.cursor() as cur:
            cur.execute(f"DROP TABLE IF EXISTS {dimension}")
        pg.close()
        with contextlib.suppress(Exception):
            for fut in admin.delete_topics([topic]).values():
                fut.result()
        # the Kafka source commits its offsets on checkpoints under the job's group
        groups = [f"proctor-orders-enrich-{m}-{suffix}" for m in ("eo", "alo", "nocp")]
        with contextlib.suppress(Exception):
            for fut in admin.delete_consumer_groups(groups).values():
                with contextlib.suppress(Exception):
                    fut.result()


__all__ = ["CUSTOMERS", "ORDERS", "FlinkRig", "cdc_records", "expected_rows"]
