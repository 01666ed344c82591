"""Dead letters: every kind of bad record becomes a DeadLetter with a reason, never an exception."""

from __future__ import annotations

import io
import json
import uuid

import fastavro
import pytest
from confluent_kafka.schema_registry import Schema

from services.contract.dlq import DeadLetter, RawRecord, dead_letter_record, safe_decode
from services.contract.wire import HEADER, WireCodec, registry_client
from services.core.events import Event
from services.errors import RegistryError

pytestmark = pytest.mark.unit


def _record(
    value: bytes | None, topic: str = "exam.control", key: bytes | None = b"basecamp-alice"
) -> RawRecord:
    return RawRecord(topic, 2, 17, key, value, (("traceparent", b"00-abc-01"),), 1_790_000_000_000)


def _frame(sid: int, raw_schema: dict[str, object], datum: dict[str, object]) -> bytes:
    buf = io.BytesIO()
    buf.write(HEADER.pack(0, sid))
    fastavro.schemaless_writer(buf, fastavro.parse_schema(raw_schema, named_schemas={}), datum)
    return buf.getvalue()


def _register(codec: WireCodec, text: str, schema_type: str = "AVRO") -> int:
    return int(
        codec.registry.register_schema(f"test-{uuid.uuid4().hex}", Schema(text, schema_type))
    )


def _dead(codec: WireCodec, record: RawRecord) -> DeadLetter:
    result = safe_decode(record, codec, now_ms=1_790_000_000_500)
    assert isinstance(result, DeadLetter), f"expected a dead letter, got {result}"
    assert result.source_topic == record.topic() and result.source_offset == 17
    assert result.source_partition == 2
    assert result.raw_value == record.value() and result.raw_key == record.key()
    assert result.headers == (("traceparent", b"00-abc-01"),)
    return result


def test_good_record_decodes(codec: WireCodec, examples: dict[str, Event]) -> None:
    result = safe_decode(_record(codec.encode(examples["exam.started"])), codec)
    assert isinstance(result, Event) and result.data == examples["exam.started"].data
    assert str(result.source) == "exam.control/2/17"


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (b"\x00\x00", "2 bytes, shorter than the 5-byte wire header"),
        (b'{"type": "exam.started"}', "starts with byte 0x7b, not the magic byte 0"),
        (None, "no value"),
    ],
)
def test_corrupt_framing(codec: WireCodec, value: bytes | None, reason: str) -> None:
    dead = _dead(codec, _record(value))
    assert dead.error_class == "corrupt_bytes"
    assert reason in dead.reason


def test_truncated_and_padded_bodies(codec: WireCodec, examples: dict[str, Event]) -> None:
    good = codec.encode(examples["exam.started"])
    truncated = _dead(codec, _record(good[:-6]))
    assert truncated.error_class == "corrupt_bytes"
    assert "does not decode with schema id" in truncated.reason
    padded = _dead(codec, _record(good + b"\x02\x04"))
    assert padded.error_class == "corrupt_bytes" and "2 bytes left over" in padded.reason


def test_garbage_body_behind_a_valid_header(codec: WireCodec, examples: dict[str, Event]) -> None:
    good = codec.encode(examples["exam.ended"])
    dead = _dead(codec, _record(good[:5] + b"\xff" * 12))
    assert dead.error_class == "corrupt_bytes"
    assert dead.schema_id == HEADER.unpack_from(good)[1]


def test_unknown_schema_id(codec: WireCodec, examples: dict[str, Event]) -> None:
    good = codec.encode(examples["exam.started"])
    value = HEADER.pack(0, 987_654) + good[5:]
    dead = _dead(codec, _record(value))
    assert dead.error_class == "unknown_schema_id"
    assert "schema id 987654 is not in the registry" in dead.reason
    # The second time comes from the negative cache, same verdict.
    assert _dead(codec, _record(value)).error_class == "unknown_schema_id"


def test_non_avro_schema(codec: WireCodec) -> None:
    sid = _register(codec, json.dumps({"type": "object"}), "JSON")
    dead = _dead(codec, _record(HEADER.pack(0, sid) + b"{}"))
    assert dead.error_class == "unsupported_schema" and "JSON schema, not Avro" in dead.reason


def test_unknown_event_type_by_record_name(codec: WireCodec) -> None:
    raw = json.loads(codec.contract.schema("exam.ended").text)
    raw["name"] = "ExamPaused"
    sid = _register(codec, json.dumps(raw))
    datum = {"type": "exam.paused", "platform_id": "p", "event_id": "e", "ts": 1, "exam_id": "x"}
    dead = _dead(codec, _record(_frame(sid, raw, datum)))
    assert dead.error_class == "unknown_event_type"
    assert "io.proctor.exam.v1.ExamPaused" in dead.reason and "not an event type" in dead.reason


