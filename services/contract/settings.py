"""Client settings shared by every producer and consumer of contract events.

A view of :mod:`services.settings` (its kafka and registry sections), read once at the
entry point: :meth:`ClientSettings.of`. Secrets (registry credentials, SASL password)
come from the environment only, never from flags, so they do not land in shell history.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import click

from services.settings import (
    CA_ENV,
    DEFAULT_MECHANISM,
    KAFKA_SECURITY_ENV,
    MECHANISM_ENV,
    MECHANISMS,
    PASSWORD_ENV,
    PROTOCOL_ENV,
    PROTOCOLS,
    USERNAME_ENV,
    KafkaSecurity,
    Settings,
    load_settings,
)

__all__ = [
    "CA_ENV",
    "DEFAULT_MECHANISM",
    "KAFKA_SECURITY_ENV",
    "MECHANISMS",
    "MECHANISM_ENV",
    "PASSWORD_ENV",
    "PROTOCOLS",
    "PROTOCOL_ENV",
    "USERNAME_ENV",
    "ClientSettings",
    "KafkaSecurity",
    "connection_options",
    "connection_params",
]

BOOTSTRAP_ENV = "PROCTOR_KAFKA_BOOTSTRAP"
REGISTRY_ENV = "PROCTOR_SCHEMA_REGISTRY_URL"
REGISTRY_AUTH_ENV = "PROCTOR_SCHEMA_REGISTRY_USER_INFO"
PREFIX_ENV = "PROCTOR_TOPIC_PREFIX"


@dataclass(frozen=True, slots=True)
class ClientSettings:
    """Where the broker and registry are, and how to authenticate to them."""

    bootstrap: str
    registry_url: str
    topic_prefix: str = ""
    registry_user_info: str | None = field(default=None, repr=False)
    security: KafkaSecurity = field(default_factory=KafkaSecurity, repr=False)

    @classmethod
    def of(cls, settings: Settings) -> ClientSettings:
        """The clients' view of the settings' kafka and registry sections."""
        return cls(
            bootstrap=settings.kafka.bootstrap,
            registry_url=settings.registry.url,
            topic_prefix=settings.kafka.topic_prefix,
            registry_user_info=settings.registry.user_info_text(),
            security=settings.kafka.security,
        )

    @classmethod
    def from_env(
        cls,
        bootstrap: str | None = None,
        registry_url: str | None = None,
        topic_prefix: str | None = None,
    ) -> ClientSettings:
        """:meth:`of` the settings loaded now, with the connection flags over them (a
        command that needs nothing else; one that does loads the settings itself)."""
        flags = {"bootstrap": bootstrap or None, "topic_prefix": topic_prefix}
        overrides = {"kafka": flags, "registry": {"url": registry_url or None}}
        return cls.of(load_settings(overrides=overrides))

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
