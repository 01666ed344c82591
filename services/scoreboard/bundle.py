"""The scoreboard as code: the Superset export bundle kept in ``bundle/``, zipped and imported.

The bundle is Superset's own export format (``databases/``, ``datasets/``, ``charts/``,
``dashboards/`` YAML under one root folder, plus ``metadata.yaml``), so a change made in
the UI can be exported and diffed against it. On import the database URI is pointed at
this stack's Trino. Superset's dashboard import never overwrites the charts, datasets and
database it brings along, so each kind is imported through its own endpoint with
``overwrite=true`` (database, then datasets, charts, dashboard): what the repository says
is what Superset shows.
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import httpx
import yaml

from services.errors import ConfigError, StackError
from services.settings import TrinoSettings

BUNDLE_DIR = Path(__file__).resolve().parent / "bundle"
ROOT = "proctor_scoreboard"
#: import order, Superset's metadata type of each kind, and the REST resource
KINDS: tuple[tuple[str, str, str], ...] = (
    ("databases", "Database", "database"),
    ("datasets", "SqlaTable", "dataset"),
    ("charts", "Slice", "chart"),
    ("dashboards", "Dashboard", "dashboard"),
)
DASHBOARD_SLUG = "proctor-scoreboard"
#: the proctor's pages: every candidate of the cohort, and one candidate
COHORT_SLUG = "proctor-cohort"
CANDIDATE_SLUG = "proctor-candidate"
#: the datasets a candidate's login reads, each under a row-level security rule
CANDIDATE_TABLES = ("candidate_criteria", "part_windows", "exam_faults", "collector_status")


@dataclass(frozen=True)
class Bundle:
    """Every YAML file of the bundle, parsed, by path relative to the bundle root."""

    files: Mapping[str, dict[str, Any]] = field(default_factory=dict)

    def of(self, kind: str) -> dict[str, dict[str, Any]]:
        return {p: d for p, d in self.files.items() if p.startswith(kind + "/")}

    @property
    def databases(self) -> dict[str, dict[str, Any]]:
        return self.of("databases")

    @property
    def datasets(self) -> dict[str, dict[str, Any]]:
        return self.of("datasets")

    @property
    def charts(self) -> dict[str, dict[str, Any]]:
        return self.of("charts")

    @property
    def dashboards(self) -> dict[str, dict[str, Any]]:
        return self.of("dashboards")


def load_bundle(directory: Path = BUNDLE_DIR) -> Bundle:
    """Parse every ``*.yaml`` of the bundle; ConfigError names a file that does not parse."""
    files: dict[str, dict[str, Any]] = {}
    for path in sorted(directory.rglob("*.yaml")):
        rel = path.relative_to(directory).as_posix()
        try:
            doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigError(f"scoreboard bundle file {rel}: {exc}") from exc
        if not isinstance(doc, dict):
            raise ConfigError(f"scoreboard bundle file {rel}: not a YAML mapping")
        files[rel] = doc
    if not files:
        raise ConfigError(f"no scoreboard bundle in {directory}")
    return Bundle(files)


def problems(bundle: Bundle) -> list[str]:
    """What is inconsistent in the bundle: dangling uuids, missing fields, bad layout."""
    out: list[str] = []
    dbs = {d.get("uuid") for d in bundle.databases.values()}
    datasets = {d.get("uuid"): p for p, d in bundle.datasets.items()}
    charts = {d.get("uuid"): p for p, d in bundle.charts.items()}
    for path, ds in bundle.datasets.items():
        if ds.get("database_uuid") not in dbs:
            out.append(f"{path}: database_uuid {ds.get('database_uuid')} is not a bundled database")
        names = [c.get("column_name") for c in ds.get("columns") or []]
        if not names:
            out.append(f"{path}: lists no columns")
        dttm = ds.get("main_dttm_col")
        if dttm is not None and dttm not in names:
            out.append(f"{path}: main_dttm_col {dttm} is not one of its columns")
    for path, ch in bundle.charts.items():
        ds_path = datasets.get(ch.get("dataset_uuid"))
        if ds_path is None:
            out.append(f"{path}: dataset_uuid {ch.get('dataset_uuid')} is not a bundled dataset")
            continue
        columns = {c["column_name"] for c in bundle.datasets[ds_path].get("columns") or []}
        for col in chart_columns(ch.get("params") or {}):
            if col not in columns:
                out.append(f"{path}: uses column {col!r}, which {ds_path} does not have")
        if ch.get("viz_type") != (ch.get("params") or {}).get("viz_type"):
            out.append(f"{path}: viz_type differs from params.viz_type")
    anywhere: set[Any] = set()
    for path, dash in bundle.dashboards.items():
        position = dash.get("position") or {}
        placed = {
            node["meta"].get("uuid")
            for node in position.values()
            if isinstance(node, dict) and node.get("type") == "CHART"
        }
        anywhere |= placed
        for uuid in placed - set(charts):
            out.append(f"{path}: places chart {uuid}, which is not bundled")
        for flt in (dash.get("metadata") or {}).get("native_filter_configuration") or []:
            for target in flt.get("targets") or []:
                ds_path = datasets.get(target.get("datasetUuid"))
                if ds_path is None:
                    out.append(f"{path}: filter {flt.get('name')} targets an unbundled dataset")
                    continue
                cols = {c["column_name"] for c in bundle.datasets[ds_path].get("columns") or []}
                if (target.get("column") or {}).get("name") not in cols:
                    out.append(f"{path}: filter {flt.get('name')} names a column {ds_path} lacks")
            for root in (flt.get("scope") or {}).get("rootPath") or []:
                if root not in position:
                    out.append(f"{path}: filter {flt.get('name')} is scoped to a missing {root}")
        for key, node in position.items():
            if not isinstance(node, dict):
                continue
            for child in node.get("children", []):
                if child not in position:
                    out.append(f"{path}: {key} has a missing child {child}")
    for uuid in set(charts) - anywhere:
        out.append(f"no dashboard places chart {charts[uuid]}")
    return out


def chart_columns(params: Mapping[str, Any]) -> list[str]:
    """Dataset columns a chart's form data names directly (not inside SQL metrics)."""
    cols: list[str] = []
    for key in ("x_axis", "groupby", "all_columns", "columns", "granularity_sqla"):
        value = params.get(key)
        if isinstance(value, str):
            cols.append(value)
        elif isinstance(value, list):
            cols += [v for v in value if isinstance(v, str)]
    for item in params.get("order_by_cols") or []:
        cols.append(json.loads(item)[0])
    return cols


