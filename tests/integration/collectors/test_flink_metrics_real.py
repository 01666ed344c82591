"""The metric pillar from a real Flink: Flink 1.20's PrometheusReporter in the real session
(services/platform/flink.py), scraped by a real Prometheus (Debian's package), read by the
observability collector and graded.

Loki and Tempo do not run here: the log and trace pillars come from their recorded answers
(tests/fixtures/observability, served over real HTTP), with one stated mechanical change:
their timestamps are moved to now, as a live Loki/Tempo would answer for lines just written.
"""

from __future__ import annotations

import copy
import json
import re
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from services.collectors.observability import PillarCollector, ServiceQueries, Settings
from services.collectors.polling import Poller
from services.core.events import Event
from services.core.model import CriterionResult
from services.core.simple_judge import KeywordJudge
from services.offline.replay import replay_events
from services.offline.scenarios import ASSETS, ExamBuilder
from services.rubrics import resolver
from tests.integration.collectors.conftest import Env
from tests.integration.collectors.recorded import serve
from tests.platform_fixtures.flink import FlinkRig, flink_rig

__all__ = ["flink_rig"]  # the rig's fixture, registered by importing it here
pytestmark = [pytest.mark.integration, pytest.mark.slow]

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "observability"
TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
MINUTE = 60_000
CRITERIA = ("p1.flink_observability", "p1.pillars_correlated")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def label(job_name: str) -> str:
    """The job name as Flink's PrometheusReporter writes it in the ``job_name`` label: every
    character other than a letter, digit, ``:`` or ``_`` becomes ``_`` (seen on the real
    reporter: ``orders-enrich-eo-1a2b`` is scraped as ``orders_enrich_eo_1a2b``)."""
    return re.sub(r"[^a-zA-Z0-9:_]", "_", job_name)


def uptime(job_name: str) -> str:
    """A metric Flink's JobManager reports for every running job, labelled with its name."""
    return f'flink_jobmanager_job_uptime{{job_name="{label(job_name)}"}}'


def records_in(job_name: str) -> str:
    """Records the job's operators have read (TaskManager metric), once there are any."""
    return (
        "sum by (job_name) (flink_taskmanager_job_task_operator_numRecordsIn"
        f'{{job_name="{label(job_name)}"}}) > 0'
    )


