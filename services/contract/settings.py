"""Client settings shared by every producer and consumer of contract events.

Read from flags or ``PROCTOR_*`` environment variables at entry points only; defaults are
the local stack's addresses. Secrets (registry credentials, SASL password) come from the
environment only, never from flags, so they do not land in shell history.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

import click

from services.stack.config import StackConfig

BOOTSTRAP_ENV = "PROCTOR_KAFKA_BOOTSTRAP"
REGISTRY_ENV = "PROCTOR_SCHEMA_REGISTRY_URL"
REGISTRY_AUTH_ENV = "PROCTOR_SCHEMA_REGISTRY_USER_INFO"
PREFIX_ENV = "PROCTOR_TOPIC_PREFIX"
#: librdkafka security settings taken from the environment when set.
KAFKA_SECURITY_ENV: Mapping[str, str] = {
    "PROCTOR_KAFKA_SECURITY_PROTOCOL": "security.protocol",
    "PROCTOR_KAFKA_SASL_MECHANISM": "sasl.mechanism",
    "PROCTOR_KAFKA_SASL_USERNAME": "sasl.username",
    "PROCTOR_KAFKA_SASL_PASSWORD": "sasl.password",
    "PROCTOR_KAFKA_SSL_CA_LOCATION": "ssl.ca.location",
}


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
    kafka_security: Mapping[str, str] = field(default_factory=dict, repr=False)

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
            kafka_security={
                conf: env[var] for var, conf in KAFKA_SECURITY_ENV.items() if env.get(var)
            },
        )

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
