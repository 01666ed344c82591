"""The roster: which platforms exist, whose they are, and their credential generation.

Kept on the compacted topic ``proctor.roster`` (key: platform id, one partition), each
record a JSON :class:`RosterEntry` signed by the proctor's key over
``proctor-roster \\0 key \\0 value``. A reader verifies every record against the keyring
and ignores (with a warning, counted) one that is unsigned, forged, signed by a key that
is not a proctor's, or older than the entry it holds (a re-produced record of a generation
before a revoke cannot un-revoke a platform). No secret is stored: credentials derive from
the master secret and the generation (:mod:`services.trust.credentials`).
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, Producer, TopicPartition

from services.contract.schemas import TopicSpec, topic_name
from services.contract.settings import ClientSettings
from services.contract.topics import admin_client, ensure_topics
from services.errors import DeliveryError, StackError
from services.trust.keys import Keyring, SigningKey
from services.trust.signing import SIGNATURE_HEADER, SIGNER_HEADER, header_value

log = logging.getLogger(__name__)

ROSTER_TOPIC = "proctor.roster"
ROSTER_SPEC = TopicSpec(
    ROSTER_TOPIC,
    1,
    "platform_id",
    "The cohort's platforms (exam, candidate, credential generation), signed by the proctor.",
    {"cleanup.policy": "compact", "min.cleanable.dirty.ratio": "0.1"},
)
_DOMAIN = b"proctor-roster\0"


@dataclass(frozen=True, slots=True)
class RosterEntry:
    """One platform of the cohort. ``extra_minutes`` maps an exam part to its extra time."""

    platform_id: str
    exam_id: str
    candidate_id: str
    generation: int = 1
    revoked: bool = False
    extra_minutes: Mapping[int, int] = field(default_factory=dict)
    issued_ms: int = 0
    #: the cohort the exam belongs to ("" for a platform enrolled on its own)
    cohort: str = ""

    def to_bytes(self) -> bytes:
        obj: dict[str, Any] = {
            "platform_id": self.platform_id,
            "exam_id": self.exam_id,
            "candidate_id": self.candidate_id,
            "generation": self.generation,
            "revoked": self.revoked,
            "extra_minutes": {str(k): v for k, v in sorted(self.extra_minutes.items())},
            "issued_ms": self.issued_ms,
        }
        if self.cohort:  # absent otherwise: older entries keep their exact bytes
            obj["cohort"] = self.cohort
        return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode("utf-8")

    @classmethod
    def from_bytes(cls, raw: bytes) -> RosterEntry:
        obj = json.loads(raw)
        if not isinstance(obj, dict):
            raise ValueError("a roster record is a JSON object")
        extra = obj.get("extra_minutes") or {}
        entry = cls(
            platform_id=str(obj["platform_id"]),
            exam_id=str(obj["exam_id"]),
            candidate_id=str(obj["candidate_id"]),
            generation=int(obj["generation"]),
            revoked=bool(obj["revoked"]),
            extra_minutes={int(k): int(v) for k, v in dict(extra).items()},
            issued_ms=int(obj.get("issued_ms", 0)),
            cohort=str(obj.get("cohort") or ""),
        )
        if entry.generation < 1:
            raise ValueError("generation must be at least 1")
        return entry

    def revoke(self, now_ms: int | None = None) -> RosterEntry:
        """The entry after a revoke: next generation (every old credential void), revoked."""
        return replace(self, generation=self.generation + 1, revoked=True, issued_ms=_now(now_ms))

    def reinstate(self, now_ms: int | None = None) -> RosterEntry:
        return replace(self, revoked=False, issued_ms=_now(now_ms))


def _now(now_ms: int | None) -> int:
    return now_ms if now_ms is not None else int(time.time() * 1000)


def signed_message(key: bytes, value: bytes) -> bytes:
    return _DOMAIN + key + b"\0" + value


def sign_entry(
    entry: RosterEntry, signer: SigningKey
) -> tuple[bytes, bytes, list[tuple[str, bytes]]]:
    """(key, value, headers) of the roster record of ``entry``."""
    key = entry.platform_id.encode("utf-8")
    value = entry.to_bytes()
    headers = [
        (SIGNER_HEADER, signer.key_id.encode("utf-8")),
        (SIGNATURE_HEADER, signer.sign(signed_message(key, value))),
    ]
    return key, value, headers


def verify_record(
    key: bytes | None,
    value: bytes | None,
    headers: Iterable[tuple[str, bytes | None]] | None,
    keyring: Keyring,
) -> RosterEntry | str:
    """The entry of a roster record, or why it is ignored."""
    hlist = list(headers or ())
    raw_signer = header_value(hlist, SIGNER_HEADER)
    signature = header_value(hlist, SIGNATURE_HEADER)
    if not key or value is None:
        return "a record without key or value (a tombstone is never honoured)"
    if not raw_signer or not signature:
        return "unsigned"
    trusted = keyring.get(raw_signer.decode("utf-8", "replace"))
    if trusted is None:
        return f"signed by {raw_signer.decode('utf-8', 'replace')!r}, a key not in the keyring"
    if trusted.role != "proctor":
        return f"signed by {trusted.key_id!r} whose role is {trusted.role!r}, not proctor"
    if not trusted.verify(signature, signed_message(key, value)):
        return "the signature does not match the record"
    try:
        entry = RosterEntry.from_bytes(value)
    except (ValueError, KeyError, TypeError) as exc:
        return f"not a roster entry: {exc}"
    if entry.platform_id.encode("utf-8") != key:
        return f"keyed {key!r} but names {entry.platform_id!r}"
    return entry


def _newer(entry: RosterEntry, held: RosterEntry | None) -> bool:
    return held is None or (entry.generation, entry.issued_ms) >= (held.generation, held.issued_ms)


def roster_topic(prefix: str = "") -> str:
    return topic_name(ROSTER_TOPIC, prefix)


def ensure_roster_topic(settings: ClientSettings) -> None:
    """Create ``proctor.roster`` (compacted) if it is missing."""
    admin = admin_client(settings.bootstrap, dict(settings.kafka_security))
    ensure_topics(admin, prefix=settings.topic_prefix, specs=[ROSTER_SPEC])


def publish_entries(
    settings: ClientSettings,
    entries: Iterable[RosterEntry],
    signer: SigningKey,
    timeout_s: float = 30.0,
) -> int:
    """Write signed roster records and wait until the broker has them all."""
    ensure_roster_topic(settings)
    producer = Producer(settings.kafka_config(**{"enable.idempotence": True, "acks": "all"}))
    failures: list[str] = []

    def report(err: Any, _msg: Any) -> None:
        if err is not None:
            failures.append(err.str())

    count = 0
    for entry in entries:
        key, value, signed = sign_entry(entry, signer)
        headers: list[tuple[str, str | bytes | None]] = list(signed)
        producer.produce(
            roster_topic(settings.topic_prefix),
            value=value,
            key=key,
            headers=headers,
            on_delivery=report,
        )
        count += 1
    remaining = producer.flush(timeout_s)
    if failures or remaining:
        raise DeliveryError(
            f"roster records not confirmed ({len(failures)} failed, {remaining} pending): "
            f"{'; '.join(failures[:3])} (is the broker at {settings.bootstrap} up?)"
        )
    return count


class RosterView:
    """The roster as read from its topic, verified; ``refresh()`` reads what is new.

    ``refresh`` blocks (the worker calls it off its event loop) and is safe to call from
    one thread at a time; lookups are plain dict reads.
    """

    def __init__(
        self, settings: ClientSettings, keyring: Keyring, *, ensure_topic: bool = True
    ) -> None:
        self.settings = settings
        self.keyring = keyring
        self.topic = roster_topic(settings.topic_prefix)
        self.entries: dict[str, RosterEntry] = {}
        self.ignored = 0
        self.ignored_reasons: list[str] = []
        self.refreshed_at = 0.0
        self._position = OFFSET_BEGINNING
        self._lock = threading.Lock()
        if ensure_topic:
            ensure_roster_topic(settings)
        self._consumer = Consumer(
            settings.kafka_config(
                **{
                    "group.id": f"proctor-roster-{uuid.uuid4().hex[:12]}",
                    "enable.auto.commit": False,
                    "auto.offset.reset": "earliest",
                    "enable.partition.eof": False,
                }
            )
        )

    def get(self, platform_id: str) -> RosterEntry | None:
        return self.entries.get(platform_id)

    def __len__(self) -> int:
        return len(self.entries)

    def close(self) -> None:
        self._consumer.close()

    def refresh(self, timeout_s: float = 10.0) -> int:
        """Read the topic up to its current end; returns how many records were read."""
        with self._lock:
            started = time.time()
            low, high = self._watermarks(timeout_s)
            position = self._position if self._position >= 0 else low
            if position >= high:
                self.refreshed_at = started
                return 0
            self._consumer.assign([TopicPartition(self.topic, 0, max(position, low))])
            read = 0
            deadline = time.monotonic() + timeout_s
            while position < high:
                if time.monotonic() > deadline:
                    raise StackError(
                        f"the roster topic {self.topic} did not deliver offsets up to {high} "
                        f"within {timeout_s:.0f}s"
                    )
                msg = self._consumer.poll(0.5)
                if msg is None:
                    continue
                if msg.error() is not None:
                    log.warning("roster read error: %s", msg.error())
                    continue
                position = (msg.offset() or 0) + 1
                read += 1
                self._apply(msg.key(), msg.value(), msg.headers(), msg.offset())
            self._position = position
            self._consumer.unassign()
            self.refreshed_at = started
            return read

    def _watermarks(self, timeout_s: float) -> tuple[int, int]:
        # A topic created a moment ago may not be in the client's metadata yet.
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                low, high = self._consumer.get_watermark_offsets(
                    TopicPartition(self.topic, 0), timeout=max(0.5, deadline - time.monotonic())
                )
                return int(low), int(high)
            except KafkaException as exc:
                if time.monotonic() > deadline:
                    raise StackError(f"cannot read the roster topic {self.topic}: {exc}") from exc
                time.sleep(0.2)

    def _apply(
        self, key: bytes | None, value: bytes | None, headers: Any, offset: int | None
    ) -> None:
        result = verify_record(key, value, headers, self.keyring)
        if isinstance(result, str):
            self._ignore(f"roster record at offset {offset}: {result}")
            return
        held = self.entries.get(result.platform_id)
        if not _newer(result, held):
            self._ignore(
                f"roster record at offset {offset} for {result.platform_id!r} is older than the "
                f"entry held (generation {result.generation} < {held.generation if held else 0})"
            )
            return
        self.entries[result.platform_id] = result

    def _ignore(self, reason: str) -> None:
        self.ignored += 1
        if len(self.ignored_reasons) < 100:
            self.ignored_reasons.append(reason)
        log.warning("ignored %s", reason)


def read_roster(settings: ClientSettings, keyring: Keyring) -> dict[str, RosterEntry]:
    """The verified roster as it is now (one read to the end of the topic)."""
    view = RosterView(settings, keyring)
    try:
        view.refresh()
    finally:
        view.close()
    return dict(view.entries)
