"""docker-compose.test.yml describes the same stack, on the same ports, as the local one.

No Docker engine is needed: the file is read as YAML and checked against StackConfig.
Where the compose plugin exists, ``docker compose config`` validates it as well.
"""

from __future__ import annotations

import shutil
import subprocess
from typing import Any

import pytest
import yaml

from services.stack.config import REPO_ROOT, StackConfig
from services.stack.containers import COMPOSE_FILE, SERVICES, container_config

pytestmark = pytest.mark.unit

COMPOSE = REPO_ROOT / COMPOSE_FILE


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE.read_text())
    assert isinstance(data, dict)
    return data


def published(service: dict[str, Any]) -> dict[int, tuple[str, int]]:
    """host port -> (host address, container port) of ``ports`` entries."""
    out: dict[int, tuple[str, int]] = {}
    for entry in service.get("ports", []):
        host, host_port, container_port = str(entry).split(":")
        out[int(host_port)] = (host, int(container_port))
    return out


def test_services_are_the_stack(compose: dict[str, Any]) -> None:
    # Services behind a profile (proctor's own worker and collectors) are not the stack:
    # `proctor stack up --docker` starts only the profile-less ones.
    stack = {n: s for n, s in compose["services"].items() if not s.get("profiles")}
    assert set(stack) == set(SERVICES)
    for name, service in stack.items():
        assert service.get("image"), f"{name} has no image"
        assert ":" in service["image"] and not service["image"].endswith(":latest"), (
            f"{name}: pin an image version"
        )
        assert "healthcheck" in service, f"{name}: `up --wait` needs a health check"


def test_ports_match_the_local_stack_on_loopback_only(compose: dict[str, Any]) -> None:
    config = StackConfig()
    services = compose["services"]
    expected = {
        "redpanda": {config.kafka_port, config.registry_port},
        "postgres": {config.postgres_port},
        "trino": {config.trino_port},
    }
    for name, ports in expected.items():
        mapping = published(services[name])
        assert set(mapping) == ports, name
        assert all(host == "127.0.0.1" for host, _ in mapping.values()), name
    assert published(services["postgres"])[config.postgres_port][1] == 5432
    assert published(services["trino"])[config.trino_port][1] == 8080


def test_redpanda_matches_broker_settings(compose: dict[str, Any]) -> None:
    config = StackConfig()
    command = " ".join(compose["services"]["redpanda"]["command"])
    assert f"external://127.0.0.1:{config.kafka_port}" in command
    assert f"--schema-registry-addr=0.0.0.0:{config.registry_port}" in command
    assert "redpanda.auto_create_topics_enabled=false" in command
    # Redpanda serves the Confluent API at the root of its port.
    assert container_config(config).registry_url == f"http://127.0.0.1:{config.registry_port}"


def test_postgres_matches_catalog_settings(compose: dict[str, Any]) -> None:
    config = StackConfig()
    env = compose["services"]["postgres"]["environment"]
    assert env["POSTGRES_USER"] == config.postgres_user
    assert env["POSTGRES_DB"] == config.postgres_db


def test_trino_catalog_file_exists_and_points_at_compose_postgres(compose: dict[str, Any]) -> None:
    trino = compose["services"]["trino"]
    mounts = [str(v).split(":") for v in trino["volumes"]]
    catalog_dirs = [REPO_ROOT / src for src, dst, *_ in mounts if dst == "/etc/trino/catalog"]
    assert len(catalog_dirs) == 1
    props_file = catalog_dirs[0] / "iceberg.properties"
    props = dict(
        line.split("=", 1)
        for line in props_file.read_text().splitlines()
        if line and not line.startswith("#")
    )
    assert props["connector.name"] == "iceberg"
    assert props["iceberg.catalog.type"] == "jdbc"
    assert props["iceberg.jdbc-catalog.connection-url"] == "jdbc:postgresql://postgres:5432/iceberg"
    assert trino["depends_on"]["postgres"]["condition"] == "service_healthy"


def test_trino_catalog_matches_the_local_one() -> None:
    """The container catalog differs from the local one only in where PostgreSQL is."""
    trino = pytest.importorskip("services.stack.trino")
    local = trino.iceberg_catalog_properties(StackConfig())
    path = REPO_ROOT / "services/stack/docker/trino/catalog/iceberg.properties"
    container = dict(
        line.split("=", 1)
        for line in path.read_text().splitlines()
        if line and not line.startswith("#")
    )
    differ = {k for k in local.keys() | container.keys() if local.get(k) != container.get(k)}
    assert differ == {
        "iceberg.jdbc-catalog.connection-url",
        "iceberg.jdbc-catalog.default-warehouse-dir",
    }


def _compose_tool() -> list[str] | None:
    """``docker compose`` (plugin) or ``docker-compose`` (standalone), whichever exists."""
    if shutil.which("docker"):
        probe = subprocess.run(["docker", "compose", "version"], capture_output=True, check=False)
        if probe.returncode == 0:
            return ["docker", "compose"]
    standalone = shutil.which("docker-compose")
    return [standalone] if standalone else None


def test_compose_tool_accepts_the_file() -> None:
    tool = _compose_tool()
    if tool is None:
        pytest.skip("no docker compose tool installed here; the YAML checks above still ran")
    proc = subprocess.run(
        [*tool, "-f", str(COMPOSE), "config", "--quiet"],
        capture_output=True,
        text=True,
        check=False,
        cwd=REPO_ROOT,
    )
    assert proc.returncode == 0, proc.stderr
