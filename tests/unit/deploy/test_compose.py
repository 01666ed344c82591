"""docker-compose.test.yml: valid per the Compose Specification, and proctor's services right.

No Docker engine runs here, so ``docker compose config`` cannot; instead the file is
validated against the Compose Specification's JSON schema, the one the compose tool
itself embeds (module github.com/compose-spec/compose-go/v2 at the version of
tools/go.mod, fetched by ``go mod download`` into the Go module cache), plus the cross-references the tool checks after
the schema (dependencies exist, a profile-less service needs no profiled one); the full
load, as ``docker compose config`` does it, is tools/composecheck in
scripts/check-manifests.sh. Then the
services this project adds: built from the Dockerfile, pinned to the package version,
hardened as in Kubernetes, real commands, settings the services read, no secret values.
"""

from __future__ import annotations

import copy
import json
import re
import shutil
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from services import __version__
from services.cli import COMMANDS
from services.collectors.cli import SOURCES
from services.collectors.settings import load_config
from services.stack.containers import COMPOSE_FILE, SERVICES

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[3]
COMPOSE = REPO / COMPOSE_FILE
#: The compose library whose embedded schema is the Compose Specification; its version is
#: the one tools/composecheck builds with (tools/go.mod).
COMPOSE_GO_MODULE = "github.com/compose-spec/compose-go/v2"
PROCTOR = {
    "proctor-topics",
    "proctor-schemas",
    "proctor-worker",
    "proctor-receivers",
    "proctor-pollers",
}
SECRETISH = re.compile(r"PASSWORD|SECRET|TOKEN|USER_INFO", re.I)


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE.read_text())
    assert isinstance(data, dict)
    return data


@cache
def compose_spec() -> dict[str, Any]:
    if shutil.which("go") is None:
        pytest.skip(
            "Go is not installed: the Compose Specification schema comes from the Go module cache"
        )
    pinned = re.search(
        rf"{re.escape(COMPOSE_GO_MODULE)} (v\S+)", (REPO / "tools" / "go.mod").read_text()
    )
    assert pinned, f"tools/go.mod does not require {COMPOSE_GO_MODULE}"
    module = f"{COMPOSE_GO_MODULE}@{pinned.group(1)}"
    proc = subprocess.run(
        ["go", "mod", "download", "-json", module], capture_output=True, text=True, check=False
    )
    info = json.loads(proc.stdout or "{}")
    assert proc.returncode == 0 and "Dir" in info, (
        f"go mod download {module}: {info.get('Error') or proc.stderr}"
    )
    schema: dict[str, Any] = json.loads(
        (Path(info["Dir"]) / "schema" / "compose-spec.json").read_text()
    )
    return schema


def spec_errors(data: dict[str, Any]) -> list[str]:
    schema = compose_spec()
    validator_cls = jsonschema.validators.validator_for(schema)
    validator = validator_cls(schema, format_checker=validator_cls.FORMAT_CHECKER)
    return [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(data)
    ]


def test_the_file_follows_the_compose_specification(compose: dict[str, Any]) -> None:
    assert spec_errors(compose) == []


@pytest.mark.parametrize(
    ("where", "key", "value"),
    [
        ("proctor-worker", "healtcheck", {"test": ["CMD", "true"]}),  # misspelt key
        ("proctor-worker", "read_only", ["yes"]),  # wrong type
        ("proctor-pollers", "depends_on", {"proctor-topics": {"condition": "service_finished"}}),
        ("proctor-receivers", "ports", [{"target": 18090, "hostip": "127.0.0.1"}]),  # host_ip
    ],
)
def test_the_schema_rejects_a_broken_copy(
    compose: dict[str, Any], where: str, key: str, value: Any
) -> None:
    broken = copy.deepcopy(compose)
    broken["services"][where][key] = value
    assert spec_errors(broken), f"{where}.{key}={value!r} was accepted"