def trino_uri(trino: TrinoSettings) -> str:
    """Superset's SQLAlchemy URI of the Trino the settings name."""
    url = urlparse(trino.url)
    port = url.port or (443 if url.scheme == "https" else 8080)
    return f"trino://{trino.user}@{url.hostname}:{port}/{trino.catalog}"


def render(bundle: Bundle, trino: TrinoSettings) -> Bundle:
    """The bundle with every database pointed at this stack's Trino."""
    files = {p: dict(d) for p, d in bundle.files.items()}
    for path in bundle.databases:
        files[path]["sqlalchemy_uri"] = trino_uri(trino)
    return Bundle(files)


def zip_kind(bundle: Bundle, kind: str, metadata_type: str, now: datetime | None = None) -> bytes:
    """A zip Superset imports as ``metadata_type``: that kind and everything it depends on."""
    order = [k for k, _, _ in KINDS]
    wanted = order[: order.index(kind) + 1]
    stamp = (now or datetime.now(tz=UTC)).isoformat()
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(
            f"{ROOT}/metadata.yaml",
            yaml.safe_dump({"version": "1.0.0", "type": metadata_type, "timestamp": stamp}),
        )
        for path, doc in sorted(bundle.files.items()):
            if path.split("/", 1)[0] in wanted:
                zf.writestr(f"{ROOT}/{path}", yaml.safe_dump(doc, sort_keys=False))
    return buf.getvalue()


class SupersetClient:
    """Superset's REST API with a JWT and a CSRF token, as the import endpoints want."""

    def __init__(self, base_url: str, user: str, password: str, timeout_s: float = 60.0) -> None:
        self.base = base_url.rstrip("/")
        self.http = httpx.Client(base_url=self.base, timeout=timeout_s)
        self.user = user
        self._password = password
        self._headers: dict[str, str] = {}

    def __enter__(self) -> SupersetClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.http.close()

    def login(self) -> None:
        try:
            r = self.http.post(
                "/api/v1/security/login",
                json={
                    "username": self.user,
                    "password": self._password,
                    "provider": "db",
                    "refresh": False,
                },
            )
            if r.status_code == 401:
                raise StackError(
                    f"Superset refused user {self.user!r}: the password does not match the one "
                    "it was set up with (set PROCTOR_SUPERSET_PASSWORD, run `proctor scoreboard up`)"
                )
            r.raise_for_status()
            token = r.json()["access_token"]
            self._headers = {"Authorization": f"Bearer {token}", "Referer": self.base}
            csrf = self.http.get("/api/v1/security/csrf_token/", headers=self._headers)
            csrf.raise_for_status()
            self._headers["X-CSRFToken"] = csrf.json()["result"]
        except (httpx.HTTPError, KeyError, ValueError) as exc:
            raise StackError(f"cannot log in to Superset at {self.base}: {exc}") from exc

    def get(self, path: str, **params: Any) -> Any:
        try:
            r = self.http.get(path, headers=self._headers, params=params or None)
            r.raise_for_status()
            return r.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise StackError(f"Superset GET {path}: {exc}") from exc

    def post_json(self, path: str, body: Mapping[str, Any]) -> Any:
        try:
            r = self.http.post(path, headers=self._headers, json=dict(body))
            r.raise_for_status()
            return r.json()
        except httpx.HTTPStatusError as exc:
            raise StackError(f"Superset POST {path}: {exc}: {exc.response.text[:500]}") from exc
        except (httpx.HTTPError, ValueError) as exc:
            raise StackError(f"Superset POST {path}: {exc}") from exc

    def import_zip(self, resource: str, data: bytes) -> None:
        try:
            r = self.http.post(
                f"/api/v1/{resource}/import/",
                headers=self._headers,
                files={"formData": (f"{resource}.zip", data, "application/zip")},
                data={"overwrite": "true", "passwords": "{}"},
            )
        except httpx.HTTPError as exc:
            raise StackError(f"Superset import of {resource}s: {exc}") from exc
        if r.status_code != 200:
            raise StackError(
                f"Superset did not import the scoreboard's {resource}s "
                f"({r.status_code}): {r.text[:800]}"
            )

    def dashboard(self, slug: str = DASHBOARD_SLUG) -> dict[str, Any]:
        found: dict[str, Any] = self.get(f"/api/v1/dashboard/{slug}")["result"]
        return found


def import_bundle(client: SupersetClient, bundle: Bundle) -> None:
    """Import each kind in dependency order, overwriting what Superset has."""
    for kind, metadata_type, resource in KINDS:
        client.import_zip(resource, zip_kind(bundle, kind, metadata_type))
