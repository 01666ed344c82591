"""Client settings shared by every producer and consumer of contract events.

Read from flags or ``PROCTOR_*`` environment variables at entry points only; defaults are
the local stack's addresses. Secrets (registry credentials, SASL password) come from the
environment only, never from flags, so they do not land in shell history.
"""

from __future__ import annotations

import os
import ssl
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

import click

from services.errors import ConfigError
from services.stack.config import StackConfig

BOOTSTRAP_ENV = "PROCTOR_KAFKA_BOOTSTRAP"
REGISTRY_ENV = "PROCTOR_SCHEMA_REGISTRY_URL"
REGISTRY_AUTH_ENV = "PROCTOR_SCHEMA_REGISTRY_USER_INFO"
PREFIX_ENV = "PROCTOR_TOPIC_PREFIX"
#: Kafka security settings: environment variable -> what it sets. One parser
#: (:meth:`KafkaSecurity.from_env`) serves librdkafka (confluent-kafka) and aiokafka (Faust).
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

    The password is read from the environment only (never a flag) and left out of repr.
    ``ca_location`` is the PEM file of the CA that signed the broker's certificate; None
    trusts the system's CAs.
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
    def from_env(cls, env: Mapping[str, str] | None = None) -> KafkaSecurity:
        """The settings of ``PROCTOR_KAFKA_*`` (``os.environ`` by default); ConfigError
        naming the variable when they do not make sense together."""
        env = os.environ if env is None else env
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


def default_bootstrap() -> str:
    return os.environ.get(BOOTSTRAP_ENV) or StackConfig.from_env().kafka_bootstrap


def default_registry_url() -> str:
    return os.environ.get(REGISTRY_ENV) or StackConfig.from_env().registry_url


@dataclass(frozen=True, slots=True)
class ClientSettings:
    """Where the broker and registry are, and how to authenticate to them."""

    bootstrap: str
    registry_url: str
    topic_prefix: str = ""
    registry_user_info: str | None = field(default=None, repr=False)
    security: KafkaSecurity = field(default_factory=KafkaSecurity, repr=False)

    @classmethod
    def from_env(
        cls,
        bootstrap: str | None = None,
        registry_url: str | None = None,
        topic_prefix: str | None = None,
    ) -> ClientSettings:
        env = os.environ
        return cls(
            bootstrap=bootstrap or default_bootstrap(),
            registry_url=registry_url or default_registry_url(),
            topic_prefix=topic_prefix if topic_prefix is not None else env.get(PREFIX_ENV, ""),
            registry_user_info=env.get(REGISTRY_AUTH_ENV) or None,
            security=KafkaSecurity.from_env(env),
        )

    @property
    def kafka_security(self) -> dict[str, str]:
        """The librdkafka security properties (empty for PLAINTEXT)."""
        return self.security.librdkafka()

    def kafka_config(self, **extra: object) -> dict[str, object]:
        """librdkafka configuration with the bootstrap address and security settings."""
        return {"bootstrap.servers": self.bootstrap, **self.kafka_security, **extra}


# ---- command-line flags ---------------------------------------------------------------

#: Help of the connection flags; ``{env}`` stands for the flag's environment variable.
BOOTSTRAP_HELP = "Kafka bootstrap servers [env {env}; default: local stack]."
REGISTRY_HELP = "Schema registry URL [env {env}; default: local stack]."
PREFIX_HELP = "Topic and subject prefix [env {env}]."

_F = TypeVar("_F", bound=Callable[..., Any])


def _connection_specs(
    bootstrap: str | None, registry: str | None, prefix: str | None, prefix_default: str | None
) -> list[tuple[str, dict[str, Any]]]:
    specs: list[tuple[str, dict[str, Any]]] = []
    for flag, env, text, default in (
        ("--bootstrap", BOOTSTRAP_ENV, bootstrap, None),
        ("--registry-url", REGISTRY_ENV, registry, None),
        ("--prefix", PREFIX_ENV, prefix, prefix_default),
    ):
        if text is None:
            continue
        attrs: dict[str, Any] = {"envvar": env, "help": text.format(env=env)}
        if default is not None:
            attrs["default"] = default
        specs.append((flag, attrs))
    return specs


def connection_params(
    *,
    bootstrap: str | None = BOOTSTRAP_HELP,
    registry: str | None = REGISTRY_HELP,
    prefix: str | None = PREFIX_HELP,
    prefix_default: str | None = "",
) -> list[click.Parameter]:
    """``--bootstrap``, ``--registry-url`` and ``--prefix`` as click options, in that order.

    Each keyword is that flag's help (``None`` leaves the flag out). The broker and registry
    flags default to None, so :meth:`ClientSettings.from_env` (or a settings class reading
    the same variables) fills in the local stack's addresses; secrets stay env-only.
    """
    specs = _connection_specs(bootstrap, registry, prefix, prefix_default)
    return [click.Option([flag], **attrs) for flag, attrs in specs]


def connection_options(
    *,
    bootstrap: str | None = BOOTSTRAP_HELP,
    registry: str | None = REGISTRY_HELP,
    prefix: str | None = PREFIX_HELP,
    prefix_default: str | None = "",
) -> Callable[[_F], _F]:
    """Decorator form of :func:`connection_params`, for ``@click.command`` functions."""
    specs = _connection_specs(bootstrap, registry, prefix, prefix_default)

    def decorate(func: _F) -> _F:
        # click lists decorator options bottom-up: add ours last-first to keep their order.
        for flag, attrs in reversed(specs):
            func = click.option(flag, **attrs)(func)
        return func

    return decorate
