"""proctor's settings: one model, read from the environment once, at each entry point.

Every service's command builds one :class:`Settings` with :func:`load_settings` (flags
over ``PROCTOR_*`` variables over defaults) and passes it, or a section of it, down; no
other module reads the environment. Each field names its variable (``env``), so the
table in docs/settings.md is generated from this module (``render_table``) and a test
keeps the two equal.

The defaults are the local stack's documented addresses (README, "The local stack"), as
plain values: production code never imports the dev stack to learn them. The stack's own
variables (``PROCTOR_STACK_HOST``, ``PROCTOR_KAFKA_PORT``, ``PROCTOR_REGISTRY_PORT``,
``PROCTOR_POSTGRES_PORT``, ``PROCTOR_TRINO_PORT``, ``PROCTOR_STACK_DIR``) move those
defaults the way they move the stack, so a stack on other ports needs no other setting.
Secrets (SASL password, registry credentials, roster secret, judge key) come from the
environment only, never from flags, and stay out of reprs.
"""

from __future__ import annotations

import os
import socket
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

from services.errors import ConfigError

REPO_ROOT = Path(__file__).resolve().parents[1]
#: the local stack's documented defaults (services/stack/config.py starts it there)
STACK_HOST = "127.0.0.1"
KAFKA_PORT = 19092
REGISTRY_PORT = 18081
REGISTRY_PATH = "/apis/ccompat/v7"
POSTGRES_PORT = 15432
TRINO_PORT = 18080
STACK_DIR = REPO_ROOT / ".stack"

# ---- Kafka security: the one parser of the SASL/TLS variables ------------------------

PROTOCOL_ENV = "PROCTOR_KAFKA_SECURITY_PROTOCOL"
MECHANISM_ENV = "PROCTOR_KAFKA_SASL_MECHANISM"
USERNAME_ENV = "PROCTOR_KAFKA_SASL_USERNAME"
PASSWORD_ENV = "PROCTOR_KAFKA_SASL_PASSWORD"
CA_ENV = "PROCTOR_KAFKA_SSL_CA_LOCATION"
PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")
DEFAULT_MECHANISM = "SCRAM-SHA-512"
KAFKA_SECURITY_ENV = (PROTOCOL_ENV, MECHANISM_ENV, USERNAME_ENV, PASSWORD_ENV, CA_ENV)


