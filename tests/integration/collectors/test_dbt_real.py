"""A real ``dbt build`` of the rollup on the stack's Trino (dbt-trino, Iceberg tables),
wrapped by the real OpenLineage integration (``dbt-ol``) posting to the OpenLineage
receiver; the dbt collector reads the real artifacts; both kinds of signal, read back
from the broker, are graded by the core.

What is checked is what p1.dbt_rollup_tested and p1.dbt_catches_broken_row rely on: a
clean build is a built model with passing tests on it; a broken upstream row makes the
real test fail with failures >= 1; with that test dropped (fault dbt/test_missing) the
broken row goes unseen. Lineage comes from both of dbt-ol's modes (after the run, and
streamed while nodes run) and gives the sink -> model hop; a wrong key publishes none.
Failure paths: a project that does not compile (no artifacts, no signal, no blindness),
a collector pointed where no project is (unhealthy, proctor-side), a cut-off archived
run_results.json (a dead letter; the others go on), an OpenLineage event the receiver
cannot parse (a dead letter, and the receiver goes on).

Costs the dbt venv once per machine (169 s with an empty pip cache, 90 s with a warm
one) and 150-220 s warm on the shared 2-core machine (four builds and a failed compile).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import httpx
import pytest

from services.collectors import openlineage
from services.collectors.dbt import DbtCollector, Settings
from services.collectors.polling import Poller
from services.collectors.webhook import ReceiverSettings
from services.collectors.webhook_auth import secret_env
from services.collectors.webhook_run import BackgroundReceiver, build_receiver
from services.core.events import Event
from services.core.simple_judge import KeywordJudge
from services.exam_builder import ASSETS, ExamBuilder
from services.offline.replay import replay_events
from services.platform.dbt import BROKEN_ROW_TEST, MODEL, SOURCE_TABLE, DbtProject, LineageTarget
from services.rubrics import resolver
from tests.integration.collectors.conftest import Env, contract_env

pytestmark = [pytest.mark.integration, pytest.mark.slow]
pytest_plugins = ["tests.platform_fixtures.dbt"]

SECRET = "it-lineage-" + uuid.uuid4().hex
PLATFORM = f"basecamp-{uuid.uuid4().hex[:8]}"
TOPICS = ("platform.dbt", "platform.openlineage", "platform.collectors", "grading.dlq")
TYPES = ["dbt.run", "openlineage.run", "collector.heartbeat", "grading.dead_letter"]
MINUTE = 60_000
#: dbt-ol's structured-logs mode names each SQL statement of a node <node id>.sql.<n>
SQL_JOB = re.compile(r"\.sql\.\d+$")


@pytest.fixture(scope="module")
def env(kafka_bootstrap: str, registry_url: str) -> Iterator[Env]:
    with contract_env(kafka_bootstrap, registry_url, "dbt", TOPICS, TYPES) as e:
        yield e


@pytest.fixture(scope="module")
def lineage(env: Env) -> Iterator[LineageTarget]:
    """The OpenLineage receiver, and the HTTP transport settings of the platform's dbt-ol:
    its URL and the platform's own derived key."""
    receiver = build_receiver(
        [openlineage.SOURCE],
        env.settings,
        ReceiverSettings(platforms=(PLATFORM,), heartbeat_s=3600.0),
        env={secret_env(openlineage.NAME): SECRET},
    )
    key = receiver.secrets.secret(openlineage.NAME, PLATFORM, 1)
    assert key != SECRET
    with BackgroundReceiver(receiver) as port:
        yield LineageTarget(f"http://127.0.0.1:{port}/platforms/{PLATFORM}/", key)


def _lineage_of(env: Env, invocation: str, ready: Callable[[list[Event]], bool]) -> list[Event]:
    """The openlineage.run events of one dbt invocation (its dbt_run facet's id)."""
    deadline = time.monotonic() + 30
    while True:
        events = [
            e
            for e in env.read("platform.openlineage", PLATFORM)
            if json.loads(e.data["run"]["facets"].get("dbt_run", "{}")).get("invocation_id")
            == invocation
        ]
        if ready(events) or time.monotonic() > deadline:
            return events
        time.sleep(0.5)


