"""Bridge the OpenLineage Kafka transport's topic to ``platform.openlineage``.

The OpenLineage Kafka transport writes each event as JSON to a topic of the platform's
broker. The bridge consumes it in batches, turns every RunEvent into ``openlineage.run``
(dead-lettering what is not a valid one, with its topic/partition/offset), waits until
the broker acknowledged every produced record, and only then commits the consumer
offsets. A crash or a broker outage therefore repeats at most the uncommitted batch,
which carries the same event ids (runId, eventType, eventTime) and is de-duplicated
downstream: nothing is skipped, and nothing is counted twice.

Every failure of one record (not JSON, not a RunEvent, refused by the contract, too large
for its topic, or a bug in the parser) is that record's dead letter, and the bridge goes
on. Should the thread die anyway, :meth:`LineageBridge.health_error` says so, and the
receiver's heartbeat of the openlineage collector turns unhealthy with the error.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition
from prometheus_client import CollectorRegistry, Counter, Gauge

from services.collectors.openlineage import NAME, run_event
from services.collectors.webhook import PRODUCER_MAX_BYTES, SIGNAL_RECORD_MAX
from services.collectors.webhook_delivery import AckingSender, OutRecord
from services.collectors.webhook_payload import as_object, event_id, load_json
from services.contract.dlq import dead_letter_for, dead_letter_record
from services.contract.settings import ClientSettings
from services.core.events import Event
from services.errors import ContractError, PayloadError, RegistryError
from services.publisher.publisher import TYPE_HEADER, Publisher

log = logging.getLogger("proctor.collectors.openlineage")

BATCH = 500
MAX_BACKOFF_S = 30.0


@dataclass(frozen=True, slots=True)
class BatchResult:
    """What one poll did."""

    records: int = 0
    published: int = 0
    dead_lettered: int = 0
    ignored: int = 0


class BridgeMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.polls = Counter(
            "proctor_openlineage_bridge_polls", "Batches polled.", registry=registry
        )
        self.errors = Counter(
            "proctor_openlineage_bridge_errors",
            "Batches that failed and were retried.",
            registry=registry,
        )
        self.published = Counter(
            "proctor_openlineage_bridge_published", "Run events published.", registry=registry
        )
        self.dead = Counter(
            "proctor_openlineage_bridge_dead_letters", "Records dead-lettered.", registry=registry
        )
        self.lag = Gauge(
            "proctor_openlineage_bridge_lag_records",
            "Records behind the topic's end.",
            registry=registry,
        )


class LineageBridge:
    """Consume ``topic`` (on ``source_bootstrap``) and publish its run events for ``platform_id``."""

    def __init__(
        self,
        client: ClientSettings,
        *,
        source_bootstrap: str,
        topic: str,
        group_id: str,
        platform_id: str,
        heartbeat_s: float = 30.0,
        send_timeout_s: float = 30.0,
        registry: CollectorRegistry | None = None,
        publisher: Publisher | None = None,
    ) -> None:
        self.topic = topic
        self.collector = NAME
        self.platform_id = platform_id
        self.source = f"kafka {source_bootstrap}/{topic}"
        self.heartbeat_s = heartbeat_s
        self.send_timeout_s = send_timeout_s
        self.publisher = publisher or Publisher(
            client, producer_config={"linger.ms": 5, "message.max.bytes": PRODUCER_MAX_BYTES}
        )
        self.codec = self.publisher.codec
        self.sender = AckingSender(self.publisher.producer)
        self.consumer = Consumer(
            {
                "bootstrap.servers": source_bootstrap,
                "group.id": group_id,
                "enable.auto.commit": False,
                "auto.offset.reset": "earliest",
                "isolation.level": "read_committed",
            }
        )
        self.consumer.subscribe([topic])
        self.metrics = BridgeMetrics(registry or CollectorRegistry())
        self.positions: dict[int, int] = {}
        self.error: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- one batch ---------------------------------------------------------------------
    def poll_once(self, timeout_s: float = 1.0) -> BatchResult:
        """Consume one batch, publish it, wait for the acks, then commit its offsets.

        On any failure the consumer is rewound to the batch's first offsets and the error
        raised, so the next call reads the same records again.
        """
        messages: list[Message] = self.consumer.consume(BATCH, timeout=timeout_s)
        if not messages:
            return BatchResult()
        self.metrics.polls.inc()
        first: dict[int, int] = {}
        last: dict[int, int] = {}
        try:
            records, published, dead, ignored = self._records(messages, first, last)
            self.sender.send_blocking(records, self.send_timeout_s)
            self.consumer.commit(
                offsets=[TopicPartition(self.topic, p, o + 1) for p, o in last.items()],
                asynchronous=False,
            )
        except BaseException:
            for partition, offset in first.items():
                self.consumer.seek(TopicPartition(self.topic, partition, offset))
            raise
        for partition, offset in last.items():
            self.positions[partition] = offset + 1
        self.metrics.published.inc(published)
        self.metrics.dead.inc(dead)
        self._update_lag()
        return BatchResult(len(messages), published, dead, ignored)

    def _records(
        self, messages: list[Message], first: dict[int, int], last: dict[int, int]
    ) -> tuple[list[OutRecord], int, int, int]:
        records: list[OutRecord] = []
        published = dead = ignored = 0
        for msg in messages:
            err = msg.error()
            if err is not None:
                if err.code() == KafkaError._PARTITION_EOF:
                    continue
                raise KafkaException(err)
            partition, offset = msg.partition() or 0, msg.offset() or 0
            first.setdefault(partition, offset)
            last[partition] = offset
            try:
                doc = as_object(load_json(msg.value() or b"", "OpenLineage record"), "record")
                result = run_event(doc, self.platform_id)
                if isinstance(result, str):
                    ignored += 1
                    continue
                self.publisher.contract.to_datum(result)
                record = self._record(result)
                if len(record.value) > SIGNAL_RECORD_MAX:
                    raise PayloadError(
                        f"the run event encodes to {len(record.value)} bytes, over the "
                        f"{SIGNAL_RECORD_MAX} bytes platform.openlineage takes",
                        "oversized",
                    )
            except RegistryError:
                raise  # the registry's fault, not the record's: retry the batch
            except (PayloadError, ContractError) as exc:
                error_class = exc.error_class if isinstance(exc, PayloadError) else "invalid_field"
                records.append(self._dead(msg, f"OpenLineage record: {exc}", error_class))
                dead += 1
                continue
            except Exception as exc:  # a parser bug on one record must not stop the bridge
                log.exception("openlineage bridge: record %s/%s failed", partition, offset)
                reason = f"OpenLineage record: the bridge failed on it ({exc!r})"
                records.append(self._dead(msg, reason, "other"))
                dead += 1
                continue
            records.append(record)
            published += 1
        return records, published, dead, ignored

    def _dead(self, msg: Message, reason: str, error_class: str) -> OutRecord:
        dead_letter = dead_letter_for(msg, reason, error_class)
        topic, key, value = dead_letter_record(dead_letter, self.codec)
        return OutRecord(topic, key, value, ((TYPE_HEADER, b"grading.dead_letter"),))

    def _record(self, event: Event) -> OutRecord:
        return OutRecord(
            self.codec.topic_for(event.type),
            self.codec.key_for(event),
            self.codec.encode(event),
            ((TYPE_HEADER, event.type.encode()),),
        )

    def _update_lag(self) -> None:
        lag = 0
        for partition, position in self.positions.items():
            try:
                _low, high = self.consumer.get_watermark_offsets(
                    TopicPartition(self.topic, partition), timeout=2.0, cached=False
                )
            except KafkaException:
                return
            lag += max(0, high - position)
        self.metrics.lag.set(lag)

    # -- heartbeats --------------------------------------------------------------------
    def heartbeat(self) -> None:
        """Publish a collector.heartbeat saying where the bridge has read up to."""
        now_ms = int(time.time() * 1000)
        position = ", ".join(f"{self.topic}/{p}:{o}" for p, o in sorted(self.positions.items()))
        event = Event(
            "collector.heartbeat",
            self.platform_id,
            event_id(f"heartbeat:{NAME}-kafka", self.platform_id, str(now_ms)),
            now_ms,
            {
                "collector": NAME,
                "source": self.source,
                "position": position or "nothing read yet",
                "healthy": self.error is None,
                "error": self.error,
            },
        )
        self.sender.send_blocking([self._record(event)], self.send_timeout_s)

    # -- running -----------------------------------------------------------------------
    def health_error(self) -> str | None:
        """Why the bridge is not healthy (its last error, or a dead thread), or None."""
        thread = self._thread
        if thread is not None and not thread.is_alive() and not self._stop.is_set():
            return f"the OpenLineage Kafka bridge thread stopped: {self.error or 'no error kept'}"
        return self.error

    def run(self) -> None:
        """Poll until stopped; a death of the thread is kept as its error (health_error)."""
        try:
            self._run()
        except BaseException as exc:
            self.error = f"{type(exc).__name__}: {exc}"
            log.exception("openlineage bridge: the thread died")
            raise

    def _run(self) -> None:
        """Poll until stopped; back off (1 s doubling to 30 s) with a log line on errors."""
        backoff = 1.0
        next_beat = 0.0
        while not self._stop.is_set():
            try:
                self.poll_once()
                self.error = None
                backoff = 1.0
            except Exception as exc:  # whatever it is, the batch is rewound and retried
                self.error = f"{type(exc).__name__}: {exc}"
                self.metrics.errors.inc()
                log.warning(
                    "openlineage bridge: %s; retrying the batch in %.0fs", self.error, backoff
                )
                next_beat = 0.0  # report the error now
            if time.monotonic() >= next_beat:
                try:
                    self.heartbeat()
                    next_beat = time.monotonic() + self.heartbeat_s
                except Exception as exc:
                    log.warning("openlineage bridge: heartbeat not acknowledged: %s", exc)
            if self.error is not None:
                self._stop.wait(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF_S)

    def start(self) -> None:
        self._thread = threading.Thread(target=self.run, name="openlineage-bridge", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(60)
        self.consumer.close()
        self.sender.close()
