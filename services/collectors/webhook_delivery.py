"""Produce records and wait until the broker has acknowledged them, from asyncio or a thread.

A receiver answers 2xx only after every record of the request is acknowledged
(``acks=all`` on the idempotent producer of :class:`~services.publisher.Publisher`), so an
accepted event is never lost. One thread polls the producer for delivery reports and
hands each one to the request waiting for it, so concurrent requests do not wait for
each other (``Producer.flush`` would make every request wait for all of them).

Every signal record gets the MAC headers of its platform (docs/trust.md) from
``PROCTOR_ROSTER_SECRET`` (a receiver serving many platforms) or ``PROCTOR_SIGNAL_KEY``
(one platform); dead letters are not signals and go without.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial

from confluent_kafka import KafkaError, KafkaException, Message, Producer

from services.errors import ConfigError, DeliveryError
from services.tracing import traced_headers
from services.trust.credentials import SignalKeys

log = logging.getLogger(__name__)
_DEAD_LETTER = ("proctor.type", b"grading.dead_letter")


@dataclass(frozen=True, slots=True)
class OutRecord:
    """One record to produce."""

    topic: str
    key: bytes | None
    value: bytes
    headers: tuple[tuple[str, bytes], ...] = ()


@dataclass(frozen=True, slots=True)
class Ack:
    """Where the broker stored a record."""

    topic: str
    partition: int
    offset: int


#: (index of the record, error or None, ack or None), called on the polling thread.
_Report = Callable[[int, KafkaError | None, Ack | None], None]


class AckingSender:
    """Send records through ``producer`` and await their acknowledgements."""

    def __init__(
        self,
        producer: Producer,
        poll_s: float = 0.05,
        signal_keys: SignalKeys | str | None = "env",
    ) -> None:
        self.producer = producer
        #: the platforms' signal keys ("env": from the environment; None: no MACs)
        self.signal_keys = SignalKeys.from_env() if signal_keys == "env" else signal_keys
        self._poll_s = poll_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, name="delivery-reports", daemon=True)
        self._thread.start()

    def _poll(self) -> None:
        while not self._stop.is_set():
            self.producer.poll(self._poll_s)

    def close(self, timeout_s: float = 10.0) -> int:
        """Stop polling and wait for what is in flight; returns records still unconfirmed."""
        self._stop.set()
        self._thread.join(timeout_s)
        return int(self.producer.flush(timeout_s))

    def _headers(self, record: OutRecord) -> list[tuple[str, str | bytes | None]]:
        headers: list[tuple[str, str | bytes | None]] = list(record.headers)
        keys = self.signal_keys
        if not isinstance(keys, SignalKeys) or _DEAD_LETTER in record.headers or not record.key:
            return headers
        platform = record.key.decode("utf-8", "replace")
        try:
            headers.extend(keys.headers(platform, record.topic, record.key, record.value))
        except ConfigError as exc:  # the worker refuses it with the reason; say so here too
            log.warning("signal of %s sent without a MAC: %s", platform, exc)
        return headers

    def _produce(self, records: Sequence[OutRecord], report: _Report) -> None:
        for index, record in enumerate(records):
            headers = self._headers(record)
            attributes = {"messaging.system": "kafka", "messaging.destination.name": record.topic}
            try:
                # W3C trace context of the receiver's producer span (services/tracing.py)
                with traced_headers(f"publish {record.topic}", headers, attributes):
                    self.producer.produce(
                        record.topic,
                        value=record.value,
                        key=record.key,
                        headers=headers,
                        on_delivery=partial(_on_delivery, report, index),
                    )
            except BufferError as exc:
                raise DeliveryError(
                    "the producer queue is full: the broker is down or not keeping up"
                ) from exc
            except KafkaException as exc:
                raise DeliveryError(f"cannot produce to {record.topic}: {exc}") from exc

    async def send(self, records: Sequence[OutRecord], timeout_s: float) -> list[Ack]:
        """Produce ``records`` and return their acks; DeliveryError if any is not acked in time."""
        if not records:
            return []
        loop = asyncio.get_running_loop()
        futures: list[asyncio.Future[Ack]] = [loop.create_future() for _ in records]

        def report(index: int, err: KafkaError | None, ack: Ack | None) -> None:
            loop.call_soon_threadsafe(_settle, futures[index], err, ack)

        self._produce(records, report)
        done, pending = await asyncio.wait(futures, timeout=timeout_s)
        for future in pending:
            future.cancel()
        if pending:
            raise DeliveryError(
                f"{len(pending)} of {len(records)} records not acknowledged by the broker "
                f"within {timeout_s:g}s"
            )
        errors = [f.exception() for f in done if f.exception() is not None]
        if errors:
            raise DeliveryError(f"{len(errors)} of {len(records)} records failed: {errors[0]}")
        return [f.result() for f in futures]

    def send_blocking(self, records: Sequence[OutRecord], timeout_s: float) -> list[Ack]:
        """The same for threads without an event loop (the Kafka bridge)."""
        if not records:
            return []
        results: list[Ack | None] = [None] * len(records)
        failures: list[str] = []
        remaining = [len(records)]
        lock = threading.Lock()
        finished = threading.Event()

        def report(index: int, err: KafkaError | None, ack: Ack | None) -> None:
            with lock:
                if err is not None:
                    failures.append(err.str())
                results[index] = ack
                remaining[0] -= 1
                if remaining[0] == 0:
                    finished.set()

        self._produce(records, report)
        if not finished.wait(timeout_s):
            raise DeliveryError(
                f"{remaining[0]} of {len(records)} records not acknowledged by the broker "
                f"within {timeout_s:g}s"
            )
        if failures:
            raise DeliveryError(f"{len(failures)} of {len(records)} records failed: {failures[0]}")
        return [r for r in results if r is not None]


def _on_delivery(report: _Report, index: int, err: KafkaError | None, msg: Message) -> None:
    # The message is only valid inside the callback: copy where it landed now.
    if err is not None:
        report(index, err, None)
    else:
        report(index, None, Ack(msg.topic() or "", msg.partition() or 0, msg.offset() or 0))


def _settle(future: asyncio.Future[Ack], err: KafkaError | None, ack: Ack | None) -> None:
    if future.done():  # the request already timed out
        return
    if err is not None or ack is None:
        future.set_exception(DeliveryError(err.str() if err is not None else "no delivery report"))
    else:
        future.set_result(ack)
