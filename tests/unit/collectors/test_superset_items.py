"""One unreadable chart or alert is skipped; a Superset that fails is the whole poll's error.

Answers in the shape the real Superset 6.1 gives (tests/integration/collectors/
test_superset_real.py drives the real one), served on loopback with one part spoiled.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from services.collectors.http import SourceError
from services.collectors.superset import Settings, SupersetCollector
from tests.adversarial.test_superset import CHARTS, DATASET, DETAIL, NEVER_RUN
from tests.integration.collectors.recorded import serve

pytestmark = pytest.mark.unit

PASSWORD_ENV = "UNIT_SUPERSET_PASSWORD"
RAN = {**NEVER_RUN, "active": True, "last_eval_dttm": "2026-11-27T10:17:00.123000"}


def poll(routes: dict[str, tuple[int, Any]], monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv(PASSWORD_ENV, "pw")
    base = {
        "/api/v1/security/login": (200, {"access_token": "t"}),
        "/api/v1/chart/": (200, CHARTS),
        "/api/v1/dataset/1": (200, DATASET),
        "/api/v1/report/": (200, {"count": 1, "ids": [1], "result": [RAN]}),
        "/api/v1/report/1": (200, DETAIL),
        **routes,
    }

    def handler(method: str, path: str, *_: Any) -> tuple[int, Any]:
        return base.get(path, (404, {"message": "Not found"}))

    with serve(handler) as (url, _seen):
        collector = SupersetCollector(
            Settings(url=url, username="admin", password_env=PASSWORD_ENV), "basecamp-unit"
        )
        try:
            return collector.poll({})
        finally:
            collector.close()


def test_a_malformed_alert_is_skipped_and_the_chart_still_published(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    bad = copy.deepcopy(DETAIL)
    bad["result"]["validator_config_json"] = "{op: >}"
    result = poll({"/api/v1/report/1": (200, bad)}, monkeypatch)
    assert [e.type for e in result.events] == ["superset.chart"]
    assert result.lag == 1 and result.position["alerts"] == {}  # read again next poll

    good = poll({}, monkeypatch)
    assert [e.type for e in good.events] == ["superset.chart", "superset.alert"]


def test_a_malformed_chart_timestamp_skips_that_chart_only(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    charts = copy.deepcopy(CHARTS)
    charts["result"][0]["changed_on_utc"] = "last tuesday"
    result = poll({"/api/v1/chart/": (200, charts)}, monkeypatch)
    assert [e.type for e in result.events] == ["superset.alert"]
    assert result.lag == 1


def test_a_failing_superset_fails_the_poll_instead_of_skipping(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with pytest.raises(SourceError) as err:
        poll({"/api/v1/dataset/1": (500, {"message": "boom"})}, monkeypatch)
    assert err.value.kind == "platform"


def test_alerts_switched_off_are_no_alerts(monkeypatch: pytest.MonkeyPatch) -> None:
    result = poll({"/api/v1/report/": (404, {"message": "Not found"})}, monkeypatch)
    assert [e.type for e in result.events] == ["superset.chart"]
    assert result.position["alerts"] == {}
