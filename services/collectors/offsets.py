"""cdc.offsets: high watermark and log start of each partition of the declared CDC topics.

Read with the Kafka admin API (ListOffsets, latest and earliest). A partition is
published when its offsets changed since the last published value, with the poll time
as event time: the grader measures growth between observations, so an unchanged
partition adds nothing and is not repeated.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import click
from confluent_kafka import KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient
from confluent_kafka.admin._listoffsets import OffsetSpec
from pydantic import Field

from services.collectors.polling import Collector, PollResult, Position, now_ms
from services.collectors.runner import common_options, run_one, split_common
from services.collectors.settings import SourceSettings, parse_model
from services.errors import ProctorError

TIMEOUT_S = 15.0


class Settings(SourceSettings):
    bootstrap: str = Field(description="bootstrap.servers of the watched (candidate's) Kafka")
    topics: tuple[str, ...] = Field(default=(), description="CDC topics to watch")
    topic_pattern: str | None = Field(default=None, description="regex: also watch matching topics")
    cluster: str | None = Field(default=None, description="cluster name in the signals")


class OffsetsCollector(Collector):
    name = "cdc-offsets"

    def __init__(self, settings: Settings, platform_id: str) -> None:
        super().__init__(platform_id)
        if not settings.topics and not settings.topic_pattern:
            raise ProctorError("cdc-offsets: name the CDC topics (topics or topic_pattern)")
        self.settings = settings
        self.pattern = re.compile(settings.topic_pattern) if settings.topic_pattern else None
        self.admin = AdminClient({"bootstrap.servers": settings.bootstrap})
        self.cluster = settings.cluster or settings.bootstrap

    @property
    def source(self) -> str:
        return f"kafka {self.settings.bootstrap}"

    def partitions(self) -> dict[str, int]:
        """Watched topics that exist, with their partition counts."""
        try:
            meta = self.admin.list_topics(timeout=TIMEOUT_S)
        except KafkaException as exc:
            raise ProctorError(f"cannot list topics of {self.settings.bootstrap}: {exc}") from exc
        out: dict[str, int] = {}
        for name, topic in meta.topics.items():
            wanted = name in self.settings.topics or (
                self.pattern is not None and self.pattern.fullmatch(name) is not None
            )
            if wanted and topic.error is None:
                out[name] = len(topic.partitions)
        return out

    def offsets(self, topics: Mapping[str, int]) -> dict[str, tuple[int, int]]:
        """``topic/partition`` -> (high watermark, log start offset)."""
        tps = [TopicPartition(t, p) for t, n in topics.items() for p in range(n)]
        if not tps:
            return {}
        result: dict[str, list[int]] = {f"{tp.topic}/{tp.partition}": [0, 0] for tp in tps}
        specs = (OffsetSpec.latest(), OffsetSpec.earliest())  # type: ignore[no-untyped-call]
        for index, spec in enumerate(specs):
            futures = self.admin.list_offsets({tp: spec for tp in tps}, request_timeout=TIMEOUT_S)
            for tp, future in futures.items():
                try:
                    info = future.result(timeout=TIMEOUT_S)
                except KafkaException as exc:
                    raise ProctorError(
                        f"list offsets of {tp.topic}/{tp.partition} failed: {exc}"
                    ) from exc
                result[f"{tp.topic}/{tp.partition}"][index] = int(info.offset)
        return {k: (v[0], v[1]) for k, v in result.items()}

    def poll(self, position: Position) -> PollResult:
        current = self.offsets(self.partitions())
        ts = now_ms()
        events = []
        for key in sorted(current):
            high, start = current[key]
            if list(position.get(key, ())) == [high, start]:
                continue
            topic, partition = key.rsplit("/", 1)
            events.append(
                self.signal(
                    "cdc.offsets",
                    [self.cluster, topic, partition, high, start],
                    ts,
                    {
                        "cluster": self.cluster,
                        "topic": topic,
                        "partition": int(partition),
                        "high_watermark": high,
                        "log_start_offset": start,
                    },
                )
            )
        new: dict[str, Any] = {**position, **{k: [h, s] for k, (h, s) in current.items()}}
        return PollResult(tuple(events), new)


def build(settings: Settings, platform_id: str) -> OffsetsCollector:
    return OffsetsCollector(settings, platform_id)


@click.command("cdc-offsets")
@click.option(
    "--source-bootstrap", "bootstrap", required=True, help="bootstrap.servers of the watched Kafka"
)
@click.option("--topic", "topics", multiple=True, help="a CDC topic (repeatable)")
@click.option("--topic-pattern", default=None, help="regex of CDC topics")
@click.option("--cluster", default=None, help="cluster name in the signals")
@common_options
def command(**kwargs: Any) -> None:
    """Publish cdc.offsets: offsets of the CDC topics from the Kafka admin API."""
    common, own = split_common(kwargs)
    settings = parse_model(Settings, {"interval_s": common["interval_s"], **own}, "flags")
    run_one(lambda platform: build(settings, platform), common)
