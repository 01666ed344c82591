"""The shared loop of every polling collector: poll, publish, remember, report.

A :class:`Collector` knows one source; :class:`Poller` runs it: poll from the stored
position, publish the new signals, store the new position, send heartbeats, back off on
errors, count everything in Prometheus metrics.

Exactly once, also across crashes. A batch is validated and encoded first, then written
to the position file as *pending* (the events, the position after them and the end of
the platform's partition on each target topic), then sent, then the new position is
committed. A restart that finds a pending batch reads the topic from the noted offsets
and publishes only the events that are not there yet, so each signal lands once even if
the process died between the broker's acknowledgement and the commit. Event ids are
deterministic (uuid5 of platform, collector and the source's natural key), so even a
duplicate that slipped through (a send that timed out and was delivered late) is
de-duplicated by the grader.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import random
import re
import tempfile
import threading
import time
import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition
from prometheus_client import Counter, Gauge

from services.collectors.blindness import PROCTOR_SIDE, error_kind
from services.core.events import Event, event_from_json_obj, event_to_json_obj, ms_to_rfc3339
from services.errors import ConfigError, ProctorError
from services.publisher.publisher import Prepared, Publisher

log = logging.getLogger("proctor.collectors")

#: Namespace of every collector event id (uuid5); never change it, or ids stop matching.
SIGNAL_NAMESPACE = uuid.UUID("6f1c3c9e-5a4e-4f0b-9c36-0d7b8f2a61e4")
HEARTBEAT_EVERY_S = 30.0
STATE_VERSION = 1

Position = dict[str, Any]

# -- metrics (created once; dimensions in labels) --------------------------------------
POLLS = Counter("proctor_collector_polls", "Polls of a source", ["collector", "platform_id"])
ERRORS = Counter(
    "proctor_collector_errors", "Failed polls or deliveries", ["collector", "platform_id"]
)
PUBLISHED = Counter(
    "proctor_collector_events_published",
    "Signals acknowledged by the broker",
    ["collector", "platform_id", "type"],
)
LAG = Gauge(
    "proctor_collector_source_lag",
    "Items the source has that are not published yet, after the last poll (0 = caught up)",
    ["collector", "platform_id"],
)
LAST_SUCCESS = Gauge(
    "proctor_collector_last_success_timestamp_seconds",
    "When the last poll succeeded; time() minus this is the lag in seconds",
    ["collector", "platform_id"],
)


# -- events ------------------------------------------------------------------------------
def now_ms() -> int:
    return int(time.time() * 1000)


def signal_id(platform_id: str, collector: str, key: Sequence[object]) -> str:
    """Deterministic event id: the same source fact always gets the same id."""
    name = "\x1f".join([platform_id, collector, *(str(k) for k in key)])
    return str(uuid.uuid5(SIGNAL_NAMESPACE, name))


def signal(
    event_type: str,
    platform_id: str,
    collector: str,
    key: Sequence[object],
    ts_ms: int,
    data: Mapping[str, Any],
) -> Event:
    """A signal event whose id is derived from ``key`` (the source's natural key)."""
    return Event(
        type=event_type,
        platform_id=platform_id,
        event_id=signal_id(platform_id, collector, [event_type, *key]),
        ts_ms=int(ts_ms),
        data=dict(data),
    )


@dataclass(frozen=True, slots=True)
class PollResult:
    """What one poll found: the new signals and the position after them."""

    events: tuple[Event, ...]
    position: Position
    #: items the source still has beyond this batch (0 = caught up)
    lag: int = 0


class Collector(ABC):
    """One source of one platform. Subclasses are pure apart from reading their source."""

    #: heartbeat ``collector`` name, as the rubric lists it (e.g. ``cdc-offsets``)
    name: ClassVar[str]
    #: position-file name; differs from ``name`` when two collectors report as one
    key: ClassVar[str] = ""

    def __init__(self, platform_id: str) -> None:
        if not platform_id:
            raise ConfigError("platform_id is empty; set --platform-id or PROCTOR_PLATFORM_ID")
        self.platform_id = platform_id

    @property
    def store_key(self) -> str:
        return self.key or self.name

    @property
    @abstractmethod
    def source(self) -> str:
        """What it watches, e.g. the Flink REST address (heartbeat ``source``)."""

    @abstractmethod
    def poll(self, position: Position) -> PollResult:
        """Read the source from ``position``; raise on any failure (the poller backs off)."""

    def describe(self, position: Position) -> str:
        """Heartbeat ``position``: where it has read up to, short."""
        text = json.dumps(position, sort_keys=True, separators=(",", ":"))
        return text if len(text) <= 500 else text[:497] + "..."

    def signal(
        self, event_type: str, key: Sequence[object], ts_ms: int, data: Mapping[str, Any]
    ) -> Event:
        return signal(event_type, self.platform_id, self.name, key, ts_ms, data)

    def close(self) -> None:
        """Release clients (HTTP sessions, catalogs)."""


# -- position store ----------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Pending:
    """A batch written ahead of sending: enough to finish it after a crash."""

    position: Position
    events: tuple[Event, ...]
    #: topic -> (partition of the platform's key, its end offset before sending)
    marks: Mapping[str, tuple[int, int]]


@dataclass(frozen=True, slots=True)
class Stored:
    position: Position
    pending: Pending | None = None


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name)


