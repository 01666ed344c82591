"""A candidate's CDC for tests: a source PostgreSQL with logical decoding and a Kafka
Connect worker running Debezium, against the stack's broker and registry
(:class:`services.platform.connect.CandidateCdc`).

Register with ``pytest_plugins = ["tests.platform_fixtures.cdc"]``. The jars are fetched
by the fixture itself through ``mvn`` (cached in ~/.m2 and ~/.cache/proctor), so a
clean machine needs only what scripts/bootstrap.sh installs.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pytest
from confluent_kafka.admin import AdminClient
from confluent_kafka.schema_registry.error import SchemaRegistryError

from services.contract.wire import registry_client
from services.platform.connect import (
    CandidateCdc,
    ConnectInstall,
    apicurio_v2_url,
    ensure_installed,
)
from services.stack.config import StackConfig


@pytest.fixture(scope="session")
def connect_install() -> ConnectInstall:
    """The worker's jars and plugins, fetched with mvn on first use (minutes when cold)."""
    return ensure_installed()


def remove_traces(cdc: CandidateCdc, stack: StackConfig) -> None:
    """The connectors' topics on the shared broker and their subjects in the registry."""
    prefixes = tuple(r.topic_prefix + "." for r in cdc.registered)
    if not prefixes:
        return
    admin = AdminClient({"bootstrap.servers": stack.kafka_bootstrap})
    topics = [t for t in admin.list_topics(timeout=10).topics if t.startswith(prefixes)]
    if topics:
        for future in admin.delete_topics(topics, operation_timeout=30).values():
            with contextlib.suppress(Exception):
                future.result(timeout=30)
    client = registry_client(stack.registry_url)
    for reg in cdc.registered:
        for permanent in (False, True):
            with contextlib.suppress(SchemaRegistryError):
                client.delete_subject(f"{reg.topic}-value", permanent=permanent)


@pytest.fixture(scope="module")
def cdc_platform(
    connect_install: ConnectInstall,
    kafka_bootstrap: str,
    registry_url: str,
    stack_config: StackConfig,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[CandidateCdc]:
    cdc = CandidateCdc(
        tmp_path_factory.mktemp("cdc"),
        kafka_bootstrap,
        registry_v2=apicurio_v2_url(stack_config),
        install=connect_install,
    )
    with cdc:
        cdc.load.insert(3)  # rows for the snapshot: the topic exists once a connector runs
        try:
            yield cdc
        finally:
            cdc.stop()  # the connectors first, so nothing writes their topics again
            remove_traces(cdc, stack_config)
