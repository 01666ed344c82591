"""A plain consumer of contract events that dead-letters what it cannot decode.

The reference loop for every reader of proctor topics (tools, tests, the terminal
scoreboard): each record becomes an Event or a dead letter on ``grading.dlq``, and the
loop goes on. Offsets are committed only after the dead letters of the batch are
acknowledged, so a crash can repeat a record (consumers de-duplicate on event_id) but
never lose a bad one.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from typing import Any

from confluent_kafka import Consumer, KafkaError, Message, Producer

from services.contract.dlq import DeadLetter, dead_letter_record, safe_decode
from services.contract.schemas import INPUT_TOPICS, topic_name
from services.contract.settings import ClientSettings
from services.contract.wire import WireCodec, registry_client
from services.core.events import Event
from services.errors import DeliveryError, RegistryError

CONSUMER_DEFAULTS: Mapping[str, Any] = {
    "auto.offset.reset": "earliest",
    "enable.auto.commit": False,
    "isolation.level": "read_committed",
}


class EventConsumer:
    """Consume contract topics (logical names; the settings' prefix is applied)."""

    def __init__(
        self,
        settings: ClientSettings,
        group_id: str,
        topics: Iterable[str] = INPUT_TOPICS,
        *,
        codec: WireCodec | None = None,
        consumer_config: Mapping[str, Any] | None = None,
    ) -> None:
        self.settings = settings
        self.codec = codec or WireCodec(
            registry_client(
                settings.registry_url, basic_auth_user_info=settings.registry_user_info
            ),
            topic_prefix=settings.topic_prefix,
        )
        self.consumer = Consumer(
            settings.kafka_config(
                **{**CONSUMER_DEFAULTS, "group.id": group_id, **(consumer_config or {})}
            )
        )
        self.consumer.subscribe([topic_name(t, settings.topic_prefix) for t in topics])
        self.dlq = Producer(settings.kafka_config(**{"enable.idempotence": True, "acks": "all"}))
        self.dead_letters: list[DeadLetter] = []

    def __enter__(self) -> EventConsumer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.dlq.flush(10)
        self.consumer.close()

    def _dead_letter(self, dead: DeadLetter) -> None:
        topic, key, value = dead_letter_record(dead, self.codec)
        self.dlq.produce(topic, value=value, key=key)
        self.dead_letters.append(dead)

    def consume(self, max_events: int, timeout_s: float, batch: int = 100) -> list[Event]:
        """Events decoded until ``max_events`` arrive or ``timeout_s`` passes; bad records go to the DLQ.

        Raises RegistryError when the registry is unreachable: the batch is not committed,
        so it is read again on the next call.
        """
        events: list[Event] = []
        deadline = time.monotonic() + timeout_s
        while len(events) < max_events and time.monotonic() < deadline:
            messages: list[Message] = self.consumer.consume(
                batch, timeout=min(1.0, max(0.0, deadline - time.monotonic()))
            )
            if not messages:
                continue
            for msg in messages:
                err = msg.error()
                if err is not None:
                    if err.code() == KafkaError._PARTITION_EOF:
                        continue
                    raise DeliveryError(f"consumer error: {err.str()}")
                try:
                    result = safe_decode(msg, self.codec)
                except RegistryError:
                    raise
                if isinstance(result, DeadLetter):
                    self._dead_letter(result)
                else:
                    events.append(result)
            if self.dlq.flush(30):
                raise DeliveryError("dead letters were not acknowledged; offsets not committed")
            self.consumer.commit(asynchronous=False)
        return events