@dataclass(frozen=True, slots=True)
class KafkaSecurity:
    """How a client authenticates to the broker and checks its certificate.

    One parser (:meth:`from_env`) serves librdkafka (confluent-kafka) and aiokafka
    (Faust). The password is read from the environment only (never a flag) and left out
    of repr. ``ca_location`` is the PEM file of the CA that signed the broker's
    certificate; None trusts the system's CAs.
    """

    protocol: str = "PLAINTEXT"
    mechanism: str = DEFAULT_MECHANISM
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    ca_location: str | None = None

    def __post_init__(self) -> None:
        if self.protocol not in PROTOCOLS:
            raise ConfigError(
                f"{PROTOCOL_ENV}={self.protocol!r} is not a Kafka security protocol; "
                f"use one of {', '.join(PROTOCOLS)}"
            )
        if self.sasl:
            if self.mechanism not in MECHANISMS:
                raise ConfigError(
                    f"{MECHANISM_ENV}={self.mechanism!r} is not supported; "
                    f"use one of {', '.join(MECHANISMS)}"
                )
            missing = [
                name
                for name, value in ((USERNAME_ENV, self.username), (PASSWORD_ENV, self.password))
                if not value
            ]
            if missing:
                raise ConfigError(
                    f"{PROTOCOL_ENV}={self.protocol} needs {' and '.join(missing)} "
                    "(the password from the environment or a Secret, never a flag)"
                )

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> KafkaSecurity:
        """The settings of ``PROCTOR_KAFKA_*`` in ``env``; ConfigError naming the variable
        when they do not make sense together."""
        return cls(
            protocol=(env.get(PROTOCOL_ENV) or "PLAINTEXT").strip().upper(),
            mechanism=(env.get(MECHANISM_ENV) or DEFAULT_MECHANISM).strip().upper(),
            username=env.get(USERNAME_ENV) or None,
            password=env.get(PASSWORD_ENV) or None,
            ca_location=env.get(CA_ENV) or None,
        )

    @property
    def sasl(self) -> bool:
        return self.protocol in ("SASL_PLAINTEXT", "SASL_SSL")

    @property
    def tls(self) -> bool:
        return self.protocol in ("SSL", "SASL_SSL")

    def _ca_file(self) -> str | None:
        """The CA file, checked when a client is about to use it (not at parse time, so a
        configuration can be validated away from the pod that mounts the file)."""
        if self.ca_location and not os.path.isfile(self.ca_location):
            raise ConfigError(
                f"{CA_ENV}={self.ca_location}: no such file; point it at the broker's CA "
                "certificate (PEM)"
            )
        return self.ca_location

    def librdkafka(self) -> dict[str, str]:
        """confluent-kafka (librdkafka) properties; empty for PLAINTEXT."""
        if self.protocol == "PLAINTEXT":
            return {}
        conf = {"security.protocol": self.protocol}
        if self.sasl:
            conf["sasl.mechanism"] = self.mechanism
            conf["sasl.username"] = self.username or ""
            conf["sasl.password"] = self.password or ""
        ca_file = self._ca_file() if self.tls else None
        if ca_file:
            conf["ssl.ca.location"] = ca_file
        return conf

    def ssl_context(self) -> ssl.SSLContext | None:
        """A verifying TLS context (hostname and chain) for Python clients; None without TLS."""
        if not self.tls:
            return None
        return ssl.create_default_context(cafile=self._ca_file())

    def aiokafka(self) -> dict[str, Any]:
        """Keyword arguments of aiokafka's producer, consumer and admin clients."""
        kwargs: dict[str, Any] = {"security_protocol": self.protocol}
        if self.sasl:
            kwargs.update(
                sasl_mechanism=self.mechanism,
                sasl_plain_username=self.username,
                sasl_plain_password=self.password,
            )
        context = self.ssl_context()
        if context is not None:
            kwargs["ssl_context"] = context
        return kwargs

    def faust_credentials(self) -> Any | None:
        """Faust's ``broker_credentials`` (it hands them to aiokafka); None for PLAINTEXT."""
        if self.protocol == "PLAINTEXT":
            return None
        import faust

        context = self.ssl_context()
        if not self.sasl:
            return faust.SSLCredentials(context)
        return faust.SASLCredentials(
            username=self.username,
            password=self.password,
            mechanism=self.mechanism,
            ssl_context=context,
        )


# ---- the model --------------------------------------------------------------------------


def env(name: str, default: Any = ..., description: str = "", **kwargs: Any) -> Any:
    """A field read from environment variable ``name``."""
    extra: dict[str, Any] = {"env": name}
    if "default_factory" in kwargs:
        return Field(description=description, json_schema_extra=extra, **kwargs)
    return Field(default, description=description, json_schema_extra=extra, **kwargs)


class Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class KafkaSettings(Section):
    bootstrap: str = env(
        "PROCTOR_KAFKA_BOOTSTRAP", f"{STACK_HOST}:{KAFKA_PORT}", "Kafka bootstrap servers"
    )
    topic_prefix: str = env(
        "PROCTOR_TOPIC_PREFIX", "", "prefix of every topic and registry subject"
    )
    #: PROCTOR_KAFKA_SECURITY_PROTOCOL, _SASL_MECHANISM, _SASL_USERNAME, _SASL_PASSWORD,
    #: _SSL_CA_LOCATION, parsed together by :meth:`KafkaSecurity.from_env`
    security: KafkaSecurity = Field(default_factory=KafkaSecurity, repr=False)
    replication_factor: int = env(
        "PROCTOR_REPLICATION_FACTOR",
        1,
        "replication of proctor's own topics (3 on a cluster)",
        ge=1,
    )


class RegistrySettings(Section):
    url: str = env(
        "PROCTOR_SCHEMA_REGISTRY_URL",
        f"http://{STACK_HOST}:{REGISTRY_PORT}{REGISTRY_PATH}",
        "Confluent-compatible schema registry URL",
    )
    user_info: SecretStr | None = env(
        "PROCTOR_SCHEMA_REGISTRY_USER_INFO", None, "registry credentials, user:password (secret)"
    )

    def user_info_text(self) -> str | None:
        return self.user_info.get_secret_value() if self.user_info else None


