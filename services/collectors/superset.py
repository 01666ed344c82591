"""superset.chart and superset.alert from the Superset REST API.

Logs in with ``/api/v1/security/login`` (provider db; the password comes from the
environment variable the settings name) and lists ``/api/v1/chart/`` (with each chart's
dataset from ``/api/v1/dataset/{id}`` for schema, table and database) and
``/api/v1/report/`` filtered to alerts (with ``/api/v1/report/{id}`` for the validator).
A chart is published when its dataset, database, type or name changed (at its
``changed_on``); an alert each time it was evaluated again (at ``last_eval_dttm``).

Read against a real Superset 6.1 (tests/integration/collectors/test_superset_real.py):

* a new alert answers ``last_state`` "Not triggered" before it ever ran, the same text as
  an evaluation whose condition was false; only ``last_eval_dttm`` tells them apart, so an
  alert that has never been evaluated is not published (an inactive alert never is);
* without the ``ALERT_REPORTS`` feature flag ``/api/v1/report/`` answers 404 while the
  chart API answers: the platform has no alerts, which is evidence, not an error;
* the REST API's GETs take the JWT alone (CSRF guards only writes);
* one chart or alert whose answer cannot be read is skipped for that poll (logged, read
  again next poll) and does not hide the others.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

import click
from pydantic import Field

from services.collectors.http import NOT_FOUND, JsonClient, SourceError, expect
from services.collectors.polling import Collector, PollResult, Position, now_ms
from services.collectors.runner import common_options, run_one, split_common
from services.collectors.settings import SourceSettings, env_secret, parse_model
from services.core.events import Event, ms_to_rfc3339

log = logging.getLogger("proctor.collectors.superset")

#: rows per page; Flask-AppBuilder answers at most 100 (FAB_API_MAX_PAGE_SIZE)
PAGE_SIZE = 100
#: Superset's ReportState values -> the contract's
ALERT_STATES = {
    "Success": "Success",
    "Error": "Error",
    "Working": "Working",
    "Not triggered": "Noop",
    "Noop": "Noop",
    "On Grace": "Grace",
    "Grace": "Grace",
}


def unreadable(exc: Exception, what: str) -> None:
    """Log one item whose answer cannot be read; re-raise what is not about that item.

    A malformed answer (``payload``) spoils one chart or alert only; not reaching Superset
    or a server error is the whole source's failure and must reach the heartbeat.
    """
    if isinstance(exc, SourceError) and exc.kind != "payload":
        raise exc
    log.warning("superset %s skipped this poll: %s", what, exc)


class Settings(SourceSettings):
    url: str = Field(description="Superset base URL")
    username: str = Field(description="Superset user that may list charts and alerts")
    password_env: str = Field(description="env var holding that user's password")
    provider: str = Field(default="db", description="login provider (db or ldap)")


def superset_time(value: Any) -> int | None:
    """Epoch ms of a Superset timestamp (ISO text, naive = UTC); None when absent."""
    if not value:
        return None
    text = str(value).strip().replace("Z", "+00:00")
    try:
        dt = datetime.fromisoformat(text)
    except ValueError as exc:
        raise SourceError(f"unreadable Superset timestamp {value!r}", "payload") from exc
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return int(dt.timestamp() * 1000)


def chart_data(chart: Mapping[str, Any], dataset: Mapping[str, Any] | None) -> dict[str, Any]:
    if dataset:
        schema, table = dataset.get("schema"), dataset.get("table_name")
        name = f"{schema}.{table}" if schema else str(table)
        database = str((dataset.get("database") or {}).get("database_name", ""))
    else:
        name = str(chart.get("datasource_name_text") or "")
        database = ""
    return {
        "chart_id": int(chart["id"]),
        "chart_name": str(chart.get("slice_name") or ""),
        "dataset": name,
        "database": database,
        "viz_type": chart.get("viz_type"),
    }


def alert_data(alert: Mapping[str, Any]) -> dict[str, Any]:
    """Fields of one alert from its /api/v1/report/{id} answer."""
    raw = alert.get("validator_config_json") or "{}"
    try:
        config = json.loads(raw) if isinstance(raw, str) else dict(raw)
    except ValueError as exc:
        raise SourceError(
            f"alert {alert.get('id')}: validator_config_json is not JSON", "payload"
        ) from exc
    vtype = str(alert.get("validator_type") or "")
    condition = str(config.get("op") or vtype or "")
    if vtype.lower().replace("_", " ") == "not null":
        condition = "not null"
    threshold = config.get("threshold")
    chart = alert.get("chart")
    chart_id = chart.get("id") if isinstance(chart, Mapping) else None
    if chart_id is None:
        chart_id = alert.get("chart_id")
    state = str(alert.get("last_state") or "Noop")
    evaluated = superset_time(alert.get("last_eval_dttm"))
    return {
        "alert_id": int(alert["id"]),
        "chart_id": int(chart_id) if chart_id is not None else None,
        "condition": condition,
        "threshold": float(threshold) if isinstance(threshold, int | float) else None,
        "last_state": ALERT_STATES.get(state, "Error"),
        "last_eval_ts": None if evaluated is None else ms_to_rfc3339(evaluated),
    }


class SupersetCollector(Collector):
    name = "superset"

    def __init__(self, settings: Settings, platform_id: str) -> None:
        super().__init__(platform_id)
        self.settings = settings
        self.password = env_secret(settings.password_env, "superset password") or ""
        self.http = JsonClient(settings.url)
        self.token: str | None = None

    @property
    def source(self) -> str:
        return f"superset {self.settings.url}"

    def describe(self, position: Position) -> str:
        return f"{len(position.get('charts', {}))} charts, {len(position.get('alerts', {}))} alerts"

    def login(self) -> None:
        status, body = self.http.request(
            "POST",
            "/api/v1/security/login",
            json={
                "username": self.settings.username,
                "password": self.password,
                "provider": self.settings.provider,
                "refresh": False,
            },
            allow=(400, 401),
        )
        if status in (400, 401):
            raise SourceError(
                f"superset at {self.settings.url} refused the login of "
                f"{self.settings.username!r} ({status}): check the user and the password in "
                f"{self.settings.password_env}"
            )
        token = body.get("access_token") if isinstance(body, dict) else None
        if not token:
            raise SourceError("superset login answered without an access_token")
        self.token = str(token)
        self.http.client.headers["Authorization"] = f"Bearer {self.token}"

    def get(self, path: str, params: Mapping[str, Any] | None = None) -> Any:
        if self.token is None:
            self.login()
        status, body = self.http.request("GET", path, params=params, allow=(401,))
        if status == 401:  # token expired: log in again once
            self.login()
            body = self.http.get(path, params=params)
        return body

    def pages(self, path: str, query: str = "") -> Iterator[Mapping[str, Any]]:
        page = 0
        while True:
            q = f"({query}{',' if query else ''}page:{page},page_size:{PAGE_SIZE})"
            body = expect(self.get(path, {"q": q}), dict, f"GET {path}")
            rows = body.get("result", [])
            yield from (r for r in rows if isinstance(r, Mapping))
            page += 1
            if len(rows) < PAGE_SIZE or page * PAGE_SIZE >= int(body.get("count", 0)):
                return

    def poll(self, position: Position) -> PollResult:
        events: list[Event] = []
        skipped = 0
        charts: dict[str, str] = {}
        datasets: dict[int, Mapping[str, Any]] = {}
        old_charts = position.get("charts", {})
        for chart in self.pages("/api/v1/chart/"):
            try:
                data = chart_data(chart, self._dataset(chart, datasets))
                ts = superset_time(chart.get("changed_on_utc")) or now_ms()
            except (SourceError, KeyError, TypeError, ValueError) as exc:
                # one unreadable chart must not hide the others: read it again next poll
                key = str(chart.get("id"))
                unreadable(exc, f"chart {key}")
                skipped += 1
                if key in old_charts:
                    charts[key] = old_charts[key]
                continue
            sig = json.dumps(data, sort_keys=True)
            cid = str(data["chart_id"])
            charts[cid] = sig
            if old_charts.get(cid) != sig:
                events.append(self.signal("superset.chart", [cid, sig], ts, data))
        alerts: dict[str, str] = {}
        old_alerts = position.get("alerts", {})
        for row in self.alert_rows():
            aid = str(row.get("id"))
            stamp = f"{row.get('last_eval_dttm')}|{row.get('last_state')}|{row.get('changed_on')}"
            if old_alerts.get(aid) == stamp:
                alerts[aid] = stamp
                continue
            if not row.get("last_eval_dttm"):
                # never run: "Not triggered" here is Superset's initial state, not an answer
                alerts[aid] = stamp
                continue
            try:
                detail = expect(self.get(f"/api/v1/report/{aid}"), dict, f"GET report {aid}")
                data = alert_data({**detail.get("result", {}), **row})
                ts = superset_time(row.get("last_eval_dttm")) or now_ms()
            except (SourceError, KeyError, TypeError, ValueError) as exc:
                unreadable(exc, f"alert {aid}")
                skipped += 1
                if aid in old_alerts:
                    alerts[aid] = old_alerts[aid]
                continue
            alerts[aid] = stamp
            events.append(self.signal("superset.alert", [aid, stamp, data["condition"]], ts, data))
        return PollResult(tuple(events), {"charts": charts, "alerts": alerts}, skipped)

    def _dataset(
        self, chart: Mapping[str, Any], cache: dict[int, Mapping[str, Any]]
    ) -> Mapping[str, Any] | None:
        """The chart's dataset (``/api/v1/dataset/{id}``), read once per poll."""
        ds_id = chart.get("datasource_id")
        if not isinstance(ds_id, int) or chart.get("datasource_type", "table") != "table":
            return None
        if ds_id not in cache:
            answer = expect(self.get(f"/api/v1/dataset/{ds_id}"), dict, "GET dataset")
            cache[ds_id] = expect(answer.get("result", {}), dict, f"GET dataset {ds_id}")
        return cache[ds_id]

    def alert_rows(self) -> Iterator[Mapping[str, Any]]:
        """The alerts' list rows; none when the platform has alerts & reports switched off."""
        if self.token is None:
            self.login()
        status, _ = self.http.request(
            "GET",
            "/api/v1/report/",
            params={"q": "(filters:!((col:type,opr:eq,value:Alert)),page:0,page_size:1)"},
            allow=(401, NOT_FOUND),
        )
        if status == NOT_FOUND:
            log.info("superset %s: /api/v1/report/ is 404 (ALERT_REPORTS off)", self.source)
            return
        yield from self.pages("/api/v1/report/", "filters:!((col:type,opr:eq,value:Alert))")

    def close(self) -> None:
        self.http.close()


def build(settings: Settings, platform_id: str) -> SupersetCollector:
    return SupersetCollector(settings, platform_id)


@click.command("superset")
@click.option("--url", required=True, help="Superset base URL")
@click.option("--username", required=True, help="Superset user")
@click.option("--password-env", required=True, help="env var holding the password")
@common_options
def command(**kwargs: Any) -> None:
    """Publish superset.chart and superset.alert from the Superset REST API."""
    common, own = split_common(kwargs)
    settings = parse_model(Settings, {"interval_s": common["interval_s"], **own}, "flags")
    run_one(lambda platform: build(settings, platform), common)
