"""The platforms of one partition: each one's engine, its own clock, its outbox of rows
not yet known to be in Iceberg, and which of them the next flush writes."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from services.core.events import SourcePosition
from services.core.model import Transition
from services.grader.engine_api import EngineStore, GradingEngine
from services.grader.record import PlatformRecord
from services.grader.rows import NO_TRACE, Trace, TransitionRow, to_row
from services.grader.watermark import NO_TIME


@dataclass(slots=True)
class LivePlatform:
    engine: GradingEngine
    seq: int = 0
    pending: list[TransitionRow] = field(default_factory=list)
    #: the platform's own clock: the highest event time of its records
    latest_ms: int = NO_TIME


class PlatformBook:
    """One partition's live platforms, and those touched since the last flush."""

    __slots__ = ("_engines", "dirty", "live", "partition")

    def __init__(self, partition: int, engines: EngineStore) -> None:
        self.partition = partition
        self._engines = engines
        self.live: dict[str, LivePlatform] = {}
        #: platforms the next flush writes
        self.dirty: set[str] = set()

    def get(self, platform_id: str) -> LivePlatform:
        """The platform, with a new engine if it was never met."""
        live = self.live.get(platform_id)
        if live is None:
            live = self.live[platform_id] = LivePlatform(self._engines.new(platform_id))
        return live

    def load(self, record: PlatformRecord) -> LivePlatform:
        """Take a platform back from its table record."""
        live = LivePlatform(
            self._engines.load(record.state), record.seq, list(record.pending), record.latest_ms
        )
        self.live[record.platform_id] = live
        return live

    def rows(
        self,
        produced: Iterable[tuple[str, Transition]],
        source: SourcePosition,
        event_id: str | None,
        now_ms: int,
        held: list[TransitionRow] | None = None,
        trace: Trace = NO_TRACE,
    ) -> tuple[TransitionRow, ...]:
        """The transitions as rows of ``source`` (after rows held for it), each entered
        in its platform's outbox with the platform's next sequence number and the
        source record's ``trace``."""
        rows: list[TransitionRow] = held or []
        platforms = self.live
        for owner, t in produced:
            live = platforms[owner]
            live.seq += 1
            row = to_row(t, live.seq, source, event_id, now_ms, trace)
            live.pending.append(row)
            rows.append(row)
        return tuple(rows)

    def touch_all(self) -> None:
        self.dirty.update(self.live)

    def records(
        self,
        is_committed: Callable[[TransitionRow], bool],
        positions: Mapping[str, int],
        watermark_ms: int,
    ) -> list[PlatformRecord]:
        """The records of the platforms touched since the last flush, their outboxes
        trimmed of rows the sink committed; none is touched after."""
        records = []
        for pid in sorted(self.dirty):
            live = self.live[pid]
            live.pending = [r for r in live.pending if not is_committed(r)]
            records.append(
                PlatformRecord(
                    platform_id=pid,
                    partition=self.partition,
                    state=self._engines.dump(live.engine),
                    positions=dict(positions),
                    watermark_ms=watermark_ms,
                    seq=live.seq,
                    pending=tuple(live.pending),
                    latest_ms=live.latest_ms,
                )
            )
        self.dirty.clear()
        return records
