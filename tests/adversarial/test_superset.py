"""Attacks on the superset reading: an alert that never runs earns nothing.

Superset 6.1 gives a new alert ``last_state`` "Not triggered" before it has ever been
evaluated (seen on the real server, tests/integration/collectors/test_superset_real.py),
the same text as an evaluation whose condition was false. A candidate could create an
alert and switch it off (or never run a Celery worker, or leave ALERT_REPORTS off) and
still have p1.superset_alert met if that text were read as an evaluation. The answers
below have the shape the real 6.1 server gave; the grade must equal the grade of the
same platform without any alert.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from services.collectors.superset import Settings, SupersetCollector
from services.core.events import Event
from services.core.simple_judge import KeywordJudge
from services.exam_builder import ASSETS, MINUTE
from services.offline.replay import replay_events
from services.offline.scenarios import ExamBuilder
from services.rubrics import resolver
from tests.integration.collectors.recorded import serve

pytestmark = [pytest.mark.adversarial, pytest.mark.unit]

PLATFORM = "basecamp-mallory"
PASSWORD_ENV = "ADVERSARIAL_SUPERSET_PASSWORD"
CHARTS = {
    "count": 1,
    "ids": [1],
    "result": [
        {
            "id": 1,
            "slice_name": "Orders per hour",
            "viz_type": "table",
            "datasource_id": 1,
            "datasource_type": "table",
            "datasource_name_text": "analytics.orders_hourly",
            "changed_on_utc": "2026-11-27T10:15:00.000000+0000",
        }
    ],
}
DATASET = {
    "id": 1,
    "result": {
        "schema": "analytics",
        "table_name": "orders_hourly",
        "database": {"database_name": "trino-iceberg", "id": 1},
    },
}
#: a never-run alert as Superset 6.1 lists it (active or not: the same answer)
NEVER_RUN = {
    "active": False,
    "chart_id": 1,
    "changed_on": "2026-11-27T10:16:00.248527",
    "created_on": "2026-11-27T10:16:00.248519",
    "crontab": "* * * * *",
    "id": 1,
    "last_eval_dttm": None,
    "last_state": "Not triggered",
    "name": "orders surge",
    "timezone": "UTC",
    "type": "Alert",
}
DETAIL = {
    "id": 1,
    "result": {
        "active": False,
        "chart": {"id": 1, "slice_name": "Orders per hour", "viz_type": "table"},
        "id": 1,
        "last_eval_dttm": None,
        "last_state": "Not triggered",
        "type": "Alert",
        "validator_config_json": '{"op": ">", "threshold": 1000000.0}',
        "validator_type": "operator",
    },
}


def signals(alerts: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch) -> list[Event]:
    monkeypatch.setenv(PASSWORD_ENV, "pw")
    reports = {"count": len(alerts), "ids": [a["id"] for a in alerts], "result": alerts}

    def handler(method: str, path: str, *_: Any) -> tuple[int, Any]:
        routes = {
            "/api/v1/security/login": {"access_token": "t"},
            "/api/v1/chart/": CHARTS,
            "/api/v1/dataset/1": DATASET,
            "/api/v1/report/": reports,
            "/api/v1/report/1": DETAIL,
        }
        return (200, routes[path]) if path in routes else (404, {"message": "Not found"})

    with serve(handler) as (url, _seen):
        settings = Settings(url=url, username="admin", password_env=PASSWORD_ENV)
        collector = SupersetCollector(settings, PLATFORM)
        try:
            return list(collector.poll({}).events)
        finally:
            collector.close()


def grade(events: list[Event]) -> tuple[str, str]:
    b = ExamBuilder(PLATFORM, start_ms=min(e.ts_ms for e in events) - 3 * MINUTE)
    b.control(
        "exam.started", 0, candidate_id=b.candidate_id, rubric_id="y3-final", rubric_version="1"
    )
    b.heartbeats(0.5)
    b.control("part.started", 1, part=1)
    b.control("pipeline.declared", 2, assets=ASSETS)
    b.events.extend(events)
    b.finish()
    (exam,) = replay_events(b.events, resolver(), KeywordJudge()).results
    c = exam.criterion("p1.superset_alert")
    return c.state, c.reason


@pytest.mark.parametrize("active", [False, True])
def test_an_alert_that_never_ran_changes_no_grade(
    active: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    alert = {**copy.deepcopy(NEVER_RUN), "active": active}
    with_alert = signals([alert], monkeypatch)
    without = signals([], monkeypatch)
    assert [e.type for e in with_alert] == ["superset.chart"]
    assert grade(with_alert) == grade(without)
    assert grade(with_alert)[0] == "expired"

    # the same alert once the beat evaluated it: that is an evaluation, and it counts
    ran = {**alert, "last_eval_dttm": "2026-11-27T10:17:00.123000"}
    evaluated = signals([ran], monkeypatch)
    assert [e.data["last_state"] for e in evaluated if e.type == "superset.alert"] == ["Noop"]
    assert grade(evaluated)[0] == "met"
