"""Property: any contract-valid event survives JSON -> Avro wire -> JSON unchanged.

Events are generated from the Avro schemas themselves (every type, every field, nulls,
empty and non-empty lists and maps, any Unicode text, extreme numbers and timestamps),
then adjusted to the rules Avro cannot express (parts 1-3, a fault kind of its layer...).
"""

from __future__ import annotations

import base64
import dataclasses
import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.contract.convert import INT_MAX, INT_MIN, LONG_MAX, LONG_MIN, format_timestamp
from services.contract.jsonl import event_to_line, parse_line
from services.contract.rules import FAULT_KINDS, HEARTBEAT_ERROR_KINDS, MAX_EXTENSION_MINUTES
from services.contract.schemas import TYPE_TOPICS, load_contract
from services.contract.wire import WireCodec, registry_client

pytestmark = pytest.mark.unit

CONTRACT = load_contract()
MAX_TS = 253402300799999  # 9999-12-31T23:59:59.999Z
timestamps = st.integers(0, MAX_TS).map(format_timestamp)
text = st.text(max_size=12)


def _strategy(schema: Any, named: dict[str, Any]) -> st.SearchStrategy[Any]:
    if isinstance(schema, list):
        return st.one_of(*[_strategy(b, named) for b in schema])
    if isinstance(schema, str):
        if schema in named:
            return _strategy(named[schema], named)
        return {
            "null": st.none(),
            "boolean": st.booleans(),
            "int": st.integers(INT_MIN, INT_MAX),
            "long": st.integers(LONG_MIN, LONG_MAX),
            "double": st.floats(allow_nan=False, allow_infinity=False),
            "string": text,
            "bytes": st.binary(max_size=16).map(lambda b: base64.b64encode(b).decode()),
        }[schema]
    t = schema["type"]
    if schema.get("logicalType") == "timestamp-millis":
        return timestamps
    if t == "enum":
        return st.sampled_from(schema["symbols"])
    if t == "array":
        return st.lists(_strategy(schema["items"], named), max_size=3)
    if t == "map":
        return st.dictionaries(text, _strategy(schema["values"], named), max_size=3)
    if t == "record":
        return st.fixed_dictionaries(
            {f["name"]: _strategy(f["type"], named) for f in schema["fields"]}
        )
    return _strategy(t, named)


def _data_strategy(event_type: str) -> st.SearchStrategy[dict[str, Any]]:
    schema = CONTRACT.schema(event_type)
    named = dict(schema.parsed.get("__named_schemas", {}))
    fields = {
        f["name"]: _strategy(f["type"], named)
        for f in schema.parsed["fields"]
        if f["name"] not in ("type", "platform_id", "event_id", "ts")
    }
    return st.fixed_dictionaries(fields)


facet_text = st.dictionaries(text, st.integers() | text, max_size=2).map(json.dumps)


@st.composite
def json_lines(draw: st.DrawFn) -> str:
    event_type = draw(st.sampled_from(sorted(TYPE_TOPICS)))
    data = draw(_data_strategy(event_type))
    # Rules beyond Avro.
    if "part" in data:
        nullable = event_type.startswith("grading.criterion")
        data["part"] = draw(st.sampled_from([1, 2, 3, None] if nullable else [1, 2, 3]))
    if event_type == "fault.injected":
        data["kind"] = draw(st.sampled_from(sorted(FAULT_KINDS[data["layer"]])))
    if event_type == "self_grade.submitted":
        data["score_pct"] = draw(st.floats(0, 100))
    if event_type == "part.extended":
        data["minutes"] = draw(st.integers(1, MAX_EXTENSION_MINUTES))
        data["reason"] = draw(st.text(min_size=1, max_size=20).filter(str.strip))
    if event_type == "grade.overridden":
        data["state"] = draw(st.sampled_from(["met", "partial", "failed", "graded"]))
        data["kind"] = draw(st.sampled_from(["override", "appeal"]))
        for name in ("criterion_id", "reason", "by"):
            data[name] = draw(st.text(min_size=1, max_size=12).filter(str.strip))
    if event_type == "collector.heartbeat":
        data["error_kind"] = draw(st.sampled_from([None, *HEARTBEAT_ERROR_KINDS]))
    if event_type.startswith("grading.criterion"):
        data["max_score"] = draw(st.floats(0, 1e6))
        data["score"] = draw(st.floats(0, data["max_score"]))
    if event_type == "cdc.offsets":
        data["partition"] = draw(st.integers(0, INT_MAX))
        data["high_watermark"] = draw(st.integers(0, LONG_MAX))
        data["log_start_offset"] = draw(st.integers(0, data["high_watermark"]))
    if event_type == "openlineage.run":
        data["run"]["facets"] = draw(st.dictionaries(text, facet_text, max_size=2))
        data["job"]["facets"] = draw(st.dictionaries(text, facet_text, max_size=2))
        for side, extra in (("inputs", "inputFacets"), ("outputs", "outputFacets")):
            for ds in data[side]:
                ds["facets"] = draw(st.dictionaries(text, facet_text, max_size=2))
                ds[extra] = {}
    envelope = {
        "type": event_type,
        "platform_id": draw(st.text(min_size=1, max_size=12)),
        "event_id": draw(st.text(min_size=1, max_size=12)),
        "ts": draw(timestamps),
    }
    return json.dumps({**envelope, **data}, ensure_ascii=False)


CODEC = WireCodec(registry_client("mock://properties"), CONTRACT, auto_register=True)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(json_lines())
def test_json_to_avro_to_json_is_identity(line: str) -> None:
    event = parse_line(line, CONTRACT)
    assert json.loads(event_to_line(event, CONTRACT)) == json.loads(line)
    topic = "table" if event.type == "grading.criterion_transition" else CODEC.topic_for(event.type)
    decoded = CODEC.decode(CODEC.encode(event), topic, 0, 0)
    assert dataclasses.replace(decoded, source=None) == event
    assert json.loads(event_to_line(decoded, CONTRACT)) == json.loads(line)
