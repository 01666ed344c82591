"""`proctor collect all --config`: several collectors from one YAML file, as a process."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[3]


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "services.cli", "collect", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_collect_all_runs_each_configured_source(
    env, tmp_path: Path, platform_id: str, kafka_bootstrap: str, new_topic
) -> None:
    rules = tmp_path / "rules.json"
    rules.write_text(
        json.dumps(
            {"tables": [{"table": "customers", "columns": [{"name": "email", "mask": "'x'"}]}]}
        )
    )
    cdc = new_topic("cdc")
    config = {
        "platform_id": platform_id,
        "state_dir": str(tmp_path / "state"),
        "kafka": {
            "bootstrap": env.settings.bootstrap,
            "registry_url": env.settings.registry_url,
            "topic_prefix": env.prefix,
        },
        "sources": {
            "trino-rules": {"path": str(rules), "interval_s": 5},
            "cdc-offsets": {"bootstrap": kafka_bootstrap, "topics": [cdc]},
        },
    }
    path = tmp_path / "collectors.yaml"
    path.write_text(yaml.safe_dump(config))
    done = _run("all", "--config", str(path), "--once")
    assert done.returncode == 0, done.stderr[-2000:]
    assert [e.data["column"] for e in env.read("platform.trino", platform_id)] == ["email"]
    assert [e.data["topic"] for e in env.read("platform.cdc-offsets", platform_id)] == [cdc]
    beats = env.read("platform.collectors", platform_id)
    assert sorted(b.data["collector"] for b in beats) == ["cdc-offsets", "trino"]
    assert all(b.data["healthy"] for b in beats)
    assert sorted(p.name for p in (tmp_path / "state").iterdir()) == [
        f"cdc-offsets--{platform_id}.json",
        f"trino-rules--{platform_id}.json",
    ]


@pytest.mark.parametrize(
    ("sources", "message"),
    [
        (
            {"dbt": {"pth": "/tmp"}},
            "sources.dbt: path: Field required; pth: Extra inputs are not permitted",
        ),
        ({"nope": {}}, "unknown source 'nope'"),
        (
            {
                "superset": {
                    "url": "http://127.0.0.1:9",
                    "username": "u",
                    "password_env": "PROCTOR_TEST_UNSET_PW",
                }
            },
            "PROCTOR_TEST_UNSET_PW is not set",
        ),
    ],
)
def test_bad_config_is_a_clear_error(tmp_path: Path, sources: dict, message: str) -> None:
    path = tmp_path / "collectors.yaml"
    path.write_text(yaml.safe_dump({"platform_id": "basecamp-x", "sources": sources}))
    done = _run("all", "--config", str(path), "--once")
    assert done.returncode != 0
    assert message in done.stderr
    assert "Traceback" not in done.stderr
