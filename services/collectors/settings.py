"""Collector settings: one YAML file for `proctor collect all`, flags for one source.

```yaml
platform_id: basecamp-alice          # or PROCTOR_PLATFORM_ID
state_dir: /var/lib/proctor/collectors  # position files (default .stack/collectors)
metrics_port: 9464                   # Prometheus /metrics on PROCTOR_HTTP_HOST (omit: off)
kafka: {bootstrap: 127.0.0.1:19092, registry_url: ..., topic_prefix: ""}  # default: PROCTOR_*
sources:
  cdc-offsets: {bootstrap: "kafka.basecamp:9092", topics: [cdc.public.orders]}
  superset: {url: "http://superset:8088", username: proctor, password_env: SUPERSET_PASSWORD}
```

Each source's keys are its module's ``Settings`` model (unknown keys are errors, so a typo
is caught at start). Secrets are never in the file: a ``*_env`` key names the
environment variable that holds them.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from services.contract.settings import ClientSettings
from services.errors import ConfigError
from services.settings import Settings, load_settings, named_secret

PLATFORM_ENV = "PROCTOR_PLATFORM_ID"
STATE_DIR_ENV = "PROCTOR_COLLECTOR_STATE_DIR"
#: address every collector HTTP server binds (receivers, the runner's /metrics); loopback
#: unless set, e.g. to 0.0.0.0 inside a pod
HTTP_HOST_ENV = "PROCTOR_HTTP_HOST"
DEFAULT_HTTP_HOST = "127.0.0.1"

M = TypeVar("M", bound=BaseModel)


def env_secret(var: str | None, what: str) -> str | None:
    """The secret in environment variable ``var`` (None when no variable is named): a
    source's ``*_env`` key, read when the source is built."""
    return named_secret(var, what)


class SourceSettings(BaseModel):
    """Settings every polled source has."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    interval_s: float = Field(default=15.0, gt=0, description="seconds between polls")


class KafkaSettings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    bootstrap: str | None = None
    registry_url: str | None = None
    topic_prefix: str | None = None

    def client(self, base: ClientSettings) -> ClientSettings:
        """``base`` (the settings' broker and registry) with this file's keys over it."""
        return replace(
            base,
            bootstrap=self.bootstrap or base.bootstrap,
            registry_url=self.registry_url or base.registry_url,
            topic_prefix=base.topic_prefix if self.topic_prefix is None else self.topic_prefix,
        )


class CollectorsConfig(BaseModel):
    """The whole file of `proctor collect all --config`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    platform_id: str = ""
    state_dir: Path | None = None
    metrics_port: int | None = Field(default=None, ge=0, le=65535)
    kafka: KafkaSettings = KafkaSettings()
    sources: dict[str, dict[str, Any]] = Field(min_length=1)


def _problems(exc: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(x) for x in err['loc']) or '(top)'}: {err['msg']}" for err in exc.errors()
    )


def parse_model(model: type[M], raw: Any, where: str) -> M:
    """Validate ``raw`` as ``model``; a ConfigError names every bad key."""
    try:
        return model.model_validate(raw if raw is not None else {})
    except ValidationError as exc:
        raise ConfigError(f"{where}: {_problems(exc)}") from exc


def load_config(path: Path, settings: Settings | None = None) -> CollectorsConfig:
    """The file at ``path``; platform_id and state_dir default to the settings' (loaded
    now when the entry point hands none)."""
    settings = settings or load_settings()
    try:
        raw = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read collectors config {path}: {exc}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping with platform_id and sources")
    config = parse_model(CollectorsConfig, raw, str(path))
    config = config.model_copy(
        update={
            "platform_id": config.platform_id or settings.collectors.platform_id,
            "state_dir": config.state_dir or settings.collectors.state_dir,
        }
    )
    if not config.platform_id:
        raise ConfigError(f"{path}: platform_id is missing (or set {PLATFORM_ENV})")
    return config
