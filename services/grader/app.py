"""The Faust worker: grade every input record, publish changes, land them in Iceberg.

One agent reads ``exam.control`` and every ``platform.*`` topic (co-partitioned, keyed by
platform_id). Per record: decode with the contract's ``safe_decode`` (a bad record goes to
``grading.dlq`` with its reason, the worker carries on), grade it with the partition's
:class:`PartitionGrader`, publish each change to the compacted ``grading.criterion-states``
topic and offer it to the Iceberg sink.

Delivery, exactly once into Iceberg: the grader state is the source of truth for where
each partition resumes. At every Iceberg commit, in one step with taking the batch, the
state the batch covers is flushed (touched platform records, then each partition's
marker with its positions) to the table's changelog; the commit waits for the broker's
acks of those records, then commits the consumer group's offsets to the markers'
positions, then writes the batch with its source offsets in the snapshot. So neither the
group's offsets nor Iceberg's run ahead of durable state. Faust's own offset commits are
off for the input topics (its at-least-once commit flushes the producer with a timeout
and can run ahead of a changelog still in its buffer). A restart reads again from the
group's offsets; records already in the restored state are skipped, rows of records
graded again are dropped by the sink's offsets, and the outbox in the state re-offers
rows the table did not get (see ``grading.py``, ``record.py`` and ``sink.py``).
"""

from __future__ import annotations

import asyncio
import collections
import functools
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import faust
from faust.types import TP
from pyiceberg.catalog import Catalog

from services.contract.admission import Admission, RecordFacts
from services.contract.dlq import (
    DeadLetter,
    RawRecord,
    dead_letter_for,
    dead_letter_record,
    safe_decode,
)
from services.contract.schemas import (
    DLQ_TOPIC,
    INPUT_TOPICS,
    PLATFORM_PARTITIONS,
    STATES_TOPIC,
    topic_name,
)
from services.contract.wire import WireCodec
from services.core.events import Event, SourcePosition
from services.errors import RegistryError, SinkError
from services.grader.grading import EngineStore, PartitionGrader, StepResult
from services.grader.maintenance import MaintenanceConfig, TableMaintenance
from services.grader.record import PlatformRecord
from services.grader.rows import TransitionRow
from services.grader.settings import GraderSettings
from services.grader.sink import IcebergSink, SinkConfig
from services.grader.telemetry import CriterionStates, Metrics, record_span
from services.grader.views import exam_scores_sql

log = logging.getLogger(__name__)

RETRY_S = 2.0
#: longest wait for the changelog topic in the consumer's metadata (see the app's
#: consumer_metadata_max_age_ms)
CHANGELOG_WAIT_S = 30.0
#: how long after records past a state position arrived the worker seeks back (again)
GAP_SEEK_S = 1.0
#: how long an assigned partition may hold records past its state's position without
#: delivering any before the worker seeks back to that position
STALL_SEEK_S = 3.0
#: metadata refresh of the worker's consumer: Faust's 5 min default leaves a new
#: changelog topic at "0 partitions" that long
METADATA_MAX_AGE_MS = 5000


@dataclass(slots=True)
class Health:
    """What /healthz and /readyz report."""

    sink_open: bool = False
    last_commit_error: str | None = None
    last_commit_ok_at: float | None = None
    restored: set[int] = field(default_factory=set)


