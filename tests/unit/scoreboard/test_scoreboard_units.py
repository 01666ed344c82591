"""Pure parts of the scoreboard: Superset settings and secrets, the terminal table, the
demo's live-versus-replay comparison, the health rows."""

from __future__ import annotations

import stat
from datetime import UTC, datetime
from pathlib import Path

import pytest
from rich.console import Console

from services.errors import ConfigError
from services.scoreboard.health import HEALTH_SCHEMA, TopicHealth, to_arrow
from services.scoreboard.watch import ExamRow, _explain, render
from services.stack.config import StackConfig
from services.stack.demo import Expected, differences
from services.stack.superset import (
    PASSWORD_ENV,
    REQUIREMENTS,
    SupersetComponent,
    SupersetSettings,
    _secret_file,
    render_config,
    venv_dir,
)

pytestmark = pytest.mark.unit


def test_superset_settings_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PROCTOR_SUPERSET_PORT", raising=False)
    monkeypatch.delenv("PROCTOR_SUPERSET_USER", raising=False)
    assert SupersetSettings.from_env() == SupersetSettings(18088, "admin")
    monkeypatch.setenv("PROCTOR_SUPERSET_PORT", "28088")
    monkeypatch.setenv("PROCTOR_SUPERSET_USER", "proctor")
    assert SupersetSettings.from_env() == SupersetSettings(28088, "proctor")
    monkeypatch.setenv("PROCTOR_SUPERSET_PORT", "eighty")
    with pytest.raises(ConfigError, match=r"superset\.port \(PROCTOR_SUPERSET_PORT\)"):
        SupersetSettings.from_env()
    monkeypatch.setenv("PROCTOR_SUPERSET_PORT", "70000")
    with pytest.raises(ConfigError, match=r"PROCTOR_SUPERSET_PORT\): .*65535"):
        SupersetSettings.from_env()
    monkeypatch.setenv("PROCTOR_SUPERSET_PORT", "18088")
    monkeypatch.setenv("PROCTOR_SUPERSET_USER", "  ")  # empty is unset, as for every variable
    assert SupersetSettings.from_env().user == "admin"


def test_secrets_come_from_env_else_a_0600_file_that_is_reused(tmp_path: Path) -> None:
    path = tmp_path / "s" / "admin-password"
    assert _secret_file(path, "from-env", 18) == "from-env"
    assert not path.exists()  # an environment secret is never written down
    made = _secret_file(path, None, 18)
    assert len(made) >= 20
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert _secret_file(path, None, 18) == made
    assert _secret_file(path, "", 18) == made


