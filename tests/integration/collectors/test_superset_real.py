"""The superset collector against a real Superset 6.1 (a candidate's, with alerts & reports
on and a Celery beat evaluating alerts), its signals read back from the broker and graded
by the core.

What a candidate builds is made through Superset's REST API (tests/platform_fixtures/
superset.py): a Trino database, datasets, charts, an active alert that the beat
evaluates, an inactive one, and a chart without an alert. Failure paths: refused
credentials and a stopped Superset are the proctor's blindness (``unknown``, never a
failed grade); an answer that does not parse is the candidate platform's (``payload``:
evidence), and one unreadable alert does not hide the rest. The module starts Superset
once (about 60-70 s warm on two busy cores, about 150 s on the very first run that
migrates the metadata template) and waits for beat ticks (up to 60 s each).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING

import httpx
import pytest

from services.collectors import superset as superset_collector
from services.collectors.polling import Poller
from services.collectors.superset import Settings, SupersetCollector
from services.core.events import Event, rfc3339_to_ms
from services.core.simple_judge import KeywordJudge
from services.exam_builder import ASSETS, MINUTE, ExamBuilder
from services.offline.replay import replay_events
from services.platform.superset_api import deactivate_alert, reactivate_alert
from services.rubrics import resolver
from tests.integration.collectors.conftest import Env

if TYPE_CHECKING:
    from tests.platform_fixtures.superset import SupersetPlatform

pytest_plugins = ["tests.platform_fixtures.superset"]
pytestmark = [pytest.mark.integration, pytest.mark.slow]

PASSWORD_ENV = "PROCTOR_TEST_CANDIDATE_SUPERSET_PASSWORD"
CRITERION = "p1.superset_alert"


# -- helpers -------------------------------------------------------------------------------
def collector(platform: SupersetPlatform, platform_id: str, url: str = "") -> SupersetCollector:
    settings = Settings(
        url=url or platform.url, username=platform.superset.user, password_env=PASSWORD_ENV
    )
    return SupersetCollector(settings, platform_id)


@pytest.fixture
def password(platform_env: None, superset_platform: SupersetPlatform) -> str:
    return superset_platform.superset.password


@pytest.fixture
def platform_env(monkeypatch: pytest.MonkeyPatch, superset_platform: SupersetPlatform) -> None:
    monkeypatch.setenv(PASSWORD_ENV, superset_platform.superset.password)


def grade(
    events: list[Event],
    platform_id: str,
    model: str,
    *,
    close_after: Event | None = None,
    silent: tuple[str, ...] = (),
) -> tuple[str, str]:
    """p1.superset_alert over an exam on ``platform_id`` declaring ``model`` as its dbt
    model. Part 1 spans the signals, or closes 30 s after ``close_after`` (a heartbeat)."""
    if close_after is not None:
        start = close_after.ts_ms - 181 * MINUTE + 30_000
    else:
        start = min(e.ts_ms for e in events) - 3 * MINUTE
    b = ExamBuilder(platform_id, start_ms=start)
    b.control(
        "exam.started", 0, candidate_id=b.candidate_id, rubric_id="y3-final", rubric_version="1"
    )
    b.heartbeats(0.5)
    b.control("part.started", 1, part=1)
    b.control("pipeline.declared", 2, assets={**ASSETS, "dbt_model": model})
    b.events.extend(events)
    b.finish(silent=silent)
    (exam,) = replay_events(b.events, resolver(), KeywordJudge()).results
    c = exam.criterion(CRITERION)
    return c.state, c.reason


def by_type(events: list[Event], type_: str) -> list[Event]:
    return [e for e in events if e.type == type_]


@contextmanager
def proxy(
    upstream: str, rewrite: Callable[[str, bytes], tuple[int, bytes] | None]
) -> Iterator[str]:
    """A loopback HTTP proxy to ``upstream``; ``rewrite(path, body)`` may replace an answer
    with (status, raw bytes), which need not be JSON."""

    class _H(BaseHTTPRequestHandler):
        def _forward(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else None
            headers = {
                k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")
            }
            r = httpx.request(
                self.command, upstream + self.path, headers=headers, content=raw, timeout=60
            )
            status, body = r.status_code, r.content
            replaced = rewrite(self.path.split("?", 1)[0], body)
            if replaced is not None:
                status, body = replaced
            self.send_response(status)
            self.send_header("Content-Type", r.headers.get("content-type", "application/json"))
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = _forward

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), _H)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


# -- the main path -----------------------------------------------------------------------
def test_real_superset_charts_and_alert_grade_the_criterion(
    env: Env,
    make_poller: Callable[..., Poller],
    platform_id: str,
    superset_platform: SupersetPlatform,
    password: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    p = superset_platform
    # two rows a page: the three charts come over two pages of the real list API
    monkeypatch.setattr(superset_collector, "PAGE_SIZE", 2)
    with p.api() as api:
        hourly = api.alert(p.alerts["orders_hourly"].id)
        daily = api.alert(p.alerts["orders_daily"].id)
    assert daily["active"] is False and daily["last_eval_dttm"] is None
    assert daily["last_state"] == "Not triggered"  # Superset's initial state: never ran

    poller = make_poller(collector(p, platform_id))
    published = poller.step()
    events = env.read("platform.superset", platform_id)
    assert published == len(events)

    charts = {e.data["chart_id"]: e for e in by_type(events, "superset.chart")}
    assert set(charts) == set(p.charts.values())
    for table, name in p.chart_names:
        chart = charts[p.charts[table]]
        assert chart.data == {
            "chart_id": p.charts[table],
            "chart_name": name,
            "dataset": p.dataset(table),
            "database": p.database_name,
            "viz_type": "table",
        }
        assert chart.platform_id == platform_id

    # only the alert the beat evaluated; the inactive one never ran, so it says nothing
    alerts = by_type(events, "superset.alert")
    assert {a.data["alert_id"] for a in alerts} == {p.alerts["orders_hourly"].id}
    alert = alerts[-1]
    assert alert.data["chart_id"] == p.charts["orders_hourly"]
    assert alert.data["condition"] == ">"
    assert alert.data["threshold"] == p.threshold
    assert alert.data["last_state"] == "Noop"  # "Not triggered" after a real evaluation
    evaluated = rfc3339_to_ms(alert.data["last_eval_ts"])
    assert evaluated >= rfc3339_to_ms(hourly["last_eval_dttm"][:23] + "Z")
    assert alert.ts_ms == evaluated

    # a second poll publishes no chart again (an alert only when the beat ran it again)
    poller.step()
    again = env.read("platform.superset", platform_id)
    assert len(by_type(again, "superset.chart")) == len(charts)

    state, reason = grade(again, platform_id, "orders_hourly")
    assert state == "met", reason
    assert f"Chart {p.charts['orders_hourly']} shows orders_hourly" in reason

    for model in ("orders_daily", "orders_weekly"):  # inactive alert; no alert at all
        state, reason = grade(again, platform_id, model)
        assert state == "expired", (model, reason)
        assert "closed" in reason, reason
        expected = f"chart {p.charts[model]} shows {model}, but no alert on it has evaluated"
        assert expected in reason.lower(), reason


def test_injector_deactivates_an_alert_and_the_undo_reactivates_it(
    env: Env,
    make_poller: Callable[..., Poller],
    platform_id: str,
    superset_platform: SupersetPlatform,
    password: str,
) -> None:
    """The rehearsal's fault: deactivate an alert (the beat skips it); its undo: reactivate
    (the next tick evaluates it, and the criterion is met for that model)."""
    p = superset_platform
    hourly, daily = p.alerts["orders_hourly"].id, p.alerts["orders_daily"].id
    with p.api() as api:
        try:
            deactivate_alert(api, hourly)
            assert api.alert(hourly)["active"] is False
            stopped_at = api.alert(hourly)["last_eval_dttm"]
            reactivate_alert(api, daily)
            assert api.alert(daily)["active"] is True
            ran = p.wait_evaluated("orders_daily")  # a tick after both changes
            assert api.alert(hourly)["last_eval_dttm"] == stopped_at  # that tick skipped it
        finally:
            reactivate_alert(api, hourly)
            deactivate_alert(api, daily)

    poller = make_poller(collector(p, platform_id))
    poller.step()
    events = env.read("platform.superset", platform_id)
    [daily_alert] = [e for e in by_type(events, "superset.alert") if e.data["alert_id"] == daily]
    assert daily_alert.data["chart_id"] == p.charts["orders_daily"]
    ran_ms = rfc3339_to_ms(ran["last_eval_dttm"][:23] + "Z")
    assert rfc3339_to_ms(daily_alert.data["last_eval_ts"]) >= ran_ms
    state, reason = grade(events, platform_id, "orders_daily")
    assert state == "met", reason


# -- failure paths -------------------------------------------------------------------------
def test_refused_credentials_are_a_blind_heartbeat_not_a_failed_grade(
    env: Env,
    make_poller: Callable[..., Poller],
    platform_id: str,
    superset_platform: SupersetPlatform,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(PASSWORD_ENV, "not-" + superset_platform.superset.password)
    poller = make_poller(collector(superset_platform, platform_id))
    poller.attempt()
    assert poller.healthy is False
    events = env.read("platform.superset", platform_id)
    assert by_type(events, "superset.chart") == by_type(events, "superset.alert") == []
    [beat] = env.read("platform.collectors", platform_id)
    assert beat.data["collector"] == "superset" and beat.data["healthy"] is False
    assert beat.data["error_kind"] == "proctor_side"
    assert "refused the login of 'admin' (401)" in beat.data["error"]
    assert PASSWORD_ENV in beat.data["error"]

    state, reason = grade(
        [beat], platform_id, "orders_hourly", close_after=beat, silent=("superset",)
    )
    assert state == "unknown", reason
    assert "superset collector" in reason
    # the same exam with the collector seeing: a failed grade, so the blindness decided it
    seeing = Event(
        type="collector.heartbeat",
        platform_id=platform_id,
        event_id=beat.event_id + "-ok",
        ts_ms=beat.ts_ms,
        data={**beat.data, "healthy": True, "error": None, "error_kind": None},
    )
    state, _ = grade(
        [seeing], platform_id, "orders_hourly", close_after=seeing, silent=("superset",)
    )
    assert state == "expired"


def test_unreadable_answers_are_the_platforms_and_hide_nothing_else(
    env: Env,
    make_poller: Callable[..., Poller],
    platform_id: str,
    superset_platform: SupersetPlatform,
    password: str,
) -> None:
    p = superset_platform
    hourly = p.alerts["orders_hourly"].id
    mode = {"now": "alert"}

    def rewrite(path: str, body: bytes) -> tuple[int, bytes] | None:
        if mode["now"] == "alert" and path == f"/api/v1/report/{hourly}":
            # the alert's validator config is not JSON; everything else is Superset's answer
            return 200, body.replace(b'\\"op\\"', b"op")
        if mode["now"] == "html" and path == "/api/v1/chart/":
            return 200, b"<html><body>502 Bad Gateway</body></html>"
        if mode["now"] == "alerts-off" and path == "/api/v1/report/":
            return 404, b'{"message": "Not found"}'  # Superset without ALERT_REPORTS
        return None

    with proxy(p.url, rewrite) as url:
        poller = make_poller(collector(p, platform_id, url))
        poller.attempt()
        assert poller.healthy is True
        events = env.read("platform.superset", platform_id)
        assert len(by_type(events, "superset.chart")) == len(p.charts)  # not hidden
        published = {a.data["alert_id"] for a in by_type(events, "superset.alert")}
        assert hourly not in published  # skipped, read again next poll

        mode["now"] = "none"
        poller.attempt()
        events = env.read("platform.superset", platform_id)
        assert hourly in {a.data["alert_id"] for a in by_type(events, "superset.alert")}

        mode["now"] = "alerts-off"
        fresh = make_poller(collector(p, platform_id + "-off", url))
        fresh.attempt()
        assert fresh.healthy is True
        off = env.read("platform.superset", platform_id + "-off")
        assert len(by_type(off, "superset.chart")) == len(p.charts)
        assert by_type(off, "superset.alert") == []

        mode["now"] = "html"
        poller.attempt()
        assert poller.healthy is False
    [beat] = env.read("platform.collectors", platform_id)
    assert beat.data["healthy"] is False and beat.data["error_kind"] == "payload"
    assert "not JSON" in beat.data["error"]
    # evidence about the candidate's platform: the criterion is decided, not unknown
    state, reason = grade(
        [beat], platform_id, "orders_hourly", close_after=beat, silent=("superset",)
    )
    assert state == "expired", reason


def test_superset_down_is_a_blind_heartbeat(
    env: Env,
    make_poller: Callable[..., Poller],
    platform_id: str,
    superset_platform: SupersetPlatform,
    password: str,
) -> None:
    """Runs last in this module: it stops the candidate's Superset."""
    poller = make_poller(collector(superset_platform, platform_id))
    poller.attempt()
    assert poller.healthy is True
    superset_platform.superset.stop()
    assert not superset_platform.superset.healthy()
    poller.attempt()
    assert poller.healthy is False
    [beat] = env.read("platform.collectors", platform_id)
    assert beat.data["error_kind"] == "proctor_side"
    assert superset_platform.url in beat.data["error"]
    state, reason = grade(
        [beat], platform_id, "orders_hourly", close_after=beat, silent=("superset",)
    )
    assert state == "unknown", reason