def _exam(events: list[Event], project: DbtProject, broken_at_ms: int | None = None) -> ExamBuilder:
    """An exam whose Part 1 spans ``events``: the pipeline declares this run's schema as the
    sink table, and the proctor breaks a row at ``broken_at_ms``."""
    first = min(e.ts_ms for e in events)
    b = ExamBuilder(PLATFORM, start_ms=first - 3 * MINUTE)
    b.start()
    assets = {**ASSETS, "sink_table": f"{project.target.schema}.{SOURCE_TABLE}", "dbt_model": MODEL}
    b.events = [
        replace(e, data={**e.data, "assets": assets}) if e.type == "pipeline.declared" else e
        for e in b.events
    ]
    if broken_at_ms is not None:
        minutes = (broken_at_ms - b.start_ms) / MINUTE
        b.control("row.broken", minutes, dataset=ASSETS["sink_table"], row_key="order-900001")
    b.events.extend(events)
    b.finish()
    return b


def _grade(b: ExamBuilder, *criteria: str) -> dict[str, tuple[str, str]]:
    (exam,) = replay_events(b.events, resolver(), KeywordJudge()).results
    return {c: (exam.criterion(c).state, exam.criterion(c).reason) for c in criteria}


def test_a_real_build_is_graded_rollup_tested_and_a_broken_row_is_caught(
    env: Env,
    lineage: LineageTarget,
    dbt_project: Callable[..., DbtProject],
    make_poller: Callable[..., Poller],
    tmp_path: Path,
) -> None:
    project = dbt_project("it_dbt_build")
    schema = project.target.schema
    built = project.build(lineage=lineage)
    assert built.returncode == 0, built.output[-3000:]
    poller = make_poller(DbtCollector(Settings(path=project.target_dir), PLATFORM))
    assert poller.step() == 1
    assert poller.step() == 0  # the same artifacts are not published twice

    # the dbt collector's reading of the real run_results.json + manifest.json
    [run] = env.read("platform.dbt", PLATFORM)
    real = json.loads(built.run_results.read_text())
    assert run.data["invocation_id"] == real["metadata"]["invocation_id"]
    assert run.data["command"] == "build"
    results = {r["unique_id"]: r for r in run.data["results"]}
    model = results[project.model_uid]
    assert model["resource_type"] == "model" and model["status"] == "success"
    assert model["materialization"] == "table"
    assert model["depends_on"] == [f"source.shop.lake.{SOURCE_TABLE}"]
    assert model["relation_name"] == f"iceberg.{schema}.{MODEL}"
    tests = {uid: r for uid, r in results.items() if r["resource_type"] == "test"}
    assert len(tests) == 6
    assert all(t["status"] == "pass" and t["failures"] == 0 for t in tests.values())
    on_model = [t for t in tests.values() if t["depends_on"] == [project.model_uid]]
    assert {t["unique_id"].split(".")[2] for t in on_model} >= {
        "not_null_orders_hourly_order_hour",
        "accepted_values_orders_hourly_status__placed__shipped__delivered__cancelled",
        BROKEN_ROW_TEST,
    }
    assert all(t["materialization"] is None for t in tests.values())
    # the rows really are in an Iceberg table behind Trino
    assert project.sql(f"SELECT sum(orders) FROM iceberg.{schema}.{MODEL}") == [[5]]

    # the same artifacts archived file by file: run_results first waits for its manifest;
    # a cut-off copy beside it is a dead letter and stops nothing
    archive = tmp_path / "archive"
    (archive / "inv-0").mkdir(parents=True)
    cut = archive / "inv-0" / "run_results.json"
    cut.write_bytes(built.run_results.read_bytes()[:500])
    os.utime(cut, (time.time() - 60, time.time() - 60))
    (archive / "inv-1").mkdir(parents=True)
    shutil.copy(built.run_results, archive / "inv-1" / "run_results.json")
    other = f"basecamp-{uuid.uuid4().hex[:8]}"
    archived = make_poller(DbtCollector(Settings(path=archive), other))
    assert archived.step() == 1 and env.read("platform.dbt", other) == []
    [letter] = [e for e in env.read("grading.dlq", other) if e.data["source"] == "collector:dbt"]
    assert "not valid JSON" in letter.data["reason"] and "inv-0" in letter.data["reason"]
    assert letter.data["error_class"] == "corrupt_bytes"
    shutil.copy(project.target_dir / "manifest.json", archive / "inv-1" / "manifest.json")
    assert archived.step() == 1
    assert archived.healthy
    [copy] = env.read("platform.dbt", other)
    assert copy.data["results"] == run.data["results"]

    # openlineage-dbt's real events, through the receiver
    invocation = run.data["invocation_id"]
    model_job = f"iceberg.{schema}.shop.{MODEL}.build.run"
    events = _lineage_of(
        env, invocation, lambda es: {e.data["job"]["name"] for e in es} >= {model_job}
    )
    by_job: dict[str, set[str]] = {}
    for e in events:
        by_job.setdefault(e.data["job"]["name"], set()).add(e.data["eventType"])
        assert e.data["producer"].startswith("https://github.com/OpenLineage/OpenLineage/")
    assert by_job[model_job] == {"START", "COMPLETE"}
    assert by_job["dbt-run-shop"] == {"START", "COMPLETE"}
    [done] = [
        e
        for e in events
        if e.data["job"]["name"] == model_job and e.data["eventType"] == "COMPLETE"
    ]
    assert done.data["job"]["namespace"] == lineage.namespace
    assert [(i["namespace"], i["name"]) for i in done.data["inputs"]] == [
        (project.target.namespace, f"iceberg.{schema}.{SOURCE_TABLE}")
    ]
    assert [o["name"] for o in done.data["outputs"]] == [f"iceberg.{schema}.{MODEL}"]
    assert json.loads(done.data["run"]["facets"]["parent"])["job"]["name"] == "dbt-run-shop"
    assert "sql" in done.data["job"]["facets"]

    # graded: the rollup built and tested; the sink -> model hop is in the lineage
    exam = _exam([run, *events], project)
    graded = _grade(
        exam, "p1.dbt_rollup_tested", "p1.dbt_catches_broken_row", "p1.lineage_in_datahub"
    )
    assert graded["p1.dbt_rollup_tested"][0] == "met", graded
    assert MODEL in graded["p1.dbt_rollup_tested"][1]
    assert graded["p1.dbt_catches_broken_row"][0] != "met", graded
    hops = graded["p1.lineage_in_datahub"]
    assert hops[0] in ("expired", "pending"), hops
    assert f"{schema}.{SOURCE_TABLE} -> {MODEL}" not in hops[1]
    assert f"{MODEL} -> {ASSETS['superset_chart']}" in hops[1]

    # the proctor breaks an upstream row; with the revenue test dropped nothing notices
    broken_at = int(time.time() * 1000)
    project.break_row()
    project.drop_test(BROKEN_ROW_TEST)
    assert BROKEN_ROW_TEST not in project.tests()
    # (its lineage sent with a wrong key: refused with 401, and dbt's result unchanged)
    wrong = LineageTarget(lineage.url, "not-" + lineage.api_key)
    lineage_before = len(env.read("platform.openlineage", PLATFORM))
    blind = project.build(lineage=wrong)
    assert blind.returncode == 0, blind.output[-3000:]
    assert "401" in blind.output
    assert poller.step() == 1
    runs = env.read("platform.dbt", PLATFORM)
    assert len(runs) == 2
    # dbt-ol sends before it exits and the receiver answers after the broker's ack
    assert len(env.read("platform.openlineage", PLATFORM)) == lineage_before
    assert all(r["status"] in ("pass", "success") for r in runs[1].data["results"])
    assert not any(r["unique_id"].endswith(BROKEN_ROW_TEST) for r in runs[1].data["results"])
    graded = _grade(_exam(runs, project, broken_at), "p1.dbt_catches_broken_row")
    assert graded["p1.dbt_catches_broken_row"][0] == "expired", graded

    # the test put back: the real build fails on the broken row
    project.restore_test(BROKEN_ROW_TEST)
    caught = project.build(lineage=lineage)
    assert caught.returncode == 1, caught.output[-3000:]
    assert poller.step() == 1
    runs = env.read("platform.dbt", PLATFORM)
    assert len(runs) == 3 and runs[2].ts_ms > broken_at
    failing = [r for r in runs[2].data["results"] if r["status"] == "fail"]
    assert [r["unique_id"] for r in failing] == [f"test.shop.{BROKEN_ROW_TEST}"]
    assert failing[0]["failures"] == 1 and failing[0]["depends_on"] == [project.model_uid]
    assert "Got 1 result" in failing[0]["message"]
    graded = _grade(
        _exam(runs, project, broken_at), "p1.dbt_catches_broken_row", "p1.dbt_rollup_tested"
    )
    assert graded["p1.dbt_catches_broken_row"][0] == "met", graded
    assert BROKEN_ROW_TEST in graded["p1.dbt_catches_broken_row"][1]
    assert graded["p1.dbt_rollup_tested"][0] == "met", graded

    # the failing test reaches the lineage too, as a failed data-quality assertion
    failed_lineage = _lineage_of(
        env, runs[2].data["invocation_id"], lambda es: any(e.data["inputs"] for e in es)
    )
    assertions = [
        a
        for e in failed_lineage
        for i in e.data["inputs"]
        for a in json.loads(i["facets"].get("dataQualityAssertions", '{"assertions": []}'))[
            "assertions"
        ]
    ]
    assert any(a["success"] is False for a in assertions) or any(
        e.data["eventType"] == "FAIL" for e in failed_lineage
    ), [e.data for e in failed_lineage]

    # undo: the row repaired, the next build is clean again
    project.repair_row()
    # ... built by dbt-ol's other mode, which sends events while the nodes run (its jobs
    # are named by node id, its tests write to an audit schema)
    clean = project.build(lineage=lineage, args=("--consume-structured-logs",))
    assert clean.returncode == 0, clean.output[-3000:]
    assert poller.step() == 1
    runs = env.read("platform.dbt", PLATFORM)
    assert len(runs) == 4
    assert all(r["status"] in ("pass", "success") for r in runs[3].data["results"])

    def live(events: list[Event]) -> list[Event]:
        return [
            e for e in events if e.data["job"]["name"].startswith(("model.shop.", "test.shop."))
        ]

    deadline = time.monotonic() + 30
    while True:
        streamed = live(env.read("platform.openlineage", PLATFORM))
        nodes = {
            e.data["job"]["name"]
            for e in streamed
            if e.data["eventType"] == "COMPLETE" and not SQL_JOB.search(e.data["job"]["name"])
        }
        if len(nodes) >= 7 or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert project.model_uid in nodes and len(nodes - {project.model_uid}) == 6, nodes
    [model_run] = [
        e
        for e in streamed
        if e.data["job"]["name"] == project.model_uid and e.data["eventType"] == "COMPLETE"
    ]
    assert [i["name"] for i in model_run.data["inputs"]] == [f"iceberg.{schema}.{SOURCE_TABLE}"]
    assert [o["name"] for o in model_run.data["outputs"]] == [f"iceberg.{schema}.{MODEL}"]
    audits = {
        o["name"]
        for e in streamed
        if e.data["job"]["name"].startswith("test.shop.")
        for o in e.data["outputs"]
    }
    assert audits and all(a.startswith(f"iceberg.{schema}_dbt_test__audit.") for a in audits)
    # the model's job is named like the model: the hop is there, and no other is invented
    hops = _grade(_exam(streamed, project), "p1.lineage_in_datahub")["p1.lineage_in_datahub"]
    assert f"{schema}.{SOURCE_TABLE} -> {MODEL}" not in hops[1], hops
    assert f"{ASSETS['cdc_topic']} -> {schema}.{SOURCE_TABLE}" in hops[1], hops