class CatalogSettings(Section):
    name: str = env("PROCTOR_CATALOG_NAME", "proctor", "Iceberg catalog name (pyiceberg, Trino)")
    uri: str = env(
        "PROCTOR_CATALOG_URI",
        f"postgresql+psycopg2://proctor@{STACK_HOST}:{POSTGRES_PORT}/iceberg",
        "Iceberg catalog: SQLAlchemy URI (SQL/JDBC catalog) or http(s) URL (REST)",
    )
    warehouse: str = env(
        "PROCTOR_WAREHOUSE",
        (STACK_DIR / "warehouse").as_uri(),
        "Iceberg warehouse location (default: the stack directory's warehouse/)",
    )
    table: str = env(
        "PROCTOR_TABLE", "grading.criterion_transitions", "namespace.table of the transitions"
    )

    @field_validator("table")
    @classmethod
    def _namespaced(cls, value: str) -> str:
        if value.count(".") != 1:
            raise ValueError("must be namespace.table, e.g. grading.criterion_transitions")
        return value

    @property
    def namespace(self) -> str:
        return self.table.split(".", 1)[0]

    def properties(self) -> dict[str, str]:
        """pyiceberg properties of the catalog (type from the URI's scheme)."""
        if self.uri.startswith(("http://", "https://")):
            return {"type": "rest", "uri": self.uri, "warehouse": self.warehouse}
        # pool_pre_ping: don't keep idle connections a restarted PostgreSQL has dropped
        return {
            "type": "sql",
            "uri": self.uri,
            "warehouse": self.warehouse,
            "pool_pre_ping": "true",
        }


class TrinoSettings(Section):
    url: str = env("PROCTOR_TRINO_URL", f"http://{STACK_HOST}:{TRINO_PORT}", "Trino URL")
    catalog: str = env("PROCTOR_TRINO_CATALOG", "iceberg", "Trino catalog of the Iceberg tables")
    user: str = env("PROCTOR_TRINO_USER", "proctor", "user name proctor's queries run as")


class GraderSettingsSection(Section):
    app_id: str = env("PROCTOR_APP_ID", "proctor-grader", "Faust app id (the consumer group)")
    data_dir: str = env(
        "PROCTOR_DATA_DIR",
        str(STACK_DIR / "grader"),
        "local table state directory (default: the stack directory's grader/)",
    )
    #: memory + changelog by default: with the RocksDB store (rocksdict) a SIGKILL
    #: restart lost table writes in the fault test
    store: Literal["rocksdb", "memory"] = env("PROCTOR_STORE", "memory", "table store")
    worker_id: str = env(
        "PROCTOR_WORKER_ID",
        description="static group member id (default: the host name; one per member)",
        default_factory=socket.gethostname,
    )
    static_membership: bool = env(
        "PROCTOR_STATIC_MEMBERSHIP", True, "join as group.instance.id = worker id"
    )
    session_timeout_s: float = env(
        "PROCTOR_SESSION_TIMEOUT_S",
        15.0,
        "seconds before a silent member loses its partitions",
        ge=6.0,
        le=90.0,
    )
    heartbeat_interval_s: float = env(
        "PROCTOR_HEARTBEAT_INTERVAL_S", 3.0, "seconds between group heartbeats", gt=0
    )
    commit_rows: int = env("PROCTOR_COMMIT_ROWS", 500, "rows per Iceberg commit", ge=1)
    commit_interval_s: float = env(
        "PROCTOR_COMMIT_INTERVAL_S", 2.0, "seconds between Iceberg commits", gt=0
    )
    batch_records: int = env(
        "PROCTOR_BATCH_RECORDS", 500, "most records graded per step of the agent", ge=1
    )
    batch_wait_s: float = env(
        "PROCTOR_BATCH_WAIT_S", 0.02, "seconds the agent waits to fill a step", gt=0
    )
    state_max_bytes: int = env(
        "PROCTOR_STATE_MAX_BYTES",
        512 * 1024,
        "budget of one platform's held state in the changelog",
        ge=64 * 1024,
        le=1_000_000,
    )
    maintenance_interval_s: float = env(
        "PROCTOR_MAINTENANCE_INTERVAL_S", 600.0, "seconds between table maintenance rounds", gt=0
    )
    snapshot_retention_s: int = env(
        "PROCTOR_SNAPSHOT_RETENTION_S", 3600, "age of snapshots maintenance expires", ge=0
    )
    orphan_retention_s: int = env(
        "PROCTOR_ORPHAN_RETENTION_S", 86400, "age of orphan files maintenance removes", ge=0
    )


