"""Superset (recorded REST answers over real HTTP), Trino access rules, access logs."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from services.collectors.accesslogs import AccessLogCollector, LogFile
from services.collectors.accesslogs import Settings as LogSettings
from services.collectors.polling import Poller
from services.collectors.superset import Settings as SupersetSettings
from services.collectors.superset import SupersetCollector
from services.collectors.trino_rules import Settings as RulesSettings
from services.collectors.trino_rules import TrinoRulesCollector
from services.core.events import rfc3339_to_ms
from tests.integration.collectors.recorded import serve

pytestmark = pytest.mark.integration

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"


def _load(name: str) -> Any:
    return json.loads((FIXTURES / "superset" / name).read_text())


class FakeSuperset:
    """Routes of the recorded Superset answers; tokens expire when told to."""

    def __init__(self) -> None:
        self.valid = {_load("login.json")["access_token"]}
        self.reports = _load("reports.json")
        self.logins = 0

    def __call__(
        self, method: str, path: str, query: Any, headers: Any, body: Any
    ) -> tuple[int, Any]:
        if (method, path) == ("POST", "/api/v1/security/login"):
            if body != {
                "username": "proctor",
                "password": "s3cret",
                "provider": "db",
                "refresh": False,
            }:
                return 401, {"message": "Not authorized"}
            self.logins += 1
            return 200, _load("login.json")
        token = headers.get("Authorization", "").removeprefix("Bearer ")
        if token not in self.valid:
            return 401, {"msg": "Token has expired"}
        routes = {
            "/api/v1/chart/": lambda: _load("charts.json"),
            "/api/v1/dataset/7": lambda: _load("dataset_7.json"),
            "/api/v1/report/": lambda: self.reports,
            "/api/v1/report/3": lambda: _load("report_3.json"),
        }
        if path not in routes:
            return 404, {"message": "Not found"}
        return 200, routes[path]()


def test_superset_charts_and_alerts(
    env, make_poller: Callable[..., Poller], platform_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEST_SUPERSET_PASSWORD", "s3cret")
    fake = FakeSuperset()
    with serve(fake) as (url, seen):
        settings = SupersetSettings(
            url=url, username="proctor", password_env="TEST_SUPERSET_PASSWORD"
        )
        poller = make_poller(SupersetCollector(settings, platform_id))
        assert poller.step() == 3
        assert poller.step() == 0
        events = env.read("platform.superset", platform_id)
        charts = {e.data["chart_id"]: e for e in events if e.type == "superset.chart"}
        assert charts[11].data == {
            "chart_id": 11,
            "chart_name": "Orders per hour",
            "dataset": "analytics.orders_hourly",
            "database": "trino-iceberg",
            "viz_type": "echarts_timeseries_line",
        }
        assert charts[11].ts_ms == rfc3339_to_ms("2026-11-27T10:15:00.000Z")
        [alert] = [e for e in events if e.type == "superset.alert"]
        assert alert.data == {
            "alert_id": 3,
            "chart_id": 11,
            "condition": "<",
            "threshold": 10.0,
            "last_state": "Noop",
            "last_eval_ts": "2026-11-27T10:20:00.123Z",
        }
        assert alert.ts_ms == rfc3339_to_ms("2026-11-27T10:20:00.123Z")
        assert sum(1 for m, p in seen if p == "/api/v1/dataset/7") == 2  # once per poll

        # the token expires and the alert evaluates again: log in again, one more alert
        fake.valid = {"other"}
        fake.reports["result"][0].update(last_state="Success", last_eval_dttm="2026-11-27T10:25:00")
        with pytest.raises(Exception, match="401"):
            poller.step()  # the new login's token is refused too: an error, not a crash
        fake.valid = {_load("login.json")["access_token"]}
        assert poller.step() == 1
        alerts = [
            e for e in env.read("platform.superset", platform_id) if e.type == "superset.alert"
        ]
        assert [a.data["last_state"] for a in alerts] == ["Noop", "Success"]
        assert fake.logins >= 2


def test_superset_password_must_be_in_the_environment(platform_id: str) -> None:
    os.environ.pop("TEST_SUPERSET_MISSING", None)
    with pytest.raises(Exception, match="TEST_SUPERSET_MISSING is not set"):
        SupersetCollector(
            SupersetSettings(
                url="http://127.0.0.1:9", username="u", password_env="TEST_SUPERSET_MISSING"
            ),
            platform_id,
        )


RULES = {
    "catalogs": [{"allow": "all"}],
    "tables": [
        {
            "catalog": "iceberg",
            "schema": "shop",
            "table": "customers",
            "user": "analyst|bi_reader",
            "privileges": ["SELECT"],
            "columns": [
                {"name": "email", "mask": "'***'"},
                {"name": "customer_id", "allow": True},
            ],
        },
        {
            "catalog": "iceberg",
            "schema": "shop",
            "table": "customers",
            "group": "interns",
            "privileges": ["SELECT"],
            "columns": [{"name": "phone", "mask": "substr(phone, 1, 3) || '****'"}],
        },
        {"privileges": ["SELECT", "INSERT", "DELETE", "OWNERSHIP"]},
    ],
}


def test_trino_column_masks_from_rules_file(
    env, make_poller: Callable[..., Poller], tmp_path: Path, platform_id: str
) -> None:
    rules = tmp_path / "rules.json"
    rules.write_text(json.dumps(RULES))
    poller = make_poller(TrinoRulesCollector(RulesSettings(path=rules), platform_id))
    assert poller.step() == 2
    assert poller.step() == 0
    masks = {e.data["column"]: e.data for e in env.read("platform.trino", platform_id)}
    assert masks["email"] == {
        "catalog": "iceberg",
        "schema": "shop",
        "table": "customers",
        "column": "email",
        "mask_expression": "'***'",
        "applies_to": ["analyst", "bi_reader"],
    }
    assert masks["phone"]["applies_to"] == ["group:interns"]

    RULES["tables"][0]["columns"][0]["mask"] = "to_hex(sha256(to_utf8(email)))"  # type: ignore[index]
    rules.write_text(json.dumps(RULES))
    assert poller.step() == 1
    assert poller.collector.describe(poller.store.load().position).startswith("2 masks")

    rules.write_text("{not json")
    with pytest.raises(Exception, match="not JSON"):
        poller.step()


def _write(path: Path, lines: list[str]) -> None:
    with path.open("a", encoding="utf-8") as fh:
        fh.writelines(line + "\n" for line in lines)


def test_access_logs_of_each_tool(
    env, make_poller: Callable[..., Poller], tmp_path: Path, platform_id: str
) -> None:
    grafana, datahub, trino = (
        tmp_path / "grafana.log",
        tmp_path / "datahub.log",
        tmp_path / "trino.log",
    )
    _write(
        grafana,
        [
            'logger=context userId=2 orgId=1 uname=alice t=2026-11-27T11:02:03.120Z level=info msg="Request Completed" method=GET path=/explore status=200 remote_addr=127.0.0.1 time_ms=3 duration=3ms size=31000 referer= handler=/explore',
            'logger=context userId=2 orgId=1 uname=alice t=2026-11-27T11:02:04.000Z level=info msg="Request Completed" method=GET path=/public/build/app.js status=200 remote_addr=127.0.0.1 time_ms=1 duration=1ms size=100 referer= handler=/public/*',
            'logger=sqlstore t=2026-11-27T11:00:00.000Z level=info msg="Connecting to DB" dbtype=sqlite3',
        ],
    )
    _write(
        datahub,
        [
            '127.0.0.1 - alice [27/Nov/2026:11:05:00 +0000] "GET /dataset/urn:li:dataset:(urn:li:dataPlatform:iceberg,analytics.orders_hourly,PROD)/Lineage HTTP/1.1" 200 5120 "-" "Mozilla/5.0"',
            '127.0.0.1 - - [27/Nov/2026:11:05:01 +0000] "GET /health HTTP/1.1" 200 2 "-" "kube-probe/1.30"',
        ],
    )
    _write(
        trino,
        [
            "2026-11-27T11:06:00.000Z\t127.0.0.1\tPOST\t/v1/statement\talice\ttrino-cli\t200\t120\t900\t12"
        ],
    )
    settings = LogSettings(
        logs=(
            LogFile(tool="grafana", path=grafana, format="grafana"),
            LogFile(tool="datahub", path=datahub, format="combined"),
            LogFile(tool="trino", path=trino, format="trino"),
            LogFile(tool="tempo", path=tmp_path / "tempo-not-yet.log", format="combined"),
        )
    )
    poller = make_poller(AccessLogCollector(settings, platform_id))
    assert poller.step() == 3
    used = {e.data["tool"]: e for e in env.read("platform.observability", platform_id)}
    assert used["grafana"].data == {
        "tool": "grafana",
        "action": "explore",
        "target": None,
        "user": "alice",
    }
    assert used["grafana"].ts_ms == rfc3339_to_ms("2026-11-27T11:02:03.120Z")
    assert used["datahub"].data["action"] == "view_lineage"
    assert "analytics.orders_hourly" in used["datahub"].data["target"]
    assert used["trino"].data == {
        "tool": "trino",
        "action": "query",
        "target": None,
        "user": "alice",
    }

    _write(
        trino,
        [
            "2026-11-27T11:07:00.000Z\t127.0.0.1\tGET\t/ui/api/query/20261127_110700_00001_abcde\tbob\tMozilla\t200\t0\t900\t3"
        ],
    )
    with trino.open("a") as fh:
        fh.write("2026-11-27T11:08:00.000Z\t127.0.0.1\tPOST")  # half a line: not yet
    assert poller.step() == 1
    # rotation: a new file under the same name is read from its start
    trino.rename(tmp_path / "trino.log.1")
    _write(
        trino,
        [
            "2026-11-27T11:09:00.000Z\t127.0.0.1\tPOST\t/v1/statement\tcarol\ttrino-cli\t200\t1\t1\t1"
        ],
    )
    assert poller.step() == 1
    users = [
        e.data["user"]
        for e in env.read("platform.observability", platform_id)
        if e.data["tool"] == "trino"
    ]
    assert users == ["alice", "bob", "carol"]
