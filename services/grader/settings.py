"""The grader worker's view of :mod:`services.settings`: the fields it reads, flat.

The worker's rooms read ``settings.commit_rows``, ``settings.kafka_bootstrap`` and so on;
this model keeps those names while every value comes from the one settings model
(:meth:`GraderSettings.of`). A flat field's environment variable is the one its section
field names in services/settings.py (``PROCTOR_<FIELD>`` for every field here).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

from services.settings import (
    CatalogSettings,
    JudgeSettings,
    KafkaSecurity,
    Settings,
    TrinoSettings,
    load_settings,
)

#: flat field -> (section, field) of :class:`services.settings.Settings`
FIELDS: dict[str, tuple[str, str]] = {
    "kafka_bootstrap": ("kafka", "bootstrap"),
    "kafka_security": ("kafka", "security"),
    "topic_prefix": ("kafka", "topic_prefix"),
    "replication_factor": ("kafka", "replication_factor"),
    "schema_registry_url": ("registry", "url"),
    "schema_registry_user_info": ("registry", "user_info"),
    "app_id": ("grader", "app_id"),
    "data_dir": ("grader", "data_dir"),
    "store": ("grader", "store"),
    "worker_id": ("grader", "worker_id"),
    "static_membership": ("grader", "static_membership"),
    "session_timeout_s": ("grader", "session_timeout_s"),
    "heartbeat_interval_s": ("grader", "heartbeat_interval_s"),
    "catalog_name": ("catalog", "name"),
    "catalog_uri": ("catalog", "uri"),
    "warehouse": ("catalog", "warehouse"),
    "table": ("catalog", "table"),
    "trino_url": ("trino", "url"),
    "trino_catalog": ("trino", "catalog"),
    "trino_user": ("trino", "user"),
    "commit_rows": ("grader", "commit_rows"),
    "commit_interval_s": ("grader", "commit_interval_s"),
    "batch_records": ("grader", "batch_records"),
    "batch_wait_s": ("grader", "batch_wait_s"),
    "state_max_bytes": ("grader", "state_max_bytes"),
    "trusted_keys": ("trust", "trusted_keys"),
    "roster_secret": ("trust", "roster_secret"),
    "max_skew_s": ("trust", "max_skew_s"),
    "max_artifact_bytes": ("trust", "max_artifact_bytes"),
    "roster_refresh_s": ("trust", "roster_refresh_s"),
    "insecure_no_trust": ("trust", "insecure_no_trust"),
    "maintenance_interval_s": ("grader", "maintenance_interval_s"),
    "snapshot_retention_s": ("grader", "snapshot_retention_s"),
    "orphan_retention_s": ("grader", "orphan_retention_s"),
    "http_host": ("telemetry", "http_host"),
    "http_port": ("telemetry", "http_port"),
    "log_level": ("telemetry", "log_level"),
    "otlp_endpoint": ("telemetry", "otlp_endpoint"),
    "traces_sampler": ("telemetry", "traces_sampler"),
    "judge_url": ("judge", "url"),
    "judge_model": ("judge", "model"),
    "judge_api_key": ("judge", "api_key"),
    "judge_timeout_s": ("judge", "timeout_s"),
    "judge_cache_dir": ("judge", "cache_dir"),
    "review_threshold": ("judge", "review_threshold"),
}


def nested(flat: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Flat grader names (flags) as overrides of :func:`services.settings.load_settings`."""
    out: dict[str, dict[str, Any]] = {}
    for name, value in flat.items():
        section, field = FIELDS[name]
        out.setdefault(section, {})[field] = value
    return out


class GraderSettings(BaseModel):
    """Everything the worker needs to know, as one frozen view of :class:`Settings`.

    Built at the entry point with :meth:`of`. Constructed directly (tests, scripts), the
    fields not given are those of :func:`load_settings`, and the given ones are checked
    by the same rules as the section's.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", arbitrary_types_allowed=True)

    kafka_bootstrap: str
    kafka_security: KafkaSecurity = Field(repr=False)
    topic_prefix: str
    replication_factor: int
    schema_registry_url: str
    schema_registry_user_info: SecretStr | None
    app_id: str
    data_dir: str
    store: Literal["rocksdb", "memory"]
    worker_id: str
    static_membership: bool
    session_timeout_s: float
    heartbeat_interval_s: float
    catalog_name: str
    catalog_uri: str
    warehouse: str
    table: str
    trino_url: str
    trino_catalog: str
    trino_user: str
    commit_rows: int
    commit_interval_s: float
    batch_records: int
    batch_wait_s: float
    state_max_bytes: int
    trusted_keys: str | None
    roster_secret: SecretStr | None
    max_skew_s: float
    max_artifact_bytes: int
    roster_refresh_s: float
    insecure_no_trust: bool
    maintenance_interval_s: float
    snapshot_retention_s: int
    orphan_retention_s: int
    http_host: str
    http_port: int
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"]
    otlp_endpoint: str | None
    traces_sampler: str | None
    judge_url: str | None = None
    judge_model: str | None = None
    judge_api_key: SecretStr | None = Field(default=None, repr=False)
    judge_timeout_s: float = 30.0
    judge_cache_dir: Path | None = None
    review_threshold: float = 0.7

    @model_validator(mode="before")
    @classmethod
    def _through_the_settings(cls, data: Any) -> Any:
        """Fields left out come from the settings; given ones pass the section's rules."""
        if not isinstance(data, dict) or set(data) >= set(FIELDS):
            return data
        unknown = set(data) - set(FIELDS)
        if unknown:
            return data  # extra="forbid" names them
        return cls._flat(load_settings(overrides=nested(data)))

    @classmethod
    def _flat(cls, settings: Settings) -> dict[str, Any]:
        return {
            name: getattr(getattr(settings, section), field)
            for name, (section, field) in FIELDS.items()
        }

    @classmethod
    def of(cls, settings: Settings) -> GraderSettings:
        """The worker's view of ``settings`` (no environment read)."""
        return cls.model_validate(cls._flat(settings))

    @property
    def namespace(self) -> str:
        return self.table.split(".", 1)[0]

    def aiokafka_auth(self) -> dict[str, Any]:
        """Faust broker credentials (a ``faust.auth`` object) when security is on."""
        credentials = self.kafka_security.faust_credentials()
        return {} if credentials is None else {"broker_credentials": credentials}

    def judge_settings(self) -> JudgeSettings:
        """The text judge the worker grades with (offline, or a language model)."""
        return JudgeSettings(
            url=self.judge_url,
            model=self.judge_model,
            api_key=self.judge_api_key,
            timeout_s=self.judge_timeout_s,
            cache_dir=self.judge_cache_dir,
            review_threshold=self.review_threshold,
        )

    def catalog_settings(self) -> CatalogSettings:
        return CatalogSettings(
            name=self.catalog_name, uri=self.catalog_uri, warehouse=self.warehouse, table=self.table
        )

    def trino_settings(self) -> TrinoSettings:
        return TrinoSettings(url=self.trino_url, catalog=self.trino_catalog, user=self.trino_user)

    def catalog_properties(self) -> dict[str, str]:
        return self.catalog_settings().properties()