def test_dependencies_exist_and_respect_profiles(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name, service in services.items():
        for dep, how in (service.get("depends_on") or {}).items():
            assert dep in services, f"{name} depends on unknown service {dep}"
            if not service.get("profiles"):
                assert not services[dep].get("profiles"), (
                    f"{name} (always on) depends on profiled {dep}"
                )
            if how.get("condition") == "service_completed_successfully":
                assert services[dep].get("restart", "no") == "no", (
                    f"{dep} is a one-shot: restart no"
                )
            if how.get("condition") == "service_healthy":
                hc = services[dep].get("healthcheck") or {}
                assert hc.get("test") and not hc.get("disable"), (
                    f"{dep} has no health check to wait for"
                )


def test_the_stack_services_are_kept(compose: dict[str, Any]) -> None:
    assert set(SERVICES) <= set(compose["services"])
    assert set(compose["services"]) - set(SERVICES) == PROCTOR
    for name in SERVICES:
        assert not compose["services"][name].get("profiles"), f"{name} must start without a profile"


@pytest.mark.parametrize("name", sorted(PROCTOR))
def test_proctor_services_are_built_hardened_and_opt_in(compose: dict[str, Any], name: str) -> None:
    service = compose["services"][name]
    assert service["profiles"] == ["proctor"], "`proctor stack up --docker` must not start it"
    assert service["image"] == f"proctor:{__version__}"
    assert service["build"]["context"] == "."
    assert (REPO / service["build"]["dockerfile"]).is_file()
    assert service["read_only"] is True
    assert any(str(t).split(":")[0] == "/tmp" for t in service["tmpfs"])
    assert service["cap_drop"] == ["ALL"]
    assert "no-new-privileges:true" in service["security_opt"]
    for port in service.get("ports", []):
        assert str(port).startswith("127.0.0.1:"), f"{name}: publish on loopback only"


@pytest.mark.parametrize("name", sorted(PROCTOR))
def test_proctor_services_run_real_commands(compose: dict[str, Any], name: str) -> None:
    command = compose["services"][name]["command"]
    assert command[0] in COMMANDS
    if command[0] == "collect":
        assert command[1] in SOURCES


@pytest.mark.parametrize("name", sorted(PROCTOR))
def test_environment_is_known_and_secret_free(
    compose: dict[str, Any], known_settings: set[str], name: str
) -> None:
    env = compose["services"][name]["environment"]
    assert set(env) <= known_settings, (
        f"{name}: no service reads {sorted(set(env) - known_settings)}"
    )
    for key, value in env.items():
        if SECRETISH.search(key):
            assert value is None, f"{name}: {key} must come from the host environment, not the file"


def _listens_on(compose: dict[str, Any], name: str) -> int:
    service = compose["services"][name]
    if name == "proctor-pollers":
        mount = next(
            v for v in service["volumes"] if v.endswith(":/etc/proctor/collectors.yaml:ro")
        )
        config = load_config(REPO / mount.split(":")[0])
        assert config.metrics_port is not None
        return config.metrics_port
    return int(service["environment"]["PROCTOR_HTTP_PORT"])


@pytest.mark.parametrize("name", ["proctor-worker", "proctor-receivers", "proctor-pollers"])
def test_health_checks_ask_the_port_the_service_listens_on(
    compose: dict[str, Any], name: str
) -> None:
    port = _listens_on(compose, name)
    test = " ".join(compose["services"][name]["healthcheck"]["test"])
    assert re.search(rf"http://127\.0\.0\.1:{port}/(healthz|readyz|metrics)", test), test
    published = [
        p for p in compose["services"][name].get("ports", []) if str(p).endswith(f":{port}")
    ]
    if name != "proctor-pollers":  # the pollers' metrics stay on the container's loopback
        assert published, f"{name}: publish {port} on 127.0.0.1"


def test_worker_waits_for_topics_schemas_and_the_catalog(compose: dict[str, Any]) -> None:
    deps = compose["services"]["proctor-worker"]["depends_on"]
    assert deps["proctor-topics"]["condition"] == "service_completed_successfully"
    assert deps["proctor-schemas"]["condition"] == "service_completed_successfully"
    assert deps["postgres"]["condition"] == deps["trino"]["condition"] == "service_healthy"
    assert compose["services"]["proctor-topics"]["command"][:2] == ["topics", "create"]
    assert compose["services"]["proctor-schemas"]["command"] == ["schemas", "register"]
