"""The one settings model: names, precedence, the stack's defaults, errors and the docs."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.contract.settings import ClientSettings
from services.errors import ConfigError
from services.grader.settings import FIELDS, GraderSettings
from services.settings import (
    REPO_ROOT,
    SECTIONS,
    KafkaSecurity,
    env_name,
    load_settings,
    named_secret,
    render_table,
    settings_rows,
)

pytestmark = pytest.mark.unit

DOCS = REPO_ROOT / "docs" / "settings.md"


def test_defaults_are_the_local_stacks_documented_addresses() -> None:
    s = load_settings({})
    assert s.kafka.bootstrap == "127.0.0.1:19092"
    assert s.registry.url == "http://127.0.0.1:18081/apis/ccompat/v7"
    assert s.catalog.uri == "postgresql+psycopg2://proctor@127.0.0.1:15432/iceberg"
    assert s.trino.url == "http://127.0.0.1:18080"
    assert s.catalog.warehouse == (REPO_ROOT / ".stack" / "warehouse").as_uri()
    assert s.kafka.security == KafkaSecurity()
    assert s.trust.roster_secret is None and s.kafka.topic_prefix == ""


def test_the_documented_variable_names_are_read() -> None:
    env = {
        "PROCTOR_KAFKA_BOOTSTRAP": "k:9092",
        "PROCTOR_SCHEMA_REGISTRY_URL": "https://r",
        "PROCTOR_TOPIC_PREFIX": "t1.",
        "PROCTOR_CATALOG_URI": "https://rest",
        "PROCTOR_COMMIT_ROWS": "42",
        "PROCTOR_STATIC_MEMBERSHIP": "false",
        "PROCTOR_PLATFORM_ID": "basecamp-alice",
        "PROCTOR_MAX_SKEW_S": "30",
        "PROCTOR_LOG_LEVEL": "DEBUG",
        "PROCTOR_SUPERSET_PORT": "28088",
        "PROCTOR_KAFKA_SECURITY_PROTOCOL": "sasl_plaintext",
        "PROCTOR_KAFKA_SASL_USERNAME": "grader",
        "PROCTOR_KAFKA_SASL_PASSWORD": "pw",
    }
    s = load_settings(env)
    assert (s.kafka.bootstrap, s.registry.url, s.kafka.topic_prefix) == (
        "k:9092",
        "https://r",
        "t1.",
    )
    assert s.grader.commit_rows == 42 and s.grader.static_membership is False
    assert s.collectors.platform_id == "basecamp-alice" and s.trust.max_skew_s == 30.0
    assert s.telemetry.log_level == "DEBUG" and s.superset.port == 28088
    assert s.kafka.security == KafkaSecurity("SASL_PLAINTEXT", username="grader", password="pw")
    assert s.catalog.properties() == {
        "type": "rest",
        "uri": "https://rest",
        "warehouse": s.catalog.warehouse,
    }


def test_flags_win_over_the_environment_and_none_is_no_flag() -> None:
    env = {"PROCTOR_KAFKA_BOOTSTRAP": "env:1", "PROCTOR_TOPIC_PREFIX": "env."}
    s = load_settings(env, {"kafka": {"bootstrap": "flag:2", "topic_prefix": None}})
    assert (s.kafka.bootstrap, s.kafka.topic_prefix) == ("flag:2", "env.")
    # an empty flag is a value (no prefix), an empty variable is unset
    assert load_settings(env, {"kafka": {"topic_prefix": ""}}).kafka.topic_prefix == ""
    assert load_settings({"PROCTOR_KAFKA_BOOTSTRAP": " "}).kafka.bootstrap == "127.0.0.1:19092"


def test_the_stacks_variables_move_the_defaults_but_not_a_setting(tmp_path: Path) -> None:
    env = {
        "PROCTOR_STACK_HOST": "127.0.0.2",
        "PROCTOR_KAFKA_PORT": "29092",
        "PROCTOR_TRINO_PORT": "28080",
        "PROCTOR_STACK_DIR": str(tmp_path),
    }
    s = load_settings(env)
    assert s.kafka.bootstrap == "127.0.0.2:29092" and s.trino.url == "http://127.0.0.2:28080"
    assert s.catalog.warehouse == (tmp_path / "warehouse").as_uri()
    assert s.collectors.state_dir == tmp_path / "collectors"
    assert s.grader.data_dir == str(tmp_path / "grader")
    moved = load_settings({**env, "PROCTOR_KAFKA_BOOTSTRAP": "k:1", "PROCTOR_DATA_DIR": "/d"})
    assert moved.kafka.bootstrap == "k:1" and moved.grader.data_dir == "/d"


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"PROCTOR_COMMIT_ROWS": "0"}, "PROCTOR_COMMIT_ROWS"),
        ({"PROCTOR_COMMIT_ROWS": "many"}, "PROCTOR_COMMIT_ROWS"),
        ({"PROCTOR_TABLE": "no_namespace"}, "PROCTOR_TABLE"),
        ({"PROCTOR_STORE": "disk"}, "PROCTOR_STORE"),
        ({"PROCTOR_SUPERSET_PORT": "70000"}, "PROCTOR_SUPERSET_PORT"),
        ({"PROCTOR_KAFKA_SECURITY_PROTOCOL": "SASL_SSL"}, "PROCTOR_KAFKA_SASL_USERNAME"),
        ({"PROCTOR_KAFKA_SECURITY_PROTOCOL": "TLS"}, "PROCTOR_KAFKA_SECURITY_PROTOCOL"),
    ],
)
def test_a_bad_setting_is_a_config_error_naming_its_variable(
    env: dict[str, str], named: str
) -> None:
    with pytest.raises(ConfigError, match=named):
        load_settings(env)


def test_secrets_stay_out_of_reprs() -> None:
    env = {
        "PROCTOR_ROSTER_SECRET": "roster-secret-0123456789",  # gitleaks:allow (test data)
        "PROCTOR_SCHEMA_REGISTRY_USER_INFO": "u:registry-pw",
        "PROCTOR_JUDGE_API_KEY": "judge-key",
        "PROCTOR_KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
        "PROCTOR_KAFKA_SASL_USERNAME": "u",
        "PROCTOR_KAFKA_SASL_PASSWORD": "kafka-pw",
        "UNRELATED_TOKEN": "other-secret",
    }
    s = load_settings(env)
    text = repr(s) + str(s) + repr(GraderSettings.of(s)) + repr(ClientSettings.of(s))
    for secret in ("roster-secret", "registry-pw", "judge-key", "kafka-pw", "other-secret"):
        assert secret not in text
    assert s.trust.as_env()["PROCTOR_ROSTER_SECRET"] == "roster-secret-0123456789"
    assert "environ" not in s.model_dump()


def test_named_secrets_come_from_the_settings_environment() -> None:
    s = load_settings({"SUPERSET_PASSWORD": "pw"})
    assert s.secret("SUPERSET_PASSWORD", "superset password") == "pw"
    assert s.secret(None, "nothing named") is None
    with pytest.raises(ConfigError, match="ABSENT_PASSWORD is not set"):
        s.secret("ABSENT_PASSWORD", "superset password")
    assert named_secret("X", "x", {"X": "y"}) == "y"


def test_the_views_read_the_same_settings() -> None:
    env = {
        "PROCTOR_KAFKA_BOOTSTRAP": "k:1",
        "PROCTOR_COMMIT_ROWS": "9",
        "PROCTOR_TRINO_URL": "https://t",
    }
    s = load_settings(env)
    grader = GraderSettings.of(s)
    client = ClientSettings.of(s)
    assert grader.kafka_bootstrap == client.bootstrap == "k:1"
    assert grader.commit_rows == 9 and grader.trino_settings() == s.trino
    assert grader.catalog_settings() == s.catalog
    for flat, (section, name) in FIELDS.items():
        assert getattr(grader, flat) == getattr(getattr(s, section), name), flat


def test_every_grader_field_is_its_sections_variable() -> None:
    """The worker's flat names keep the variables the docs and manifests use."""
    for flat, (section, name) in FIELDS.items():
        var = env_name(SECTIONS[section], name)
        if var is not None and var.startswith("PROCTOR_"):
            assert var == f"PROCTOR_{flat.upper()}", (flat, var)


def test_every_section_field_names_a_variable() -> None:
    for section in SECTIONS.values():
        for name in section.model_fields:
            assert env_name(section, name) or name == "security", f"{section.__name__}.{name}"
    variables = [row[0] for row in settings_rows()]
    assert len(variables) == len(set(variables)), "a variable serves two settings"


def test_the_docs_list_every_setting() -> None:
    """docs/settings.md holds the table this module renders (regenerate it with
    ``python -c 'from services.settings import render_table; print(render_table())'``)."""
    assert render_table() in DOCS.read_text(encoding="utf-8")
