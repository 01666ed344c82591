"""A candidate's CDC for tests: a source PostgreSQL with logical decoding and a Kafka
Connect worker running Debezium, against the stack's broker and registry.

Register with ``pytest_plugins = ["tests.platform_fixtures.cdc"]``. The jars are fetched
by the fixture itself through ``mvn`` (cached in ~/.m2 and ~/.cache/proctor), so a
clean machine needs only what scripts/bootstrap.sh installs.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from confluent_kafka.admin import AdminClient
from confluent_kafka.schema_registry.error import SchemaRegistryError

from services.contract.wire import registry_client
from services.platform.connect import (
    ConnectError,
    ConnectInstall,
    ConnectWorker,
    apicurio_v2_url,
    cdc_topic,
    debezium_postgres_config,
    ensure_installed,
)
from services.platform.source_db import OrderLoad, SourceDatabase
from services.stack.config import StackConfig


@dataclass
class Connector:
    """One Debezium connector of the rig: its REST name and the topic it writes."""

    name: str
    topic_prefix: str
    topic: str
    config: dict[str, str]


@dataclass
class CdcPlatform:
    db: SourceDatabase
    worker: ConnectWorker
    load: OrderLoad
    stack: StackConfig
    made: list[Connector] = field(default_factory=list)

    def ensure_worker(self) -> None:
        """Start the worker again if a test stopped it (Connect down)."""
        if self.worker.pid is None or not self.worker.rest.healthy():
            self.worker.stop()
            self.worker.start()

    def connector(
        self,
        *,
        registry: bool = False,
        table: str = "public.orders",
        slot: str | None = None,
        wait: bool = True,
    ) -> Connector:
        """Register a Debezium connector under a topic prefix no other test or run uses;
        wait until it runs (unless ``wait`` is off). Removed after the test module."""
        self.ensure_worker()
        prefix = f"cdc{uuid.uuid4().hex[:10]}"
        config = debezium_postgres_config(
            self.db,
            topic_prefix=prefix,
            table=table,
            slot=slot,
            registry_url=apicurio_v2_url(self.stack) if registry else None,
        )
        conn = Connector(f"orders-{prefix}", prefix, cdc_topic(prefix), config)
        self.made.append(conn)
        self.worker.rest.create(conn.name, config)
        if wait:
            self.worker.rest.wait_running(conn.name)
        return conn

    def cleanup(self) -> None:
        """Delete the connectors, their topics on the shared broker and their subjects."""
        if self.worker.pid is not None:
            for c in self.made:
                with contextlib.suppress(ConnectError):
                    self.worker.rest.delete(c.name)
        admin = AdminClient({"bootstrap.servers": self.stack.kafka_bootstrap})
        existing = set(admin.list_topics(timeout=10).topics)
        topics = [t for t in existing if any(t.startswith(c.topic_prefix) for c in self.made)]
        if topics:
            for future in admin.delete_topics(topics, operation_timeout=30).values():
                with contextlib.suppress(Exception):
                    future.result(timeout=30)
        client = registry_client(self.stack.registry_url)
        for c in self.made:
            for permanent in (False, True):
                with contextlib.suppress(SchemaRegistryError):
                    client.delete_subject(f"{c.topic}-value", permanent=permanent)


@pytest.fixture(scope="session")
def connect_install() -> ConnectInstall:
    """The worker's jars and plugins, fetched with mvn on first use (minutes when cold)."""
    return ensure_installed()


@pytest.fixture(scope="module")
def cdc_platform(
    connect_install: ConnectInstall,
    kafka_bootstrap: str,
    registry_url: str,
    stack_config: StackConfig,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[CdcPlatform]:
    workdir: Path = tmp_path_factory.mktemp("cdc")
    with SourceDatabase(workdir / "db") as db:
        db.create_orders_table()
        load = OrderLoad(db)
        load.insert(3)  # rows for the snapshot: the topic exists once a connector runs
        worker = ConnectWorker(workdir / "connect", connect_install, bootstrap=kafka_bootstrap)
        with worker:
            platform = CdcPlatform(db, worker, load, stack_config)
            try:
                yield platform
            finally:
                platform.cleanup()


CdcFactory = Callable[..., Connector]
