"""The Faust shell of the worker: app, topics, table, agent, timers, signals and pages.

One agent reads ``exam.control`` and every ``platform.*`` topic (co-partitioned, keyed by
platform_id) and hands each batch to the pipeline; the work is done in rooms that own
their state (docs/worker.md): ``pipeline``, ``checkpoint``, ``rewind``, ``assignment``,
``health`` and ``tableside``. Only this module and ``faust_internals`` (every reach past
Faust's public interface, with its reason) know Faust.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import faust
from faust.types import TP
from pyiceberg.catalog import Catalog

from services.contract.admission import Admission, AdmitAll
from services.contract.schemas import (
    DLQ_TOPIC,
    INPUT_TOPICS,
    PLATFORM_PARTITIONS,
    STATES_TOPIC,
    topic_name,
)
from services.contract.wire import WireCodec
from services.grader import faust_internals as fi
from services.grader.assignment import Assignments
from services.grader.checkpoint import Checkpoint
from services.grader.grading import EngineStore
from services.grader.health import PROMETHEUS_TEXT, Health
from services.grader.offsets import TopicPartition
from services.grader.outbox import TopicOutbox
from services.grader.pipeline import BatchPipeline
from services.grader.record import PlatformRecord
from services.grader.rewind import RewindPolicy
from services.grader.settings import GraderSettings
from services.grader.tableside import TableSide
from services.grader.telemetry import Metrics
from services.grader.tick import Tick

log = logging.getLogger(__name__)

#: longest wait for the changelog topic in the consumer's metadata
CHANGELOG_WAIT_S = 30.0
#: metadata refresh of the worker's consumer: Faust's 5 min default leaves a new
#: changelog topic at "0 partitions" that long
METADATA_MAX_AGE_MS = 5000
TICK_S = 0.5
#: the admission of a worker built without one (replaying a recording)
ADMIT_ALL = AdmitAll()


class GraderWorker:
    """The rooms of the worker, and the Faust app built around them."""

    def __init__(
        self,
        settings: GraderSettings,
        engines: EngineStore,
        codec: WireCodec,
        catalog_factory: Callable[[], Catalog],
        trino_factory: Callable[[], Any],
        metrics: Metrics | None = None,
        admission: Admission | None = None,
    ) -> None:
        self.settings = settings
        self.codec = codec
        #: may this record grade at all (docs/trust.md); refusals become dead letters;
        #: None admits every decoded record (a recording, or --insecure-no-trust)
        self.admission = ADMIT_ALL if admission is None else admission
        self.metrics = metrics or Metrics()
        self.input_topics = [topic_name(t, settings.topic_prefix) for t in INPUT_TOPICS]
        self.tableside = TableSide(settings, catalog_factory, trino_factory, self.metrics)
        self.assignments = Assignments(engines, self._table_records)
        self.rewind = RewindPolicy()
        self.ticker = Tick(
            self.assignments,
            self.rewind,
            self.metrics,
            _Consumer(self),
            lambda tp, offset: fi.seek(self.app, tp, offset),
        )
        self.health = Health(self, self.metrics)
        #: one thread grades, so records keep their order and batches never overlap
        self.grading_thread = ThreadPoolExecutor(1, thread_name_prefix="grading")
        #: built once the Iceberg table is open (both need the sink)
        self.pipeline: BatchPipeline | None = None
        self.checkpoint: Checkpoint | None = None
        self._ready = asyncio.Event()
        self.app = self._build_app()

    # --- the Faust app -------------------------------------------------------------------
    def _build_app(self) -> faust.App:
        s = self.settings
        app = faust.App(
            s.app_id,
            broker=f"kafka://{s.kafka_bootstrap}",
            store="rocksdb://" if s.store == "rocksdb" else "memory://",
            datadir=s.data_dir,
            processing_guarantee="at_least_once",
            consumer_auto_offset_reset="earliest",
            consumer_group_instance_id=s.worker_id if s.static_membership else None,
            broker_session_timeout=s.session_timeout_s,
            broker_heartbeat_interval=min(s.heartbeat_interval_s, s.session_timeout_s / 3),
            producer_acks=-1,
            consumer_metadata_max_age_ms=METADATA_MAX_AGE_MS,
            topic_partitions=PLATFORM_PARTITIONS,
            topic_replication_factor=s.replication_factor,
            topic_allow_declare=True,
            key_serializer="raw",
            value_serializer="raw",
            web_enabled=True,
            web_bind=s.http_host,
            web_host=s.http_host,
            web_port=s.http_port,
            autodiscover=False,
            **s.aiokafka_auth(),
        )
        # acks off: Faust never commits the input offsets; the checkpoint commits them,
        # and only positions the durable state has reached.
        source = app.topic(*self.input_topics, key_type=bytes, value_type=bytes, acks=False)
        self.table = app.Table(
            "platforms", partitions=PLATFORM_PARTITIONS, key_type=bytes, value_type=bytes
        )
        self.states_topic = app.topic(
            topic_name(STATES_TOPIC, s.topic_prefix), key_type=bytes, value_type=bytes
        )
        self.dlq_topic = app.topic(
            topic_name(DLQ_TOPIC, s.topic_prefix), key_type=bytes, value_type=bytes
        )

        @app.agent(source, concurrency=1)
        async def grade(stream: faust.StreamT[bytes]) -> None:
            async for events in fi.take_batches(stream, s.batch_records, s.batch_wait_s):
                await self._ready.wait()
                assert self.pipeline is not None and self.checkpoint is not None
                await self.pipeline.run([fi.record_of(e) for e in events])
                self.checkpoint.maybe_commit()

        fi.after_seek_to_committed(app, self._seek_uncommitted)
        fi.leave_group_when_stopping(app)
        app.task(self._open)
        app.timer(TICK_S)(self._tick)
        if hasattr(self.admission, "refresh_roster"):
            app.timer(s.roster_refresh_s)(self._refresh_roster)
        app.timer(s.maintenance_interval_s, on_leader=True)(self.tableside.maintain)
        fi.connect(app.on_partitions_revoked, self._on_revoked)
        fi.connect(app.on_partitions_assigned, self._on_assigned)
        fi.connect(app.on_rebalance_complete, self._on_recovered)
        self._register_pages(app)
        return app

    def _register_pages(self, app: faust.App) -> None:
        health = self.health

        @app.page("/healthz")
        async def healthz(web: Any, request: Any) -> Any:
            return web.json(health.healthz())

        @app.page("/readyz")
        async def readyz(web: Any, request: Any) -> Any:
            body, status = health.readyz()
            return web.json(body, status=status)

        @app.page("/metrics")
        async def metrics(web: Any, request: Any) -> Any:
            return web.bytes(health.exposition(), content_type=PROMETHEUS_TEXT)

    # --- what health reads (health.Probe) -----------------------------------------------
    @property
    def sink_open(self) -> bool:
        return self.tableside.sink is not None

    @property
    def rebalancing(self) -> bool:
        return bool(self.app.rebalancing)

    def assigned_partitions(self) -> set[int]:
        return {tp.partition for tp in self._assigned()}

    def restored_partitions(self) -> set[int]:
        return self.assignments.restored

    @property
    def last_commit_error(self) -> str | None:
        return self.checkpoint.last_error if self.checkpoint is not None else None

    def _assigned(self) -> set[TP]:
        try:
            return {tp for tp in self.app.consumer.assignment() if tp.topic in self.input_topics}
        except Exception:
            return set()

    # --- start ---------------------------------------------------------------------------
    async def _open(self) -> None:
        sink = await self.tableside.open_sink()
        self.checkpoint = Checkpoint(
            self.assignments.graders,
            self.assignments.lock,
            fi.TableLog(self.table),
            fi.GroupOffsets(self.app),
            sink,
            self.metrics,
        )
        self.pipeline = BatchPipeline(
            self.codec,
            self.admission,
            self.assignments,
            self.rewind,
            sink,
            TopicOutbox(self.dlq_topic, self.states_topic),
            self.metrics,
            self.grading_thread,
            _tracer(),
            log_ends=self._partition_log_ends,
        )
        await fi.await_changelog_metadata(self.app, self.table, CHANGELOG_WAIT_S)
        self._ready.set()
        await self.tableside.create_view()

    def _table_records(self) -> list[PlatformRecord]:
        return [PlatformRecord.decode(v) for _k, v in self.table.items() if v is not None]

    # --- the tick (tick.py) and the roster ----------------------------------------------
    async def _tick(self) -> None:
        settled = not self.app.rebalancing and self.assignments.recovered.is_set()
        await self.ticker.run(self.tableside.sink, settled, self.checkpoint)

    async def _refresh_roster(self) -> None:
        """Read what is new on the roster topic (periodic; a failure is logged, not fatal:
        the roster held stays in force until the next read)."""
        refresh = getattr(self.admission, "refresh_roster", None)
        if refresh is None:
            return
        try:
            await asyncio.get_running_loop().run_in_executor(None, refresh)
        except Exception as exc:
            log.warning("roster refresh failed: %s", exc)

    async def _partition_log_ends(self, partition: int) -> dict[str, int]:
        """The broker's log end of every input topic of ``partition`` (a ListOffsets
        request: unlike ``highwater``, known before any fetch of the partition)."""
        tps = [TP(topic, partition) for topic in self.input_topics]
        ends = await self.app.consumer.highwaters(*tps)
        return {tp.topic: int(end) for tp, end in ends.items() if end is not None}

    # --- rebalances ----------------------------------------------------------------------
    async def _seek_uncommitted(self) -> None:
        tps = list(self._assigned())
        if tps:
            await fi.seek_uncommitted_to_earliest(self.app, tps)

    async def _on_assigned(self, sender: Any, assigned: set[TP], **kwargs: Any) -> None:
        self.assignments.assigned(
            {tp.partition for tp in assigned if tp.topic in self.input_topics}
        )

    async def _on_recovered(self, sender: Any = None, **kwargs: Any) -> None:
        """Faust sends this once the assigned partitions' tables are read back, before
        the input partitions resume: from here a grader may be built from the table."""
        self.assignments.recovered.set()

    async def _on_revoked(self, sender: Any, revoked: set[TP], **kwargs: Any) -> None:
        gone = {(tp.topic, tp.partition) for tp in revoked if tp.topic in self.input_topics}
        partitions = {p for _t, p in gone}
        self.assignments.revoking()
        checkpoint, sink = self.checkpoint, self.tableside.sink
        if checkpoint is None or sink is None:
            self.assignments.drop(partitions)
        else:
            async with checkpoint.paused():
                dropped = sink.revoke(gone)
                log.info(
                    "revoked %d partitions; %d buffered rows left to the new owner",
                    len(gone),
                    dropped,
                )
                self.assignments.drop(partitions)
                checkpoint.forget(partitions)
        self.rewind.forget(gone)


class _Consumer:
    """The worker's consumer as the tick sees it (tick.ConsumerView)."""

    def __init__(self, worker: GraderWorker) -> None:
        self._worker = worker

    def assigned(self) -> set[TopicPartition]:
        return set(self._worker._assigned())

    def highwater(self, tp: TopicPartition) -> int | None:
        high: int | None = self._worker.app.consumer.highwater(TP(*tp))
        return high


def _tracer() -> Any:
    from opentelemetry import trace

    return trace.get_tracer("proctor.grader")