def test_a_project_that_does_not_compile_publishes_nothing(
    env: Env,
    dbt_project: Callable[..., DbtProject],
    make_poller: Callable[..., Poller],
    tmp_path: Path,
) -> None:
    project = dbt_project("it_dbt_broken")
    (project.project_dir / "models" / "broken.sql").write_text(
        "select * from {{ ref('no_such_model') }}\n"
    )
    failed = project.build()
    assert failed.returncode == 2, failed.output[-3000:]
    assert "Compilation Error" in failed.output
    assert not failed.run_results.exists()
    platform = f"basecamp-{uuid.uuid4().hex[:8]}"
    poller = make_poller(DbtCollector(Settings(path=project.target_dir), platform))
    # no artifacts yet in a dbt project is nothing to report, and no blindness either
    assert poller.attempt() == poller.interval_s
    assert poller.healthy and poller.step() == 0
    assert env.read("platform.dbt", platform) == []


def test_a_collector_pointed_where_no_project_is_reports_itself_blind(
    env: Env, make_poller: Callable[..., Poller], tmp_path: Path
) -> None:
    platform = f"basecamp-{uuid.uuid4().hex[:8]}"
    poller = make_poller(DbtCollector(Settings(path=tmp_path / "nowhere" / "target"), platform))
    poller.attempt()
    assert not poller.healthy
    assert poller.last_error_kind == "proctor_side"
    [beat] = env.read("platform.collectors", platform)
    assert beat.data["collector"] == "dbt" and beat.data["healthy"] is False
    assert "nowhere" in beat.data["error"]
    assert env.read("platform.dbt", platform) == []


