"""Apache Kafka 4 in KRaft mode: one process that is both broker and controller.

The jars come from Maven (``kafka_2.13`` pulls the broker, raft, storage and clients),
so no tarball download is needed. Settings suit a single node: every internal topic has
one replica and a minimum ISR of one (otherwise transactions and consumer groups would
wait for replicas that never come), and topics are never created implicitly, so a typo
in a topic name is an error instead of a silent new topic.
"""

from __future__ import annotations

import base64
import logging
import os
import subprocess
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from services.errors import StackError
from services.stack import jvm, maven
from services.stack.component import Component, Progress, port_in_use

KAFKA_VERSION = "4.1.1"
#: log4j's binding for the slf4j API most broker classes log through
LOG4J_VERSION = "2.24.3"
ARTIFACTS = (
    f"org.apache.kafka:kafka_2.13:{KAFKA_VERSION}",
    f"org.apache.logging.log4j:log4j-slf4j-impl:{LOG4J_VERSION}",
)

_LOG4J2 = """\
status = warn
appender.out.type = Console
appender.out.name = out
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.out.ref = out
logger.state.name = state.change.logger
logger.state.level = WARN
logger.request.name = kafka.request.logger
logger.request.level = WARN
logger.authorizer.name = kafka.authorizer.logger
logger.authorizer.level = WARN
"""

_QUIET = logging.getLogger("proctor.stack.kafka.health")
_QUIET.addHandler(logging.NullHandler())
_QUIET.propagate = False


def new_cluster_id() -> str:
    """A KRaft cluster id: a random UUID in URL-safe base64 without padding."""
    return base64.urlsafe_b64encode(uuid.uuid4().bytes).decode("ascii").rstrip("=")


class KafkaComponent(Component):
    """Single-node Kafka (broker + controller) on the stack's loopback ports."""

    name = "kafka"
    start_timeout = 90.0

    heap = "1g"

    @property
    def port(self) -> int:
        return self.config.kafka_port

    @property
    def address(self) -> str:
        return self.config.kafka_bootstrap

    def ports(self) -> Sequence[int]:
        return (self.config.kafka_port, self.config.kafka_controller_port)

    @property
    def data_dir(self) -> Path:
        return self.dir / "data"

    @property
    def properties_file(self) -> Path:
        return self.dir / "server.properties"

    @property
    def log4j_file(self) -> Path:
        return self.dir / "log4j2.properties"

    @property
    def mvn_dir(self) -> Path:
        """Where the resolved class path is cached (the jars themselves are in ~/.m2)."""
        return self.dir / "mvn"

    def storage_format_args(self) -> list[str]:
        """Extra arguments of the one-time ``format`` (SCRAM users, for a secured broker)."""
        return []

    def admin_settings(self) -> dict[str, Any]:
        """How the health check (and set-up) connects: librdkafka properties."""
        return {"bootstrap.servers": self.config.kafka_bootstrap}

    # Install and configure ---------------------------------------------------------------
    def install(self, progress: Progress) -> None:
        jvm.java(self.config.java17_home, 17)
        self._classpath = maven.classpath(ARTIFACTS, self.mvn_dir, progress)

    def classpath(self) -> str:
        entries = getattr(self, "_classpath", None)
        if entries is None:
            entries = maven.classpath(ARTIFACTS, self.mvn_dir, lambda _msg: None)
            self._classpath = entries
        return os.pathsep.join(str(p) for p in entries)

    def server_properties(self) -> dict[str, str]:
        c = self.config
        return {
            "process.roles": "broker,controller",
            "node.id": "1",
            "controller.quorum.voters": f"1@{c.host}:{c.kafka_controller_port}",
            "listeners": (
                f"PLAINTEXT://{c.host}:{c.kafka_port},CONTROLLER://{c.host}:{c.kafka_controller_port}"
            ),
            "advertised.listeners": f"PLAINTEXT://{c.host}:{c.kafka_port}",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
            "log.dirs": str(self.data_dir),
            "auto.create.topics.enable": "false",
            "num.partitions": "1",
            "default.replication.factor": "1",
            "min.insync.replicas": "1",
            "offsets.topic.replication.factor": "1",
            "offsets.topic.num.partitions": "8",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "transaction.state.log.num.partitions": "8",
            "share.coordinator.state.topic.replication.factor": "1",
            "share.coordinator.state.topic.min.isr": "1",
            "group.initial.rebalance.delay.ms": "0",
            "log.retention.hours": "168",
            "num.network.threads": "2",
            "num.io.threads": "4",
        }

    def prepare(self, progress: Progress) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        # owner-only: a secured broker's file holds its inter-broker password
        self.properties_file.touch(mode=0o600)
        self.properties_file.chmod(0o600)
        self.properties_file.write_text(
            "".join(f"{k}={v}\n" for k, v in self.server_properties().items())
        )
        self.log4j_file.write_text(_LOG4J2)
        if (self.data_dir / "meta.properties").is_file():
            return
        cluster_file = self.dir / "cluster-id"
        if not cluster_file.is_file():
            cluster_file.write_text(new_cluster_id())
        cluster_id = cluster_file.read_text().strip()
        progress(f"{self.name}: formatting storage in {self.data_dir} (cluster {cluster_id})")
        proc = subprocess.run(
            [
                *self._java_prefix("256m"),
                "kafka.tools.StorageTool",
                "format",
                "--cluster-id",
                cluster_id,
                "--config",
                str(self.properties_file),
                "--ignore-formatted",
                *self.storage_format_args(),
            ],
            capture_output=True,
            text=True,
            check=False,
            cwd=self.dir,
        )
        if proc.returncode != 0:
            tail = "\n".join((proc.stdout + proc.stderr).splitlines()[-15:])
            raise StackError(f"kafka: formatting storage failed (exit {proc.returncode}):\n{tail}")

    def _java_prefix(self, heap: str) -> list[str]:
        return [
            str(jvm.java(self.config.java17_home, 17)),
            f"-Xmx{heap}",
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={self.log4j_file}",
            "-cp",
            self.classpath(),
        ]

    def command(self) -> Sequence[str]:
        return [
            *self._java_prefix(self.heap),
            "-Xms256m",
            "-XX:+UseG1GC",
            "-XX:MaxGCPauseMillis=20",
            "kafka.Kafka",
            str(self.properties_file),
        ]

    # Health ------------------------------------------------------------------------------
    def healthy(self) -> bool:
        """The broker answers a metadata request and lists itself."""
        if not port_in_use(self.config.host, self.port):
            return False
        from confluent_kafka.admin import AdminClient

        settings: dict[str, Any] = {
            **self.admin_settings(),
            "socket.timeout.ms": 3000,
            "logger": _QUIET,
        }
        admin = AdminClient(settings)
        try:
            meta = admin.list_topics(timeout=3)
        except Exception:  # any client error means "not yet"
            return False
        return bool(meta.brokers)