def test_password_source_names_where_the_password_is(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    component = SupersetComponent(
        StackConfig(state_dir=tmp_path), SupersetSettings(), cache=tmp_path
    )
    monkeypatch.delenv(PASSWORD_ENV, raising=False)
    assert component.password_source() == str(tmp_path / "superset" / "admin-password")
    first = component.password()
    assert component.password() == first
    monkeypatch.setenv(PASSWORD_ENV, "test-password-from-env")
    assert component.password() == "test-password-from-env"
    assert component.password_source() == f"env {PASSWORD_ENV}"


def test_the_venv_is_keyed_by_the_pinned_requirements(tmp_path: Path) -> None:
    req = tmp_path / "req.txt"
    req.write_text("apache-superset==6.1.0\n")
    a = venv_dir(tmp_path, req)
    req.write_text("apache-superset==6.1.0\nrich==15.0.0\n")
    assert venv_dir(tmp_path, req) != a
    pins = [
        line for line in REQUIREMENTS.read_text().splitlines() if line and not line.startswith("#")
    ]
    assert all("==" in line for line in pins)
    names = {line.split("==")[0] for line in pins}
    assert {
        "apache-superset",
        "trino",
        "sqlalchemy",
        "rich",
        "cachetools",
        "flask-caching",
        "gunicorn",
    } <= names
    versions = dict(line.split("==") for line in pins)
    assert versions["apache-superset"] == "6.1.0"
    assert versions["sqlalchemy"].startswith("1.4.")
    assert tuple(int(x) for x in versions["flask-caching"].split(".")[:2]) < (2, 4)


def test_the_config_keeps_secrets_out_and_data_uncached(tmp_path: Path) -> None:
    text = render_config(tmp_path / "superset.db")
    assert 'SECRET_KEY = os.environ["PROCTOR_SUPERSET_SECRET_KEY"]' in text
    assert f"sqlite:///{tmp_path}/superset.db" in text
    assert '"NullCache"' in text
    compile(text, "superset_config.py", "exec")


def test_the_command_binds_loopback_only(tmp_path: Path) -> None:
    component = SupersetComponent(
        StackConfig(state_dir=tmp_path), SupersetSettings(port=18099), cache=tmp_path
    )
    argv = list(component.command())
    assert argv[argv.index("--bind") + 1] == "127.0.0.1:18099"
    assert (
        component.dashboard_url() == "http://127.0.0.1:18099/superset/dashboard/proctor-scoreboard/"
    )
    assert not component.healthy()  # nothing listens there


def _row(**kw: object) -> ExamRow:
    base: dict[str, object] = dict(
        exam_id="exam-1",
        candidate_id="alice",
        platform_id="basecamp-alice",
        part_1=42.0,
        part_2=36.0,
        part_3=22.0,
        total_score=100.0,
        total_pct=100.0,
        passed=True,
        verdict="pass",
        met=32,
        failed=0,
        unknown=0,
        root_cause="met",
        root_cause_minutes=50,
        last_graded_at=None,
    )
    base.update(kw)
    return ExamRow(**base)  # type: ignore[arg-type]


def test_the_terminal_table_shows_parts_total_and_verdict() -> None:
    console = Console(width=200, record=True)
    console.print(
        render(
            [
                _row(),
                _row(
                    exam_id="exam-2",
                    candidate_id="bob",
                    part_1=38.0,
                    total_pct=96.0,
                    passed=False,
                    verdict="fail",
                    failed=4,
                    root_cause_minutes=None,
                ),
            ]
        )
    )
    text = console.export_text()
    assert "alice" in text and "bob" in text
    assert " 42 │" in text and " 38 │" in text
    assert "100.0" in text and "96.0" in text
    assert "pass" in text and "fail" in text
    assert "met (50 min)" in text
    empty = Console(width=200, record=True)
    empty.print(render([], note="waiting"))
    assert "no exam graded yet" in empty.export_text()


def test_trino_errors_become_advice() -> None:
    missing = Exception("line 1:8: Table 'iceberg.grading.exam_scores' does not exist")
    assert "start the grader" in _explain(missing)
    assert _explain(Exception("boom")) == "cannot query Trino: boom"


def test_differences_between_live_and_replay() -> None:
    expected = Expected(
        {"e1": {"p1.a": ("met", 2.0), "p1.b": ("pending", 0.0), "p1.c": ("failed", 0.0)}}
    )
    assert differences(expected, {"e1": {"p1.a": ("met", 2.0), "p1.c": ("failed", 0.0)}}) == []
    found = differences(expected, {"e1": {"p1.a": ("partial", 1.0)}})
    assert found == [
        "e1 p1.a: live partial 1, replay met 2",
        "e1 p1.c: live pending 0, replay failed 0",
    ]
    assert len(differences(expected, {})) == 2


def test_health_rows_match_the_table_schema() -> None:
    at = datetime(2026, 11, 27, 9, tzinfo=UTC)
    rows = [
        TopicHealth("exam.control", "input", 10, 7, 3),
        TopicHealth("grading.dlq", "dlq", 2, None, None),
    ]
    table = to_arrow(rows, "proctor-grader", at, HEALTH_SCHEMA.as_arrow())
    assert table.num_rows == 2
    assert table.column("lag").to_pylist() == [3, None]
    assert table.column("kind").to_pylist() == ["input", "dlq"]
