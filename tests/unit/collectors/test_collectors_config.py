"""The example collectors config stays valid against every source's Settings."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.collectors.runner import polling_module
from services.collectors.settings import load_config, parse_model
from services.errors import ConfigError

pytestmark = pytest.mark.unit

EXAMPLE = (
    Path(__file__).resolve().parents[3] / "services" / "collectors" / "collectors.example.yaml"
)


def test_example_config_parses_for_every_polling_source() -> None:
    config = load_config(EXAMPLE)
    assert config.platform_id == "basecamp-alice" and config.metrics_port == 9464
    assert set(config.sources) == {
        "cdc-offsets",
        "schemas",
        "iceberg",
        "flink",
        "dbt",
        "superset",
        "trino-rules",
        "observability",
        "access-logs",
    }
    for name, raw in config.sources.items():
        module = polling_module(name)
        settings = parse_model(module.Settings, raw, name)
        assert settings.interval_s > 0


def test_config_errors_name_the_problem(tmp_path: Path) -> None:
    bad = tmp_path / "c.yaml"
    bad.write_text("platform_id: p\nsources: {}\n")
    with pytest.raises(ConfigError, match=r"sources: .*at least 1"):
        load_config(bad)
    bad.write_text("- not a mapping\n")
    with pytest.raises(ConfigError, match="expected a mapping"):
        load_config(bad)
    with pytest.raises(ConfigError, match="cannot read collectors config"):
        load_config(tmp_path / "missing.yaml")
    with pytest.raises(ConfigError, match="is not a polling collector"):
        polling_module("argocd")
