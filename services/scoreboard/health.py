"""Pipeline health for the scoreboard: the grader's consumer lag, the dead letters, and
each platform's collectors.

Neither lives in Iceberg (lag is in Kafka's group offsets, dead letters on the
``grading.dlq`` topic), and the stack's Trino reads only Iceberg; so a small sampler
reads both from the broker every few seconds and appends one row per topic to the
Iceberg table ``grading.pipeline_health``, which the dashboard charts like the grades.

A row: when it was sampled, the topic, ``kind`` (``input`` for a topic the grader
consumes, ``dlq`` for the dead-letter topic), the records the topic holds (high minus
low watermark, summed over partitions), the group's committed position and its lag.

Collector health per platform comes from the collectors' own heartbeats
(``platform.collectors``): :class:`CollectorWatch` tails that topic from its start and
keeps each platform's collectors' latest heartbeat; every sample appends one row per
(platform, collector) to ``grading.collector_health``: when it last beat (event time),
whether that heartbeat vouched for seeing, its error and error kind, how many beats were
read. The view ``collector_status`` (:func:`collector_status_sql`) keeps the latest sample
and calls a collector silent when its last beat is over :data:`SILENT_AFTER_S` behind
the newest beat of its platform (event time: simulated and replayed exams run on their
own clock).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, TopicPartition
from pyiceberg.catalog import Catalog
from pyiceberg.exceptions import NoSuchTableError
from pyiceberg.schema import Schema
from pyiceberg.table import Table
from pyiceberg.types import BooleanType, LongType, NestedField, StringType, TimestamptzType

from services.contract.schemas import DLQ_TOPIC, INPUT_TOPICS, topic_name
from services.errors import ProctorError, StackError
from services.scoreboard.roster_table import RosterSnapshot

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


COLLECTORS_TABLE = "grading.collector_health"
COLLECTORS_SCHEMA = Schema(
    NestedField(1, "sampled_at", TimestamptzType(), required=True),
    NestedField(2, "platform_id", StringType(), required=True),
    NestedField(3, "collector", StringType(), required=True),
    NestedField(4, "source", StringType(), required=False, doc="What it watches."),
    NestedField(5, "last_heartbeat_at", TimestamptzType(), required=True, doc="Event time."),
    NestedField(6, "healthy", BooleanType(), required=True, doc="The last beat vouched."),
    NestedField(7, "error", StringType(), required=False),
    NestedField(8, "error_kind", StringType(), required=False),
    NestedField(9, "heartbeats", LongType(), required=True, doc="Beats read so far."),
)
#: a collector whose last beat is this far behind its platform's newest is silent
#: (collectors beat every 30 s)
SILENT_AFTER_S = 90
HEARTBEAT_TOPIC = "platform.collectors"


@dataclass(frozen=True, slots=True)
class CollectorStatus:
    """The latest heartbeat of one collector of one platform."""

    platform_id: str
    collector: str
    source: str
    last_ms: int
    healthy: bool
    error: str | None
    error_kind: str | None
    heartbeats: int


class CollectorWatch:
    """Tails the heartbeat topic (every partition, from its start) and keeps each
    platform's collectors' latest heartbeat by event time. A record that does not decode
    is counted in ``undecodable`` and skipped: the grader dead-letters it, not this."""

    def __init__(self, consumer: Consumer, decode: Callable[[Any], Any], topic: str) -> None:
        self.consumer = consumer
        self.decode = decode
        self.topic = topic
        self.latest: dict[tuple[str, str], CollectorStatus] = {}
        self.undecodable = 0
        self._assigned = False

    def _assign(self, timeout_s: float) -> bool:
        meta = self.consumer.list_topics(self.topic, timeout=timeout_s)
        info = meta.topics.get(self.topic)
        if info is None or info.error is not None or not info.partitions:
            return False
        self.consumer.assign(
            [TopicPartition(self.topic, p, OFFSET_BEGINNING) for p in sorted(info.partitions)]
        )
        self._assigned = True
        return True

    def poll(self, budget_s: float = 5.0, batch: int = 5000) -> int:
        """Read what has arrived (for at most ``budget_s``); returns the beats read."""
        deadline = time.monotonic() + budget_s
        if not self._assigned and not self._assign(min(budget_s, 10.0)):
            return 0
        read = 0
        while time.monotonic() < deadline:
            msgs = self.consumer.consume(batch, timeout=0.5)
            if not msgs:
                break
            for m in msgs:
                if m.error() is not None:
                    continue
                try:
                    ev = self.decode(m)
                except (ProctorError, ValueError):
                    self.undecodable += 1
                    continue
                self.add(ev.platform_id, ev.ts_ms, ev.data)
                read += 1
        return read

    def add(self, platform_id: str, ts_ms: int, data: Mapping[str, Any]) -> None:
        """Fold one heartbeat in: the latest by event time wins; the count always grows."""
        name = str(data.get("collector") or "")
        if not platform_id or not name:
            return
        key = (platform_id, name)
        old = self.latest.get(key)
        count = 1 + (old.heartbeats if old is not None else 0)
        if old is not None and old.last_ms > ts_ms:
            self.latest[key] = replace(old, heartbeats=count)
            return
        self.latest[key] = CollectorStatus(
            platform_id=platform_id,
            collector=name,
            source=str(data.get("source") or ""),
            last_ms=ts_ms,
            healthy=bool(data.get("healthy", True)),
            error=data.get("error") or None,
            error_kind=data.get("error_kind") or None,
            heartbeats=count,
        )

    def rows(self) -> list[CollectorStatus]:
        return [self.latest[k] for k in sorted(self.latest)]


def collectors_to_arrow(
    rows: Sequence[CollectorStatus], at: datetime, schema: pa.Schema
) -> pa.Table:
    return pa.Table.from_pylist(
        [
            {
                "sampled_at": at,
                "platform_id": r.platform_id,
                "collector": r.collector,
                "source": r.source or None,
                "last_heartbeat_at": datetime.fromtimestamp(r.last_ms / 1000, tz=UTC),
                "healthy": r.healthy,
                "error": r.error,
                "error_kind": r.error_kind,
                "heartbeats": r.heartbeats,
            }
            for r in rows
        ],
        schema=schema,
    )


def collector_status_sql(catalog: str = "iceberg", view: str = "collector_status") -> str:
    """CREATE OR REPLACE VIEW of each platform's collectors as the latest sample saw them,
    with the candidate whose exam runs there and a status: healthy, error (the collector
    reported a proctor-side failure: the grader is blind), platform error (evidence about
    the candidate's platform), or silent."""
    table = f"{catalog}.{COLLECTORS_TABLE}"
    return f"""CREATE OR REPLACE VIEW {catalog}.grading.{view}
COMMENT 'Each platform''s collectors: last heartbeat, status, error'
AS
WITH latest AS (
    SELECT * FROM {table}
    WHERE sampled_at = (SELECT max(sampled_at) FROM {table})
),
platforms AS (
    SELECT platform_id AS p, max(last_heartbeat_at) AS newest FROM latest GROUP BY platform_id
),
candidates AS (
    SELECT DISTINCT platform_id AS cp, candidate_id FROM {catalog}.grading.exam_scores
)
SELECT c.candidate_id, l.platform_id, l.collector, l.source, l.last_heartbeat_at,
       CAST(date_diff('second', l.last_heartbeat_at, p.newest) AS integer) AS behind_s,
       l.healthy, l.error, l.error_kind, l.heartbeats, l.sampled_at,
       CASE WHEN date_diff('second', l.last_heartbeat_at, p.newest) > {SILENT_AFTER_S}
                THEN 'silent'
            WHEN l.healthy THEN 'healthy'
            WHEN l.error_kind IN ('platform', 'payload') THEN 'platform error'
            ELSE 'error' END AS status
FROM latest l JOIN platforms p ON p.p = l.platform_id
LEFT JOIN candidates c ON c.cp = l.platform_id"""


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


def ensure_health_table(
    catalog: Catalog, identifier: str = HEALTH_TABLE, schema: Schema = HEALTH_SCHEMA
) -> Table:
    try:
        return catalog.load_table(identifier)
    except NoSuchTableError:
        pass
    catalog.create_namespace_if_not_exists(identifier.rsplit(".", 1)[0])
    return catalog.create_table_if_not_exists(
        identifier,
        schema=schema,
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
        collectors: CollectorWatch | None = None,
        collectors_table: Table | None = None,
        roster: RosterSnapshot | None = None,
    ) -> None:
        self.consumer = consumer
        self.table = table
        self.group = group
        self.prefix = prefix
        self.interval_s = interval_s
        self.expire_every = expire_every
        self.now = now
        self.commits = 0
        self.collectors = collectors
        self.collectors_table = collectors_table
        self.roster = roster

    def once(self) -> int:
        at = self.now()
        if self.roster is not None:
            self.roster.once()
        if self.collectors is not None and self.collectors_table is not None:
            self.collectors.poll(max(1.0, self.interval_s / 2))
            beats = self.collectors.rows()
            if beats:
                schema = self.collectors_table.schema().as_arrow()
                self.collectors_table.append(collectors_to_arrow(beats, at, schema))
        rows = sample(self.consumer, self.prefix)
        if not rows:
            return 0
        self.table.append(to_arrow(rows, self.group, at, self.table.schema().as_arrow()))
        self.commits += 1
        if self.expire_every and self.commits % self.expire_every == 0:
            self._expire()
        return len(rows)

    def _expire(self) -> None:
        """A commit every few seconds makes many snapshots: keep the last hour's."""
        cutoff = int(time.time() * 1000) - 3_600_000
        roster_table = self.roster.table if self.roster is not None else None
        for table in (self.table, self.collectors_table, roster_table):
            if table is None:
                continue
            try:
                table.maintenance.expire_snapshots().older_than(
                    datetime.fromtimestamp(cutoff / 1000, tz=UTC)
                ).commit()
            except Exception as exc:  # maintenance must never stop sampling
                log.warning("expiring snapshots of %s failed: %s", table.name(), exc)

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
