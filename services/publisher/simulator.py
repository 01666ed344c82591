"""Drive simulated candidate platforms through the real broker, paced in event time.

The timeline (:mod:`services.publisher.timeline`) says what each platform emits and
when; this module plays it: an event whose time is ``t`` after the run's start is sent
``t / speed`` seconds after the run began (``speed`` 1000 plays an 8-hour exam in about
half a minute; 0 sends everything at once), through :class:`Publisher` exactly as the
collectors and proctors do (validated, keyed by platform_id, each type on its topic).
The same run can be written as a JSON Lines recording, line for line what was sent.

Event time never goes backwards on a stack: the grader closes time boxes by the highest
event time it has seen in a partition, so a run that started before the previous run's
last event would find its boxes already closed. The last event time of each run is kept
in the stack's state directory and the next run starts after it (unless told otherwise).
"""

from __future__ import annotations

import bisect
import contextlib
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Protocol

from services.contract.jsonl import event_to_line
from services.contract.schemas import Contract, load_contract
from services.core.events import Event
from services.errors import ConfigError
from services.publisher.publisher import Delivery

#: most events sent in one batch (one produce-and-flush round trip)
MAX_BATCH = 5000
#: how long the player waits at most between two looks at the clock
TICK_S = 0.1


class Sink(Protocol):
    """Where events go: the real :class:`Publisher`, or anything with the same method."""

    def publish_many(self, events: Sequence[Event]) -> list[Delivery]: ...


@dataclass(frozen=True, slots=True)
class Progress:
    """Where a run is: events sent so far, of how many, and the event time reached."""

    sent: int
    total: int
    event_ts_ms: int
    elapsed_s: float


@dataclass(frozen=True, slots=True)
class Report:
    sent: int
    total: int
    by_topic: dict[str, int]
    elapsed_s: float
    last_ts_ms: int | None
    stopped: bool


def state_file(state_dir: Path) -> Path:
    """Where the last event time is kept, under the settings' ``stack_dir``."""
    return state_dir / "simulator" / "last-event-ts"


def last_event_ts(state_dir: Path) -> int | None:
    """The latest event time a previous run sent to this stack, if any."""
    try:
        return int(state_file(state_dir).read_text().strip())
    except (OSError, ValueError):
        return None


def remember_event_ts(state_dir: Path, ts_ms: int) -> None:
    previous = last_event_ts(state_dir)
    if previous is not None and previous >= ts_ms:
        return
    path = state_file(state_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(f"{ts_ms}\n")
    tmp.replace(path)


def default_start(state_dir: Path, now_ms: int | None = None) -> int:
    """Now (to the second), or one minute after the previous run's last event if later."""
    now = now_ms if now_ms is not None else int(time.time() * 1000)
    start = now - now % 1000
    last = last_event_ts(state_dir)
    if last is not None and last + 60_000 > start:
        start = last + 60_000 - (last + 60_000) % 1000
    return start


def simulation_lead_s(events: Sequence[Event], speed: float, now_ms: int | None = None) -> float:
    """How far (s) event times get ahead of the wall clock when ``events`` are played from
    now at ``speed`` times real time (event k goes out at now + (ts_k - ts_0) / speed;
    speed 0: all at once).

    A worker dead-letters records dated more than its skew allowance (PROCTOR_MAX_SKEW_S,
    120 s) past their broker timestamp as ``from_the_future`` (docs/trust.md).
    """
    if not events:
        return 0.0
    now = now_ms if now_ms is not None else int(time.time() * 1000)
    if speed <= 0:  # as fast as possible: everything goes out now
        return float(max(0.0, (max(e.ts_ms for e in events) - now) / 1000))
    first = min(e.ts_ms for e in events)
    lead = max(e.ts_ms - (now + (e.ts_ms - first) / speed) for e in events)
    return float(max(0.0, lead / 1000))


class Player:
    """Plays events (sorted by time) into a sink at ``speed`` times real time.

    ``stop`` ends the run between two batches; what was sent stays sent (and recorded).
    """

    def __init__(
        self,
        events: Sequence[Event],
        sink: Sink | None,
        *,
        speed: float,
        record: IO[str] | None = None,
        contract: Contract | None = None,
        stop: threading.Event | None = None,
        on_progress: Callable[[Progress], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if speed < 0:
            raise ConfigError(f"speed {speed:g}: use a positive factor (1000 = 8 h in 29 s) or 0")
        self.events = sorted(events, key=lambda e: (e.ts_ms, e.event_id))
        self.times = [e.ts_ms for e in self.events]
        self.sink = sink
        self.speed = speed
        self.record = record
        self.contract = contract or load_contract()
        self.stop = stop or threading.Event()
        self.on_progress = on_progress
        self.clock = clock

    def _due(self, elapsed_s: float) -> int:
        """Index one past the last event due after ``elapsed_s`` seconds of the run."""
        if not self.events:
            return 0
        if self.speed == 0:
            return len(self.events)
        reached = self.times[0] + int(elapsed_s * self.speed * 1000)
        return bisect.bisect_right(self.times, reached)

    def _wait_s(self, index: int, elapsed_s: float) -> float:
        if index >= len(self.events) or self.speed == 0:
            return 0.0
        due_at = (self.times[index] - self.times[0]) / 1000 / self.speed
        return max(0.0, min(TICK_S, due_at - elapsed_s))

    def run(self) -> Report:
        started = self.clock()
        sent = 0
        by_topic: Counter[str] = Counter()
        total = len(self.events)
        last_ts: int | None = None
        while sent < total and not self.stop.is_set():
            elapsed = self.clock() - started
            due = min(self._due(elapsed), sent + MAX_BATCH)
            if due <= sent:
                self.stop.wait(self._wait_s(sent, elapsed) or TICK_S / 10)
                continue
            batch = self.events[sent:due]
            if self.sink is not None:
                for delivery in self.sink.publish_many(batch):
                    by_topic[delivery.topic] += 1
            if self.record is not None:
                for ev in batch:
                    self.record.write(event_to_line(ev, self.contract) + "\n")
                self.record.flush()
            sent = due
            last_ts = batch[-1].ts_ms
            if self.on_progress is not None:
                self.on_progress(Progress(sent, total, last_ts, self.clock() - started))
        return Report(
            sent=sent,
            total=total,
            by_topic=dict(by_topic),
            elapsed_s=self.clock() - started,
            last_ts_ms=last_ts,
            stopped=sent < total,
        )


def play(
    events: Sequence[Event],
    *,
    speed: float,
    sink: Sink | None,
    record: Path | None = None,
    state_dir: Path | None = None,
    stop: threading.Event | None = None,
    on_progress: Callable[[Progress], None] | None = None,
) -> Report:
    """Play a run into ``sink`` (and ``record``); remember its last event time on the stack."""
    with contextlib.ExitStack() as stack:
        fh: IO[str] | None = None
        if record is not None:
            try:
                fh = stack.enter_context(record.open("w", encoding="utf-8"))
            except OSError as exc:
                raise ConfigError(f"cannot write the recording {record}: {exc}") from exc
        report = Player(
            events, sink, speed=speed, record=fh, stop=stop, on_progress=on_progress
        ).run()
    if sink is not None and state_dir is not None and report.last_ts_ms is not None:
        remember_event_ts(state_dir, report.last_ts_ms)
    return report
