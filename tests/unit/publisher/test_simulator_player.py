"""The simulator's player: pacing in event time, stopping, recording, failures, start times."""

from __future__ import annotations

import io
import threading
from collections.abc import Sequence
from pathlib import Path

import pytest

from services.contract.jsonl import event_to_line, read_jsonl
from services.core.events import Event, rfc3339_to_ms
from services.errors import ConfigError, DeliveryError
from services.publisher.publisher import Delivery
from services.publisher.simulator import (
    MAX_BATCH,
    Player,
    default_start,
    last_event_ts,
    play,
    remember_event_ts,
)
from services.publisher.timeline import plan_candidates, run_events

pytestmark = pytest.mark.unit

START = rfc3339_to_ms("2026-11-27T09:00:00.000Z")


class FakeClock:
    """A clock that advances only when the player waits (through the stop event)."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class Ticking(threading.Event):
    """A stop event whose wait() advances the fake clock instead of sleeping."""

    def __init__(self, clock: FakeClock) -> None:
        super().__init__()
        self.clock = clock

    def wait(self, timeout: float | None = None) -> bool:
        self.clock.now += timeout or 0.0
        return self.is_set()


class Sink:
    def __init__(self, clock: FakeClock, fail_at: int | None = None) -> None:
        self.clock = clock
        self.batches: list[tuple[float, list[Event]]] = []
        self.fail_at = fail_at

    def publish_many(self, events: Sequence[Event]) -> list[Delivery]:
        if self.fail_at is not None and len(self.batches) == self.fail_at:
            raise DeliveryError("1 of 3 events were not delivered: broker down")
        self.batches.append((self.clock.now, list(events)))
        return [
            Delivery(e.type, e.event_id, e.platform_id, f"topic-of-{e.type}", 0, i)
            for i, e in enumerate(events)
        ]


@pytest.fixture(scope="module")
def events() -> list[Event]:
    return run_events(plan_candidates([("alice", "clean_pass")], START))


def _player(events: list[Event], speed: float, **kw: object) -> tuple[Player, Sink, FakeClock]:
    clock = FakeClock()
    sink = Sink(clock, kw.pop("fail_at", None))  # type: ignore[arg-type]
    stop = Ticking(clock)
    return Player(events, sink, speed=speed, stop=stop, clock=clock, **kw), sink, clock  # type: ignore[arg-type]


def test_events_leave_when_their_event_time_is_due(events: list[Event]) -> None:
    player, sink, _ = _player(events, speed=1000)
    report = player.run()
    assert report.sent == report.total == len(events) and not report.stopped
    sent = [e for _, batch in sink.batches for e in batch]
    assert [e.event_id for e in sent] == [
        e.event_id for e in sorted(events, key=lambda e: (e.ts_ms, e.event_id))
    ]
    t0 = events[0].ts_ms
    for at, batch in sink.batches:
        # never early, and never more than a tick (0.1 s of wall time) late
        for e in batch:
            due = (e.ts_ms - t0) / 1000 / 1000
            assert due <= at + 1e-9
        assert (batch[0].ts_ms - t0) / 1e6 >= at - 0.11
    span_s = (events[-1].ts_ms - t0) / 1e6
    assert span_s - 0.2 <= report.elapsed_s <= span_s + 0.2
    assert sum(report.by_topic.values()) == len(events)


def test_speed_zero_sends_everything_at_once_in_bounded_batches(events: list[Event]) -> None:
    player, sink, clock = _player(events, speed=0)
    report = player.run()
    assert report.sent == len(events)
    assert clock.now == 0.0
    assert all(len(b) <= MAX_BATCH for _, b in sink.batches)
    assert len(sink.batches) == -(-len(events) // MAX_BATCH)


def test_stop_ends_between_batches_and_says_so(events: list[Event]) -> None:
    player, sink, _clock = _player(events, speed=1000)
    seen = []

    def progress(p: object) -> None:
        seen.append(p)
        if len(seen) == 3:
            player.stop.set()

    player.on_progress = progress
    report = player.run()
    assert report.stopped and report.sent < report.total
    assert report.sent == sum(len(b) for _, b in sink.batches)
    assert report.last_ts_ms == sink.batches[-1][1][-1].ts_ms


def test_recording_is_exactly_what_was_sent(events: list[Event], tmp_path: Path) -> None:
    buf = io.StringIO()
    player, sink, _ = _player(events[:3000], speed=1000, record=buf)
    player.run()
    path = tmp_path / "run.jsonl"
    path.write_text(buf.getvalue())
    recorded = read_jsonl(path)
    sent = [e for _, b in sink.batches for e in b]
    # the canonical form fills schema defaults, so compare canonical lines
    assert [event_to_line(e) for e in recorded] == [event_to_line(e) for e in sent]


def test_a_delivery_failure_stops_the_run_and_keeps_what_was_recorded(events: list[Event]) -> None:
    buf = io.StringIO()
    player, _sink, _ = _player(events[:2000], speed=0, record=buf)
    player.sink = Sink(FakeClock(), fail_at=0)
    with pytest.raises(DeliveryError, match="broker down"):
        player.run()
    assert buf.getvalue() == ""  # nothing recorded that the broker did not confirm


def test_negative_speed_is_refused(events: list[Event]) -> None:
    with pytest.raises(ConfigError, match="speed -1"):
        Player(events, None, speed=-1)


def test_offline_play_writes_the_recording_without_a_sink(
    events: list[Event], tmp_path: Path
) -> None:
    out = tmp_path / "x.jsonl"
    report = play(events[:500], speed=0, sink=None, record=out)
    assert report.sent == 500 and report.by_topic == {}
    assert len(read_jsonl(out)) == 500
    with pytest.raises(ConfigError, match="cannot write the recording"):
        play(events[:5], speed=0, sink=None, record=tmp_path / "no" / "such" / "dir.jsonl")


def test_a_new_run_starts_after_the_previous_run_on_the_same_stack(tmp_path: Path) -> None:
    config = tmp_path  # the settings' stack_dir
    now = START
    assert last_event_ts(config) is None
    assert default_start(config, now + 123) == now
    remember_event_ts(config, now + 7 * 3_600_000)
    assert default_start(config, now) == now + 7 * 3_600_000 + 60_000
    remember_event_ts(config, now)  # an older run never moves the mark back
    assert last_event_ts(config) == now + 7 * 3_600_000
    later = now + 9 * 3_600_000
    assert default_start(config, later + 999) == later
