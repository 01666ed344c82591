"""Source offsets kept in Iceberg snapshot summaries: the sink's half of exactly once.

Every sink commit writes, in the same atomic snapshot as its rows, the next source offset
to process for each topic-partition (all partitions any worker had committed when it read
the table, merged with its own). Reading them back walks every ancestor of the current
snapshot and keeps the highest offset per partition: compaction and other maintenance
snapshots carry none and are stepped over, and a commit that raced another writer (pyiceberg
retries an append on a newer base without recomputing its summary) may lack that writer's
offsets, which an older snapshot still holds. The pattern of the Iceberg Kafka Connect and
Flink sinks.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from pyiceberg.table import Table
from pyiceberg.table.snapshots import Snapshot, ancestors_of

from services.errors import SinkError

#: snapshot summary key holding ``{"topic": {"partition": next_offset}}`` as JSON
OFFSETS_PROPERTY = "proctor.source-offsets"
#: snapshot summary key naming the worker that made the commit (audit)
WRITER_PROPERTY = "proctor.writer"

TopicPartition = tuple[str, int]
OffsetMap = dict[TopicPartition, int]


@dataclass(frozen=True, slots=True)
class CommittedOffsets:
    """Offsets found in the table, and the snapshot that holds them (None: none yet)."""

    offsets: Mapping[TopicPartition, int]
    snapshot_id: int | None
    timestamp_ms: int | None

    def next_offset(self, tp: TopicPartition) -> int:
        """Next offset not yet in the table for ``tp`` (0 when nothing was committed)."""
        return self.offsets.get(tp, 0)


def encode_offsets(offsets: Mapping[TopicPartition, int]) -> str:
    """The summary value: JSON, topics and partitions sorted so equal maps give equal text."""
    nested: dict[str, dict[str, int]] = {}
    for (topic, partition), offset in sorted(offsets.items()):
        nested.setdefault(topic, {})[str(partition)] = int(offset)
    return json.dumps(nested, sort_keys=True, separators=(",", ":"))


def decode_offsets(text: str) -> OffsetMap:
    """Parse a summary value; a damaged value is an error, never an empty map (that would
    make the sink commit everything again)."""
    try:
        nested = json.loads(text)
        out: OffsetMap = {}
        for topic, partitions in nested.items():
            for partition, offset in partitions.items():
                out[(str(topic), int(partition))] = int(offset)
        return out
    except (ValueError, TypeError, AttributeError) as exc:
        raise SinkError(
            f"snapshot property {OFFSETS_PROPERTY!r} is not a topic->partition->offset map "
            f"({exc}); the table was changed by hand: restore the property or reset the sink"
        ) from exc


def carrying_snapshots(table: Table) -> Iterator[tuple[Snapshot, str]]:
    """Ancestors of the current snapshot (itself included) that carry offsets, newest first."""
    for snapshot in ancestors_of(table.current_snapshot(), table.metadata):
        summary = snapshot.summary
        text = summary.get(OFFSETS_PROPERTY) if summary is not None else None
        if text is not None:
            yield snapshot, text


def read_committed(table: Table) -> CommittedOffsets:
    """The offsets the table holds (empty when no sink commit is among the ancestors).

    The snapshot reported is the newest carrying one: maintenance keeps it and all that
    is younger (the metadata holds every snapshot's summary, so the walk reads no files).
    """
    found: OffsetMap = {}
    newest: Snapshot | None = None
    for snapshot, text in carrying_snapshots(table):
        newest = newest or snapshot
        found = merge(found, decode_offsets(text))
    if newest is None:
        return CommittedOffsets({}, None, None)
    return CommittedOffsets(found, newest.snapshot_id, newest.timestamp_ms)


def merge(base: Mapping[TopicPartition, int], new: Mapping[TopicPartition, int]) -> OffsetMap:
    """``base`` with ``new`` laid over it; offsets never move backwards."""
    out: OffsetMap = dict(base)
    for tp, offset in new.items():
        out[tp] = max(offset, out.get(tp, 0))
    return out
