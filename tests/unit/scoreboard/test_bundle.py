"""The scoreboard bundle is valid: it parses, its references resolve, and its SQL only
reads columns that the grader's view and tables really have."""

from __future__ import annotations

import copy
import io
import re
import zipfile

import pytest
import yaml

from services.grader.board_views import BOARD_VIEWS
from services.grader.row_table import TRANSITIONS_SCHEMA
from services.grader.views import QUEUE_VIEW, exam_scores_sql
from services.scoreboard.bundle import (
    KINDS,
    ROOT,
    Bundle,
    chart_columns,
    load_bundle,
    problems,
    render,
    zip_kind,
)
from services.scoreboard.health import HEALTH_SCHEMA
from services.stack.catalog import trino_settings
from services.stack.config import StackConfig

pytestmark = pytest.mark.unit

#: SQL words and functions the datasets may use (anything else must be a known column)
SQL_WORDS = set(
    [
        "select",
        "from",
        "where",
        "group",
        "by",
        "order",
        "as",
        "and",
        "or",
        "not",
        "in",
        "is",
        "null",
        "case",
        "when",
        "then",
        "else",
        "end",
        "coalesce",
        "max",
        "min",
        "sum",
        "count",
        "count_if",
        "bool_or",
        "cast",
        "varchar",
        "integer",
        "over",
        "partition",
        "rows",
        "between",
        "unbounded",
        "preceding",
        "current",
        "row",
        "lag",
        "regexp_extract",
        "true",
        "false",
        "distinct",
        "on",
        "join",
        "left",
        "asc",
        "desc",
        "e0",
        "iceberg",
        "grading",
        "t",
        "changes",
        "like",
        "having",
        "max_by",
        "split_part",
        "using",
        "s",
        "f",
    ]
)


def view_columns() -> list[str]:
    """Output columns of grading.exam_scores, parsed from the grader's own view SQL."""
    sql = exam_scores_sql("iceberg", "grading")
    select = sql[sql.rindex("\nSELECT ") + 8 : sql.rindex("\nFROM scored")]
    items, depth, cur = [], 0, ""
    for ch in select:
        depth += ch == "("
        depth -= ch == ")"
        if ch == "," and depth == 0:
            items.append(cur)
            cur = ""
        else:
            cur += ch
    items.append(cur)
    return [re.findall(r"[a-z_]+", item)[-1] for item in items]


SOURCES = {
    "exam_scores": view_columns(),
    "criterion_transitions": [f.name for f in TRANSITIONS_SCHEMA.fields],
    "pipeline_health": [f.name for f in HEALTH_SCHEMA.fields],
    # the scoreboard's views: their declared columns, checked against Trino's (integration)
    **{
        d["table_name"]: [c["column_name"] for c in d["columns"] if not c.get("expression")]
        for d in load_bundle().datasets.values()
        if d["table_name"] in {*BOARD_VIEWS, "collector_status"}
    },
}


@pytest.fixture(scope="module")
def bundle() -> Bundle:
    return load_bundle()


def test_every_file_parses_and_has_its_kind(bundle: Bundle) -> None:
    assert len(bundle.databases) == 1
    assert len(bundle.datasets) >= 5
    assert len(bundle.charts) >= 7
    assert len(bundle.dashboards) == 3
    for path, doc in bundle.files.items():
        assert doc["version"] == "1.0.0", path
        assert re.fullmatch(r"[0-9a-f-]{36}", doc["uuid"]), path
    uuids = [d["uuid"] for d in bundle.files.values()]
    assert len(uuids) == len(set(uuids))


def test_the_bundle_is_consistent(bundle: Bundle) -> None:
    assert problems(bundle) == []


def test_every_chart_references_an_existing_dataset_and_its_columns(bundle: Bundle) -> None:
    datasets = {d["uuid"]: d for d in bundle.datasets.values()}
    for path, chart in bundle.charts.items():
        dataset = datasets[chart["dataset_uuid"]]
        columns = {c["column_name"] for c in dataset["columns"]}
        used = chart_columns(chart["params"])
        assert set(used) <= columns, path
        for metric in [chart["params"].get("metric"), *chart["params"].get("metrics", [])]:
            if metric:
                expr = re.sub(r"'[^']*'", "", metric["sqlExpression"].lower())  # not literals
                names = set(re.findall(r"[a-z_][a-z0-9_]*", expr))
                assert names - SQL_WORDS <= columns, f"{path}: {metric['sqlExpression']}"