def write_atomically(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` so a crash leaves the old or the new file, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


class PositionStore:
    """A small JSON file per collector and platform: the committed position, and a
    pending batch while one is being sent."""

    def __init__(self, state_dir: Path, collector: str, platform_id: str) -> None:
        self.path = Path(state_dir) / f"{_safe(collector)}--{_safe(platform_id)}.json"
        self.collector = collector
        self.platform_id = platform_id

    def load(self) -> Stored:
        if not self.path.exists():
            return Stored({})
        try:
            obj = json.loads(self.path.read_text(encoding="utf-8"))
            pending = obj.get("pending")
            return Stored(
                dict(obj["position"]),
                None
                if pending is None
                else Pending(
                    dict(pending["position"]),
                    tuple(event_from_json_obj(e) for e in pending["events"]),
                    {t: (int(p), int(o)) for t, (p, o) in pending["marks"].items()},
                ),
            )
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ConfigError(
                f"position file {self.path} is unreadable ({type(exc).__name__}: {exc}); "
                "move it away to start the collector from the beginning of its source "
                "(signals already published are de-duplicated by event id)"
            ) from exc

    def _write(self, position: Position, pending: Pending | None) -> None:
        obj: dict[str, Any] = {
            "version": STATE_VERSION,
            "collector": self.collector,
            "platform_id": self.platform_id,
            "updated": ms_to_rfc3339(now_ms()),
            "position": position,
            "pending": None
            if pending is None
            else {
                "position": pending.position,
                "events": [event_to_json_obj(e) for e in pending.events],
                "marks": {t: list(m) for t, m in pending.marks.items()},
            },
        }
        write_atomically(self.path, json.dumps(obj, sort_keys=True, ensure_ascii=False))

    def begin(self, committed: Position, pending: Pending) -> None:
        self._write(committed, pending)

    def commit(self, position: Position) -> None:
        self._write(position, None)


# -- backoff -----------------------------------------------------------------------------
@dataclass
class Backoff:
    """Exponential backoff with jitter: 1 s, 2 s, 4 s ... up to ``max_s``."""

    initial_s: float = 1.0
    max_s: float = 60.0
    factor: float = 2.0
    jitter: float = 0.1
    attempt: int = 0

    def next(self) -> float:
        delay = min(self.max_s, self.initial_s * self.factor**self.attempt)
        self.attempt += 1
        return delay * (1 + random.uniform(-self.jitter, self.jitter))

    def reset(self) -> None:
        self.attempt = 0


# -- partitioning (to find a batch on the topic after a crash) ------------------------------
def murmur2_partition(key: bytes, partitions: int) -> int:
    """The partition the murmur2 partitioner (Java's default, the publisher's) picks."""
    m = 0x5BD1E995
    length = len(key)
    h = (0x9747B28C ^ length) & 0xFFFFFFFF
    whole = length - length % 4
    for i in range(0, whole, 4):
        k = int.from_bytes(key[i : i + 4], "little")
        k = (k * m) & 0xFFFFFFFF
        k ^= k >> 24
        k = (k * m) & 0xFFFFFFFF
        h = ((h * m) & 0xFFFFFFFF) ^ k
    tail = key[whole:]
    if len(tail) == 3:
        h ^= tail[2] << 16
    if len(tail) >= 2:
        h ^= tail[1] << 8
    if tail:
        h ^= tail[0]
        h = (h * m) & 0xFFFFFFFF
    h ^= h >> 13
    h = (h * m) & 0xFFFFFFFF
    h ^= h >> 15
    return (h & 0x7FFFFFFF) % partitions


def error_text(exc: BaseException) -> str:
    text = str(exc) if isinstance(exc, ProctorError) else f"{type(exc).__name__}: {exc}"
    return text if len(text) <= 1000 else text[:997] + "..."


# -- the loop ----------------------------------------------------------------------------
@dataclass
class Poller:
    """Runs one collector: poll every ``interval_s``, heartbeat every 30 s and on error."""

    collector: Collector
    publisher: Publisher
    store: PositionStore
    interval_s: float = 15.0
    heartbeat_s: float = HEARTBEAT_EVERY_S
    backoff: Backoff = field(default_factory=Backoff)
    clock: Callable[[], float] = time.monotonic
    healthy: bool = True
    last_error: str | None = None
    #: whose failure the last error was (services.collectors.blindness)
    last_error_kind: str | None = None
    _stored: Stored | None = None
    _meta: Consumer | None = None

    @property
    def labels(self) -> tuple[str, str]:
        return self.collector.store_key, self.collector.platform_id

    # -- one step ----------------------------------------------------------------------
    def step(self) -> int:
        """Finish an interrupted batch, poll once, publish, commit. Returns events published."""
        stored = self._stored if self._stored is not None else self.store.load()
        self._stored = stored
        if stored.pending is not None:
            self._finish(stored.pending)
            stored = self._stored = Stored(stored.pending.position)
        POLLS.labels(*self.labels).inc()
        result = self.collector.poll(stored.position)
        LAG.labels(*self.labels).set(result.lag)
        if result.events:
            prepared = self.publisher.prepare(result.events)
            pending = Pending(result.position, result.events, self._marks(prepared))
            self.store.begin(stored.position, pending)
            self._stored = Stored(stored.position, pending)
            self.publisher.send(prepared)
            self._count(result.events)
        if result.events or result.position != stored.position:
            self.store.commit(result.position)
        self._stored = Stored(result.position)
        LAST_SUCCESS.labels(*self.labels).set(time.time())
        return len(result.events)

    def _count(self, events: Sequence[Event]) -> None:
        for ev in events:
            PUBLISHED.labels(*self.labels, ev.type).inc()

    def _consumer(self) -> Consumer:
        if self._meta is None:
            conf = self.publisher.settings.kafka_config(
                **{
                    "group.id": f"proctor-collector-{uuid.uuid4().hex}",
                    "enable.auto.commit": False,
                    "enable.partition.eof": True,
                    "auto.offset.reset": "earliest",
                }
            )
            self._meta = Consumer(conf)
        return self._meta

    def _marks(self, prepared: Sequence[Prepared]) -> dict[str, tuple[int, int]]:
        """Per target topic: the platform's partition and its end offset before sending."""
        consumer = self._consumer()
        marks: dict[str, tuple[int, int]] = {}
        for topic, key in {(p.topic, p.key) for p in prepared}:
            meta = consumer.list_topics(topic, timeout=10).topics.get(topic)
            if meta is None or meta.error is not None or not meta.partitions:
                raise ProctorError(
                    f"topic {topic} does not exist; create the contract topics with "
                    "`proctor topics create`"
                )
            partition = murmur2_partition(key, len(meta.partitions))
            _, high = consumer.get_watermark_offsets(
                TopicPartition(topic, partition), timeout=10, cached=False
            )
            marks[topic] = (partition, int(high))
        return marks

    def _finish(self, pending: Pending) -> None:
        """Publish the part of an interrupted batch that is not on its topics yet."""
        wanted = {e.event_id for e in pending.events}
        found = self._ids_on_topics(pending.marks, wanted)
        missing = [e for e in pending.events if e.event_id not in found]
        if missing:
            self.publisher.publish_many(missing)
            self._count(missing)
        self.store.commit(pending.position)
        log.info(
            "collector %s (platform %s): finished an interrupted batch: %d of %d events were "
            "already on the topic, published the other %d",
            self.collector.store_key,
            self.collector.platform_id,
            len(pending.events) - len(missing),
            len(pending.events),
            len(missing),
        )

    def _ids_on_topics(self, marks: Mapping[str, tuple[int, int]], wanted: set[str]) -> set[str]:
        consumer = self._consumer()
        key = self.collector.platform_id.encode()
        found: set[str] = set()
        for topic, (partition, start) in marks.items():
            tp = TopicPartition(topic, partition)
            _, end = consumer.get_watermark_offsets(tp, timeout=10, cached=False)
            if end <= start:
                continue
            consumer.assign([TopicPartition(topic, partition, start)])
            deadline = self.clock() + 60
            offset = start
            while offset < end and self.clock() < deadline:
                msg = consumer.poll(1.0)
                if msg is None:
                    continue
                err = msg.error()
                if err is not None:
                    if err.code() == KafkaError._PARTITION_EOF:
                        break
                    raise KafkaException(err)
                offset = (msg.offset() or 0) + 1
                if msg.key() != key:
                    continue
                with contextlib.suppress(ProctorError):
                    ev = self.publisher.codec.decode(
                        msg.value(), topic, msg.partition() or 0, msg.offset() or 0
                    )
                    if ev.event_id in wanted:
                        found.add(ev.event_id)
            if offset < end:
                raise ProctorError(
                    f"could not read {topic}/{partition} up to offset {end} to finish an "
                    "interrupted batch; will retry"
                )
            consumer.unassign()
        return found

    # -- heartbeats ----------------------------------------------------------------------
    def heartbeat(self) -> None:
        """Publish collector.heartbeat with the current health; never raises."""
        ts = now_ms()
        stored = self._stored
        position = self.collector.describe(stored.position) if stored is not None else ""
        beat = self.collector.signal(
            "collector.heartbeat",
            ["heartbeat", ts],
            ts,
            {
                "collector": self.collector.name,
                "source": self.collector.source,
                "position": position,
                "healthy": self.healthy,
                "error": None if self.healthy else self.last_error,
                "error_kind": None if self.healthy else (self.last_error_kind or PROCTOR_SIDE),
            },
        )
        try:
            self.publisher.publish(beat, timeout_s=10)
        except Exception as exc:
            log.warning(
                "collector %s (platform %s): heartbeat not delivered: %s",
                self.collector.store_key,
                self.collector.platform_id,
                error_text(exc),
            )

    # -- the loop ----------------------------------------------------------------------
    def attempt(self) -> float:
        """One step with error handling; returns the seconds to wait before the next."""
        try:
            self.step()
        except Exception as exc:
            self.healthy, self.last_error = False, error_text(exc)
            self.last_error_kind = error_kind(exc)
            ERRORS.labels(*self.labels).inc()
            delay = self.backoff.next()
            log.warning(
                "collector %s (platform %s, source %s) failed: %s; retrying in %.1fs",
                self.collector.store_key,
                self.collector.platform_id,
                self.collector.source,
                self.last_error,
                delay,
                exc_info=not isinstance(exc, ProctorError | KafkaException | OSError),
            )
            self.heartbeat()
            return delay
        self.healthy, self.last_error, self.last_error_kind = True, None, None
        self.backoff.reset()
        return self.interval_s

    def run(self, stop: threading.Event) -> None:
        """Poll until ``stop`` is set; never raises for a failing source."""
        next_poll = self.clock()
        next_beat = next_poll
        try:
            while not stop.is_set():
                if self.clock() >= next_poll:
                    was_healthy = self.healthy
                    delay = self.attempt()
                    next_poll = self.clock() + delay
                    if not self.healthy:
                        next_beat = self.clock() + self.heartbeat_s
                    elif not was_healthy:
                        next_beat = self.clock()  # recovered: say so at once
                if self.clock() >= next_beat:
                    self.heartbeat()
                    next_beat = self.clock() + self.heartbeat_s
                stop.wait(max(0.0, min(next_poll, next_beat) - self.clock()))
        finally:
            self.close()

    def close(self) -> None:
        self.collector.close()
        if self._meta is not None:
            self._meta.close()
            self._meta = None
