"""Dead letters: every record that cannot be decoded or validated, kept with the reason.

A consumer calls :func:`safe_decode` on each record and gets either an :class:`Event` or a
:class:`DeadLetter` — never an exception for a bad record, so one corrupt record cannot
stop grading. The dead letter carries the raw key, value and headers and the source
topic/partition/offset, and is itself a contract event (``grading.dead_letter``) that
:func:`dead_letter_record` turns into a record for the ``grading.dlq`` topic.

The one exception that does escape is :class:`~services.errors.RegistryError`: when the
registry is down, good records would be dead-lettered for the registry's fault, so the
consumer must back off and retry instead.
"""

from __future__ import annotations

import base64
import hashlib
import time
import traceback
from dataclasses import dataclass, field
from typing import Any, Protocol

from services.contract.convert import format_timestamp, parse_timestamp
from services.contract.wire import HEADER, MAGIC, WireCodec
from services.core.events import Event
from services.errors import ContractError, RecordDecodeError, RegistryError

DEAD_LETTER_TYPE = "grading.dead_letter"

#: Dead-letter classes (the DeadLetterClass enum of grading.dead_letter.avsc).
ERROR_CLASSES: tuple[str, ...] = (
    "corrupt_bytes",
    "unknown_schema_id",
    "unsupported_schema",
    "unknown_event_type",
    "wrong_topic",
    "missing_required_field",
    "incompatible_schema",
    "invalid_field",
    "other",
    # refused by the trust checks (docs/trust.md): the record decoded but may not grade
    "unauthenticated",  # no signature or MAC, a bad one, or an unknown signer
    "forbidden",  # an authentic sender that may not say this (role, platform, revoked)
    "unknown_platform",  # a platform that is not in the roster
    "from_the_future",  # event time past the broker's timestamp plus the skew allowance
    "oversized",  # over a size cap
    "conflicting_duplicate",  # an event id seen before with another body
)


class MessageLike(Protocol):
    """What safe_decode needs of a record: the accessor methods of confluent_kafka.Message."""

    def topic(self) -> str | None: ...
    def partition(self) -> int | None: ...
    def offset(self) -> int | None: ...
    def key(self) -> bytes | None: ...
    def value(self) -> bytes | None: ...
    def headers(self) -> Any: ...
    def timestamp(self) -> tuple[int, int]: ...
    def error(self) -> Any: ...


