"""The Flink and Iceberg collectors against a real Flink job of the exam's kind, graded.

A Flink 1.20 session (MiniCluster, REST on loopback; services/platform/flink.py) runs the
exam's pipeline three times over: a Debezium CDC topic on the stack's broker, a JDBC lookup
join against a PostgreSQL dimension table, an Iceberg sink in the stack's JDBC catalog
(Iceberg's Flink runtime, committing on checkpoints) -- with exactly-once checkpoints, with
at-least-once checkpoints and with checkpointing off. The collectors read the real REST
answers and the real Flink commits; their signals, with the proctor's control events, go
through the grading core: p1.exactly_once is met for the exactly-once job only and fails,
with the mode as the reason, for the other two; p1.flink_lookup_join is met.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from services.collectors.flink import CHECKPOINTING_OFF, FlinkCollector
from services.collectors.flink import Settings as FlinkSettings
from services.collectors.iceberg import IcebergCollector
from services.collectors.iceberg import Settings as IcebergSettings
from services.collectors.polling import Poller
from services.core.events import Event
from services.core.model import CriterionResult
from services.core.simple_judge import KeywordJudge
from services.errors import StackError
from services.offline.replay import replay_events
from services.offline.scenarios import ASSETS, ExamBuilder
from services.platform.flink import cancel_job, restart_without_checkpointing
from services.rubrics import resolver
from services.stack.catalog import CATALOG_NAME, catalog_properties, trino_connect
from tests.integration.collectors.conftest import Env
from tests.platform_fixtures.flink import FlinkRig, expected_rows, flink_rig

__all__ = ["flink_rig"]  # the rig's fixture, registered by importing it here
pytestmark = [pytest.mark.integration, pytest.mark.slow]

MINUTE = 60_000


def wait_for(what: str, check: Callable[[], Any], timeout_s: float = 120.0) -> Any:
    """Poll ``check`` until it returns something truthy (a guard, not a timing assertion)."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(1.0)


def completed(rig: FlinkRig, job_id: str) -> int:
    return int(rig.session.get(f"/jobs/{job_id}/checkpoints")["counts"]["completed"])


def sink_rows(rig: FlinkRig, table: str) -> dict[int, tuple[int, float, str, str]]:
    """The sink table as Trino reads it (the stack's Trino, same JDBC catalog)."""
    namespace, name = table.split(".")
    conn = trino_connect(rig.config)
    try:
        cur = conn.cursor()
        cur.execute(
            f'SELECT order_id, customer_id, amount, customer_name, region FROM "{namespace}"."{name}"'
        )
        return {int(r[0]): (int(r[1]), float(r[2]), str(r[3]), str(r[4])) for r in cur.fetchall()}
    finally:
        conn.close()


def collect(
    rig: FlinkRig,
    make_poller: Callable[..., Poller],
    env: Env,
    platform_id: str,
    job_name: str,
    table: str,
) -> tuple[list[Event], list[Event]]:
    """One poll of each real collector; what they published for ``platform_id``."""
    flink = make_poller(
        FlinkCollector(FlinkSettings(url=rig.session.url, job_name_pattern=job_name), platform_id)
    )
    iceberg = make_poller(
        IcebergCollector(
            IcebergSettings(
                catalog_name=CATALOG_NAME,
                properties={"type": "sql", **catalog_properties(rig.config)},
                tables=(table,),
            ),
            platform_id,
        )
    )
    flink.step()
    iceberg.step()
    record = os.environ.get("PROCTOR_RECORD_FLINK")
    if record:  # keep the REST answers the collector just read, for the corpus
        job_id = rig.session.running(job_name)
        assert job_id is not None
        mode = next(m for m, j in rig.jobs.items() if j.name == job_name)
        rig.session.record_answers(job_id, Path(record), mode.replace("_", "-"))
    return env.read("platform.flink", platform_id), env.read("platform.iceberg", platform_id)