class CollectorSettings(Section):
    platform_id: str = env("PROCTOR_PLATFORM_ID", "", "the platform a collector watches")
    state_dir: Path = env(
        "PROCTOR_COLLECTOR_STATE_DIR",
        STACK_DIR / "collectors",
        "collectors' position files (default: the stack directory's collectors/)",
    )


class TrustSettings(Section):
    trusted_keys: str | None = env(
        "PROCTOR_TRUSTED_KEYS", None, "file of 'key_id role public-key' lines the worker trusts"
    )
    roster_secret: SecretStr | None = env(
        "PROCTOR_ROSTER_SECRET", None, "roster master secret; platform keys derive from it (secret)"
    )
    signing_key: str | None = env(
        "PROCTOR_SIGNING_KEY", None, "PEM file of this process's Ed25519 signing key"
    )
    signing_key_id: str | None = env(
        "PROCTOR_SIGNING_KEY_ID", None, "id of the signing key (default: the file's stem)"
    )
    signal_key: SecretStr | None = env(
        "PROCTOR_SIGNAL_KEY", None, "one platform's signal key, for its collectors (secret)"
    )
    max_skew_s: float = env(
        "PROCTOR_MAX_SKEW_S", 120.0, "seconds an event may be dated past its broker time", ge=0
    )
    max_artifact_bytes: int = env(
        "PROCTOR_MAX_ARTIFACT_BYTES", 256 * 1024, "largest submitted artifact", ge=1
    )
    roster_refresh_s: float = env(
        "PROCTOR_ROSTER_REFRESH_S", 30.0, "seconds between roster reads", gt=0
    )
    insecure_no_trust: bool = env(
        "PROCTOR_INSECURE_NO_TRUST", False, "grade unsigned input (local experiments only)"
    )

    def as_env(self) -> dict[str, str]:
        """The trust variables of these settings, for the trust module's parsers (which
        take a mapping so a test can hand them one)."""
        values = {
            "PROCTOR_TRUSTED_KEYS": self.trusted_keys,
            "PROCTOR_ROSTER_SECRET": _secret(self.roster_secret),
            "PROCTOR_SIGNING_KEY": self.signing_key,
            "PROCTOR_SIGNING_KEY_ID": self.signing_key_id,
            "PROCTOR_SIGNAL_KEY": _secret(self.signal_key),
            "PROCTOR_MAX_SKEW_S": str(self.max_skew_s),
            "PROCTOR_MAX_ARTIFACT_BYTES": str(self.max_artifact_bytes),
        }
        return {k: v for k, v in values.items() if v}


