"""A secured Kafka beside the plaintext one: SASL/SCRAM over TLS, and ACLs.

Same jars as the plaintext broker (its cached class path), own ports and state. What is
made at first start, in the component's state directory and never in the repository:

* a CA and the broker's certificate (``tls/ca.crt`` is what clients trust);
* one random password per principal (``credentials.json``, owner-only), added as
  SCRAM-SHA-512 users when the storage is formatted (``--add-scram``);
* the ACLs of :mod:`services.stack.broker_acls`, created by the super user ``admin``.

Clients reach the SASL_SSL listener; the controller listener takes mutual TLS only (the
broker's own certificate, a super user), so nothing on it answers a password or no
credential at all. The StandardAuthorizer denies whatever no ACL allows.
"""

from __future__ import annotations

import json
import secrets
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from services.contract.settings import (
    BOOTSTRAP_ENV,
    CA_ENV,
    MECHANISM_ENV,
    PASSWORD_ENV,
    PROTOCOL_ENV,
    USERNAME_ENV,
    KafkaSecurity,
)
from services.errors import StackError
from services.stack.broker_acls import PRINCIPALS, SUPER_USER, acl_plan, apply_acls
from services.stack.component import Progress
from services.stack.kafka import KafkaComponent
from services.stack.tls import TlsFiles, ensure_tls

MECHANISM = "SCRAM-SHA-512"
#: the broker's certificate subject; as a principal on the controller link it is a super user
BROKER_CN = "proctor-kafka-broker"
AUTHORIZER = "org.apache.kafka.metadata.authorizer.StandardAuthorizer"