CRITERIA = ("p1.exactly_once", "p1.flink_lookup_join", "p1.iceberg_maintenance")


def grade(
    platform_id: str, signals: list[Event], job_name: str, table: str
) -> dict[str, CriterionResult]:
    """Part 1 of an exam whose pipeline.declared names this job and sink, ended after the
    signals (the proctor's control events as the offline builder writes them)."""
    first = min(e.ts_ms for e in signals)
    b = ExamBuilder(platform_id, start_ms=first - 3 * MINUTE)
    b.control(
        "exam.started",
        0,
        candidate_id=b.candidate_id,
        rubric_id="y3-final",
        rubric_version=b.rubric_version,
    )
    b.heartbeats(0.5)
    b.control("part.started", 1, part=1)
    b.control("pipeline.declared", 2, assets={**ASSETS, "flink_job": job_name, "sink_table": table})
    b.events.extend(signals)
    b.finish()
    (exam,) = replay_events(b.events, resolver(), KeywordJudge()).results
    return {c: exam.criterion(c) for c in CRITERIA}


def the_job(events: list[Event], job_id: str) -> Event:
    jobs = [e for e in events if e.type == "flink.job" and e.data["job_id"] == job_id]
    assert jobs, [e.data for e in events if e.type == "flink.job"]
    return jobs[-1]


def test_exactly_once_job_with_lookup_join_and_iceberg_commits_is_met(
    flink_rig: FlinkRig, env: Env, make_poller: Callable[..., Poller], platform_id: str
) -> None:
    rig = flink_rig
    job, job_id, table = rig.jobs["exactly_once"], rig.ids["exactly_once"], rig.sink("exactly_once")
    wait_for("3 completed checkpoints", lambda: completed(rig, job_id) >= 3)
    want = expected_rows()
    wait_for("the CDC stream in the sink", lambda: sink_rows(rig, table) == want)

    flink, iceberg = collect(rig, make_poller, env, platform_id, job.name, table)
    signal = the_job(flink, job_id)
    assert signal.data["job_name"] == job.name and signal.data["state"] == "RUNNING"
    assert signal.data["checkpointing_mode"] == "exactly_once"
    assert signal.data["checkpoint_interval_ms"] == 1000
    lookups = [op for op in signal.data["operators"] if "LookupJoin(" in op]
    assert lookups, signal.data["operators"]
    assert "table=[default_catalog.default_database.customers]" in lookups[0]
    assert "lookup=[customer_id=customer_id]" in lookups[0]
    assert any("IcebergFilesCommitter" in op for op in signal.data["operators"])
    cps = [e for e in flink if e.type == "flink.checkpoint" and e.data["status"] == "COMPLETED"]
    assert len(cps) >= 3 and all(c.data["job_id"] == job_id for c in cps)
    assert all(not c.data["is_savepoint"] and c.data["state_size"] > 0 for c in cps)

    commits = [e for e in iceberg if e.type == "iceberg.commit"]
    assert commits and all(c.data["table"] == table for c in commits)
    for c in commits:
        summary = c.data["summary"]
        assert summary["flink.job-id"] == job_id
        assert int(summary["flink.max-committed-checkpoint-id"]) >= 1
        assert summary["engine-name"] == "flink"
    # the upserts of the CDC stream: equality deletes in the commit that wrote the data
    first = min(commits, key=lambda e: e.ts_ms)
    assert first.data["operation"] in ("overwrite", "append")
    assert int(first.data["summary"]["added-records"]) >= 1
    assert first.data["table_properties"]["write.upsert.enabled"] == "true"

    results = grade(platform_id, [*flink, *iceberg], job.name, table)
    eo = results["p1.exactly_once"]
    assert eo.state == "met", eo.reason
    assert f"Job {job.name} checkpoints exactly_once" in eo.reason
    lj = results["p1.flink_lookup_join"]
    assert lj.state == "met", lj.reason


