"""Pure mappings from each source's answer to the contract's fields."""

from __future__ import annotations

import pytest

from services.collectors.accesslogs import (
    Access,
    classify,
    parse_combined,
    parse_grafana,
    parse_trino,
)
from services.collectors.dbt import node_result
from services.collectors.flink import checkpoint_data, finished_checkpoints, job_data
from services.collectors.http import SourceError
from services.collectors.observability import exemplar_traces, loki_lines, trace_spans
from services.collectors.superset import alert_data, superset_time
from services.collectors.trino_rules import column_masks
from services.core.events import rfc3339_to_ms

pytestmark = pytest.mark.unit


def test_dbt_statuses_and_nodes_outside_the_contract() -> None:
    manifest = {
        "nodes": {
            "model.s.m": {
                "resource_type": "model",
                "config": {"materialized": "incremental"},
                "depends_on": {"nodes": ["source.s.raw.orders"]},
            }
        }
    }
    model = node_result(
        {"unique_id": "model.s.m", "status": "runtime error", "relation_name": '"db"."s"."m"'},
        manifest,
    )
    assert model is not None
    assert (model["status"], model["materialization"], model["relation_name"]) == (
        "error",
        "incremental",
        "db.s.m",
    )
    assert model["depends_on"] == ["source.s.raw.orders"]
    assert node_result({"unique_id": "unit_test.s.m.t", "status": "pass"}, {}) is None
    test = node_result({"unique_id": "test.s.t.1", "status": "fail", "failures": 3}, {})
    assert test is not None and (
        test["resource_type"],
        test["failures"],
        test["materialization"],
    ) == ("test", 3, None)


def test_flink_job_without_checkpointing() -> None:
    overview = {"jid": "a" * 32, "name": "j", "state": "RUNNING"}
    plan = {
        "plan": {"nodes": [{"description": "Source: kafka<br/>+- LookupJoin[orders, customers]"}]}
    }
    data = job_data(overview, plan, None)
    assert data["checkpointing_mode"] is None and data["checkpoint_interval_ms"] is None
    assert data["operators"] == ["Source: kafka<br/>+- LookupJoin[orders, customers]"]
    assert (
        job_data(overview, plan, {"mode": "AT_LEAST_ONCE", "interval": 0})["checkpointing_mode"]
        == "at_least_once"
    )


def test_flink_checkpoints_finished_once_each_by_id() -> None:
    stats = {
        "history": [
            {"id": 9, "status": "IN_PROGRESS", "trigger_timestamp": 90},
            {"id": 8, "status": "FAILED", "trigger_timestamp": 80, "failure_timestamp": 85},
            {
                "id": 7,
                "status": "COMPLETED",
                "trigger_timestamp": 70,
                "latest_ack_timestamp": 72,
                "checkpointed_size": 265,
                "end_to_end_duration": 2,
            },
        ],
        "latest": {
            "completed": {
                "id": 7,
                "status": "COMPLETED",
                "trigger_timestamp": 70,
                "latest_ack_timestamp": 72,
            },
            "savepoint": None,
            "failed": None,
        },
    }
    found = finished_checkpoints(stats)
    assert [c["id"] for c in found] == [7, 8]
    ts, failed = checkpoint_data("j", found[1])
    assert ts == 85 and failed["status"] == "FAILED"
    ts, done = checkpoint_data("j", found[0])
    assert ts == 72 and done["state_size"] == 265 and rfc3339_to_ms(done["trigger_ts"]) == 70


def test_superset_alert_states_and_times() -> None:
    assert superset_time("2026-11-27T10:20:00") == rfc3339_to_ms("2026-11-27T10:20:00.000Z")
    assert superset_time(None) is None
    with pytest.raises(SourceError, match="unreadable Superset timestamp"):
        superset_time("yesterday")
    data = alert_data(
        {
            "id": 1,
            "chart_id": 4,
            "validator_type": "not null",
            "validator_config_json": "{}",
            "last_state": "On Grace",
        }
    )
    assert (data["condition"], data["threshold"], data["last_state"], data["chart_id"]) == (
        "not null",
        None,
        "Grace",
        4,
    )
    assert alert_data({"id": 1, "last_state": "Exploded"})["last_state"] == "Error"


def test_trino_masks_without_user_apply_to_everyone_and_regexes_stay_whole() -> None:
    masks = column_masks(
        {
            "tables": [
                {"table": "t", "columns": [{"name": "c", "mask": "'x'"}]},
                {
                    "table": "u",
                    "user": "ana.*",
                    "columns": [{"name": "d", "mask": "NULL"}, {"name": "e"}],
                },
            ]
        }
    )
    assert [(m["catalog"], m["column"], m["applies_to"]) for m in masks] == [
        (".*", "c", []),
        (".*", "d", ["ana.*"]),
    ]


def test_access_log_lines_and_actions() -> None:
    loki = parse_combined(
        '10.0.0.1 - bob [27/Nov/2026:11:00:00 +0000] "GET /loki/api/v1/query_range?query=%7Bjob%3D%22x%22%7D&limit=5 HTTP/1.1" 200 10'
    )
    assert loki is not None and classify("loki", loki) == ("query", '{job="x"}')
    sync = Access(0, "bob", "POST", "/api/v1/applications/shop/sync", {}, 200)
    assert classify("argocd", sync) == ("sync", "shop")
    assert (
        classify("argocd", Access(0, "bob", "POST", "/api/v1/applications/shop/sync", {}, 403))
        is None
    )
    assert parse_combined("not an access line") is None
    assert parse_grafana('t=2026-11-27T11:00:00Z level=info msg="Starting"') is None
    assert parse_trino("2026-11-27T11:00:00Z\tonly\tthree") is None


def test_observability_answers() -> None:
    ex = {
        "status": "success",
        "data": [
            {
                "seriesLabels": {},
                "exemplars": [
                    {"labels": {"trace_id": "abc"}, "value": "1", "timestamp": 1795770000.5},
                    {"labels": {"other": "x"}, "value": "1", "timestamp": 1795770001},
                ],
            }
        ],
    }
    assert exemplar_traces(ex, "w") == [("abc", 1795770000500)]
    with pytest.raises(SourceError, match="bad_data: parse error"):
        exemplar_traces({"status": "error", "errorType": "bad_data", "error": "parse error"}, "w")
    lines = loki_lines(
        {
            "status": "success",
            "data": {"result": [{"stream": {"a": "b"}, "values": [["2000000", "x"]]}]},
        },
        "w",
    )
    assert lines == [(2, "x", {"a": "b"})]
    spans, services, start = trace_spans(
        {
            "resourceSpans": [
                {
                    "resource": {
                        "attributes": [{"key": "service.name", "value": {"stringValue": "s"}}]
                    },
                    "scopeSpans": [
                        {
                            "spans": [
                                {"startTimeUnixNano": "5000000"},
                                {"startTimeUnixNano": "3000000"},
                            ]
                        }
                    ],
                }
            ]
        }
    )
    assert (spans, services, start) == (2, {"s"}, 3)
