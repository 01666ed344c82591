"""The cohort deployment file: who sits the exam, on which platform, in which namespace.

```yaml
cohort: y3-2026-spring
candidates:
  - platform_id: basecamp-alice
    namespace: basecamp-alice
    overrides:                      # optional, per polling source, merged over the defaults
      iceberg: {tables: [analytics.orders, analytics.orders_hourly]}
```

Endpoints default to the in-cluster service names of the example platform, in the
candidate's namespace. Secrets are never values here: a ``*_env`` key names the
environment variable (from Secret ``proctor-pollers``) that holds one.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from services.errors import ConfigError

DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
#: the longest object name made from a platform id whose kind allows only a DNS label
#: (63 characters): the pollers' Service ``proctor-pollers-<platform_id>``
LONGEST_PREFIX = "proctor-pollers-"
MAX_PLATFORM_ID = 63 - len(LONGEST_PREFIX)
ENV_NAME = re.compile(r"^[A-Z_][A-Z0-9_]*$")
#: keys whose value would be a secret: they must be given as ``<key>_env`` (a variable name)
SECRET_KEY = re.compile(
    r"(password|passwd|secret|token|api[-_]?key|access[-_]?key|credential)", re.I
)


def _dns_label(value: str, what: str) -> str:
    if not DNS_LABEL.fullmatch(value):
        raise ValueError(
            f"{what} {value!r} is not a DNS label (lower-case letters, digits and '-', "
            "at most 63, starting and ending with a letter or digit): it names Kubernetes "
            "objects and URL paths"
        )
    return value


def secret_problems(value: Any, where: str) -> list[str]:
    """Every place in ``value`` where a secret is given as a value instead of an env name."""
    out: list[str] = []
    if isinstance(value, dict):
        for key, item in value.items():
            here = f"{where}.{key}"
            if str(key).endswith("_env"):
                names = item.values() if isinstance(item, dict) else [item]
                for name in names:
                    if not isinstance(name, str) or not ENV_NAME.fullmatch(name):
                        out.append(
                            f"{here}: {name!r} is not an environment variable name "
                            "(upper-case letters, digits and '_'); give the variable's "
                            "name, never the secret"
                        )
            elif SECRET_KEY.search(str(key)) and not isinstance(item, dict | list):
                out.append(
                    f"{here}: a secret given as a value; put it in Secret proctor-pollers "
                    f"and name its variable with '{key}_env' instead"
                )
            else:
                out.extend(secret_problems(item, here))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            out.extend(secret_problems(item, f"{where}[{i}]"))
    return out


class Candidate(BaseModel):
    """One candidate's platform and what differs from the defaults."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    platform_id: str
    namespace: str
    #: the candidate's ConfigMap holding the rules.json their Trino reads
    #: (``security.config-file``); the pollers mount it read-only
    trino_rules_configmap: str = "trino-access-control"
    trino_rules_key: str = "rules.json"
    overrides: dict[str, dict[str, Any]] = Field(default_factory=dict)

    @field_validator("platform_id")
    @classmethod
    def _platform(cls, v: str) -> str:
        _dns_label(v, "platform_id")
        if len(v) > MAX_PLATFORM_ID:
            raise ValueError(
                f"platform_id {v!r} has {len(v)} characters; at most {MAX_PLATFORM_ID}, so "
                f"the Service {LONGEST_PREFIX}{v} stays a DNS label of 63"
            )
        return v

    @field_validator("namespace", "trino_rules_configmap")
    @classmethod
    def _names(cls, v: str) -> str:
        return _dns_label(v, "name")

    @model_validator(mode="after")
    def _no_secret_values(self) -> Candidate:
        problems = secret_problems(self.overrides, "overrides")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @property
    def env_prefix(self) -> str:
        """The default prefix of this platform's secret variables, e.g. BASECAMP_ALICE."""
        return self.platform_id.upper().replace("-", "_")


class Cohort(BaseModel):
    """The whole cohort deployment file."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    cohort: str
    candidates: tuple[Candidate, ...] = Field(min_length=1)
    #: proctor's namespace (receivers, Redpanda clients)
    proctor_namespace: str = "proctor"
    #: the TLS front (an ingress) of the k8s-audit receiver as the API servers reach it:
    #: the audit webhook sends its bearer token only over https (docs/collectors.md), and
    #: an API server usually resolves no cluster-internal name, so no default is given
    k8s_audit_url: str
    #: size and class of each candidate's evidence volume (dbt target dirs, tool logs)
    evidence_size: str = "1Gi"
    evidence_storage_class: str | None = None

    @field_validator("cohort", "proctor_namespace")
    @classmethod
    def _label(cls, v: str) -> str:
        return _dns_label(v, "name")

    @field_validator("k8s_audit_url")
    @classmethod
    def _https(cls, v: str) -> str:
        if not v.startswith("https://"):
            raise ValueError(
                "k8s_audit_url must be https://: the API server's audit webhook sends its "
                "bearer token only to a TLS server, so over http every batch is refused"
            )
        return v.rstrip("/")

    @model_validator(mode="after")
    def _unique(self) -> Cohort:
        for attr in ("platform_id", "namespace"):
            seen: set[str] = set()
            for c in self.candidates:
                value = getattr(c, attr)
                if value in seen:
                    raise ValueError(f"{attr} {value!r} is given to two candidates")
                seen.add(value)
        return self


def parse_cohort(raw: Any, where: str) -> Cohort:
    """Validate a parsed cohort file; a ConfigError names every problem."""
    try:
        return Cohort.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(x) for x in e['loc']) or '(top)'}: {e['msg']}" for e in exc.errors()
        )
        raise ConfigError(f"{where}: {problems}") from exc


def load_cohort(path: Path) -> Cohort:
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read cohort file {path}: {exc}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML: {exc}") from exc
    return parse_cohort(raw, str(path))
