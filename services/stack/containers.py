"""The stack as containers, for machines with a Docker engine.

``docker-compose.test.yml`` (repo root) describes Redpanda with its built-in schema
registry, PostgreSQL and Trino on the same loopback ports as the local stack; this module
drives it through testcontainers' compose wrapper (``docker compose up --wait``), so
tests and ``proctor stack up --docker`` see the same addresses. Redpanda's registry
serves the Confluent API at its root, hence ``registry_path=""``.

This path needs a Docker engine and the compose plugin; the development machines of
this project have neither, so it is checked only by a unit test that reads the compose
file, not by running it.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
from typing import TYPE_CHECKING

from services.errors import StackError
from services.stack.component import Progress, Status
from services.stack.config import REPO_ROOT, StackConfig

if TYPE_CHECKING:
    from testcontainers.compose import DockerCompose

COMPOSE_FILE = "docker-compose.test.yml"
#: compose service -> how StackConfig names its address
SERVICES = ("redpanda", "postgres", "trino")


def docker_available(timeout: float = 10.0) -> bool:
    """True when a Docker engine answers ``docker info``."""
    docker = shutil.which("docker")
    if docker is None:
        return False
    try:
        proc = subprocess.run([docker, "info"], capture_output=True, timeout=timeout, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return proc.returncode == 0


def container_config(config: StackConfig) -> StackConfig:
    """The local config with Redpanda's registry path (same host and ports)."""
    return dataclasses.replace(config, registry_path="")


class DockerStack:
    """``docker compose`` over docker-compose.test.yml, via testcontainers."""

    def __init__(self, config: StackConfig) -> None:
        self.config = container_config(config)

    def _compose(self) -> DockerCompose:
        if not docker_available():
            raise StackError(
                "no Docker engine answers `docker info`; start Docker or run the local "
                "stack with `proctor stack up` (no --docker)"
            )
        from testcontainers.compose import DockerCompose

        return DockerCompose(context=REPO_ROOT, compose_file_name=COMPOSE_FILE, wait=True)

    def _addresses(self) -> dict[str, str]:
        c = self.config
        return {
            "redpanda": f"{c.kafka_bootstrap} + {c.registry_url}",
            "postgres": f"{c.host}:{c.postgres_port}",
            "trino": c.trino_url,
        }

    def up(self, progress: Progress) -> list[Status]:
        compose = self._compose()
        # Trino sees the warehouse at the host's path, so file:// locations agree.
        warehouse = self.config.state_dir / "warehouse"
        warehouse.mkdir(parents=True, exist_ok=True)
        os.environ["PROCTOR_WAREHOUSE_DIR"] = str(warehouse)
        progress(f"docker: compose up --wait ({COMPOSE_FILE})")
        try:
            compose.start()
        except subprocess.CalledProcessError as exc:
            raise StackError(f"docker compose up failed (exit {exc.returncode})") from exc
        from services.stack.catalog import ensure_catalog_tables

        ensure_catalog_tables(self.config)
        return self.status()

    def down(self, progress: Progress) -> None:
        progress(f"docker: compose down ({COMPOSE_FILE})")
        try:
            self._compose().stop(down=True)
        except subprocess.CalledProcessError as exc:
            raise StackError(f"docker compose down failed (exit {exc.returncode})") from exc

    def status(self) -> list[Status]:
        running = {c.Service: c for c in self._compose().get_containers(include_all=True)}
        rows = []
        for service, address in self._addresses().items():
            container = running.get(service)
            state = (container.State or "") if container else ""
            health = (container.Health or "") if container else ""
            rows.append(
                Status(
                    service,
                    address,
                    running=state == "running",
                    healthy=state == "running" and health in ("", "healthy"),
                    pid=None,
                    detail=f"container {container.Name}" if container else "no container",
                )
            )
        return rows