def test_at_least_once_job_fails_exactly_once_though_it_commits(
    flink_rig: FlinkRig, env: Env, make_poller: Callable[..., Poller], platform_id: str
) -> None:
    rig = flink_rig
    job = rig.jobs["at_least_once"]
    job_id, table = rig.ids["at_least_once"], rig.sink("at_least_once")
    wait_for("3 completed checkpoints", lambda: completed(rig, job_id) >= 3)
    wait_for("the CDC stream in the sink", lambda: sink_rows(rig, table) == expected_rows())

    flink, iceberg = collect(rig, make_poller, env, platform_id, job.name, table)
    signal = the_job(flink, job_id)
    assert signal.data["checkpointing_mode"] == "at_least_once"
    assert signal.data["checkpoint_interval_ms"] == 1000
    cps = [e for e in flink if e.type == "flink.checkpoint" and e.data["status"] == "COMPLETED"]
    assert len(cps) >= 3
    # the sink commits on its checkpoints just the same: only the mode tells them apart
    commits = [e for e in iceberg if e.type == "iceberg.commit"]
    assert commits
    assert all("flink.max-committed-checkpoint-id" in c.data["summary"] for c in commits)

    results = grade(platform_id, [*flink, *iceberg], job.name, table)
    eo = results["p1.exactly_once"]
    assert eo.state == "failed", eo.reason
    assert f"job {job.name} checkpoints at least once, never exactly once" in eo.reason
    assert results["p1.flink_lookup_join"].state == "met"


def test_trino_optimize_of_the_flink_sink_is_a_replace_commit_and_flink_commits_on(
    flink_rig: FlinkRig, env: Env, make_poller: Callable[..., Poller], platform_id: str
) -> None:
    """Compaction by the candidate's Trino on the table Flink writes: a `replace` snapshot
    beside Flink's own, with the retention the job set, grading p1.iceberg_maintenance."""
    rig = flink_rig
    job = rig.jobs["at_least_once"]
    job_id, table = rig.ids["at_least_once"], rig.sink("at_least_once")
    wait_for("the CDC stream in the sink", lambda: sink_rows(rig, table) == expected_rows())
    namespace, name = table.split(".")
    conn = trino_connect(rig.config)
    try:
        cur = conn.cursor()
        cur.execute(f'ALTER TABLE "{namespace}"."{name}" EXECUTE optimize')
        cur.fetchall()
    finally:
        conn.close()
    assert sink_rows(rig, table) == expected_rows()  # equality deletes applied, not lost

    iceberg = make_poller(
        IcebergCollector(
            IcebergSettings(
                catalog_name=CATALOG_NAME,
                properties={"type": "sql", **catalog_properties(rig.config)},
                tables=(table,),
            ),
            platform_id,
        )
    )

    def flink_commit_after_the_compaction() -> list[Event] | None:
        iceberg.step()
        commits = env.read("platform.iceberg", platform_id)
        replaced = [c for c in commits if c.data["operation"] == "replace"]
        later = [
            c
            for c in commits
            if replaced
            and c.data["summary"].get("flink.job-id") == job_id
            and c.data["parent_snapshot_id"] == replaced[0].data["snapshot_id"]
        ]
        return commits if later else None

    # Flink commits on (an empty append every 10 checkpoints) on top of Trino's snapshot
    commits = wait_for("a Flink commit after the compaction", flink_commit_after_the_compaction)
    [replace] = [c for c in commits if c.data["operation"] == "replace"]
    assert "flink.job-id" not in replace.data["summary"]
    assert replace.data["table_properties"]["history.expire.max-snapshot-age-ms"] == "86400000"
    assert rig.session.state(job_id) == "RUNNING"

    results = grade(platform_id, commits, job.name, table)
    assert results["p1.iceberg_maintenance"].state == "met", results["p1.iceberg_maintenance"]


