"""Wire format: every example round-trips; headers, id caching, evolution and bad input."""

from __future__ import annotations

import dataclasses
import io
import json
import uuid

import fastavro
import pytest
from confluent_kafka.schema_registry import Schema

from services.contract.schemas import Contract
from services.contract.wire import HEADER, WireCodec, registry_client
from services.core.events import Event, SourcePosition
from services.errors import ContractError, RecordDecodeError, RegistryError

pytestmark = pytest.mark.unit


def _topic(codec: WireCodec, event: Event) -> str:
    if event.type == "grading.criterion_transition":
        return "grading.criterion_transitions"  # a table row; not on a contract topic
    return codec.topic_for(event.type)


def test_every_example_round_trips(codec: WireCodec, examples: dict[str, Event]) -> None:
    for event in examples.values():
        topic = _topic(codec, event)
        decoded = codec.decode(codec.encode(event), topic, 3, 42)
        assert decoded == dataclasses.replace(event, source=SourcePosition(topic, 3, 42))


def test_header_is_magic_byte_and_registered_id(
    codec: WireCodec, examples: dict[str, Event]
) -> None:
    event = examples["flink.checkpoint"]
    value = codec.encode(event)
    magic, sid = HEADER.unpack_from(value)
    subject = codec.contract.schema("flink.checkpoint").subject()
    assert magic == 0
    assert sid == codec.registry.get_latest_version(subject).schema_id
    # The body is plain Avro of the contract schema: any Avro reader can read it.
    body = fastavro.schemaless_reader(
        io.BytesIO(value[5:]), codec.contract.schema("flink.checkpoint").plain, None
    )
    assert body["checkpoint_id"] == 7 and body["ts"] == event.ts_ms


def test_schema_ids_are_cached(codec: WireCodec, examples: dict[str, Event]) -> None:
    calls = {"lookup": 0, "get": 0}
    registry = codec.registry
    real_register, real_get = registry.register_schema, registry.get_schema

    def register(*args: object, **kwargs: object) -> int:
        calls["lookup"] += 1
        return real_register(*args, **kwargs)  # type: ignore[arg-type]

    def get(*args: object, **kwargs: object) -> Schema:
        calls["get"] += 1
        return real_get(*args, **kwargs)  # type: ignore[arg-type]

    registry.register_schema = register  # type: ignore[method-assign]
    registry.get_schema = get  # type: ignore[method-assign]
    event = examples["exam.started"]
    for _ in range(5):
        codec.decode(codec.encode(event), "exam.control", 0, 0)
    assert calls == {"lookup": 1, "get": 1}


def test_encode_validates_and_names_the_field(codec: WireCodec, examples: dict[str, Event]) -> None:
    event = examples["exam.started"]
    broken = dataclasses.replace(
        event, data={k: v for k, v in event.data.items() if k != "candidate_id"}
    )
    with pytest.raises(
        ContractError, match=r"exam.started event .*: field 'candidate_id': missing required field"
    ):
        codec.encode(broken)
    with pytest.raises(ContractError, match="field 'platform_id': must be a non-empty string"):
        codec.encode(dataclasses.replace(event, platform_id=""))
    with pytest.raises(ContractError, match=r"unknown event type 'exam.paused'"):
        codec.encode(dataclasses.replace(event, type="exam.paused"))


def test_unregistered_schema_without_auto_register_says_what_to_run(
    contract: Contract, examples: dict[str, Event]
) -> None:
    codec = WireCodec(registry_client(f"mock://{uuid.uuid4().hex}"), contract)
    with pytest.raises(
        ContractError,
        match=r"not registered under subject 'exam.control-io.proctor.exam.v1.ExamStarted'.*proctor schemas register",
    ):
        codec.encode(examples["exam.started"])


def test_topic_prefix_isolates_topics_and_subjects(
    contract: Contract, examples: dict[str, Event]
) -> None:
    codec = WireCodec(
        registry_client(f"mock://{uuid.uuid4().hex}"),
        contract,
        topic_prefix="t9.",
        auto_register=True,
    )
    event = examples["superset.alert"]
    assert codec.topic_for(event.type) == "t9.platform.superset"
    value = codec.encode(event)
    assert codec.registry.get_subjects() == [
        "t9.platform.superset-io.proctor.platform.v1.SupersetAlert"
    ]
    assert codec.decode(value, "t9.platform.superset", 0, 1).data == event.data
    with pytest.raises(
        RecordDecodeError, match=r"belongs on topic t9.platform.superset, not platform.superset"
    ) as info:
        codec.decode(value, "platform.superset", 0, 1)
    assert info.value.error_class == "wrong_topic"


