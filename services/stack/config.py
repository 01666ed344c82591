"""Where the local stack lives and listens. Read from the environment only at entry points."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True, slots=True)
class StackConfig:
    """Addresses and directories of the local stack.

    Ports are away from the usual defaults so the stack can sit beside a system
    PostgreSQL or another Kafka on a developer's machine.
    """

    state_dir: Path = REPO_ROOT / ".stack"
    host: str = "127.0.0.1"
    kafka_port: int = 19092
    kafka_controller_port: int = 19093
    #: the secured broker (SASL_SSL + ACLs), beside the plaintext one
    kafka_secure_port: int = 19094
    kafka_secure_controller_port: int = 19095
    registry_port: int = 18081
    postgres_port: int = 15432
    trino_port: int = 18080
    #: path of the Confluent-compatible API under the registry's port (Apicurio's
    #: ccompat API locally; empty for Redpanda's built-in registry in containers)
    registry_path: str = "/apis/ccompat/v7"
    postgres_user: str = "proctor"
    postgres_db: str = "iceberg"
    java17_home: Path = Path("/usr/lib/jvm/java-17-openjdk-amd64")
    java25_home: Path = Path("/usr/lib/jvm/temurin-25-jdk-amd64")

    @classmethod
    def from_env(cls) -> StackConfig:
        env = os.environ
        base = cls()
        return cls(
            state_dir=Path(env.get("PROCTOR_STACK_DIR", str(base.state_dir))),
            host=env.get("PROCTOR_STACK_HOST", base.host),
            kafka_port=int(env.get("PROCTOR_KAFKA_PORT", base.kafka_port)),
            kafka_controller_port=int(
                env.get("PROCTOR_KAFKA_CONTROLLER_PORT", base.kafka_controller_port)
            ),
            kafka_secure_port=int(env.get("PROCTOR_KAFKA_SECURE_PORT", base.kafka_secure_port)),
            kafka_secure_controller_port=int(
                env.get("PROCTOR_KAFKA_SECURE_CONTROLLER_PORT", base.kafka_secure_controller_port)
            ),
            registry_port=int(env.get("PROCTOR_REGISTRY_PORT", base.registry_port)),
            postgres_port=int(env.get("PROCTOR_POSTGRES_PORT", base.postgres_port)),
            trino_port=int(env.get("PROCTOR_TRINO_PORT", base.trino_port)),
            registry_path=env.get("PROCTOR_REGISTRY_PATH", base.registry_path),
            java17_home=Path(env.get("PROCTOR_JAVA17_HOME", str(base.java17_home))),
            java25_home=Path(env.get("PROCTOR_JAVA25_HOME", str(base.java25_home))),
        )

    # Addresses clients use -------------------------------------------------------------
    @property
    def kafka_bootstrap(self) -> str:
        return f"{self.host}:{self.kafka_port}"

    @property
    def kafka_secure_bootstrap(self) -> str:
        """The secured broker's SASL_SSL listener."""
        return f"{self.host}:{self.kafka_secure_port}"

    @property
    def registry_url(self) -> str:
        """Confluent-compatible base URL (what SchemaRegistryClient takes)."""
        return f"http://{self.host}:{self.registry_port}{self.registry_path}"

    @property
    def catalog_uri(self) -> str:
        """SQLAlchemy URI of the Iceberg JDBC/SQL catalog database."""
        return (
            f"postgresql+psycopg2://{self.postgres_user}@{self.host}:{self.postgres_port}"
            f"/{self.postgres_db}"
        )

    @property
    def warehouse(self) -> str:
        return (self.state_dir / "warehouse").as_uri()

    @property
    def trino_url(self) -> str:
        return f"http://{self.host}:{self.trino_port}"

    def component_dir(self, name: str) -> Path:
        return self.state_dir / name