class GraderWorker:
    """The worker's state and behaviour; the Faust app is built around it."""

    def __init__(
        self,
        settings: GraderSettings,
        engines: EngineStore,
        codec: WireCodec,
        catalog_factory: Callable[[], Catalog],
        trino_factory: Callable[[], Any],
        metrics: Metrics | None = None,
        *,
        admission: Admission | None = None,
    ) -> None:
        self.settings = settings
        #: who may say what (docs/trust.md); None grades every decoded record
        self.admission = admission
        #: monotonic seconds for the seek rules (a test drives its own)
        self.clock: Callable[[], float] = time.monotonic
        self.engines = engines
        self.codec = codec
        self.metrics = metrics or Metrics()
        self.criteria = CriterionStates(self.metrics.criteria)
        self.health = Health()
        self._catalog_factory = catalog_factory
        self._trino_factory = trino_factory
        self.sink: IcebergSink | None = None
        self.graders: dict[int, PartitionGrader] = {}
        self._commit_lock = asyncio.Lock()
        self._commit_task: asyncio.Task[None] | None = None
        self._sink_ready = asyncio.Event()
        #: partitions whose last state flush failed: the next flush writes all platforms
        self._unsure: set[int] = set()
        #: set when the table holds every assigned partition's state (Faust's own
        #: ``recovery.completed`` stays set from the first recovery on, so it cannot tell)
        self._recovered = asyncio.Event()
        #: partition numbers assigned to this worker now (records of others are ignored)
        self._owned: set[int] = set()
        #: since when a partition has delivered records past its state's position
        self._gaps: dict[tuple[str, int], tuple[float, int]] = {}
        #: when each input partition last delivered a record (absent: none since assigned)
        self._last_seen: dict[tuple[str, int], float] = {}
        #: since when each input partition's log has held records past its state's position
        self._behind_since: dict[tuple[str, int], float] = {}
        self.input_topics = [topic_name(t, settings.topic_prefix) for t in INPUT_TOPICS]
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
        # acks off: Faust never commits the input offsets; the worker commits them itself,
        # and only positions its durable state has reached (see ``commit``).
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
            # take_events is on the stream, not on the StreamT interface
            batches = stream.take_events(s.batch_records, within=s.batch_wait_s)  # type: ignore[attr-defined]
            async for events in batches:
                await self.on_records(events)

        # See _seek_uncommitted: wrap the consumer's seek-to-committed.
        self._faust_perform_seek = app.consumer.perform_seek
        app.consumer.perform_seek = self._seek_uncommitted  # type: ignore[method-assign]
        app.task(self._open_sink)
        app.timer(0.5)(self._tick)
        if hasattr(self.admission, "refresh_roster"):
            app.timer(s.roster_refresh_s)(self._refresh_roster)
        app.timer(s.maintenance_interval_s, on_leader=True)(self._maintain)
        app.on_partitions_revoked.connect(self._on_revoked)  # type: ignore[arg-type]
        app.on_partitions_assigned.connect(self._on_assigned)  # type: ignore[arg-type]
        app.on_rebalance_complete.connect(self._on_recovered)  # type: ignore[arg-type]
        self._register_pages(app)
        return app

    def _register_pages(self, app: faust.App) -> None:
        worker = self

        @app.page("/healthz")
        async def healthz(web: Any, request: Any) -> Any:
            return web.json({"status": "ok"})

        @app.page("/readyz")
        async def readyz(web: Any, request: Any) -> Any:
            ready, why = worker.readiness()
            body = {
                "ready": ready,
                "reason": why,
                "partitions": sorted({tp.partition for tp in worker._assigned()}),
                "last_commit_error": worker.health.last_commit_error,
            }
            return web.json(body, status=200 if ready else 503)

        @app.page("/metrics")
        async def metrics(web: Any, request: Any) -> Any:
            return web.bytes(worker.metrics.exposition(), content_type="text/plain; version=0.0.4")

    def readiness(self) -> tuple[bool, str]:
        if not self.health.sink_open:
            return False, "the Iceberg table is not open yet (catalog unreachable?)"
        if self.app.rebalancing:
            return False, "partitions are being rebalanced"
        assigned = {tp.partition for tp in self._assigned()}
        missing = assigned - set(self.graders)
        if missing:
            return False, f"partitions {sorted(missing)} are not restored yet"
        return True, "grading"

    def _assigned(self) -> set[TP]:
        try:
            return {tp for tp in self.app.consumer.assignment() if tp.topic in self.input_topics}
        except Exception:
            return set()

    # --- sink lifecycle ------------------------------------------------------------------
    def _new_sink(self) -> IcebergSink:
        s = self.settings
        config = SinkConfig(
            identifier=s.table,
            commit_rows=s.commit_rows,
            commit_interval_s=s.commit_interval_s,
            writer_id=f"{s.app_id}/{s.worker_id}",
        )
        return IcebergSink(self._catalog_factory(), config)

    async def _open_sink(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                sink = await loop.run_in_executor(None, self._new_sink)
                committed = await loop.run_in_executor(None, sink.open)
            except Exception as exc:
                log.warning("cannot open the Iceberg table yet: %s; retrying", exc)
                await asyncio.sleep(RETRY_S)
                continue
            self.sink = sink
            self.health.sink_open = True
            await self._await_changelog_metadata()
            self._sink_ready.set()
            log.info("sink open; offsets in the table: %s", dict(committed.offsets))
            break
        await self._create_view()

    async def _await_changelog_metadata(self) -> None:
        """Hold grading until the consumer's metadata knows the table's changelog topic.

        On a first start Faust creates the changelog topic after subscribing to it, so the
        consumer's metadata says "0 partitions" until its next refresh; a table write before
        then fails Faust's partition check (PartitionsMismatch) and crashes the agent in
        the middle of a record, again and again until the refresh. The refresh comes every
        ``consumer_metadata_max_age_ms`` (set short in the app); wait for it here.

        Only the group's leader has those counts: on the other members the client keeps
        none (None), Faust skips its check, and there is nothing to wait for (a joining
        worker used to wait the whole ``CHANGELOG_WAIT_S`` here).
        """
        topic = self.table.changelog_topic.get_topic_name()
        deadline = time.monotonic() + CHANGELOG_WAIT_S
        while time.monotonic() < deadline:
            if self.app.consumer.topic_partitions(topic) in (None, PLATFORM_PARTITIONS):
                return
            await asyncio.sleep(0.25)
        log.warning(
            "the consumer's metadata still has %s partitions, not %d, for %s after %.0f s; grading",
            self.app.consumer.topic_partitions(topic),
            PLATFORM_PARTITIONS,
            topic,
            CHANGELOG_WAIT_S,
        )

    async def _create_view(self) -> None:
        """Create (or replace) the ``exam_scores`` view beside the table: the scoreboard and
        the end-to-end checks read it. Trino may start after the worker: retry, while
        grading goes on."""
        s = self.settings
        namespace, table = s.table.split(".", 1)
        sql = exam_scores_sql(s.trino_catalog, namespace, table)
        loop = asyncio.get_running_loop()

        def create() -> None:
            conn = self._trino_factory()
            try:
                cur = conn.cursor()
                cur.execute(sql)
                cur.fetchall()
            finally:
                conn.close()

        while True:
            try:
                await loop.run_in_executor(None, create)
            except Exception as exc:
                log.warning("cannot create the exam_scores view yet: %s; retrying", exc)
                await asyncio.sleep(RETRY_S)
                continue
            log.info("view %s.%s.exam_scores is in place", s.trino_catalog, namespace)
            return

    # --- per record ----------------------------------------------------------------------
    def _grader(self, partition: int) -> PartitionGrader:
        grader = self.graders.get(partition)
        if grader is not None:
            return grader
        assert self.sink is not None
        grader = PartitionGrader(partition, self.engines)
        for row in grader.restore(self._table_records()):
            self.sink.offer(row)
        for topic, offset in grader.positions.items():
            self.sink.processed((topic, partition), offset)
        self.graders[partition] = grader
        self.health.restored.add(partition)
        log.info(
            "partition %d restored: %d platforms, positions %s, %d outbox rows held for "
            "records to grade again",
            partition,
            len(grader.platforms),
            grader.positions,
            grader.held_rows,
        )
        return grader

    def _table_records(self) -> list[PlatformRecord]:
        return [PlatformRecord.decode(v) for _k, v in self.table.items() if v is not None]

    async def _decode(self, raw: RawRecord) -> Event | DeadLetter:
        loop = asyncio.get_running_loop()
        while True:
            try:
                if self.codec.needs_registry(raw.value_bytes):  # a lookup may block: not here
                    return await loop.run_in_executor(None, safe_decode, raw, self.codec)
                return safe_decode(raw, self.codec)
            except RegistryError as exc:  # not the record's fault: wait, never dead-letter
                log.warning("schema registry unavailable (%s); retrying", exc)
                await asyncio.sleep(RETRY_S)

    async def _admit(self, event: Event, raw: RawRecord) -> Any:
        """The admission's refusal of a decoded record, or None to grade it.

        An unknown platform may be one enrolled since the roster was last read: the
        (blocking, rate-limited) re-read runs off the event loop.
        """
        assert self.admission is not None
        facts = RecordFacts(
            raw.topic_name,
            raw.partition_no,
            raw.offset_no,
            raw.key_bytes,
            raw.value_bytes or b"",
            raw.header_list,
            raw.timestamp_ms,
        )
        refusal = self.admission.admit(event, facts)
        if refusal is not None and refusal.error_class == "unknown_platform":
            recheck = getattr(self.admission, "admit_after_refresh", None)
            loop = asyncio.get_running_loop()
            while recheck is not None:
                try:
                    refusal = await loop.run_in_executor(None, recheck, event, facts)
                    break
                except Exception as exc:  # the roster is unreadable: not the record's fault
                    log.warning("cannot re-read the roster (%s); retrying", exc)
                    await asyncio.sleep(RETRY_S)
        return refusal

    async def _refresh_roster(self) -> None:
        """Read what is new on the roster topic (periodic; a failure is logged, not fatal)."""
        refresh = getattr(self.admission, "refresh_roster", None)
        if refresh is None:
            return
        try:
            await asyncio.get_running_loop().run_in_executor(None, refresh)
        except Exception as exc:  # the roster held stays in force until the next read
            log.warning("roster refresh failed: %s", exc)

    async def on_records(self, events: Sequence[faust.EventT[Any]]) -> None:
        """Grade a batch of records in their order (each in :meth:`_grade`, with its own
        span), then one metrics update and one round of state sends for the batch."""
        await self._sink_ready.wait()
        outcomes: collections.Counter[tuple[str, str]] = collections.Counter()
        rows: list[TransitionRow] = []
        for event in events:
            msg = event.message
            outcomes[(msg.topic, await self._grade(msg, rows))] += 1
        await self._publish(rows)
        for (topic, outcome), n in outcomes.items():
            self.metrics.records.labels(topic, outcome).inc(n)
        self.metrics.batch_records.observe(len(events))
        self.maybe_commit()

    async def _grade(self, msg: Any, rows: list[TransitionRow]) -> str:
        """Grade one record; its rows are appended to ``rows``; returns its outcome."""
        if not self._recovered.is_set():
            await self._recovered.wait()
        if msg.partition not in self._owned:
            # A record fetched before its partition was revoked: its new owner grades it.
            return "not_owned"
        start = time.perf_counter()
        headers = _headers(msg.headers)
        span = record_span(self._tracer, msg.topic, msg.partition, msg.offset, headers)
        try:
            return await self._grade_traced(msg, headers, span, rows)
        finally:
            span.end()
            self.metrics.grading_seconds.observe(time.perf_counter() - start)

    async def _grade_traced(
        self, msg: Any, headers: Any, span: Any, rows: list[TransitionRow]
    ) -> str:
        assert self.sink is not None
        key = (msg.topic, msg.partition)
        first = key not in self._last_seen
        self._last_seen[key] = self.clock()
        grader = self._grader(msg.partition)
        resume = grader.resume_at(msg.topic)
        if first:
            log.info(
                "%s[%d]: first record at offset %d (state resumes at %s)",
                msg.topic,
                msg.partition,
                msg.offset,
                resume,
            )
        if resume is not None and msg.offset > resume:
            await self._out_of_order(TP(msg.topic, msg.partition), msg.offset, resume)
            return "out_of_order"
        if resume is not None and msg.offset == resume:
            self._gaps.pop(key, None)
        raw = RawRecord(
            msg.topic,
            msg.partition,
            msg.offset,
            msg.key,
            msg.value,
            headers,
            int(msg.timestamp * 1000) if msg.timestamp else None,
        )
        pos = SourcePosition(msg.topic, msg.partition, msg.offset)
        decoded = await self._decode(raw)
        if not isinstance(decoded, DeadLetter) and self.admission is not None:
            refusal = await self._admit(decoded, raw)
            if refusal is not None:  # dead-lettered exactly like a record that cannot decode
                decoded = dead_letter_for(raw, refusal.reason, refusal.error_class)
        if isinstance(decoded, DeadLetter):
            result = await self._dead_letter(grader, decoded, pos)
            outcome = "dead_letter"
        else:
            span.set_attribute("proctor.event_id", decoded.event_id)
            span.set_attribute("proctor.event_type", decoded.type)
            result = grader.handle(decoded, pos)
            outcome = "graded"
        # Rows and the record's offset enter the sink buffer in one step (no await in
        # between): a batch taken by the commit task while a later await waits must never
        # hold a record's rows without its offset, or a restart would grade the record
        # again and commit its rows twice.
        self._offer(result.rows)
        self.sink.processed(key, msg.offset + 1)
        rows += result.rows
        span.set_attribute("proctor.transitions", len(result.rows))
        return "replayed" if result.replayed else outcome

    async def _out_of_order(self, tp: TP, offset: int, resume: int) -> None:
        """A record past the state's position is not graded.

        The records before it were dropped by the consumer: Faust drops a fetched batch
        when its flow stops for a rebalance and seeks back to the committed offsets, but
        a batch already in flight may still be delivered and move its read offset past
        them. ``_tick`` seeks back to the state's position until they come.
        """
        self.metrics.position_gaps.labels(tp.topic).inc()
        key = (tp.topic, tp.partition)
        if key not in self._gaps:
            self._gaps[key] = (self.clock(), resume)
            log.warning(
                "%s[%d] offset %d arrived before %d, where the grader state resumes; "
                "reading from %d again",
                tp.topic,
                tp.partition,
                offset,
                resume,
                resume,
            )

    def _find_stalls(self, marks: dict[TP, tuple[int, int]]) -> None:
        """Partitions whose records past the state's position never arrive.

        The stale in-flight batch of ``_out_of_order`` can carry a partition's read offset
        to the end of its log; then no later record reveals the gap. A partition whose
        log has held records past its state's position for ``STALL_SEEK_S``, without
        delivering any in that time, is read again from that position (a needless seek
        only makes records arrive twice, and the second copy is skipped). ``marks`` are
        :meth:`_marks`.
        """
        if self.app.rebalancing or not self._recovered.is_set():
            return
        now = self.clock()
        for tp, (resume, high) in marks.items():
            key = (tp.topic, tp.partition)
            if key in self._gaps:
                continue
            if high <= resume:
                self._behind_since.pop(key, None)
                continue
            since = max(self._behind_since.setdefault(key, now), self._last_seen.get(key, 0.0))
            if now - since < STALL_SEEK_S:
                continue
            self.metrics.position_gaps.labels(tp.topic).inc()
            log.warning(
                "%s[%d] holds records up to offset %d, past %d where the grader state "
                "resumes, but delivered none for %.0f s; reading from %d again",
                tp.topic,
                tp.partition,
                high - 1,
                resume,
                now - since,
                resume,
            )
            self._gaps[key] = (now - GAP_SEEK_S, resume)
            self._behind_since[key] = now

    async def _seek_gaps(self) -> None:
        now = self.clock()
        for (topic, partition), (since, resume) in list(self._gaps.items()):
            if now - since < GAP_SEEK_S:
                continue
            self._gaps[(topic, partition)] = (now, resume)
            log.info("%s[%d]: seeking back to %d", topic, partition, resume)
            await self.app.consumer.seek(TP(topic, partition), resume)

    async def _seek_uncommitted(self) -> None:
        """Faust's ``perform_seek``, then an explicit seek to the first record for every
        input partition the group has not committed past offset 0.

        Faust drops a fetched batch when its flow stops (a rebalance) and relies on
        seeking back to the committed offsets; the client skips that seek for a
        partition with nothing (or 0) committed, so the dropped records would never
        come back. This closes that hole.
        """
        consumer = self.app.consumer
        await self._faust_perform_seek()
        tps = list(self._assigned())
        if not tps:
            return
        committed = await consumer.seek_to_committed()  # type: ignore[attr-defined]
        unset = [tp for tp in tps if not committed.get(tp)]
        if unset:
            earliest = await consumer.earliest_offsets(*unset)
            await consumer.seek_wait({tp: earliest.get(tp, 0) for tp in unset})

    async def _dead_letter(
        self, grader: PartitionGrader, dead: DeadLetter, pos: SourcePosition
    ) -> StepResult:
        result = grader.mark(pos)
        if result.replayed:
            return result
        _topic, key, value = dead_letter_record(dead, self.codec)
        # Wait for the broker's ack before the position moves: a dead letter is never lost;
        # a crash before the next state flush sends it again (consumers dedupe by source
        # position).
        await (await self.dlq_topic.send(key=key, value=value))
        self.metrics.dead_letters.labels(pos.topic, dead.error_class).inc()
        log.warning("dead letter %s: %s", pos, dead.reason)
        return result

    async def _publish(self, rows: Sequence[TransitionRow]) -> None:
        assert self.sink is not None
        for row in rows:
            state = row.to_state_record()
            data = {
                k: v for k, v in state.items() if k not in ("type", "platform_id", "event_id", "ts")
            }
            data["event_ts"] = _rfc3339(row.event_ts_ms)
            data["graded_at"] = _rfc3339(row.graded_at_ms)
            value = self.codec.encode(
                Event(
                    "grading.criterion_state",
                    row.platform_id,
                    row.transition_id,
                    row.event_ts_ms,
                    data,
                )
            )
            await self.states_topic.send(key=row.state_key.encode(), value=value)

    def _offer(self, rows: tuple[TransitionRow, ...]) -> None:
        """Buffer the rows for Iceberg (synchronous: see ``on_record``)."""
        assert self.sink is not None
        for row in rows:
            self.sink.offer(row)
            self.metrics.transitions.labels(row.state).inc()
            self.criteria.update(row.state_key, row.state)

    # --- commits -------------------------------------------------------------------------
    def maybe_commit(self, force: bool = False) -> None:
        if self.sink is None or (self._commit_task is not None and not self._commit_task.done()):
            return
        self.metrics.buffered_rows.set(self.sink.buffered_rows)
        if force or self.sink.due():
            self._commit_task = asyncio.ensure_future(self.commit())

    async def commit(self) -> None:
        """Take a batch, make its changelog durable, then write it to Iceberg."""
        sink = self.sink
        if sink is None:
            return
        async with self._commit_lock:
            # One step, no await in between: the state written is the state the batch
            # covers, so Iceberg's offsets never pass the durable positions.
            flushed = self._flush_state(sink)
            batch = sink.take()
            loop = asyncio.get_running_loop()
            try:
                await self._await_state(flushed)
                await self._commit_positions(flushed)
                if batch is None:
                    return
                result = await loop.run_in_executor(None, sink.write, batch)
            except (SinkError, Exception) as exc:
                if batch is not None:
                    sink.restore(batch)
                self.metrics.commits.labels("failed").inc()
                self.health.last_commit_error = str(exc)
                log.warning("Iceberg commit failed, will retry: %s", exc)
                await asyncio.sleep(RETRY_S)
                return
            sink.finish(result)
            self.health.last_commit_error = None
            self.health.last_commit_ok_at = time.time()
            self.metrics.commits.labels("ok").inc()
            self.metrics.commit_rows.inc(result.rows)
            self.metrics.commit_seconds.observe(result.duration_s)
            log.info("committed %d rows in snapshot %d", result.rows, result.snapshot_id)

    async def _commit_positions(self, sends: list[tuple[int, Any]]) -> None:
        """Commit the consumer group's offsets to the positions of the markers just made
        durable (a partition no longer assigned is left to its new owner)."""
        offsets: dict[TP, int] = {}
        for partition in {p for p, _f in sends}:
            grader = self.graders.get(partition)
            if grader is None or grader.flushed_positions is None:
                continue
            for topic, offset in grader.flushed_positions.items():
                offsets[TP(topic, partition)] = offset
        if offsets:
            await self.app.consumer._commit(offsets)  # type: ignore[attr-defined]

    def _flush_state(self, sink: IcebergSink) -> list[tuple[int, Any]]:
        """Write the state of every partition graded since the last flush: platform
        records first, each partition's marker last; returns the sends to wait for."""
        sends: list[tuple[int, Any]] = []
        for partition, grader in self.graders.items():
            if partition in self._unsure:
                grader.touch_all()
            elif grader.unflushed == 0:
                continue
            records = grader.flush(sink.is_committed)
            for record in records:
                key, value = record.platform_id.encode(), record.encode()
                self.table.data[key] = value
                sends.append((partition, self.table.send_changelog(partition, key, value)))
            self.metrics.state_records.inc(len(records))
        return sends

    async def _await_state(self, sends: list[tuple[int, Any]]) -> None:
        """Wait for the broker's acks of a flush; a partition whose send failed writes
        all its platforms at the next flush (its marker must not vouch for lost ones)."""
        results = await asyncio.gather(*(fut for _p, fut in sends), return_exceptions=True)
        failed = {
            p for (p, _f), r in zip(sends, results, strict=True) if isinstance(r, BaseException)
        }
        self._unsure -= {p for p, _f in sends} - failed
        if failed:
            self._unsure |= failed
            raise SinkError(f"the grader state of partitions {sorted(failed)} was not written")

    async def _tick(self) -> None:
        self._restore_idle_partitions()
        self._find_stalls(self._marks())
        await self._seek_gaps()
        self.maybe_commit()

    def _marks(self) -> dict[TP, tuple[int, int]]:
        """(next offset the state grades, high-water mark) of every assigned input
        partition with a grader and a known high-water mark; sets the lag gauge."""
        marks: dict[TP, tuple[int, int]] = {}
        for tp in self._assigned():
            grader = self.graders.get(tp.partition)
            if grader is None:
                continue
            try:
                high = self.app.consumer.highwater(tp)
            except Exception:
                continue
            if high is None:
                continue
            resume = grader.resume_at(tp.topic) or 0
            self.metrics.lag.labels(tp.topic, str(tp.partition)).set(max(0, high - resume))
            marks[tp] = (resume, high)
        return marks

    def _restore_idle_partitions(self) -> None:
        """Take over assigned partitions that have no new records: their outbox must still
        reach Iceberg, and /readyz waits for every assigned partition."""
        if self.sink is None or self.app.rebalancing:
            return
        if not self._recovered.is_set():
            return
        for partition in sorted({tp.partition for tp in self._assigned()} - set(self.graders)):
            self._grader(partition)

    async def _on_assigned(self, sender: Any, assigned: set[TP], **kwargs: Any) -> None:
        # Not a place to clear _recovered: Faust starts the table recovery before this
        # signal, and an empty changelog can finish it first (the revoke clears it).
        self._owned = {tp.partition for tp in assigned if tp.topic in self.input_topics}

    async def _on_recovered(self, sender: Any = None, **kwargs: Any) -> None:
        """Faust sends this once the assigned partitions' tables are read back, before
        the input partitions resume: from here a grader may be built from the table."""
        self._recovered.set()

    async def _on_revoked(self, sender: Any, revoked: set[TP], **kwargs: Any) -> None:
        gone = {tp for tp in revoked if tp.topic in self.input_topics}
        self._recovered.clear()
        self._owned -= {tp.partition for tp in gone}
        async with self._commit_lock:
            if self.sink is not None:
                dropped = self.sink.revoke((tp.topic, tp.partition) for tp in gone)
                log.info(
                    "revoked %d partitions; %d buffered rows left to the new owner",
                    len(gone),
                    dropped,
                )
            for partition in {tp.partition for tp in gone}:
                self.graders.pop(partition, None)
                self.health.restored.discard(partition)
                self._unsure.discard(partition)
            for tp in gone:
                self._gaps.pop((tp.topic, tp.partition), None)
                self._last_seen.pop((tp.topic, tp.partition), None)
                self._behind_since.pop((tp.topic, tp.partition), None)

    # --- maintenance ---------------------------------------------------------------------
    async def _maintain(self) -> None:
        if self.sink is None:
            return
        s = self.settings
        maint = TableMaintenance(
            self._trino_factory,
            lambda: self._catalog_factory().load_table(s.table),
            s.trino_catalog,
            s.table,
            MaintenanceConfig(
                interval_s=s.maintenance_interval_s,
                snapshot_retention_s=s.snapshot_retention_s,
                orphan_retention_s=s.orphan_retention_s,
            ),
        )
        loop = asyncio.get_running_loop()
        for step in await loop.run_in_executor(None, maint.run):
            self.metrics.maintenance_seconds.labels(step.action).observe(step.duration_s)
            self.metrics.maintenance_runs.labels(step.action, "ok" if step.ok else "failed").inc()
            log.info(
                "maintenance %s: %s (%s)", step.action, "ok" if step.ok else "failed", step.detail
            )
        try:
            stats = await loop.run_in_executor(None, maint.stats)
        except Exception as exc:
            log.warning("table stats unavailable: %s", exc)
            return
        self.metrics.table_files.set(stats.data_files)
        self.metrics.table_snapshots.set(stats.snapshots)

    @functools.cached_property
    def _tracer(self) -> Any:
        from opentelemetry import trace

        return trace.get_tracer("proctor.grader")


def _headers(raw: Any) -> tuple[tuple[str, bytes | None], ...]:
    items = raw.items() if isinstance(raw, dict) else (raw or ())
    return tuple((str(k), v.encode() if isinstance(v, str) else v) for k, v in items)


def _rfc3339(ms: int) -> str:
    from services.contract.convert import format_timestamp

    return format_timestamp(ms)
