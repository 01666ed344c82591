"""Every reach into Faust or aiokafka beyond their typed public interface, and why.

Each function here does something the worker needs that Faust (faust-streaming 0.15) does
not offer through ``faust.types``; nothing else in the worker touches a private name. When
Faust or aiokafka is upgraded, this module is what to check.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any, cast

import faust
from faust.types import TP, TableT

from services.contract.dlq import RawRecord
from services.contract.schemas import PLATFORM_PARTITIONS
from services.grader.offsets import TopicPartition
from services.grader.record import PlatformRecord

log = logging.getLogger(__name__)


def take_batches(stream: faust.StreamT[bytes], size: int, within: float) -> AsyncIterator[Any]:
    """Batches of whole events (with their messages' topic, partition, offset, headers).

    Why: ``take_events`` exists on Faust's ``Stream`` but not on the ``StreamT`` interface
    an agent is handed; ``take`` would give values without their positions.
    """
    return cast(AsyncIterator[Any], cast(Any, stream).take_events(size, within=within))


def record_of(event: Any) -> RawRecord:
    """The contract's view of a Faust event's message. Faust gives the timestamp in
    seconds as a float (None, or negative, when the record has none)."""
    msg = event.message
    headers = msg.headers.items() if isinstance(msg.headers, dict) else (msg.headers or ())
    ts = msg.timestamp
    return RawRecord(
        msg.topic,
        msg.partition,
        msg.offset,
        msg.key,
        msg.value,
        tuple((str(k), v.encode() if isinstance(v, str) else v) for k, v in headers),
        round(ts * 1000) if ts is not None and ts >= 0 else None,
    )


def connect(signal: Any, handler: Callable[..., Awaitable[None]]) -> None:
    """Connect an async handler to an app signal.

    Why: Faust types its signal receivers as plain callables of its own sender type, which
    an async bound method does not match (the receivers are awaited all the same).
    """
    signal.connect(cast(Any, handler))


def after_seek_to_committed(app: faust.App, after: Callable[[], Awaitable[None]]) -> None:
    """Run ``after`` each time Faust seeks its consumer back to the committed offsets.

    Why: Faust drops a fetched batch when its flow stops (a rebalance) and relies on that
    seek to read it again; the client skips the seek for a partition with nothing (or 0)
    committed, so those records would never come back. ``perform_seek`` is the only hook.
    """
    consumer = app.consumer
    original = consumer.perform_seek

    async def perform_seek() -> None:
        await original()
        await after()

    cast(Any, consumer).perform_seek = perform_seek


async def seek(app: faust.App, tp: TopicPartition, offset: int) -> None:
    """Read ``tp`` again from ``offset``.

    Why not ``consumer.seek``: Faust's aiokafka driver runs the client in a thread of its
    own, but its ``seek`` calls the client directly from the event loop's thread; the
    client's fetcher may be iterating its fetched records in its thread at that moment,
    and the fetcher crashes (KeyError in ``fetched_records``: seen in a fault test).
    ``seek_wait`` runs the same seek in the client's thread.
    """
    await app.consumer.seek_wait({TP(*tp): offset})


async def seek_uncommitted_to_earliest(app: faust.App, tps: list[TP]) -> None:
    """Seek the partitions of ``tps`` with nothing committed to their first record.

    Why: ``seek_to_committed`` (which reports what it found) is on Faust's consumer class
    but not on ``ConsumerT``.
    """
    consumer = app.consumer
    committed: Mapping[TP, int] = await cast(Any, consumer).seek_to_committed()
    unset = [tp for tp in tps if not committed.get(tp)]
    if unset:
        earliest = await consumer.earliest_offsets(*unset)
        await consumer.seek_wait({tp: earliest.get(tp, 0) for tp in unset})


class GroupOffsets:
    """The consumer group's committed offsets (the checkpoint's ``GroupOffsets``)."""

    def __init__(self, app: faust.App) -> None:
        self._app = app

    async def commit(self, offsets: Mapping[TopicPartition, int]) -> None:
        """Commit exactly these offsets.

        Why: Faust's public ``commit`` commits the offsets of the events it saw acked,
        which can run ahead of the grader state; ``_commit`` takes the offsets to commit.
        Faust's own commits are off for the input topics (declared with acks off).
        """
        tps = {TP(t, p): o for (t, p), o in offsets.items()}
        await cast(Any, self._app.consumer)._commit(tps)


class TableLog:
    """The state table (the checkpoint's ``StateLog``)."""

    def __init__(self, table: TableT[Any, Any]) -> None:
        self._table = table

    def write(self, partition: int, record: PlatformRecord) -> Any:
        """Keep the record in the table and send it to its changelog partition; returns
        the send's future (resolved on the broker's ack).

        Why: ``table[key] = value`` works only inside an agent's event (it takes the
        partition from the current event) and does not return the send to wait for; the
        checkpoint writes at commit time, outside any event, and waits for the acks.
        """
        key, value = record.platform_id.encode(), record.encode()
        self._table.data[key] = value
        return self._table.send_changelog(partition, key, value)


def changelog_partitions(app: faust.App, table: TableT[Any, Any]) -> int | None:
    """Partitions the consumer's metadata knows for the table's changelog topic (None on
    a member that is not the group's leader: only the leader keeps the counts)."""
    return app.consumer.topic_partitions(table.changelog_topic.get_topic_name())


async def await_changelog_metadata(app: faust.App, table: TableT[Any, Any], wait_s: float) -> None:
    """Hold grading until the consumer's metadata knows the table's changelog topic.

    Why: on a first start Faust creates the changelog topic after subscribing to it, so
    the consumer's metadata says "0 partitions" until its next refresh (the app's
    ``consumer_metadata_max_age_ms``); a table write before then fails Faust's partition
    check (PartitionsMismatch) and crashes the agent mid-record. Only the group's leader
    keeps those counts (None elsewhere: nothing to wait for).
    """
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        if changelog_partitions(app, table) in (None, PLATFORM_PARTITIONS):
            return
        await asyncio.sleep(0.25)
    log.warning(
        "the consumer's metadata still has %s partitions, not %d, for the changelog after "
        "%.0f s; grading",
        changelog_partitions(app, table),
        PLATFORM_PARTITIONS,
        wait_s,
    )


def leave_group_when_stopping(app: faust.App) -> None:
    """On a clean stop, leave the consumer group even as a static member.

    Why: with ``group.instance.id`` set, aiokafka never sends LeaveGroup (by design: a
    static member that restarts within the session timeout gets its partitions back
    without a rebalance). That is what a crash needs, but a worker stopped on purpose
    (scale-down, a rolling update to a new pod) must hand its partitions over at once.
    Forgetting the instance id just before the consumer stops makes aiokafka leave as a
    dynamic member does; the broker accepts a LeaveGroup by member id for a static member.
    """

    async def forget_instance_id(sender: Any = None, **kwargs: Any) -> None:
        try:
            coordinator = cast(Any, app.consumer)._thread._consumer._coordinator
        except AttributeError:
            return
        if coordinator is not None and coordinator._group_instance_id is not None:
            log.info("leaving the group as %s", coordinator._group_instance_id)
            coordinator._group_instance_id = None

    connect(app.on_before_shutdown, forget_instance_id)