class TelemetrySettings(Section):
    http_host: str = env(
        "PROCTOR_HTTP_HOST", "127.0.0.1", "address of every HTTP server (0.0.0.0 in a pod)"
    )
    http_port: int = env(
        "PROCTOR_HTTP_PORT",
        9464,
        "port of the worker's /healthz, /readyz, /metrics",
        ge=0,
        le=65535,
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = env(
        "PROCTOR_LOG_LEVEL", "INFO", "log level of every service (JSON lines)"
    )
    otlp_endpoint: str | None = env(
        "PROCTOR_OTLP_ENDPOINT", None, "OTLP/HTTP traces endpoint (none: spans not exported)"
    )
    traces_sampler: str | None = env(
        "OTEL_TRACES_SAMPLER", None, "OpenTelemetry sampler; set, spans are recorded"
    )


class JudgeSettings(Section):
    url: str | None = env("PROCTOR_JUDGE_URL", None, "OpenAI-compatible API of the LLM judge")
    model: str | None = env("PROCTOR_JUDGE_MODEL", None, "model the LLM judge asks")
    api_key: SecretStr | None = env("PROCTOR_JUDGE_API_KEY", None, "the judge API's key (secret)")
    timeout_s: float = env("PROCTOR_JUDGE_TIMEOUT_S", 30.0, "seconds per judge request", gt=0)
    review_threshold: float = env(
        "PROCTOR_REVIEW_THRESHOLD",
        0.7,
        "a text criterion judged at a lower confidence waits for a proctor's review",
        ge=0,
        le=1,
    )
    cache_dir: Path | None = env(
        "PROCTOR_JUDGE_CACHE_DIR",
        None,
        "the LLM judge's verdicts by content (default: ~/.cache/proctor/verdicts)",
    )

    def as_env(self) -> dict[str, str]:
        """The judge's variables, for ``services.judge.llm.LlmSettings.from_env``."""
        values = {
            "PROCTOR_JUDGE_URL": self.url,
            "PROCTOR_JUDGE_MODEL": self.model,
            "PROCTOR_JUDGE_API_KEY": _secret(self.api_key),
            "PROCTOR_JUDGE_TIMEOUT_S": str(self.timeout_s),
        }
        return {k: v for k, v in values.items() if v}


class SupersetSettingsSection(Section):
    port: int = env("PROCTOR_SUPERSET_PORT", 18088, "port of the scoreboard", gt=0, le=65535)
    user: str = env("PROCTOR_SUPERSET_USER", "admin", "Superset admin user", min_length=1)
    password: SecretStr | None = env(
        "PROCTOR_SUPERSET_PASSWORD", None, "admin password (default: generated, kept 0600)"
    )
    secret_key: SecretStr | None = env(
        "PROCTOR_SUPERSET_SECRET_KEY", None, "Superset's SECRET_KEY (default: generated)"
    )
    python: str | None = env(
        "PROCTOR_SUPERSET_PYTHON", None, "interpreter that builds Superset's venv"
    )

    @field_validator("user")
    @classmethod
    def _user(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("is empty; unset it or name the admin user")
        return value.strip()


class ContractSettings(Section):
    schemas_dir: Path | None = env(
        "PROCTOR_SCHEMAS_DIR", None, "directory of the *.avsc files (default: the packaged copy)"
    )


class Settings(Section):
    """Every setting of every service, by section."""

    stack_dir: Path = env(
        "PROCTOR_STACK_DIR", STACK_DIR, "the local stack's directory (moves the defaults under it)"
    )
    kafka: KafkaSettings = KafkaSettings()
    registry: RegistrySettings = RegistrySettings()
    catalog: CatalogSettings = CatalogSettings()
    trino: TrinoSettings = TrinoSettings()
    grader: GraderSettingsSection = Field(default_factory=GraderSettingsSection)
    collectors: CollectorSettings = CollectorSettings()
    trust: TrustSettings = TrustSettings()
    telemetry: TelemetrySettings = TelemetrySettings()
    judge: JudgeSettings = JudgeSettings()
    superset: SupersetSettingsSection = SupersetSettingsSection()
    contract: ContractSettings = ContractSettings()
    #: the environment the settings were read from, for the families of variables named
    #: at run time (a webhook source's PROCTOR_WEBHOOK_SECRET_<SOURCE>, a collector's
    #: ``password_env``); never printed
    environ: Mapping[str, str] = Field(default_factory=dict, repr=False, exclude=True)

    def secret(self, variable: str | None, what: str) -> str | None:
        """The secret in the variable a setting names (None when none is named); a
        ConfigError naming it when it is unset."""
        if not variable:
            return None
        value = self.environ.get(variable)
        if not value:
            raise ConfigError(
                f"{what}: environment variable {variable} is not set; export it first"
            )
        return value


SECTIONS: dict[str, type[Section]] = {
    name: info.annotation
    for name, info in Settings.model_fields.items()
    if isinstance(info.annotation, type) and issubclass(info.annotation, Section)
}


def _secret(value: SecretStr | None) -> str | None:
    return value.get_secret_value() if value is not None else None


def env_name(model: type[BaseModel], name: str) -> str | None:
    extra = model.model_fields[name].json_schema_extra
    return str(extra["env"]) if isinstance(extra, dict) and "env" in extra else None


def _from_env(model: type[BaseModel], environ: Mapping[str, str]) -> dict[str, Any]:
    """The fields of ``model`` whose variable is set (and not empty) in ``environ``."""
    out: dict[str, Any] = {}
    for name in model.model_fields:
        var = env_name(model, name)
        if var is not None and environ.get(var, "").strip():
            out[name] = environ[var].strip()
    return out


def _stack_defaults(environ: Mapping[str, str], stack_dir: Path) -> dict[str, dict[str, Any]]:
    """Defaults moved by the local stack's own variables (services/stack/config.py)."""
    host = environ.get("PROCTOR_STACK_HOST") or STACK_HOST
    port = {
        key: environ.get(f"PROCTOR_{key.upper()}_PORT") or str(default)
        for key, default in (
            ("kafka", KAFKA_PORT),
            ("registry", REGISTRY_PORT),
            ("postgres", POSTGRES_PORT),
            ("trino", TRINO_PORT),
        )
    }
    path = environ.get("PROCTOR_REGISTRY_PATH", REGISTRY_PATH)
    return {
        "kafka": {"bootstrap": f"{host}:{port['kafka']}"},
        "registry": {"url": f"http://{host}:{port['registry']}{path}"},
        "catalog": {
            "uri": f"postgresql+psycopg2://proctor@{host}:{port['postgres']}/iceberg",
            "warehouse": (stack_dir / "warehouse").as_uri(),
        },
        "trino": {"url": f"http://{host}:{port['trino']}"},
        "grader": {"data_dir": str(stack_dir / "grader")},
        "collectors": {"state_dir": stack_dir / "collectors"},
    }


def _merge(base: dict[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        if value is None:
            continue
        if isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def _problems(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        loc = [str(x) for x in err["loc"]]
        where = ".".join(loc)
        if len(loc) >= 2 and loc[0] in SECTIONS and loc[1] in SECTIONS[loc[0]].model_fields:
            var = env_name(SECTIONS[loc[0]], loc[1])
            where = f"{where} ({var})" if var else where
        parts.append(f"{where}: {err['msg']}")
    return "; ".join(parts)


def load_settings(
    environ: Mapping[str, str] | None = None, overrides: Mapping[str, Any] | None = None
) -> Settings:
    """The settings: ``overrides`` (flags; None values skipped) over ``environ`` (the
    process environment by default) over the defaults. A ConfigError names every bad
    setting and its variable."""
    environ = dict(os.environ if environ is None else environ)
    raw: dict[str, Any] = _from_env(Settings, environ)
    stack_dir = Path(raw.get("stack_dir", STACK_DIR))
    raw = _merge(_stack_defaults(environ, stack_dir), raw)
    for name, section in SECTIONS.items():
        raw[name] = _merge(raw.get(name, {}), _from_env(section, environ))
    raw["kafka"]["security"] = KafkaSecurity.from_env(environ)
    raw = _merge(raw, overrides or {})
    raw["environ"] = environ
    try:
        return Settings.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(f"invalid setting: {_problems(exc)}") from exc


def settings_rows() -> list[tuple[str, str, str, str]]:
    """(variable, setting, default, description) of every setting, in model order."""
    rows: list[tuple[str, str, str, str]] = []
    defaults = Settings()
    for name, info in Settings.model_fields.items():
        var = env_name(Settings, name)
        if var is not None:
            rows.append((var, name, _shown(getattr(defaults, name)), info.description or ""))
    for section_name, section in SECTIONS.items():
        current = getattr(defaults, section_name)
        for name, info in section.model_fields.items():
            var = env_name(section, name)
            if var is None:
                continue
            default = "(host name)" if name == "worker_id" else _shown(getattr(current, name))
            rows.append((var, f"{section_name}.{name}", default, info.description or ""))
        if section is KafkaSettings:
            for var in KAFKA_SECURITY_ENV:
                default = {PROTOCOL_ENV: "PLAINTEXT", MECHANISM_ENV: DEFAULT_MECHANISM}.get(var, "")
                rows.append((var, "kafka.security", default, "broker authentication and TLS"))
    return rows


def _shown(value: Any) -> str:
    if value is None or value == "":
        return ""
    if isinstance(value, Path):
        try:
            return f"<repo>/{value.relative_to(REPO_ROOT)}"
        except ValueError:
            return str(value)
    text = str(value)
    return text.replace(REPO_ROOT.as_uri(), "file://<repo>").replace(str(REPO_ROOT), "<repo>")


def render_table() -> str:
    """The Markdown table of docs/settings.md."""
    lines = ["| variable | setting | default | what |", "| --- | --- | --- | --- |"]
    for var, name, default, text in settings_rows():
        shown = f"`{default}`" if default else ""
        lines.append(f"| `{var}` | `{name}` | {shown} | {text} |")
    return "\n".join(lines) + "\n"


def environment() -> Mapping[str, str]:
    """The process environment, for parsers handed no mapping: the families of variables
    named at run time (``PROCTOR_WEBHOOK_SECRET_<SOURCE>``, a collector's ``*_env`` keys)
    and the trust module's keys. Entry points hand :attr:`Settings.environ` instead."""
    return os.environ


def named_secret(
    variable: str | None, what: str, environ: Mapping[str, str] | None = None
) -> str | None:
    """The secret in the variable a setting names (None when none is named); a
    ConfigError naming the variable when it is unset."""
    if not variable:
        return None
    value = (environment() if environ is None else environ).get(variable)
    if not value:
        raise ConfigError(f"{what}: environment variable {variable} is not set; export it first")
    return value
