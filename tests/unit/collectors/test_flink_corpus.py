"""The Flink collector on REST answers recorded from a real Flink 1.20.4 session
(tests/fixtures/corpus/flink, see its README): one job per checkpointing mode."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from services.collectors.flink import (
    CHECKPOINTING_OFF,
    FlinkCollector,
    Settings,
    checkpoint_data,
    finished_checkpoints,
    job_data,
)
from services.contract.schemas import load_contract
from services.core.events import rfc3339_to_ms

pytestmark = pytest.mark.unit

CORPUS = Path(__file__).resolve().parents[2] / "fixtures" / "corpus" / "flink"
MODES = {"exactly-once": ("exactly_once", 1000), "at-least-once": ("at_least_once", 1000)}


def answer(prefix: str, name: str) -> Any:
    return json.loads((CORPUS / f"{prefix}.{name}.json").read_text())


@pytest.mark.parametrize("prefix", ["exactly-once", "at-least-once", "off"])
def test_job_of_each_mode(prefix: str) -> None:
    overview = answer(prefix, "overview")
    data = job_data(overview, answer(prefix, "plan"), answer(prefix, "checkpoints-config"))
    assert data["state"] == "RUNNING" and data["job_id"] == overview["jid"]
    mode, interval = MODES.get(prefix, (None, None))
    assert (data["checkpointing_mode"], data["checkpoint_interval_ms"]) == (mode, interval)
    lookups = [op for op in data["operators"] if "LookupJoin(" in op]
    assert len(lookups) == 1 and "lookup=[customer_id=customer_id]" in lookups[0]
    assert any(op.startswith("IcebergFilesCommitter") for op in data["operators"])


def test_off_is_told_by_the_interval_not_the_mode() -> None:
    config = answer("off", "checkpoints-config")
    # the mode Flink reports for a job that never enabled checkpointing is a default
    assert config["interval"] == CHECKPOINTING_OFF and config["mode"] == "at_least_once"
    assert finished_checkpoints(answer("off", "checkpoints")) == []


@pytest.mark.parametrize("prefix", ["exactly-once", "at-least-once"])
def test_finished_checkpoints_skip_the_one_in_progress(prefix: str) -> None:
    stats = answer(prefix, "checkpoints")
    in_progress = {c["id"] for c in stats["history"] if c["status"] == "IN_PROGRESS"}
    done = finished_checkpoints(stats)
    ids = [int(c["id"]) for c in done]
    assert ids == sorted(ids) and len(ids) >= 3 and not in_progress & set(ids)
    jid = answer(prefix, "overview")["jid"]
    for cp in done:
        ts, data = checkpoint_data(jid, cp)
        assert data["status"] == "COMPLETED" and not data["is_savepoint"]
        assert ts >= rfc3339_to_ms(data["trigger_ts"]) > 0
        assert data["state_size"] > 0 and data["duration_ms"] >= 0


@pytest.mark.parametrize("prefix", ["exactly-once", "at-least-once", "off"])
def test_a_poll_of_the_recorded_answers_gives_valid_signals(prefix: str) -> None:
    overview = answer(prefix, "overview")
    jid = overview["jid"]
    routes = {
        "/jobs/overview": {"jobs": [overview]},
        f"/jobs/{jid}/plan": answer(prefix, "plan"),
        f"/jobs/{jid}/checkpoints/config": answer(prefix, "checkpoints-config"),
        f"/jobs/{jid}/checkpoints": answer(prefix, "checkpoints"),
    }

    def serve(request: httpx.Request) -> httpx.Response:
        body = routes.get(request.url.path)
        return httpx.Response(404 if body is None else 200, json=body)

    collector = FlinkCollector(Settings(url="http://flink.invalid:8081"), "basecamp-alice")
    collector.http.client = httpx.Client(
        base_url="http://flink.invalid:8081", transport=httpx.MockTransport(serve)
    )
    result = collector.poll({})
    contract = load_contract()
    for event in result.events:
        contract.to_datum(event)  # what the collector publishes fits the contract
    jobs = [e for e in result.events if e.type == "flink.job"]
    cps = [e for e in result.events if e.type == "flink.checkpoint"]
    assert len(jobs) == 1 and jobs[0].data["job_id"] == jid
    assert len(cps) == len(finished_checkpoints(routes[f"/jobs/{jid}/checkpoints"]))
    assert (len(cps) >= 3) == (prefix != "off")
    again = collector.poll(result.position)
    assert again.events == ()  # nothing new: nothing published twice
