"""pillar.seen from a real Prometheus (Debian's package) scraping a prometheus_client
endpoint that carries an exemplar with a trace id, plus recorded Loki and Tempo answers
served over real HTTP: one trace id is then seen in all three pillars."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client import CollectorRegistry, Counter, start_http_server

from services.collectors.observability import PillarCollector, ServiceQueries, Settings
from services.collectors.polling import Poller
from tests.integration.collectors.recorded import serve

pytestmark = [pytest.mark.integration, pytest.mark.slow]

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "observability"
TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
SERVICE = "orders-enricher"
METRIC = 'orders_enriched_total{job="orders-enricher"}'


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def prometheus_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.skip("needs Prometheus: apt-get install prometheus")
    registry = CollectorRegistry()
    counter = Counter("orders_enriched", "Orders enriched by the Flink job", registry=registry)
    counter.inc(5, exemplar={"trace_id": TRACE})
    app_port = _free_port()
    server, thread = start_http_server(app_port, addr="127.0.0.1", registry=registry)
    work = tmp_path_factory.mktemp("prometheus")
    (work / "prometheus.yml").write_text(
        "global: {scrape_interval: 1s}\n"
        "scrape_configs:\n"
        f"  - job_name: {SERVICE}\n"
        f"    static_configs: [{{targets: ['127.0.0.1:{app_port}']}}]\n"
    )
    port = _free_port()
    log = (work / "prometheus.log").open("w")
    proc = subprocess.Popen(
        [
            binary,
            f"--config.file={work / 'prometheus.yml'}",
            f"--storage.tsdb.path={work / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--enable-feature=exemplar-storage",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, (work / "prometheus.log").read_text()[-2000:]
            assert time.monotonic() < deadline, "Prometheus scraped nothing in 60 s"
            try:
                now = time.time()
                ex = httpx.get(
                    f"{url}/api/v1/query_exemplars",
                    params={"query": METRIC, "start": now - 300, "end": now},
                ).json()
                if ex.get("data"):
                    break
            except (httpx.HTTPError, ValueError):  # not listening yet, or not ready (text)
                pass
            time.sleep(0.5)
        yield url
    finally:
        proc.terminate()
        proc.wait(30)
        log.close()
        server.shutdown()
        thread.join(10)


def _recorded(method: str, path: str, query: Any, headers: Any, body: Any) -> tuple[int, Any]:
    if path == "/loki/api/v1/query_range":
        return 200, json.loads((FIXTURES / "loki_query_range.json").read_text())
    if path == "/api/search":
        return 200, json.loads((FIXTURES / "tempo_search.json").read_text())
    if path == f"/api/traces/{TRACE}":
        return 200, json.loads((FIXTURES / "tempo_trace.json").read_text())
    return 404, {"error": "trace not found"}


def test_three_pillars_with_one_trace_id(
    env, make_poller: Callable[..., Poller], prometheus_url: str, platform_id: str
) -> None:
    with serve(_recorded) as (url, seen):
        settings = Settings(
            prometheus_url=prometheus_url,
            loki_url=url,
            tempo_url=url,
            services=(
                ServiceQueries(
                    service=SERVICE,
                    metrics=(METRIC,),
                    logs=('{job="orders-enricher"}',),
                    traces=('{resource.service.name="orders-enricher"}',),
                ),
            ),
        )
        poller = make_poller(PillarCollector(settings, platform_id))
        first = poller.step()
        assert poller.step() == 0  # the same sightings are not published again
    events = env.read("platform.observability", platform_id)
    assert len(events) == first
    by = {(e.data["pillar"], e.data["trace_id"], e.data["selector"]): e.data for e in events}
    assert by[("metric", None, METRIC)]["count"] == 1  # one series, from the real Prometheus
    assert ("metric", TRACE, METRIC) in by  # the exemplar's trace id
    assert by[("log", None, '{job="orders-enricher"}')]["count"] == 3
    assert ("log", TRACE, '{job="orders-enricher"}') in by
    assert by[("trace", TRACE, f"trace:{TRACE}")]["count"] == 2  # spans of the Tempo trace
    assert by[("trace", TRACE, '{resource.service.name="orders-enricher"}')]["count"] == 2
    assert {e.data["service"] for e in events} == {SERVICE}
    pillars_of_trace = {p for (p, t, _s) in by if t == TRACE}
    assert pillars_of_trace == {"metric", "log", "trace"}
    # the second trace id of the logs is unknown to Tempo: asked again, still pending
    assert any(p.startswith("/api/traces/5c0a1f") for _m, p in seen)
    assert "5c0a1f3577b34da6a3ce929d0e0e4799" in poller.store.load().position["pending"]


def test_prometheus_error_is_reported_with_its_reason(
    env, make_poller: Callable[..., Poller], prometheus_url: str, platform_id: str
) -> None:
    settings = Settings(
        prometheus_url=prometheus_url,
        services=(ServiceQueries(service=SERVICE, metrics=("sum(",)),),
    )
    poller = make_poller(PillarCollector(settings, platform_id))
    assert poller.attempt() > 0  # backs off
    assert not poller.healthy and "bad_data" in (poller.last_error or "")
    [beat] = env.read("platform.collectors", platform_id)
    assert beat.data["healthy"] is False and beat.data["collector"] == "observability"