def wait_for(what: str, check: Callable[[], Any], timeout_s: float = 120.0) -> Any:
    """Poll ``check`` until it returns something truthy (a guard, not a timing assertion)."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(1.0)


def series(prometheus: str, query: str) -> list[dict[str, Any]]:
    resp = httpx.get(f"{prometheus}/api/v1/query", params={"query": query})
    resp.raise_for_status()
    body = resp.json()
    assert body["status"] == "success", body
    result: list[dict[str, Any]] = body["data"]["result"]
    return result


@pytest.fixture(scope="module")
def prometheus(flink_rig: FlinkRig, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real Prometheus scraping the Flink session's PrometheusReporter every second."""
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.skip("needs Prometheus: apt-get install prometheus")
    work = tmp_path_factory.mktemp("prometheus-flink")
    (work / "prometheus.yml").write_text(
        "global: {scrape_interval: 1s, scrape_timeout: 1s}\n"
        "scrape_configs:\n"
        "  - job_name: flink\n"
        f"    static_configs: [{{targets: ['127.0.0.1:{flink_rig.session.metrics_port}']}}]\n"
    )
    port = _free_port()
    log = (work / "prometheus.log").open("w")
    proc = subprocess.Popen(
        [
            binary,
            f"--config.file={work / 'prometheus.yml'}",
            f"--storage.tsdb.path={work / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:

        def scraped() -> bool:
            assert proc.poll() is None, (work / "prometheus.log").read_text()[-2000:]
            try:
                return bool(series(url, "up{job='flink'} == 1"))
            except (httpx.HTTPError, ValueError):  # not listening yet, or not ready (text)
                return False

        wait_for("Prometheus to scrape the Flink session", scraped)
        yield url
    finally:
        proc.terminate()
        proc.wait(30)
        log.close()


def _shift(value: Any, delta_ns: int) -> Any:
    """The recorded answer with every nanosecond timestamp moved by ``delta_ns``."""
    if isinstance(value, dict):
        return {
            k: str(int(v) + delta_ns) if k.endswith("UnixNano") else _shift(v, delta_ns)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_shift(v, delta_ns) for v in value]
    return value


def recorded_now() -> Callable[..., tuple[int, Any]]:
    """Loki's and Tempo's recorded answers, their latest line 5 s ago."""
    loki = json.loads((FIXTURES / "loki_query_range.json").read_text())
    latest = max(int(v[0]) for s in loki["data"]["result"] for v in s["values"])
    delta = time.time_ns() - 5_000_000_000 - latest
    loki = copy.deepcopy(loki)
    for stream in loki["data"]["result"]:
        stream["values"] = [[str(int(ts) + delta), line] for ts, line in stream["values"]]
    search = _shift(json.loads((FIXTURES / "tempo_search.json").read_text()), delta)
    trace = _shift(json.loads((FIXTURES / "tempo_trace.json").read_text()), delta)

    def answer(method: str, path: str, query: Any, headers: Any, body: Any) -> tuple[int, Any]:
        if path == "/loki/api/v1/query_range":
            return 200, loki
        if path == "/api/search":
            return 200, search
        if path == f"/api/traces/{TRACE}":
            return 200, trace
        return 404, {"error": "trace not found"}

    return answer


def observe(
    job_name: str,
    prometheus: str,
    make_poller: Callable[..., Poller],
    env: Env,
    platform_id: str,
) -> list[Event]:
    """One poll of the observability collector for the Flink job: metrics from the real
    Prometheus, logs and traces from the recorded answers; what it published."""
    with serve(recorded_now()) as (url, _seen):
        settings = Settings(
            prometheus_url=prometheus,
            loki_url=url,
            tempo_url=url,
            services=(
                ServiceQueries(
                    service=job_name,
                    metrics=(uptime(job_name), records_in(job_name)),
                    logs=(f'{{job="{job_name}"}}',),
                    traces=(f'{{resource.service.name="{job_name}"}}',),
                ),
            ),
        )
        poller = make_poller(PillarCollector(settings, platform_id))
        poller.step()
    return env.read("platform.observability", platform_id)


def grade(platform_id: str, signals: list[Event], job_name: str) -> dict[str, CriterionResult]:
    """Part 1 of an exam whose pipeline.declared names this Flink job, ended after the
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
    b.control("pipeline.declared", 2, assets={**ASSETS, "flink_job": job_name})
    b.events.extend(signals)
    b.finish()
    (exam,) = replay_events(b.events, resolver(), KeywordJudge()).results
    return {c: exam.criterion(c) for c in CRITERIA}


def test_real_flink_metrics_give_the_metric_pillar_and_grade_flink_observability(
    flink_rig: FlinkRig,
    prometheus: str,
    env: Env,
    make_poller: Callable[..., Poller],
    platform_id: str,
) -> None:
    job = flink_rig.jobs["exactly_once"]
    job_id = flink_rig.ids["exactly_once"]
    # what Flink's reporter says about the job, as Prometheus scraped it
    [up] = wait_for("the job's uptime", lambda: series(prometheus, uptime(job.name)))
    # the declared name does not match: the reporter rewrote it
    assert not series(prometheus, f'flink_jobmanager_job_uptime{{job_name="{job.name}"}}')
    assert up["metric"]["job_id"] == job_id and up["metric"]["job"] == "flink"
    wait_for("records read by the job", lambda: series(prometheus, records_in(job.name)))

    events = observe(job.name, prometheus, make_poller, env, platform_id)
    by = {(e.data["pillar"], e.data["trace_id"], e.data["selector"]): e.data for e in events}
    metric = by[("metric", None, uptime(job.name))]
    assert metric == {
        "pillar": "metric",
        "trace_id": None,
        "service": job.name,
        "selector": uptime(job.name),
        "count": 1,  # one series: the job's uptime on the session's one JobManager
    }
    assert by[("metric", None, records_in(job.name))]["count"] == 1
    # Flink's reporter writes no exemplars, so no metric sighting carries a trace id
    assert not [k for k in by if k[0] == "metric" and k[1] is not None]
    assert {e.data["service"] for e in events} == {job.name}
    assert {p for (p, _t, _s) in by} == {"metric", "log", "trace"}  # log/trace: recorded

    results = grade(platform_id, events, job.name)
    obs = results["p1.flink_observability"]
    assert obs.state == "met", obs.reason
    # the trace id is in the (recorded) logs and traces but never on a Flink metric
    corr = results["p1.pillars_correlated"]
    assert corr.state == "expired"
    assert "no trace id has been seen in all of trace, log, metric" in corr.reason, corr.reason


def test_without_the_flink_job_running_the_metric_pillar_is_missing(
    flink_rig: FlinkRig,
    prometheus: str,
    env: Env,
    make_poller: Callable[..., Poller],
    platform_id: str,
) -> None:
    job = flink_rig.jobs["exactly_once"]
    other = flink_rig.jobs["at_least_once"]
    job_id = flink_rig.session.running(job.name)
    assert job_id is not None
    # the same selector finds the job while it runs ...
    wait_for("the job's uptime", lambda: series(prometheus, uptime(job.name)))
    flink_rig.session.cancel(job_id)
    # Flink drops a finished job's metrics; the next scrape makes the series stale
    wait_for("the cancelled job's metrics to go", lambda: not series(prometheus, uptime(job.name)))
    # ... while Prometheus still scrapes the session: the other job's uptime is there
    assert series(prometheus, uptime(other.name))

    events = observe(job.name, prometheus, make_poller, env, platform_id)
    assert {e.data["pillar"] for e in events} == {"log", "trace"}  # recorded ones only
    results = grade(platform_id, events, job.name)
    obs = results["p1.flink_observability"]
    assert obs.state == "expired"
    assert "metrics of the Flink job" in obs.reason, obs.reason
    assert "logs of the Flink job" not in obs.reason and "traces" not in obs.reason
