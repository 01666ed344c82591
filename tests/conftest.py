"""Session fixtures that give tests the real stack.

A test asks for what it needs (``kafka_bootstrap``, ``registry_url``, or
``stack.require("trino")``); the session reuses components that already run and starts
the missing ones, then stops at the end only what it started itself. Unit tests ask for
none of these, so ``pytest -m unit`` never touches the stack.

``PROCTOR_SKIP_STACK=1`` skips every test that needs the stack, with that reason;
without it the stack is started, so CI runs the integration tests for real.
``PROCTOR_STACK_MODE=docker`` uses docker-compose.test.yml (Redpanda) instead.
"""

from __future__ import annotations

import os
import re
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from services.stack.config import StackConfig

SKIP_REASON = (
    "PROCTOR_SKIP_STACK=1: this test needs the local stack; unset it to let the session "
    "start the stack (or run `proctor stack up` first)"
)


def _progress(message: str) -> None:
    # Starting the stack can take a while on a cold machine; show why the session waits.
    print(f"[stack] {message}", file=sys.__stderr__, flush=True)


def _docker_mode() -> bool:
    return os.environ.get("PROCTOR_STACK_MODE", "local").strip().lower() == "docker"


class StackSession:
    """Starts components on demand and remembers which ones it started."""

    def __init__(self, config: StackConfig) -> None:
        from services.stack.manager import StackManager

        self.config = config
        self.manager = StackManager(config, progress=_progress)
        self.started: list[str] = []
        self._docker_started = False

    def require(self, *names: str) -> StackConfig:
        """Make sure ``names`` (and what they need) run and are healthy."""
        if _docker_mode():
            self._require_docker()
            return self.config
        for component in self.manager.plan(list(names)):
            was_running = component.pid() is not None
            component.start(_progress)
            if not was_running and component.name not in self.started:
                self.started.append(component.name)
        return self.config

    def _require_docker(self) -> None:
        from services.stack.containers import DockerStack

        docker = DockerStack(self.config)
        if not all(row.healthy for row in docker.status()):
            docker.up(_progress)
            self._docker_started = True

    def close(self) -> None:
        if self._docker_started:
            from services.stack.containers import DockerStack

            DockerStack(self.config).down(_progress)
        for name in reversed(self.started):
            self.manager.get(name).stop(_progress)


@pytest.fixture(scope="session")
def stack_config() -> StackConfig:
    """Addresses of the stack (from PROCTOR_* variables, defaults otherwise)."""
    config = StackConfig.from_env()
    if _docker_mode():
        from services.stack.containers import container_config

        config = container_config(config)
    return config


@dataclass(frozen=True)
class TrustEnv:
    """The session's keys (docs/trust.md): every worker and publisher a test starts,
    in-process or as a subprocess, inherits them through the environment."""

    directory: Path
    proctor: Any  # services.trust.keys.SigningKey
    submission: Any
    keyring_path: Path
    master: bytes


TRUST_VARS = (
    "PROCTOR_SIGNING_KEY",
    "PROCTOR_SIGNING_KEY_ID",
    "PROCTOR_TRUSTED_KEYS",
    "PROCTOR_ROSTER_SECRET",
)


@pytest.fixture(scope="session")
def trust_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TrustEnv]:
    """A proctor key, a submission key and a roster master secret in a private tmp dir,
    exported as PROCTOR_SIGNING_KEY(_ID), PROCTOR_TRUSTED_KEYS, PROCTOR_ROSTER_SECRET."""
    import secrets

    from services.trust.keys import Keyring, generate, write_private_key

    directory = tmp_path_factory.mktemp("trust")
    directory.chmod(0o700)
    proctor = generate("proctor")
    submission = generate("submission")
    path = write_private_key(proctor, directory)
    write_private_key(submission, directory)
    keyring_path = directory / "trusted-keys"
    keyring_path.write_text(
        "\n".join(k.line() for k in Keyring.of(proctor, submission)) + "\n", encoding="utf-8"
    )
    master = secrets.token_hex(32)
    saved = {name: os.environ.get(name) for name in TRUST_VARS}
    os.environ.update(
        {
            "PROCTOR_SIGNING_KEY": str(path),
            "PROCTOR_SIGNING_KEY_ID": proctor.key_id,
            "PROCTOR_TRUSTED_KEYS": str(keyring_path),
            "PROCTOR_ROSTER_SECRET": master,
        }
    )
    try:
        yield TrustEnv(directory, proctor, submission, keyring_path, master.encode())
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@pytest.fixture(scope="session")
def stack(stack_config: StackConfig, trust_env: TrustEnv) -> Iterator[StackSession]:
    """The running stack; ``stack.require(name, ...)`` starts components on demand."""
    if os.environ.get("PROCTOR_SKIP_STACK") == "1":
        pytest.skip(SKIP_REASON)
    session = StackSession(stack_config)
    try:
        yield session
    finally:
        session.close()


@pytest.fixture(scope="session")
def kafka_bootstrap(stack: StackSession) -> str:
    """bootstrap.servers of the running Kafka-API broker."""
    return stack.require("kafka").kafka_bootstrap


@pytest.fixture(scope="session")
def registry_url(stack: StackSession) -> str:
    """Base URL of the Confluent-compatible schema registry (for SchemaRegistryClient)."""
    return stack.require("registry").registry_url


@pytest.fixture
def unique_name(request: pytest.FixtureRequest) -> Callable[[str], str]:
    """``unique_name("orders")`` -> a topic/subject-safe name no other test or run uses."""
    test = re.sub(r"[^A-Za-z0-9_-]+", "-", request.node.name).strip("-")[:40]

    def make(prefix: str = "t") -> str:
        return f"{prefix}.{test}.{uuid.uuid4().hex[:10]}"

    return make


@pytest.fixture
def new_topic(
    kafka_bootstrap: str, unique_name: Callable[[str], str]
) -> Iterator[Callable[..., str]]:
    """``new_topic(prefix, partitions=1, config=None)`` creates a unique topic (auto-create
    is off on the stack); every topic made this way is deleted after the test."""
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    made: list[str] = []

    def create(prefix: str = "t", partitions: int = 1, config: dict[str, str] | None = None) -> str:
        name = unique_name(prefix)
        futures = admin.create_topics(
            [NewTopic(name, num_partitions=partitions, replication_factor=1, config=config or {})],
            operation_timeout=30,
        )
        futures[name].result(timeout=30)
        made.append(name)
        return name

    yield create
    if made:
        for future in admin.delete_topics(made, operation_timeout=30).values():
            future.result(timeout=30)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests that stop a shared component (the catalog's PostgreSQL also stores the
    registry's schemas) run last, so a component slow to recover harms no other test."""
    items.sort(key=lambda item: item.get_closest_marker("disruptive") is not None)
