"""``proctor collect openlineage``: the HTTP receiver and, with ``--from-topic``, the
Kafka bridge, in one process.

The command sits above both transports: :mod:`services.collectors.openlineage` (the HTTP
receiver and the one parser) and :mod:`services.collectors.openlineage_kafka` (the
bridge, which uses that parser).
"""

from __future__ import annotations

from typing import Any

import click
from prometheus_client import CollectorRegistry

from services.collectors.openlineage import NAME, SOURCE
from services.collectors.openlineage_kafka import LineageBridge
from services.collectors.webhook_cli import receiver_command
from services.collectors.webhook_run import Companion
from services.contract.settings import ClientSettings
from services.errors import ConfigError


def _bridge(
    opts: dict[str, Any], client: ClientSettings, registry: CollectorRegistry
) -> list[Companion]:
    if not opts["from_topic"]:
        return []
    platforms = opts["platforms"]
    if not platforms:
        raise ConfigError(
            "--from-topic needs --platform: whose platform do the bridged events come from?"
        )
    return [
        LineageBridge(
            client,
            source_bootstrap=opts["from_bootstrap"] or client.bootstrap,
            topic=opts["from_topic"],
            group_id=opts["group_id"] or f"proctor-openlineage-{platforms[0]}",
            platform_id=platforms[0],
            heartbeat_s=opts["heartbeat_interval"],
            registry=registry,
        )
    ]


command = receiver_command(
    NAME,
    [SOURCE],
    "Receive OpenLineage run events over HTTP (the HTTP transport's POST /api/v1/lineage) and, "
    "with --from-topic, from the OpenLineage Kafka transport's topic; publish openlineage.run.",
    extra=[
        click.Option(["--from-topic"], help="Bridge this OpenLineage Kafka transport topic too."),
        click.Option(
            ["--from-bootstrap"],
            help="Bootstrap servers of the broker holding --from-topic [default: proctor's broker].",
        ),
        click.Option(
            ["--group-id"],
            help="Consumer group of the bridge [default: proctor-openlineage-<platform>].",
        ),
    ],
    companions=_bridge,
)
