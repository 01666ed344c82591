"""The JSON Lines form: lossless round trips and errors that name the line and the field."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from services.contract.jsonl import event_to_line, iter_jsonl, parse_line, read_jsonl, write_jsonl
from services.contract.schemas import Contract
from services.contract.wire import WireCodec
from services.core.events import Event
from services.errors import ContractError

pytestmark = pytest.mark.unit

EXAMPLES = Path(__file__).resolve().parents[3] / "schemas" / "examples.jsonl"


def _line(**fields: object) -> str:
    base: dict[str, object] = {
        "type": "part.started",
        "platform_id": "basecamp-alice",
        "event_id": "e-1",
        "ts": "2026-11-27T09:00:00.000Z",
        "exam_id": "x1",
        "part": 1,
    }
    base.update(fields)
    return json.dumps({k: v for k, v in base.items() if v is not _DROP})


_DROP = object()


def test_examples_round_trip_json_avro_json_identically(
    contract: Contract, codec: WireCodec
) -> None:
    lines = [line for line in EXAMPLES.read_text().splitlines() if line.strip()]
    for text in lines:
        event = parse_line(text, contract)
        topic = (
            "any" if event.type == "grading.criterion_transition" else codec.topic_for(event.type)
        )
        decoded = codec.decode(codec.encode(event), topic, 0, 0)
        assert json.loads(event_to_line(decoded, contract)) == json.loads(text)


def test_write_then_read_is_identity(contract: Contract, examples: dict[str, Event]) -> None:
    buf = io.StringIO()
    assert write_jsonl(examples.values(), buf, contract) == len(examples)
    again = read_jsonl(io.StringIO(buf.getvalue()), contract)
    assert again == list(examples.values())
    # The canonical text is a fixed point.
    buf2 = io.StringIO()
    write_jsonl(again, buf2, contract)
    assert buf2.getvalue() == buf.getvalue()


def test_non_canonical_input_is_normalised_once(contract: Contract) -> None:
    text = json.dumps(
        {
            "type": "self_grade.submitted",
            "platform_id": "p",
            "event_id": "e",
            "ts": "2026-11-27T10:00:00+01:00",  # an offset, no milliseconds
            "exam_id": "x",
            "score_pct": 80,  # an integer for a double
        }
    )
    event = parse_line(text, contract)
    assert event.ts_ms == parse_line(_line(ts="2026-11-27T09:00:00.000Z"), contract).ts_ms
    assert event.data == {"exam_id": "x", "score_pct": 80.0}
    canonical = event_to_line(event, contract)
    assert json.loads(canonical)["ts"] == "2026-11-27T09:00:00.000Z"
    assert event_to_line(parse_line(canonical, contract), contract) == canonical


def test_defaults_are_filled_so_recorded_and_decoded_events_agree(contract: Contract) -> None:
    text = json.dumps(
        {
            "type": "fault.injected",
            "platform_id": "p",
            "event_id": "e",
            "ts": "2026-11-27T12:10:00.000Z",
            "exam_id": "x",
            "fault_id": "f1",
            "layer": "dbt",
            "kind": "test_missing",
            "target": "orders_hourly",
        }
    )
    assert parse_line(text, contract).data["note"] == ""


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (_line(part=4), "line 1: part.started event 'e-1': field 'part': 4 is not an exam part"),
        (_line(part="1"), "line 1: part.started event 'e-1': field 'part': expected an integer"),
        (
            _line(part=_DROP),
            "line 1: part.started event 'e-1': field 'part': missing required field",
        ),
        (_line(extra=1), "line 1: part.started event 'e-1': field 'extra': is not a field"),
        (_line(type=_DROP), "line 1: field 'type': missing"),
        (_line(type="exam.paused"), "line 1: field 'type': unknown event type 'exam.paused'"),
        (_line(platform_id=""), "line 1: field 'platform_id': must be a non-empty string"),
        (_line(ts="27/11/2026 09:00"), "line 1: field 'ts': '27/11/2026 09:00' is not an RFC 3339"),
        (_line(ts="2026-11-27T09:00:00"), "line 1: field 'ts': .* is not an RFC 3339"),
        (
            _line(ts="2026-11-27T09:00:00.0004Z"),
            "line 1: field 'ts': .* more precise than a millisecond",
        ),
        (_line(ts="2026-13-27T09:00:00Z"), "line 1: field 'ts': .* not a valid date"),
        ('{"type": "part.started", ', "line 1: not valid JSON"),
        ("[1, 2]", "line 1: a line must be a JSON object"),
        (_line()[:-1] + ', "part": 2}', "line 1: field 'part': appears twice"),
    ],
)
def test_bad_line_names_line_and_field(contract: Contract, line: str, expected: str) -> None:
    with pytest.raises(ContractError, match=expected.replace("(", r"\(").replace(")", r"\)")):
        read_jsonl(io.StringIO(line + "\n"), contract)


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        (
            {
                "type": "fault.injected",
                "fault_id": "f",
                "layer": "cdc",
                "kind": "stale_cache",
                "target": "t",
            },
            "field 'kind': 'stale_cache' is not a fault of layer 'cdc'",
        ),
        (
            {
                "type": "fault.injected",
                "fault_id": "f",
                "layer": "network",
                "kind": "stale_cache",
                "target": "t",
            },
            "field 'layer': 'network' is not one of: cache, trino",
        ),
        (
            {"type": "self_grade.submitted", "score_pct": 140},
            r"field 'score_pct': 140(\.0)? is not a percentage",
        ),
        (
            {"type": "pipeline.declared", "assets": {"source_table": "a"}},
            "field 'assets.cdc_topic': missing required field",
        ),
        (
            {"type": "artifact.submitted", "part": 2, "kind": "postmortem", "content": 7},
            "field 'content': expected a string, got an integer",
        ),
    ],
)
def test_field_errors_name_nested_paths(
    contract: Contract, fields: dict[str, object], expected: str
) -> None:
    obj = {"platform_id": "p", "event_id": "e", "ts": "2026-11-27T09:00:00.000Z", "exam_id": "x"}
    obj.update(fields)
    with pytest.raises(ContractError, match=expected):
        read_jsonl(io.StringIO(json.dumps(obj)), contract)


def test_signal_field_errors(contract: Contract, examples: dict[str, Event]) -> None:
    obj = json.loads(event_to_line(examples["dbt.run"], contract))
    obj["results"][1]["status"] = "passed"
    with pytest.raises(
        ContractError,
        match=r"line 1: dbt.run .* field 'results\[1\]\.status': 'passed' is not one of",
    ):
        read_jsonl(io.StringIO(json.dumps(obj)), contract)
    obj = json.loads(event_to_line(examples["openlineage.run"], contract))
    obj["outputs"][0]["facets"]["schema"] = "{not json"
    with pytest.raises(
        ContractError, match=r"field \"outputs\[0\]\.facets\['schema'\]\": facet is not JSON"
    ):
        read_jsonl(io.StringIO(json.dumps(obj)), contract)
    obj = json.loads(event_to_line(examples["iceberg.commit"], contract))
    obj["summary"]["added-records"] = 5000
    with pytest.raises(
        ContractError, match=r"field \"summary\['added-records'\]\": expected a string"
    ):
        read_jsonl(io.StringIO(json.dumps(obj)), contract)


def test_read_reports_every_bad_line_and_skips_blank_ones(contract: Contract) -> None:
    text = "\n".join([_line(), "", _line(part=9), _line(), _line(type="nope")]) + "\n"
    with pytest.raises(ContractError) as info:
        read_jsonl(io.StringIO(text), contract)
    message = str(info.value)
    assert "line 3:" in message and "line 5:" in message
    assert "line 1:" not in message and "line 4:" not in message


def test_iter_stops_at_first_bad_line(contract: Contract) -> None:
    text = "\n".join([_line(), _line(event_id="e-2"), _line(part=0), _line()])
    seen: list[str] = []
    with pytest.raises(ContractError, match="line 3:"):
        for event in iter_jsonl(io.StringIO(text), contract):
            seen.append(event.event_id)
    assert seen == ["e-1", "e-2"]


def test_file_errors_name_the_file(tmp_path: Path, contract: Contract) -> None:
    path = tmp_path / "exam.jsonl"
    path.write_bytes(_line().encode() + b"\n" + b'{"type": "\xff"}\n')
    with pytest.raises(ContractError, match=r"exam.jsonl.*not UTF-8"):
        read_jsonl(path, contract)
    with pytest.raises(ContractError, match=r"cannot read .*missing.jsonl"):
        read_jsonl(tmp_path / "missing.jsonl", contract)


def test_lines_may_repeat_and_come_in_any_order(contract: Contract) -> None:
    lines = [_line(event_id="e-2", ts="2026-11-27T10:00:00.000Z"), _line(), _line()]
    events = read_jsonl(io.StringIO("\n".join(lines)), contract)
    assert [e.event_id for e in events] == ["e-2", "e-1", "e-1"]
