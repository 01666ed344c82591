"""Pipeline health for the scoreboard: the grader's consumer lag and the dead letters.

Neither lives in Iceberg (lag is in Kafka's group offsets, dead letters on the
``grading.dlq`` topic), and the stack's Trino reads only Iceberg; so a small sampler
reads both from the broker every few seconds and appends one row per topic to the
Iceberg table ``grading.pipeline_health``, which the dashboard charts like the grades.

A row: when it was sampled, the topic, ``kind`` (``input`` for a topic the grader
consumes, ``dlq`` for the dead-letter topic), the records the topic holds (high minus
low watermark, summed over partitions), the group's committed position and its lag.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import pyarrow as pa
from confluent_kafka import Consumer, KafkaException, TopicPartition
from pyiceberg.catalog import Catalog
from pyiceberg.exceptions import NoSuchTableError
from pyiceberg.schema import Schema
from pyiceberg.table import Table
from pyiceberg.types import LongType, NestedField, StringType, TimestamptzType

from services.contract.schemas import DLQ_TOPIC, INPUT_TOPICS, topic_name
from services.errors import StackError

log = logging.getLogger(__name__)

HEALTH_TABLE = "grading.pipeline_health"
HEALTH_SCHEMA = Schema(
    NestedField(1, "sampled_at", TimestamptzType(), required=True),
    NestedField(2, "consumer_group", StringType(), required=True),
    NestedField(3, "topic", StringType(), required=True),
    NestedField(4, "kind", StringType(), required=True, doc="input or dlq"),
    NestedField(5, "records", LongType(), required=True, doc="high minus low watermark"),
    NestedField(6, "committed", LongType(), required=False, doc="group position, summed"),
    NestedField(7, "lag", LongType(), required=False, doc="high watermark minus position"),
)


@dataclass(frozen=True, slots=True)
class TopicHealth:
    topic: str
    kind: str
    records: int
    committed: int | None
    lag: int | None


def topic_health(
    consumer: Consumer, topic: str, kind: str, group_committed: bool, timeout_s: float = 10.0
) -> TopicHealth | None:
    """Records, committed position and lag of one topic; None when the topic is absent."""
    try:
        meta = consumer.list_topics(topic, timeout=timeout_s)
    except KafkaException as exc:
        raise StackError(f"cannot read topic metadata of {topic}: {exc}") from exc
    info = meta.topics.get(topic)
    if info is None or info.error is not None or not info.partitions:
        return None
    parts = [TopicPartition(topic, p) for p in sorted(info.partitions)]
    records = 0
    highs: dict[int, int] = {}
    try:
        for tp in parts:
            low, high = consumer.get_watermark_offsets(tp, timeout=timeout_s, cached=False)
            records += max(0, high - low)
            highs[tp.partition] = high
        if not group_committed:
            return TopicHealth(topic, kind, records, None, None)
        committed = 0
        lag = 0
        for tp in consumer.committed(parts, timeout=timeout_s):
            position = tp.offset if tp.offset >= 0 else 0
            committed += position
            lag += max(0, highs[tp.partition] - position)
    except KafkaException as exc:  # e.g. a partition whose leader is being elected
        raise StackError(f"cannot read the offsets of {topic}: {exc}") from exc
    return TopicHealth(topic, kind, records, committed, lag)


def sample(consumer: Consumer, prefix: str = "") -> list[TopicHealth]:
    """One look at every input topic (lag of the group) and at the dead-letter topic."""
    out: list[TopicHealth] = []
    for logical in INPUT_TOPICS:
        row = topic_health(consumer, topic_name(logical, prefix), "input", True)
        if row is not None:
            out.append(row)
    dlq = topic_health(consumer, topic_name(DLQ_TOPIC, prefix), "dlq", False)
    if dlq is not None:
        out.append(dlq)
    return out


def to_arrow(rows: Sequence[TopicHealth], group: str, at: datetime, schema: pa.Schema) -> pa.Table:
    return pa.Table.from_pylist(
        [
            {
                "sampled_at": at,
                "consumer_group": group,
                "topic": r.topic,
                "kind": r.kind,
                "records": r.records,
                "committed": r.committed,
                "lag": r.lag,
            }
            for r in rows
        ],
        schema=schema,
    )


def ensure_health_table(catalog: Catalog, identifier: str = HEALTH_TABLE) -> Table:
    try:
        return catalog.load_table(identifier)
    except NoSuchTableError:
        pass
    catalog.create_namespace_if_not_exists(identifier.rsplit(".", 1)[0])
    return catalog.create_table_if_not_exists(
        identifier,
        schema=HEALTH_SCHEMA,
        properties={
            "format-version": "2",
            "write.metadata.delete-after-commit.enabled": "true",
            "write.metadata.previous-versions-max": "20",
        },
    )


class HealthSampler:
    """Samples every ``interval_s`` and appends to the health table until stopped."""

    def __init__(
        self,
        consumer: Consumer,
        table: Table,
        group: str,
        *,
        prefix: str = "",
        interval_s: float = 10.0,
        expire_every: int = 60,
        now: Callable[[], datetime] = lambda: datetime.now(tz=UTC),
    ) -> None:
        self.consumer = consumer
        self.table = table
        self.group = group
        self.prefix = prefix
        self.interval_s = interval_s
        self.expire_every = expire_every
        self.now = now
        self.commits = 0

    def once(self) -> int:
        rows = sample(self.consumer, self.prefix)
        if not rows:
            return 0
        self.table.append(to_arrow(rows, self.group, self.now(), self.table.schema().as_arrow()))
        self.commits += 1
        if self.expire_every and self.commits % self.expire_every == 0:
            self._expire()
        return len(rows)

    def _expire(self) -> None:
        """A commit every few seconds makes many snapshots: keep the last hour's."""
        cutoff = int(time.time() * 1000) - 3_600_000
        try:
            self.table.maintenance.expire_snapshots().older_than(
                datetime.fromtimestamp(cutoff / 1000, tz=UTC)
            ).commit()
        except Exception as exc:  # maintenance must never stop sampling
            log.warning("expiring snapshots of %s failed: %s", HEALTH_TABLE, exc)

    def run(self, stop: threading.Event, on_sample: Callable[[int], None] | None = None) -> None:
        while not stop.is_set():
            started = time.monotonic()
            try:
                n = self.once()
                if on_sample is not None:
                    on_sample(n)
            except (StackError, KafkaException, OSError) as exc:
                log.warning("health sample failed: %s", exc)
            stop.wait(max(0.5, self.interval_s - (time.monotonic() - started)))


def group_consumer(bootstrap: str, group: str, extra: dict[str, str] | None = None) -> Consumer:
    """A consumer in the grader's group that never subscribes: it only reads offsets."""
    return Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": group,
            "enable.auto.commit": False,
            **(extra or {}),
        }
    )