def test_an_openlineage_event_that_does_not_parse_is_a_dead_letter_and_the_receiver_goes_on(
    env: Env, lineage: LineageTarget
) -> None:
    headers = {"Authorization": f"Bearer {lineage.api_key}", "Content-Type": "application/json"}
    url = lineage.url + "api/v1/lineage"
    # a RunEvent as openlineage-dbt sends it, but with no runId
    bad = {
        "eventType": "COMPLETE",
        "eventTime": "2026-12-06T08:12:27.235939+00:00",
        "run": {"facets": {}},
        "job": {"namespace": "dbt", "name": "dbt-run-shop"},
        "producer": "https://github.com/OpenLineage/OpenLineage/tree/1.54.0/integration/dbt",
    }
    response = httpx.post(url, content=json.dumps(bad).encode(), headers=headers)
    assert response.status_code == 400
    reason = response.json()["error"]
    assert "runId" in reason
    garbled = httpx.post(url, content=b'{"eventType": "START", "run": ', headers=headers)
    assert garbled.status_code == 400
    letters = [
        e
        for e in env.read("grading.dlq")
        if e.platform_id == PLATFORM and e.data["source"] == "webhook:openlineage"
    ]
    reasons = {e.data["reason"] for e in letters}
    assert reason in reasons and garbled.json()["error"] in reasons
    # the receiver is still there: the next good event lands
    good = {**bad, "run": {"runId": str(uuid.uuid4()), "facets": {}}}
    assert httpx.post(url, content=json.dumps(good).encode(), headers=headers).status_code == 200
    ids = {e.data["run"]["runId"] for e in env.read("platform.openlineage", PLATFORM)}
    assert good["run"]["runId"] in ids