def test_physical_datasets_declare_exactly_the_source_columns(bundle: Bundle) -> None:
    physical = [d for d in bundle.datasets.values() if not d.get("sql")]
    assert {d["table_name"] for d in physical} == {
        "exam_scores",
        "criterion_transitions",
        *BOARD_VIEWS,
        "collector_status",
        QUEUE_VIEW,
    }
    for ds in physical:
        if ds["table_name"] in {*BOARD_VIEWS, "collector_status", QUEUE_VIEW}:  # against Trino
            continue
        assert [c["column_name"] for c in ds["columns"]] == SOURCES[ds["table_name"]]
        assert ds["schema"] == "grading"


def _identifiers(sql: str) -> set[str]:
    no_strings = re.sub(r"'[^']*'", "''", sql)
    return set(re.findall(r"\b[a-z_][a-z0-9_]*\b", no_strings.lower()))


def test_virtual_datasets_read_only_columns_their_source_has(bundle: Bundle) -> None:
    for path, ds in bundle.datasets.items():
        sql = ds.get("sql")
        if not sql:
            continue
        sources = re.findall(r"iceberg\.grading\.([a-z_]+)", sql)
        assert sources, f"{path}: reads no grading table"
        known = {c for s in sources for c in SOURCES[s]}
        aliases = set(re.findall(r"\bAS\s+([a-z_][a-z0-9_]*)", sql, flags=re.IGNORECASE))
        unknown = _identifiers(sql) - known - aliases - SQL_WORDS - set(sources)
        assert not unknown, f"{path}: reads {sorted(unknown)}, which {sources} do not have"
        declared = [c["column_name"] for c in ds["columns"]]
        for name in declared:
            assert name in aliases or name in known, f"{path}: declares {name}, its SQL gives none"


def test_the_checks_catch_a_broken_bundle(bundle: Bundle) -> None:
    files = copy.deepcopy(dict(bundle.files))
    chart_path = next(p for p in files if p.endswith("charts/part_scores.yaml"))
    files[chart_path]["dataset_uuid"] = "00000000-0000-4000-8000-000000000000"
    grid_path = next(p for p in files if p.endswith("charts/criterion_grid.yaml"))
    files[grid_path]["params"]["x_axis"] = "no_such_column"
    dash_path = next(iter(p for p in files if p.startswith("dashboards/")))
    files[dash_path]["position"]["CHART-extra"] = {
        "type": "CHART",
        "id": "CHART-extra",
        "children": [],
        "meta": {"uuid": "11111111-1111-4111-8111-111111111111"},
    }
    ds_path = next(p for p in files if p.endswith("datasets/proctor_trino/exam_summary.yaml"))
    files[ds_path]["main_dttm_col"] = "gone"
    found = problems(Bundle(files))
    assert any("part_scores.yaml: dataset_uuid" in p for p in found)
    assert any("criterion_grid.yaml: uses column 'no_such_column'" in p for p in found)
    assert any("places chart 11111111" in p for p in found)
    assert any("main_dttm_col gone" in p for p in found)


def test_render_points_the_database_at_this_stack(bundle: Bundle) -> None:
    rendered = render(bundle, trino_settings(StackConfig(host="127.0.0.2", trino_port=28080)))
    (db,) = rendered.databases.values()
    assert db["sqlalchemy_uri"] == "trino://proctor@127.0.0.2:28080/iceberg"
    (original,) = bundle.databases.values()
    assert original["sqlalchemy_uri"] == "trino://proctor@127.0.0.1:18080/iceberg"


@pytest.mark.parametrize(("kind", "metadata_type", "_resource"), KINDS)
def test_each_import_zip_holds_its_kind_and_what_it_needs(
    bundle: Bundle, kind: str, metadata_type: str, _resource: str
) -> None:
    data = zip_kind(bundle, kind, metadata_type)
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        names = zf.namelist()
        meta = yaml.safe_load(zf.read(f"{ROOT}/metadata.yaml"))
    assert meta["type"] == metadata_type and meta["version"] == "1.0.0"
    assert all(n.startswith(ROOT + "/") for n in names)
    tops = {n.split("/")[1] for n in names if n.count("/") > 1}
    order = [k for k, _, _ in KINDS]
    assert tops == set(order[: order.index(kind) + 1])