@dataclass(frozen=True, slots=True)
class RawRecord:
    """A record as read from a topic, for code and tests that have no confluent Message.

    Its accessors mirror confluent_kafka.Message so either can be passed to safe_decode.
    """

    topic_name: str
    partition_no: int
    offset_no: int
    key_bytes: bytes | None
    value_bytes: bytes | None
    header_list: tuple[tuple[str, bytes | None], ...] = ()
    timestamp_ms: int | None = None

    def topic(self) -> str:
        return self.topic_name

    def partition(self) -> int:
        return self.partition_no

    def offset(self) -> int:
        return self.offset_no

    def key(self) -> bytes | None:
        return self.key_bytes

    def value(self) -> bytes | None:
        return self.value_bytes

    def headers(self) -> list[tuple[str, bytes | None]]:
        return list(self.header_list)

    def timestamp(self) -> tuple[int, int]:
        # (TIMESTAMP_CREATE_TIME, ms) or (TIMESTAMP_NOT_AVAILABLE, 0), as confluent_kafka does.
        return (1, self.timestamp_ms) if self.timestamp_ms is not None else (0, 0)

    def error(self) -> None:
        return None


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A record that could not become a contract event, with everything needed to replay it."""

    reason: str
    error_class: str
    ts_ms: int
    source_topic: str | None = None
    source_partition: int | None = None
    source_offset: int | None = None
    raw_key: bytes | None = None
    raw_value: bytes | None = None
    source_timestamp_ms: int | None = None
    source: str | None = None
    schema_id: int | None = None
    headers: tuple[tuple[str, bytes | None], ...] = field(default=())

    @property
    def platform_id(self) -> str:
        """The record key as text when it is readable (keys are platform ids), else 'unknown'."""
        if self.raw_key:
            try:
                text = self.raw_key.decode("utf-8")
            except UnicodeDecodeError:
                return "unknown"
            if text.isprintable():
                return text
        return "unknown"

    @property
    def event_id(self) -> str:
        """Deterministic, so dead-lettering the same record twice yields one dead letter."""
        if self.source_topic is not None:
            return f"dlq:{self.source_topic}/{self.source_partition}/{self.source_offset}"
        digest = hashlib.sha256((self.raw_key or b"") + b"\0" + (self.raw_value or b"")).hexdigest()
        return f"dlq:{self.source or 'input'}:{digest[:32]}"

    def to_event(self) -> Event:
        """The ``grading.dead_letter`` event (bytes as base64 in the JSON form)."""

        def b64(raw: bytes | None) -> str | None:
            return None if raw is None else base64.b64encode(raw).decode("ascii")

        return Event(
            type=DEAD_LETTER_TYPE,
            platform_id=self.platform_id,
            event_id=self.event_id,
            ts_ms=self.ts_ms,
            data={
                "reason": self.reason,
                "error_class": self.error_class if self.error_class in ERROR_CLASSES else "other",
                "source_topic": self.source_topic,
                "source_partition": self.source_partition,
                "source_offset": self.source_offset,
                "source_timestamp": None
                if self.source_timestamp_ms is None
                else format_timestamp(self.source_timestamp_ms),
                "source": self.source,
                "schema_id": self.schema_id,
                "raw_key": b64(self.raw_key),
                "raw_value": b64(self.raw_value),
                "headers": [{"key": k, "value": b64(v)} for k, v in self.headers],
            },
        )

    @classmethod
    def from_event(cls, event: Event) -> DeadLetter:
        """Back from a decoded ``grading.dead_letter`` event (e.g. to inspect or replay it)."""
        if event.type != DEAD_LETTER_TYPE:
            raise ContractError(f"{event.type} is not a dead letter")
        d = event.data

        def raw(text: str | None) -> bytes | None:
            return None if text is None else base64.b64decode(text)

        return cls(
            reason=d["reason"],
            error_class=d["error_class"],
            ts_ms=event.ts_ms,
            source_topic=d.get("source_topic"),
            source_partition=d.get("source_partition"),
            source_offset=d.get("source_offset"),
            raw_key=raw(d.get("raw_key")),
            raw_value=raw(d.get("raw_value")),
            source_timestamp_ms=None
            if d.get("source_timestamp") is None
            else parse_timestamp(d["source_timestamp"]),
            source=d.get("source"),
            schema_id=d.get("schema_id"),
            headers=tuple((h["key"], raw(h.get("value"))) for h in d.get("headers", [])),
        )


def _schema_id_of(value: bytes | None) -> int | None:
    if value is not None and len(value) >= HEADER.size and value[0] == MAGIC:
        return int(HEADER.unpack_from(value)[1])
    return None


def _headers(raw: Any) -> tuple[tuple[str, bytes | None], ...]:
    items = raw.items() if isinstance(raw, dict) else (raw or ())
    return tuple((str(k), v.encode() if isinstance(v, str) else v) for k, v in items)


def dead_letter_for(
    msg: MessageLike, reason: str, error_class: str, now_ms: int | None = None
) -> DeadLetter:
    """The dead letter of ``msg``: the reason plus its raw bytes and where it was read."""
    ts_type, ts = msg.timestamp()
    value = msg.value()
    return DeadLetter(
        reason=reason,
        error_class=error_class,
        ts_ms=now_ms if now_ms is not None else int(time.time() * 1000),
        source_topic=msg.topic(),
        source_partition=msg.partition(),
        source_offset=msg.offset(),
        raw_key=msg.key(),
        raw_value=value,
        source_timestamp_ms=ts if ts_type != 0 else None,
        schema_id=_schema_id_of(value),
        headers=_headers(msg.headers()),
    )


def safe_decode(
    msg: MessageLike, codec: WireCodec, now_ms: int | None = None
) -> Event | DeadLetter:
    """Decode a consumed record into an Event, or a DeadLetter saying why it is bad.

    Never raises for a bad record. Raises RegistryError when the registry cannot be
    reached (retry later) and ContractError for a message that is a consumer error
    rather than a record (check ``msg.error()`` first).
    """
    if msg.error() is not None:
        raise ContractError(f"not a record but a consumer error: {msg.error()}")
    topic, partition, offset = msg.topic() or "", msg.partition() or 0, msg.offset() or 0
    try:
        return codec.decode(msg.value(), topic, partition, offset)
    except RecordDecodeError as exc:
        return dead_letter_for(msg, str(exc), exc.error_class, now_ms)
    except RegistryError:
        raise
    except ContractError as exc:
        return dead_letter_for(msg, str(exc), "invalid_field", now_ms)
    except Exception as exc:  # a bug must not stop the consumer either; keep the evidence
        where = traceback.extract_tb(exc.__traceback__)[-1]
        return dead_letter_for(
            msg,
            f"unexpected {type(exc).__name__} while decoding: {exc} (at {where.filename}:{where.lineno})",
            "other",
            now_ms,
        )


def dead_letter_record(dead: DeadLetter, codec: WireCodec) -> tuple[str, bytes | None, bytes]:
    """(topic, key, value) to produce a dead letter to the DLQ topic of ``codec``'s prefix.

    Keyed by the bad record's own key so dead letters of one platform stay together.
    """
    return codec.topic_for(DEAD_LETTER_TYPE), dead.raw_key, codec.encode(dead.to_event())
