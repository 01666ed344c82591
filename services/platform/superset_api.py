"""What a candidate does in Superset, through its REST API: a database, a dataset, a chart,
an alert; and what a rehearsal does to it: deactivate the alert, reactivate it.

Writes need a session as the browser has one: a JWT from ``/api/v1/security/login`` and
the CSRF token from ``/api/v1/security/csrf_token/`` (Superset 6.1 checks CSRF on every
POST/PUT/DELETE of the REST API, with the Referer of its own origin).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import httpx

from services.errors import StackError


@dataclass(frozen=True, slots=True)
class Alert:
    """An alert as created: its id, the chart it watches, its query and its condition."""

    id: int
    chart_id: int
    name: str
    op: str
    threshold: float


class SupersetApi:
    """A logged-in Superset session (admin or any user allowed to write)."""

    def __init__(self, base_url: str, user: str, password: str, timeout_s: float = 60.0) -> None:
        self.base = base_url.rstrip("/")
        self.http = httpx.Client(base_url=self.base, timeout=timeout_s)
        self.user = user
        self._password = password
        self._headers: dict[str, str] = {}

    def __enter__(self) -> SupersetApi:
        self.login()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self.http.close()

    def login(self) -> None:
        """JWT, then the CSRF token bound to this client's session cookie."""
        body = {"username": self.user, "password": self._password, "provider": "db"}
        r = self._send("POST", "/api/v1/security/login", json={**body, "refresh": False})
        self._headers = {"Authorization": f"Bearer {r['access_token']}", "Referer": self.base}
        csrf = self._send("GET", "/api/v1/security/csrf_token/")
        self._headers["X-CSRFToken"] = str(csrf["result"])

    def _send(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            r = self.http.request(method, path, headers=self._headers, **kwargs)
        except httpx.HTTPError as exc:
            raise StackError(f"Superset {method} {self.base}{path}: {exc}") from exc
        if not r.is_success:
            raise StackError(f"Superset {method} {path} answered {r.status_code}: {r.text[:600]}")
        try:
            return r.json()
        except ValueError as exc:
            raise StackError(f"Superset {method} {path}: the answer is not JSON") from exc

    def get(self, path: str, **params: Any) -> Any:
        return self._send("GET", path, params=params or None)

    def post(self, path: str, body: Mapping[str, Any]) -> Any:
        return self._send("POST", path, json=dict(body))

    def put(self, path: str, body: Mapping[str, Any]) -> Any:
        return self._send("PUT", path, json=dict(body))

    # What a candidate builds ---------------------------------------------------------
    def create_database(self, name: str, sqlalchemy_uri: str) -> int:
        found = self.post(
            "/api/v1/database/",
            {"database_name": name, "sqlalchemy_uri": sqlalchemy_uri, "expose_in_sqllab": True},
        )
        return int(found["id"])

    def create_dataset(self, database_id: int, schema: str, table: str) -> int:
        found = self.post(
            "/api/v1/dataset/", {"database": database_id, "schema": schema, "table_name": table}
        )
        return int(found["id"])

    def create_chart(self, name: str, dataset_id: int, viz_type: str = "table") -> int:
        params = {"datasource": f"{dataset_id}__table", "viz_type": viz_type, "query_mode": "raw"}
        found = self.post(
            "/api/v1/chart/",
            {
                "slice_name": name,
                "viz_type": viz_type,
                "datasource_id": dataset_id,
                "datasource_type": "table",
                "params": json.dumps({**params, "all_columns": ["*"]}),
            },
        )
        return int(found["id"])

    def create_alert(
        self,
        name: str,
        chart_id: int,
        database_id: int,
        sql: str,
        op: str,
        threshold: float,
        *,
        active: bool = True,
        crontab: str = "* * * * *",
        email: str = "oncall@example.invalid",
    ) -> Alert:
        """An alert on ``chart_id`` whose SQL value is compared with ``op threshold``."""
        found = self.post(
            "/api/v1/report/",
            {
                "type": "Alert",
                "name": name,
                "chart": chart_id,
                "database": database_id,
                "sql": sql,
                "validator_type": "operator",
                "validator_config_json": {"op": op, "threshold": threshold},
                "crontab": crontab,
                "timezone": "UTC",
                "active": active,
                "report_format": "PNG",
                "working_timeout": 300,
                "grace_period": 60,
                "log_retention": 1,
                "recipients": [{"type": "Email", "recipient_config_json": {"target": email}}],
            },
        )
        return Alert(int(found["id"]), chart_id, name, op, threshold)

    def alert(self, alert_id: int) -> dict[str, Any]:
        found: dict[str, Any] = self.get(f"/api/v1/report/{alert_id}")["result"]
        return found

    # What a rehearsal does to it -----------------------------------------------------
    def set_alert_active(self, alert_id: int, active: bool) -> None:
        """Deactivate an alert (Superset's beat stops evaluating it) or reactivate it."""
        self.put(f"/api/v1/report/{alert_id}", {"active": active})


def deactivate_alert(api: SupersetApi, alert_id: int) -> None:
    """Injector: the alert stops being evaluated from the next beat on."""
    api.set_alert_active(alert_id, False)


def reactivate_alert(api: SupersetApi, alert_id: int) -> None:
    """Undo of :func:`deactivate_alert`: evaluated again at the next beat (within 60 s)."""
    api.set_alert_active(alert_id, True)