def test_job_without_checkpointing_never_commits_and_fails_exactly_once(
    flink_rig: FlinkRig, env: Env, make_poller: Callable[..., Poller], platform_id: str
) -> None:
    rig = flink_rig
    job, job_id, table = rig.jobs["off"], rig.ids["off"], rig.sink("off")
    # what a streaming job without checkpointing answers: 200, an interval of Long.MAX
    # and the default mode, which is no choice of the candidate's
    config = httpx.get(f"{rig.session.url}/jobs/{job_id}/checkpoints/config", timeout=10)
    assert config.status_code == 200
    assert config.json()["interval"] == CHECKPOINTING_OFF
    # the others have committed by now; this one has written nothing the catalog shows
    wait_for("the exactly-once job's commit", lambda: sink_rows(rig, rig.sink("exactly_once")))
    assert completed(rig, job_id) == 0
    assert sink_rows(rig, table) == {}

    flink, iceberg = collect(rig, make_poller, env, platform_id, job.name, table)
    signal = the_job(flink, job_id)
    assert signal.data["state"] == "RUNNING"
    assert signal.data["checkpointing_mode"] is None
    assert signal.data["checkpoint_interval_ms"] is None
    assert not [e for e in flink if e.type == "flink.checkpoint"]
    assert not [e for e in iceberg if e.type == "iceberg.commit"]

    results = grade(platform_id, flink, job.name, table)
    eo = results["p1.exactly_once"]
    assert eo.state == "failed", eo.reason
    assert f"job {job.name} has checkpointing off, never exactly once" in eo.reason
    assert f"no commit on {table}" not in eo.reason  # the reason is the mode, said once
    assert results["p1.flink_lookup_join"].state == "met"


def test_faults_cancel_and_restart_without_checkpointing_and_their_undo(
    flink_rig: FlinkRig, env: Env, make_poller: Callable[..., Poller], platform_id: str
) -> None:
    """The rehearsal's Flink faults, seen by the collector as a real cluster shows them."""
    rig = flink_rig
    job = rig.jobs["exactly_once"]
    old_id = rig.session.running(job.name)
    assert old_id is not None
    poller = make_poller(
        FlinkCollector(FlinkSettings(url=rig.session.url, job_name_pattern=job.name), platform_id)
    )

    undo = restart_without_checkpointing(rig.session, job)
    off_id = rig.session.running(job.name)
    assert off_id is not None and off_id != old_id
    rig.session.wait_state(off_id, ("RUNNING",))
    poller.step()
    seen = env.read("platform.flink", platform_id)
    assert the_job(seen, old_id).data["state"] == "CANCELED"
    assert the_job(seen, off_id).data["checkpointing_mode"] is None

    back_id = undo()
    rig.session.wait_state(back_id, ("RUNNING",))
    assert rig.session.state(off_id) == "CANCELED"
    wait_for("a checkpoint of the restored job", lambda: completed(rig, back_id) >= 1)
    poller.step()
    seen = env.read("platform.flink", platform_id)
    assert the_job(seen, back_id).data["checkpointing_mode"] == "exactly_once"
    assert the_job(seen, off_id).data["state"] == "CANCELED"

    resubmit = cancel_job(rig.session, job)
    assert rig.session.state(back_id) == "CANCELED"
    assert rig.session.running(job.name) is None
    again = resubmit()
    rig.session.wait_state(again, ("RUNNING",))
    assert rig.session.running(job.name) == again


def test_a_job_the_session_refuses_is_a_clear_error_and_the_session_keeps_running(
    flink_rig: FlinkRig,
) -> None:
    rig = flink_rig
    bad = dataclasses.replace(rig.jobs["exactly_once"], name="refused", table="no-such name")
    with pytest.raises(StackError, match="Flink refused job refused"):
        rig.session.submit(bad)
    with pytest.raises(StackError, match="no running Flink job 'refused'"):
        restart_without_checkpointing(rig.session, bad)
    assert rig.session.running(rig.jobs["at_least_once"].name) == rig.ids["at_least_once"]
