"""The candidate's CDC in a rehearsal: a source PostgreSQL with logical decoding, a Kafka
Connect worker running the Debezium PostgreSQL connector with the registry's Avro
converter, and a load generator changing the source table while the exam runs.

One CDC per rehearsal (the first exam with the whole platform): a Connect worker and a
source database are the heaviest pieces of the platform on a 2-core machine.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from pathlib import Path

from confluent_kafka import Consumer, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient

from services.contract.wire import registry_client
from services.platform.connect import CandidateCdc, Registered


class PlatformCdc:
    """Debezium on Kafka Connect feeding the stack's broker, its topics removed at the end."""

    def __init__(self, workdir: Path, bootstrap: str, registry_v2: str, registry_url: str) -> None:
        self.cdc = CandidateCdc(workdir, bootstrap, registry_v2=registry_v2)
        self.bootstrap = bootstrap
        self.registry_url = registry_url
        self.connector: Registered | None = None

    def up(self) -> None:
        """The platform as handed over: the source database and a Connect worker."""
        self.cdc.start()

    def register(self) -> str:
        """The candidate's connector on ``public.orders``, RUNNING."""
        self.connector = self.cdc.register()
        return (
            f"connector {self.connector.name} RUNNING, writing {self.connector.topic} "
            "(Avro through the registry)"
        )

    @property
    def topic(self) -> str:
        assert self.connector is not None, "start first"
        return self.connector.topic

    def high_watermark(self) -> int:
        """The CDC topic's end offset (one partition per table, as Debezium writes it)."""
        consumer = Consumer(
            {"bootstrap.servers": self.bootstrap, "group.id": f"rh-{uuid.uuid4().hex}"}
        )
        deadline = time.monotonic() + 30
        try:
            while True:
                meta = consumer.list_topics(self.topic, timeout=10).topics.get(self.topic)
                if meta is None or meta.error is not None or not meta.partitions:
                    return 0  # Debezium makes the topic with its first record: none yet
                try:
                    tp = TopicPartition(self.topic, 0)
                    return int(consumer.get_watermark_offsets(tp, timeout=10)[1])
                except KafkaException:  # a topic Debezium just created: metadata on its way
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.5)
        finally:
            consumer.close()

    def load(self, rows: int, timeout_s: float = 120.0) -> str:
        """Change the source table and wait until Debezium delivered every change."""
        before = self.high_watermark()
        ids = self.cdc.load.insert(rows)
        changed = self.cdc.load.update(ids[: rows // 2])
        wanted = before + rows + changed
        deadline = time.monotonic() + timeout_s
        high = before
        while time.monotonic() < deadline:
            high = self.high_watermark()
            if high >= wanted:
                break
            time.sleep(0.5)
        return (
            f"{rows} orders inserted and {changed} updated in the source table; "
            f"the topic grew from offset {before} to {high} (wanted {wanted})"
        )

    def stop(self) -> None:
        """The connector, the worker and the database; then its topic and subject."""
        connector, self.connector = self.connector, None
        with contextlib.suppress(Exception):
            self.cdc.stop()
        if connector is None:
            return
        admin = AdminClient({"bootstrap.servers": self.bootstrap})
        prefix = connector.topic_prefix + "."
        names = [t for t in admin.list_topics(timeout=10).topics if t.startswith(prefix)]
        if names:
            for future in admin.delete_topics(names, operation_timeout=30).values():
                with contextlib.suppress(Exception):
                    future.result(timeout=30)
        client = registry_client(self.registry_url)
        for permanent in (False, True):
            with contextlib.suppress(Exception):
                client.delete_subject(f"{connector.topic}-value", permanent=permanent)
