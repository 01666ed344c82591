"""OpenLineage RunEvents (as openlineage-python serialises them) -> openlineage.run."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from services.collectors.openlineage import parse
from services.collectors.webhook_payload import Inbound
from services.contract.schemas import load_contract
from services.errors import PayloadError

pytestmark = pytest.mark.unit

FIXTURES = Path(__file__).resolve().parents[3] / "tests" / "fixtures" / "openlineage"


def doc(name: str) -> dict[str, object]:
    loaded: dict[str, object] = json.loads((FIXTURES / f"{name}.json").read_text())
    return loaded


def parse_doc(d: object) -> object:
    return parse(Inbound("basecamp-alice", json.dumps(d).encode()))


def test_complete_run_keeps_the_spec_structure() -> None:
    original = doc("run-complete")
    (event,) = parse(Inbound("basecamp-alice", json.dumps(original).encode())).events
    load_contract().to_datum(event)
    assert event.ts_ms == 1795773660123  # 10:01:00.123456, truncated to the millisecond
    data = event.data
    assert data["eventType"] == "COMPLETE"
    assert data["eventTime"] == "2026-11-27T10:01:00.123456+00:00"  # exactly as sent
    assert data["run"]["runId"] == "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b"
    assert (data["job"]["namespace"], data["job"]["name"]) == ("flink", "orders-enrich")
    assert json.loads(data["job"]["facets"]["jobType"])["processingType"] == "STREAMING"
    assert data["inputs"] == [
        {
            "namespace": "kafka://redpanda.basecamp:9092",
            "name": "cdc.public.orders",
            "facets": {},
            "inputFacets": {},
        },
    ]
    schema = json.loads(data["outputs"][0]["facets"]["schema"])
    assert schema == original["outputs"][0]["facets"]["schema"]  # type: ignore[index]
    assert data["producer"] == "https://github.com/apache/flink"
    assert data["schemaURL"] == original["schemaURL"]


def test_failed_run() -> None:
    (event,) = parse_doc(doc("run-fail")).events  # type: ignore[attr-defined]
    assert event.data["eventType"] == "FAIL"
    assert event.ts_ms == 1795778142500
    assert "errorMessage" in event.data["run"]["facets"]


def test_dataset_events_carry_no_run() -> None:
    parsed = parse_doc(doc("dataset-event"))
    assert parsed.events == () and parsed.ignored == ("DatasetEvent",)  # type: ignore[attr-defined]


def test_event_id_is_run_state_and_time() -> None:
    d = doc("run-complete")
    first = parse_doc(d).events[0].event_id  # type: ignore[attr-defined]
    assert parse_doc(d).events[0].event_id == first  # type: ignore[attr-defined]
    d["eventType"] = "START"
    assert parse_doc(d).events[0].event_id != first  # type: ignore[attr-defined]


def test_missing_event_type_is_other() -> None:
    d = doc("run-complete")
    del d["eventType"]
    assert parse_doc(d).events[0].data["eventType"] == "OTHER"  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("mutate", "fragment"),
    [
        (lambda d: d.update(eventType="DONE"), "eventType: 'DONE' is not one of"),
        (lambda d: d.pop("eventTime"), "eventTime: missing"),
        (lambda d: d.update(eventTime="2026-11-27 10:00"), "eventTime: '2026-11-27 10:00'"),
        (lambda d: d["run"].pop("runId"), "run.runId: missing"),
        (lambda d: d.pop("job"), "job: missing"),
        (lambda d: d.pop("producer"), "producer: missing"),
        (
            lambda d: d["job"]["facets"].update(jobType="STREAMING"),
            "job.facets.jobType: expected a JSON object",
        ),
        (lambda d: d["outputs"][0].pop("name"), "outputs[0].name: missing"),
        (lambda d: d.update(inputs={"a": 1}), "inputs: expected a JSON array"),
    ],
)
def test_malformed_run_events_are_refused(mutate: object, fragment: str) -> None:
    d = doc("run-complete")
    mutate(d)  # type: ignore[operator]
    with pytest.raises(PayloadError, match=re.escape(fragment)):
        parse_doc(d)
