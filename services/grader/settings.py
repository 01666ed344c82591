"""Settings of the grader worker: environment (``PROCTOR_*``) first, flags over it.

The same names serve the local stack (the defaults) and Kubernetes (env from a ConfigMap,
secrets from a Secret). Names shared with the contract's clients keep their spelling there
(``PROCTOR_KAFKA_BOOTSTRAP``, ``PROCTOR_SCHEMA_REGISTRY_URL``, ``PROCTOR_TOPIC_PREFIX``,
``PROCTOR_KAFKA_SASL_*``), so one environment configures every service.
"""

from __future__ import annotations

import socket
from typing import Any, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from services.stack.config import StackConfig

_STACK = StackConfig.from_env()


class GraderSettings(BaseSettings):
    """Everything the worker needs to know; read once at the entry point."""

    model_config = SettingsConfigDict(env_prefix="PROCTOR_", frozen=True, extra="ignore")

    # Kafka
    kafka_bootstrap: str = _STACK.kafka_bootstrap
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] = "PLAIN"
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    kafka_ssl_ca_location: str | None = None
    topic_prefix: str = ""
    schema_registry_url: str = _STACK.registry_url
    schema_registry_user_info: SecretStr | None = None

    # Faust
    app_id: str = "proctor-grader"
    data_dir: str = str(_STACK.state_dir / "grader")
    #: memory + changelog by default: with the RocksDB store (rocksdict) a SIGKILL
    #: restart lost table writes in the fault test, so positions fell behind Kafka's
    #: committed offsets; the compacted changelog restores the small per-platform values fast
    store: Literal["rocksdb", "memory"] = "memory"
    #: replication of the worker's own topics (table changelog); 3 on a real cluster
    replication_factor: int = Field(default=1, ge=1)
    worker_id: str = Field(default_factory=socket.gethostname)

    # Iceberg and Trino
    catalog_name: str = "proctor"
    catalog_uri: str = _STACK.catalog_uri
    warehouse: str = _STACK.warehouse
    table: str = "grading.criterion_transitions"
    trino_url: str = _STACK.trino_url
    trino_catalog: str = "iceberg"
    trino_user: str = "proctor"
    commit_rows: int = Field(default=500, ge=1)
    commit_interval_s: float = Field(default=2.0, gt=0)
    #: records graded per step of the agent, and how long it waits to fill a step: one
    #: span, one metrics update and one round of state sends per batch, not per record
    batch_records: int = Field(default=500, ge=1)
    batch_wait_s: float = Field(default=0.02, gt=0)

    # Trust (docs/trust.md): PROCTOR_TRUSTED_KEYS, PROCTOR_ROSTER_SECRET, PROCTOR_MAX_SKEW_S
    trusted_keys: str | None = None
    roster_secret: SecretStr | None = None
    max_skew_s: float = Field(default=120.0, ge=0)
    max_artifact_bytes: int = Field(default=256 * 1024, ge=1)
    roster_refresh_s: float = Field(default=30.0, gt=0)
    #: grade every decoded record, signed or not: local experiments only, loudly logged
    insecure_no_trust: bool = False

    # Maintenance
    maintenance_interval_s: float = Field(default=600.0, gt=0)
    snapshot_retention_s: int = Field(default=3600, ge=0)
    orphan_retention_s: int = Field(default=86400, ge=0)

    # Telemetry
    http_host: str = "127.0.0.1"
    http_port: int = Field(default=9464, ge=0, le=65535)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    otlp_endpoint: str | None = None

    @field_validator("table")
    @classmethod
    def _namespaced(cls, value: str) -> str:
        if value.count(".") != 1:
            raise ValueError("must be namespace.table, e.g. grading.criterion_transitions")
        return value

    @property
    def namespace(self) -> str:
        return self.table.split(".", 1)[0]

    def aiokafka_auth(self) -> dict[str, Any]:
        """Faust broker credentials (a ``faust.auth`` object) when security is on."""
        import ssl

        import faust

        protocol = self.kafka_security_protocol
        if protocol == "PLAINTEXT":
            return {}
        context = ssl.create_default_context(cafile=self.kafka_ssl_ca_location)
        if protocol == "SSL":
            return {"broker_credentials": faust.SSLCredentials(context)}
        password = self.kafka_sasl_password.get_secret_value() if self.kafka_sasl_password else ""
        creds = faust.SASLCredentials(
            username=self.kafka_sasl_username,
            password=password,
            mechanism=self.kafka_sasl_mechanism,
            ssl_context=context if protocol == "SASL_SSL" else None,
        )
        return {"broker_credentials": creds}

    def catalog_properties(self) -> dict[str, str]:
        return {"uri": self.catalog_uri, "warehouse": self.warehouse, "pool_pre_ping": "true"}