def _register(codec: WireCodec, raw: dict[str, object], subject: str = "test-writer") -> int:
    return int(
        codec.registry.register_schema(
            f"{subject}-{uuid.uuid4().hex}", Schema(json.dumps(raw), "AVRO")
        )
    )


def _frame(sid: int, raw_schema: dict[str, object], datum: dict[str, object]) -> bytes:
    buf = io.BytesIO()
    buf.write(HEADER.pack(0, sid))
    fastavro.schemaless_writer(buf, fastavro.parse_schema(raw_schema, named_schemas={}), datum)
    return buf.getvalue()


def test_older_writer_schema_is_read_with_todays_defaults(
    codec: WireCodec, examples: dict[str, Event]
) -> None:
    raw = json.loads(codec.contract.schema("fault.injected").text)
    raw["fields"] = [f for f in raw["fields"] if f["name"] != "note"]
    sid = _register(codec, raw)
    event = examples["fault.injected"]
    datum = codec.contract.to_datum(event)
    del datum["note"]
    decoded = codec.decode(_frame(sid, raw, datum), "exam.control", 1, 9)
    assert decoded.data == {**event.data, "note": ""}


def test_newer_writer_with_an_extra_field_is_read(
    codec: WireCodec, examples: dict[str, Event]
) -> None:
    raw = json.loads(codec.contract.schema("row.broken").text)
    raw["fields"].append({"name": "severity", "type": "int", "default": 0, "doc": "new"})
    sid = _register(codec, raw)
    event = examples["row.broken"]
    datum = {**codec.contract.to_datum(event), "severity": 3}
    decoded = codec.decode(_frame(sid, raw, datum), "exam.control", 0, 0)
    assert decoded.data == event.data


def test_registry_down_is_not_a_record_problem(contract: Contract) -> None:
    codec = WireCodec(registry_client("http://127.0.0.1:9", max_retries=0), contract)
    value = HEADER.pack(0, 1) + b"\x00"
    with pytest.raises(RegistryError, match="unreachable"):
        codec.decode(value, "exam.control", 0, 0)


def test_a_newer_enum_symbol_fails_only_the_records_that_use_it(
    codec: WireCodec, examples: dict[str, Event]
) -> None:
    raw = json.loads(codec.contract.schema("argocd.sync").text)
    phase = next(f for f in raw["fields"] if f["name"] == "phase")
    phase["type"]["symbols"].append("Paused")  # a producer ahead of this consumer
    sid = _register(codec, raw)
    event = examples["argocd.sync"]
    datum = codec.contract.to_datum(event)
    known = codec.decode(_frame(sid, raw, datum), "platform.argocd", 0, 0)
    assert known.data == event.data
    with pytest.raises(RecordDecodeError) as info:
        codec.decode(_frame(sid, raw, {**datum, "phase": "Paused"}), "platform.argocd", 0, 1)
    assert info.value.error_class == "incompatible_schema"
    assert f"schema id {sid} cannot be read as argocd.sync" in str(info.value)


def test_needs_registry_is_true_only_until_the_schema_id_is_cached(
    codec: WireCodec, examples: dict[str, Event]
) -> None:
    value = codec.encode(examples["exam.started"])
    assert codec.needs_registry(value)
    codec.decode(value, "exam.control", 0, 0)
    assert not codec.needs_registry(value)
    # Bytes the header check rejects never reach the registry.
    assert not codec.needs_registry(None)
    assert not codec.needs_registry(b"\x00\x00")
    assert not codec.needs_registry(b"not avro at all")
    unknown = HEADER.pack(0, 2**31 - 1) + b"{}"
    assert codec.needs_registry(unknown)
    with pytest.raises(RecordDecodeError):
        codec.decode(unknown, "exam.control", 0, 1)
    assert not codec.needs_registry(unknown)  # remembered as unknown for a while
