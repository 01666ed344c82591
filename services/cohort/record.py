"""Record a live exam (or a cohort) from the topics into a JSON Lines recording.

Platform topics keep 30 days; ``proctor replay`` and ``proctor regrade`` need a file. The
recorder reads every input topic from its start up to the end it had when the recording
began, keeps the records of the selected platforms, and admits each one exactly as the
worker does (:class:`~services.trust.admission.TrustAdmission`): a record the worker would
refuse (unsigned, forged, another platform's MAC, from the future, a conflicting
duplicate) is left out and counted with its reason, so the recording grades what the
worker graded. Control events keep their Kafka signature as the line's
``_signer``/``_signature`` (the same Ed25519 signature over the same canonical bytes), so
``proctor replay --verify`` checks the file; redeliveries are written once.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, TopicPartition

from services.contract.admission import RecordFacts
from services.contract.jsonl import event_to_line
from services.contract.schemas import CONTROL_TYPES, INPUT_TOPICS, load_contract, topic_name
from services.contract.settings import ClientSettings
from services.contract.wire import WireCodec, registry_client
from services.core.events import Event
from services.errors import ContractError, StackError
from services.trust.admission import TrustAdmission
from services.trust.signing import JSON_SIGNATURE, JSON_SIGNER, SIGNATURE_HEADER, SIGNER_HEADER

_CONTROL = frozenset(CONTROL_TYPES)


@dataclass
class RecordingReport:
    """What a recording holds and what it left out."""

    written: int = 0
    control: int = 0
    duplicates: int = 0
    #: records of other platforms (not selected)
    others: int = 0
    #: refused records: "topic/partition/offset type event_id: class: reason"
    refused: list[str] = field(default_factory=list)
    undecodable: list[str] = field(default_factory=list)


def _header(headers: Any, name: str) -> bytes | None:
    for key, value in headers or ():
        if key == name:
            return bytes(value) if value is not None else None
    return None


def _signature(headers: Any) -> dict[str, str] | None:
    signer, sig = _header(headers, SIGNER_HEADER), _header(headers, SIGNATURE_HEADER)
    if signer is None or sig is None:
        return None
    return {
        JSON_SIGNER: signer.decode("utf-8", "replace"),
        JSON_SIGNATURE: base64.b64encode(sig).decode("ascii"),
    }


def record(
    settings: ClientSettings,
    platforms: Collection[str],
    admission: TrustAdmission,
    target: Path,
    *,
    progress: Callable[[str], None] | None = None,
    every: int = 2000,
    timeout_s: float = 60.0,
) -> RecordingReport:
    """Write the admitted records of ``platforms`` on every input topic to ``target``."""
    contract = load_contract()
    codec = WireCodec(
        registry_client(settings.registry_url, basic_auth_user_info=settings.registry_user_info),
        contract,
        topic_prefix=settings.topic_prefix,
    )
    consumer = Consumer(
        settings.kafka_config(
            **{
                "group.id": f"proctor-record-{uuid.uuid4().hex[:12]}",
                "enable.auto.commit": False,
                "auto.offset.reset": "earliest",
                "enable.partition.eof": False,
            }
        )
    )
    report = RecordingReport()
    wanted = set(platforms)
    seen: set[str] = set()
    try:
        ends = _ends(consumer, [topic_name(t, settings.topic_prefix) for t in INPUT_TOPICS])
        total = sum(high - low for low, high in ends.values())
        if progress is not None:
            progress(
                f"reading {total} records on {len(ends)} partitions of {len(INPUT_TOPICS)} topics"
            )
        todo = {tp: high for tp, (low, high) in ends.items() if high > low}
        consumer.assign([TopicPartition(t, p, ends[(t, p)][0]) for t, p in todo])
        read = 0
        tmp = target.with_name(target.name + ".part")
        with tmp.open("w", encoding="utf-8") as out:
            idle_polls = 0
            while todo:
                msgs = consumer.consume(500, 1.0)
                if not msgs:
                    idle_polls += 1
                    if idle_polls > timeout_s:
                        missing = ", ".join(f"{t}/{p}" for t, p in sorted(todo))
                        raise StackError(
                            f"the broker did not deliver the rest of {missing} within {timeout_s:.0f}s"
                        )
                    continue
                idle_polls = 0
                for msg in msgs:
                    if msg.error() is not None:
                        continue
                    tp = (msg.topic() or "", msg.partition() or 0)
                    offset = msg.offset() or 0
                    high = todo.get(tp)
                    if high is None or offset >= high:
                        continue
                    if offset + 1 >= high:
                        del todo[tp]
                    read += 1
                    _take(msg, codec, admission, wanted, seen, out, contract, report)
                    if progress is not None and read % every == 0:
                        progress(f"  {read}/{total} read, {report.written} written")
        tmp.replace(target)
        if progress is not None:
            progress(
                f"{read}/{total} read: {report.written} written ({report.control} control), "
                f"{report.duplicates} redeliveries, {len(report.refused)} refused, "
                f"{report.others} of other platforms"
            )
    finally:
        consumer.close()
    return report


def _ends(consumer: Consumer, topics: list[str]) -> dict[tuple[str, int], tuple[int, int]]:
    meta = consumer.list_topics(timeout=10)
    out: dict[tuple[str, int], tuple[int, int]] = {}
    for topic in topics:
        tmeta = meta.topics.get(topic)
        if tmeta is None or tmeta.error is not None:
            raise StackError(
                f"topic {topic} does not exist (wrong --prefix? `proctor topics create`)"
            )
        for p in tmeta.partitions:
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
            out[(topic, p)] = (int(low), int(high))
    return out


def _take(
    msg: Any,
    codec: WireCodec,
    admission: TrustAdmission,
    wanted: set[str],
    seen: set[str],
    out: Any,
    contract: Any,
    report: RecordingReport,
) -> None:
    where = f"{msg.topic()}/{msg.partition()}/{msg.offset()}"
    key = msg.key()
    if wanted and key is not None and key.decode("utf-8", "replace") not in wanted:
        report.others += 1
        return
    try:
        ev: Event = codec.decode(msg.value(), msg.topic(), msg.partition(), msg.offset())
    except ContractError as exc:
        report.undecodable.append(f"{where}: {exc}")
        return
    if wanted and ev.platform_id not in wanted:
        report.others += 1
        return
    facts = RecordFacts(
        msg.topic() or "",
        msg.partition() or 0,
        msg.offset() or 0,
        key,
        msg.value() or b"",
        msg.headers() or [],
        msg.timestamp()[1] if msg.timestamp()[0] else None,
    )
    refusal = admission.admit(ev, facts)
    if refusal is not None:
        report.refused.append(
            f"{where} {ev.type} {ev.event_id}: {refusal.error_class}: {refusal.reason}"
        )
        return
    if ev.event_id in seen:
        report.duplicates += 1
        return
    seen.add(ev.event_id)
    signature = _signature(msg.headers()) if ev.type in _CONTROL else None
    out.write(event_to_line(ev, contract, signature) + "\n")
    report.written += 1
    if ev.type in _CONTROL:
        report.control += 1