class SecureKafkaComponent(KafkaComponent):
    """Single-node Kafka with a SASL_SSL listener, SCRAM users and ACLs."""

    name = "kafka-secure"
    heap = "512m"
    #: not part of a plain ``proctor stack up``: ``up --secure`` or ``up kafka-secure``
    optional = True

    @property
    def port(self) -> int:
        return self.config.kafka_secure_port

    @property
    def address(self) -> str:
        return self.config.kafka_secure_bootstrap

    def ports(self) -> Sequence[int]:
        return (self.config.kafka_secure_port, self.config.kafka_secure_controller_port)

    @property
    def mvn_dir(self) -> Path:
        # the plaintext broker's class path: the same artifacts, resolved once
        return self.config.component_dir("kafka") / "mvn"

    @property
    def credentials_file(self) -> Path:
        return self.dir / "credentials.json"

    @property
    def tls(self) -> TlsFiles:
        return TlsFiles(self.dir / "tls" / "ca.crt", self.dir / "tls" / "server.pem", BROKER_CN)

    @property
    def ca_file(self) -> Path:
        return self.tls.ca_cert

    # Principals --------------------------------------------------------------------------
    def credentials(self) -> dict[str, str]:
        """Principal -> password, as made at the first start."""
        try:
            data = json.loads(self.credentials_file.read_text())
        except (OSError, ValueError) as exc:
            raise StackError(
                f"{self.name}: no credentials at {self.credentials_file}; start it with "
                "`proctor stack up kafka-secure`"
            ) from exc
        return {str(k): str(v) for k, v in data.items()}

    def security(self, principal: str, password: str | None = None) -> KafkaSecurity:
        """How ``principal`` connects (its stored password unless one is given)."""
        if password is None:
            known = self.credentials()
            if principal not in known:
                raise StackError(
                    f"{self.name}: no principal {principal!r}; known: {', '.join(sorted(known))}"
                )
            password = known[principal]
        return KafkaSecurity(
            protocol="SASL_SSL",
            mechanism=MECHANISM,
            username=principal,
            password=password,
            ca_location=str(self.ca_file),
        )

    def client_env(self, principal: str) -> dict[str, str]:
        """The ``PROCTOR_KAFKA_*`` variables that make any proctor client ``principal``."""
        sec = self.security(principal)
        return {
            BOOTSTRAP_ENV: self.address,
            PROTOCOL_ENV: sec.protocol,
            MECHANISM_ENV: sec.mechanism,
            USERNAME_ENV: principal,
            PASSWORD_ENV: sec.password or "",
            CA_ENV: str(self.ca_file),
        }

    def client_config(self, principal: str, **extra: object) -> dict[str, Any]:
        """librdkafka properties of ``principal`` on this broker."""
        return {
            "bootstrap.servers": self.address,
            **self.security(principal).librdkafka(),
            **extra,
        }

    def _ensure_credentials(self, progress: Progress) -> None:
        known: dict[str, str] = {}
        if self.credentials_file.is_file():
            known = self.credentials()
        missing = [p for p in PRINCIPALS if p not in known]
        if not missing:
            return
        if (self.data_dir / "meta.properties").is_file():
            # users are added when the storage is formatted: new ones mean a new cluster
            progress(f"{self.name}: new principals {missing}; formatting a fresh cluster")
            shutil.rmtree(self.data_dir)
            (self.dir / "cluster-id").unlink(missing_ok=True)
        known.update({p: secrets.token_urlsafe(24) for p in missing})
        self.credentials_file.touch(mode=0o600)
        self.credentials_file.chmod(0o600)
        self.credentials_file.write_text(json.dumps(known, indent=2, sort_keys=True) + "\n")

    # Configuration -----------------------------------------------------------------------
    def prepare(self, progress: Progress) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        self._ensure_credentials(progress)
        ensure_tls(self.dir / "tls", ("localhost", self.config.host), BROKER_CN)
        super().prepare(progress)

    def storage_format_args(self) -> list[str]:
        args: list[str] = []
        for principal, password in sorted(self.credentials().items()):
            args += ["--add-scram", f"{MECHANISM}=[name={principal},password={password}]"]
        return args

    def server_properties(self) -> dict[str, str]:
        c = self.config
        tls = self.tls
        admin_password = self.credentials()[SUPER_USER]
        client = f"SASL_SSL://{c.host}:{c.kafka_secure_port}"
        return {
            **super().server_properties(),
            "controller.quorum.voters": f"1@{c.host}:{c.kafka_secure_controller_port}",
            "listeners": f"{client},CONTROLLER://{c.host}:{c.kafka_secure_controller_port}",
            "advertised.listeners": client,
            "inter.broker.listener.name": "SASL_SSL",
            "listener.security.protocol.map": "CONTROLLER:SSL,SASL_SSL:SASL_SSL",
            "sasl.enabled.mechanisms": MECHANISM,
            "sasl.mechanism.inter.broker.protocol": MECHANISM,
            "listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config": (
                "org.apache.kafka.common.security.scram.ScramLoginModule required "
                f'username="{SUPER_USER}" password="{admin_password}";'
            ),
            "ssl.keystore.type": "PEM",
            "ssl.keystore.location": str(tls.server_pem),
            "ssl.truststore.type": "PEM",
            "ssl.truststore.location": str(tls.ca_cert),
            "ssl.client.auth": "none",
            "listener.name.controller.ssl.client.auth": "required",
            "authorizer.class.name": AUTHORIZER,
            "allow.everyone.if.no.acl.found": "false",
            "super.users": f"User:{SUPER_USER};User:CN={BROKER_CN}",
            "num.io.threads": "2",
        }

    def admin_settings(self) -> dict[str, Any]:
        return self.client_config(SUPER_USER)

    def healthy(self) -> bool:
        """The super user authenticates over TLS and the broker lists itself."""
        if not self.credentials_file.is_file() or not self.ca_file.is_file():
            return False
        return super().healthy()

    def after_start(self, progress: Progress) -> None:
        """Create the ACLs of proctor's principals (idempotent)."""
        from confluent_kafka.admin import AdminClient

        admin = AdminClient(self.admin_settings())
        count = apply_acls(admin, acl_plan())
        progress(f"{self.name}: {count} ACLs in place for {', '.join(PRINCIPALS[1:])}")
