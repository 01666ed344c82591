"""Creating the contract's topics with explicit partitions, replication and configs.

Idempotent: an existing topic gets its configs set to the contract's (incrementally, so
other settings an operator made stay), and a partition count that differs from the
contract's is reported, because equal counts are what keep one platform's records in the
same partition number on every topic.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from confluent_kafka import KafkaError, KafkaException

# Public names the package re-exports without declaring them (hence the ignore).
from confluent_kafka.admin import (  # type: ignore[attr-defined]
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    NewTopic,
    ResourceType,
)

from services.contract.schemas import TOPICS, TopicSpec, topic_name
from services.errors import ContractError, StackError


@dataclass(frozen=True, slots=True)
class TopicResult:
    """What ``ensure_topics`` did to one topic."""

    name: str
    status: str  # "created" | "exists" | "mismatch"
    partitions: int
    detail: str = ""


def admin_client(bootstrap: str, extra: dict[str, str] | None = None) -> AdminClient:
    return AdminClient({"bootstrap.servers": bootstrap, **(extra or {})})


def _existing_partitions(admin: AdminClient, timeout_s: float) -> dict[str, int]:
    try:
        meta = admin.list_topics(timeout=timeout_s)
    except KafkaException as exc:
        raise StackError(f"cannot list topics (is the broker up?): {exc}") from exc
    return {name: len(t.partitions) for name, t in meta.topics.items()}


def ensure_topics(
    admin: AdminClient,
    *,
    prefix: str = "",
    replication_factor: int = 1,
    specs: Iterable[TopicSpec] = TOPICS,
    timeout_s: float = 30.0,
) -> list[TopicResult]:
    """Create the contract's topics that are missing and align configs of the others."""
    specs = list(specs)
    existing = _existing_partitions(admin, timeout_s)
    results: dict[str, TopicResult] = {}
    to_create = []
    for spec in specs:
        name = topic_name(spec.name, prefix)
        config = dict(spec.config)
        if replication_factor > 1:
            config.setdefault("min.insync.replicas", str(min(2, replication_factor - 1) or 1))
        if name not in existing:
            to_create.append(
                NewTopic(
                    name,
                    num_partitions=spec.partitions,
                    replication_factor=replication_factor,
                    config=config,
                )
            )
    if to_create:
        futures = admin.create_topics(
            to_create, operation_timeout=timeout_s, request_timeout=timeout_s
        )
        for name, future in futures.items():
            spec_partitions = next(t.num_partitions for t in to_create if t.topic == name)
            try:
                future.result(timeout=timeout_s)
                results[name] = TopicResult(name, "created", spec_partitions)
            except KafkaException as exc:
                error: KafkaError = exc.args[0]
                if error.code() != KafkaError.TOPIC_ALREADY_EXISTS:  # raced with another creator
                    raise ContractError(f"cannot create topic {name}: {error.str()}") from exc
        existing = _existing_partitions(admin, timeout_s)
    resources = []
    for spec in specs:
        name = topic_name(spec.name, prefix)
        if name in results:
            continue
        have = existing.get(name, 0)
        if have != spec.partitions:
            results[name] = TopicResult(
                name,
                "mismatch",
                have,
                f"has {have} partitions, the contract wants {spec.partitions}: platform_id "
                "co-partitioning needs equal counts; recreate it (partitions only grow)",
            )
        else:
            results[name] = TopicResult(name, "exists", have, "configs set")
        resources.append(
            ConfigResource(
                ResourceType.TOPIC,
                name,
                incremental_configs=[
                    ConfigEntry(k, v, incremental_operation=AlterConfigOpType.SET)
                    for k, v in spec.config.items()
                ],
            )
        )
    if resources:
        for resource, future in admin.incremental_alter_configs(resources).items():
            try:
                future.result(timeout=timeout_s)
            except KafkaException as exc:
                raise ContractError(f"cannot set configs of topic {resource.name}: {exc}") from exc
    return [results[topic_name(s.name, prefix)] for s in specs]


def describe_topics(
    admin: AdminClient, *, prefix: str = "", timeout_s: float = 30.0
) -> list[tuple[str, int | None, dict[str, str]]]:
    """(topic, partitions or None if missing, contract-relevant configs) for every contract topic."""
    existing = _existing_partitions(admin, timeout_s)
    names = [topic_name(s.name, prefix) for s in TOPICS]
    present = [n for n in names if n in existing]
    configs: dict[str, dict[str, str]] = {}
    if present:
        futures = admin.describe_configs([ConfigResource(ResourceType.TOPIC, n) for n in present])
        for resource, future in futures.items():
            entries = future.result(timeout=timeout_s)
            configs[resource.name] = {
                k: str(e.value)
                for k, e in entries.items()
                if k
                in ("cleanup.policy", "retention.ms", "min.insync.replicas", "max.message.bytes")
            }
    return [(n, existing.get(n), configs.get(n, {})) for n in names]


def delete_topics(admin: AdminClient, names: list[str], timeout_s: float = 30.0) -> None:
    """Delete topics (tests clean up their prefixed topics with this)."""
    if not names:
        return
    for name, future in admin.delete_topics(names, operation_timeout=timeout_s).items():
        try:
            future.result(timeout=timeout_s)
        except KafkaException as exc:
            error: KafkaError = exc.args[0]
            if error.code() != KafkaError.UNKNOWN_TOPIC_OR_PART:
                raise ContractError(f"cannot delete topic {name}: {error.str()}") from exc
