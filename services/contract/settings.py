"""Client settings shared by every producer and consumer of contract events.

Read from flags or ``PROCTOR_*`` environment variables at entry points only; defaults are
the local stack's addresses. Secrets (registry credentials, SASL password) come from the
environment only, never from flags, so they do not land in shell history.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

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
