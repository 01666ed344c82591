"""Trino QueryCompletedEvents as the HTTP event listener sends them -> trino.query."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from services.collectors.trino_events import parse
from services.collectors.webhook_payload import Inbound
from services.contract.schemas import load_contract
from services.errors import PayloadError

pytestmark = pytest.mark.unit

FIXTURES = Path(__file__).resolve().parents[3] / "tests" / "fixtures" / "trino"


def doc(name: str) -> dict[str, object]:
    loaded: dict[str, object] = json.loads((FIXTURES / f"{name}.json").read_text())
    return loaded


def parse_doc(d: object) -> object:
    return parse(Inbound("basecamp-alice", json.dumps(d).encode()))


def test_finished_select_lists_tables_and_columns_read() -> None:
    (event,) = parse_doc(doc("query-completed-select")).events  # type: ignore[attr-defined]
    load_contract().to_datum(event)
    assert event.ts_ms == 1795778700187  # endTime ...11:25:00.187654Z, truncated
    assert dict(event.data) == {
        "query_id": "20261127_112500_00042_abcde",
        "user": "analyst",
        "state": "FINISHED",
        "query": "SELECT email, order_id FROM lake.orders_enriched WHERE order_id > 100 LIMIT 10",
        "catalog": "iceberg",
        "schema": "lake",
        "tables": ["iceberg.lake.orders_enriched"],
        "columns": ["iceberg.lake.orders_enriched.email", "iceberg.lake.orders_enriched.order_id"],
        "masked_columns": [],
        "error_code": None,
    }


def test_denied_query_carries_the_error_code() -> None:
    (event,) = parse_doc(doc("query-completed-denied")).events  # type: ignore[attr-defined]
    load_contract().to_datum(event)
    assert (event.data["state"], event.data["error_code"]) == ("FAILED", "PERMISSION_DENIED")
    assert event.data["schema"] is None and event.data["tables"] == []


def test_created_events_carry_no_completed_query() -> None:
    parsed = parse_doc(doc("query-created"))
    assert parsed.events == () and parsed.ignored == ("QueryCreatedEvent",)  # type: ignore[attr-defined]


def test_event_id_is_the_query_id() -> None:
    d = doc("query-completed-select")
    first = parse_doc(d).events[0]  # type: ignore[attr-defined]
    assert parse_doc(d).events[0].event_id == first.event_id  # type: ignore[attr-defined]
    d["metadata"]["queryId"] = "20261127_112501_00043_abcde"  # type: ignore[index]
    assert parse_doc(d).events[0].event_id != first.event_id  # type: ignore[attr-defined]


def test_older_listeners_list_columns_by_name_and_a_table_read_twice_counts_once() -> None:
    d = doc("query-completed-select")
    inputs = d["ioMetadata"]["inputs"]  # type: ignore[index]
    inputs[0]["columns"] = ["email", "order_id"]
    inputs.append(dict(inputs[0], columns=[{"name": "email", "type": "varchar"}]))
    (event,) = parse_doc(d).events  # type: ignore[attr-defined]
    assert event.data["tables"] == ["iceberg.lake.orders_enriched"]
    assert event.data["columns"] == [
        "iceberg.lake.orders_enriched.email",
        "iceberg.lake.orders_enriched.order_id",
    ]


def test_numeric_instants_are_epoch_seconds() -> None:
    d = doc("query-completed-select")
    d["endTime"] = 1795778700.187654
    assert parse_doc(d).events[0].ts_ms == 1795778700187  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("mutate", "fragment"),
    [
        (lambda d: d["metadata"].pop("queryId"), "metadata.queryId: missing"),
        (lambda d: d["context"].pop("user"), "context.user: missing"),
        (lambda d: d["metadata"].update(query=None), "metadata.query: missing"),
        (lambda d: d.update(endTime="yesterday"), "endTime: 'yesterday' is not an RFC 3339"),
        (
            lambda d: d["ioMetadata"]["inputs"][0].pop("table"),
            "ioMetadata.inputs[0].table: missing",
        ),
        (
            lambda d: d["ioMetadata"]["inputs"][0]["columns"].append({"type": "x"}),
            "ioMetadata.inputs[0].columns[2].name: missing",
        ),
        (
            lambda d: d.update(failureInfo={"errorCode": "BAD"}),
            "failureInfo.errorCode: expected a JSON object",
        ),
    ],
)
def test_malformed_events_are_refused(mutate: object, fragment: str) -> None:
    d = doc("query-completed-select")
    mutate(d)  # type: ignore[operator]
    with pytest.raises(PayloadError, match=re.escape(fragment)):
        parse_doc(d)


RECORDED = FIXTURES / "recorded-476"


def recorded(name: str) -> dict[str, object]:
    loaded: dict[str, object] = json.loads((RECORDED / f"{name}.json").read_text())
    return loaded


def _table(d: dict[str, object]) -> str:
    (t,) = d["metadata"]["tables"]  # type: ignore[index]
    return f"iceberg.{t['schema']}.customers"


def test_a_real_masked_read_lists_the_masked_column_trino_did_not_read() -> None:
    d = recorded("masked-select")
    table = _table(d)
    # the misreading: a constant mask needs no read, so ioMetadata lacks the column
    io_columns = [c["name"] for c in d["ioMetadata"]["inputs"][0]["columns"]]  # type: ignore[index]
    assert io_columns == ["id"]
    (event,) = parse_doc(d).events  # type: ignore[attr-defined]
    load_contract().to_datum(event)
    assert event.data["user"] == "analyst" and event.data["state"] == "FINISHED"
    assert event.data["tables"] == [table]
    assert event.data["columns"] == [f"{table}.id", f"{table}.email"]
    assert event.data["masked_columns"] == [f"{table}.email"]


def test_a_real_unmasked_read_has_no_masked_columns() -> None:
    d = recorded("unmasked-select")
    table = _table(d)
    (event,) = parse_doc(d).events  # type: ignore[attr-defined]
    assert event.data["user"] == "auditor"
    assert event.data["columns"] == [f"{table}.id", f"{table}.email"]
    assert event.data["masked_columns"] == []


def test_a_real_denied_read_is_failed_with_its_error_code() -> None:
    (event,) = parse_doc(recorded("denied-select")).events  # type: ignore[attr-defined]
    assert (event.data["state"], event.data["error_code"]) == ("FAILED", "PERMISSION_DENIED")
    assert event.data["columns"] == [] and event.data["masked_columns"] == []


def test_a_referenced_column_without_a_name_is_a_payload_error() -> None:
    d = recorded("masked-select")
    d["metadata"]["tables"][0]["columns"][1] = {"mask": "'***'"}  # type: ignore[index]
    with pytest.raises(PayloadError, match=r"metadata.tables\[0\].columns\[1\]"):
        parse_doc(d)