def test_unknown_event_type_in_the_type_field(codec: WireCodec, examples: dict[str, Event]) -> None:
    codec.encode(examples["exam.ended"])
    sid = codec.schema_id("exam.ended")
    raw = json.loads(codec.contract.schema("exam.ended").text)
    datum = {"type": "exam.paused", "platform_id": "p", "event_id": "e", "ts": 1, "exam_id": "x"}
    dead = _dead(codec, _record(_frame(sid, raw, datum)))
    assert dead.error_class == "unknown_event_type" and "'exam.paused'" in dead.reason


def test_wrong_schema_for_topic(codec: WireCodec, examples: dict[str, Event]) -> None:
    dead = _dead(codec, _record(codec.encode(examples["flink.job"]), topic="exam.control"))
    assert dead.error_class == "wrong_topic"
    assert "belongs on topic platform.flink, not exam.control" in dead.reason


def test_missing_required_field(codec: WireCodec) -> None:
    raw = json.loads(codec.contract.schema("exam.started").text)
    raw["fields"] = [f for f in raw["fields"] if f["name"] != "candidate_id"]
    sid = _register(codec, json.dumps(raw))
    datum = {
        "type": "exam.started",
        "platform_id": "p",
        "event_id": "e",
        "ts": 1,
        "exam_id": "x",
        "rubric_id": "y3-final",
        "rubric_version": "1",
    }
    dead = _dead(codec, _record(_frame(sid, raw, datum)))
    assert dead.error_class == "missing_required_field"
    assert "field 'candidate_id'" in dead.reason


def test_incompatible_field_type(codec: WireCodec) -> None:
    raw = json.loads(codec.contract.schema("part.started").text)
    for f in raw["fields"]:
        if f["name"] == "part":
            f["type"] = "string"
    sid = _register(codec, json.dumps(raw))
    datum = {
        "type": "part.started",
        "platform_id": "p",
        "event_id": "e",
        "ts": 1,
        "exam_id": "x",
        "part": "one",
    }
    dead = _dead(codec, _record(_frame(sid, raw, datum)))
    assert dead.error_class == "incompatible_schema"
    assert "field 'part': written as string, read as int" in dead.reason


def test_rule_violation_written_by_a_careless_producer(
    codec: WireCodec, examples: dict[str, Event]
) -> None:
    codec.encode(examples["part.started"])
    sid = codec.schema_id("part.started")
    raw = json.loads(codec.contract.schema("part.started").text)
    datum = {
        "type": "part.started",
        "platform_id": "p",
        "event_id": "e",
        "ts": 1,
        "exam_id": "x",
        "part": 7,
    }
    dead = _dead(codec, _record(_frame(sid, raw, datum)))
    assert (
        dead.error_class == "invalid_field" and "field 'part': 7 is not an exam part" in dead.reason
    )


def test_a_bug_in_decoding_still_yields_a_dead_letter(
    codec: WireCodec, examples: dict[str, Event]
) -> None:
    class Broken(WireCodec):
        def decode(self, value: bytes | None, topic: str, partition: int, offset: int) -> Event:
            raise KeyError("boom")

    broken = Broken(codec.registry, codec.contract)
    dead = _dead(broken, _record(codec.encode(examples["exam.started"])))
    assert dead.error_class == "other" and "unexpected KeyError" in dead.reason


def test_registry_outage_is_raised_not_dead_lettered(codec: WireCodec) -> None:
    offline = WireCodec(registry_client("http://127.0.0.1:9", max_retries=0), codec.contract)
    with pytest.raises(RegistryError):
        safe_decode(_record(HEADER.pack(0, 5) + b"\x00"), offline)


def test_dead_letter_travels_through_the_dlq_and_back(codec: WireCodec) -> None:
    dead = _dead(codec, _record(b"\x01garbage\xff", key=b"\xff\xfe"))
    assert dead.platform_id == "unknown"  # the key is not text
    assert dead.event_id == "dlq:exam.control/2/17"
    topic, key, value = dead_letter_record(dead, codec)
    assert topic == "grading.dlq" and key == b"\xff\xfe"
    decoded = codec.decode(value, topic, 0, 0)
    assert decoded.type == "grading.dead_letter"
    assert DeadLetter.from_event(decoded) == dead


def test_dead_letter_of_non_topic_input_is_deterministic() -> None:
    a = DeadLetter("bad json", "invalid_field", 1, raw_value=b"{", source="webhook:argocd")
    b = DeadLetter("bad json", "invalid_field", 2, raw_value=b"{", source="webhook:argocd")
    assert a.event_id == b.event_id and a.event_id.startswith("dlq:webhook:argocd:")
    assert a.platform_id == "unknown"
