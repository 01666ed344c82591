"""The incremental grading engine: one event in, the criterion state changes out.

Pure (no I/O, no clock): the Faust worker and ``proctor replay`` drive the same object.

* **Event time only.** Time boxes close when :meth:`Engine.evaluate` is called with a
  time past them (the driver passes its watermark, or the replay its ``--at``), or when
  ``exam.ended`` arrives. A late signal whose time falls inside a box still counts and
  may turn ``expired`` into ``met`` (the change is published like any other).
* **Any order, duplicates harmless.** Facts are order-insensitive, idempotent
  aggregates; control events are kept as a set. No event-id de-duplication table is
  needed: every aggregate is keyed by event id or by a natural id (snapshot id,
  checkpoint id, invocation results), so a duplicate folds to the same value. The only
  non-idempotent numbers are the delivery counters in :class:`Audit`, which count
  deliveries on purpose.
* **Binding.** A signal belongs to the exam on its platform with the latest start at
  or before the signal's time, if the signal is not after that exam's end. Signals
  that arrive before their exam.started are held per platform (bounded) and bound when
  it arrives; signals outside every exam grade nothing and are counted.
* **Anchors.** A fact whose meaning needs an anchor ("growth since the part started",
  "after the fault") folds only once the anchor is known; until then its signals wait
  in a per-exam buffer (bounded by :class:`Limits`; overflowing it flags the exam).
  The replay feeds control events first, so nothing waits there.
* **One approximation.** Two facts keep a maximum up to the end of a part's time box
  (the offsets' peak, the latest dbt build). If an exam ends *before* that box would
  close and a signal after the end arrives *before* exam.ended, it is already folded.
  The replay (control first) is exact; live, it needs an exam cut short in the middle
  of Part 1 and a signal racing exam.ended.
* **Small state.** See :mod:`services.core.state_codec` and ``bench/engine.py`` for the
  size of a whole exam's state (about 20 KB, whatever the number of signals).
"""

from __future__ import annotations

import zlib
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field

import orjson

from services.core.contract_fields import CONTROL_TYPES, HEARTBEAT
from services.core.events import Event
from services.core.exam_state import (
    ExamState,
    Limits,
    RubricResolver,
    event_bytes,
    same_body,
)
from services.core.model import ExamResult, Transition
from services.core.rules.base import NEVER
from services.core.textjudge import TextJudge

__all__ = ["Audit", "Engine", "Limits", "RubricResolver"]


@dataclass
class Audit:
    """Delivery counters (duplicates count each time) for operators, never for grades."""

    control: int = 0
    signals: int = 0
    #: signals that found no exam when they arrived (held; claimed later or never)
    held: int = 0
    #: held signals that an exam.started arriving later claimed
    claimed: int = 0
    #: held signals dropped because the platform's hold buffer was full
    dropped: int = 0
    #: signals after the end of the platform's latest exam (not held: no exam claims them)
    outside: int = 0
    #: deliveries of a known event id with another body (the first was kept)
    conflicts: int = 0
    #: control events without an exam_id
    ignored: int = 0
    #: signals of exams that cannot be graded (unknown rubric)
    ungradable: int = 0
    #: per platform, signals held and not claimed (outside every exam, or unknown platform)
    unclaimed: dict[str, int] = field(default_factory=dict)

    @property
    def bound(self) -> int:
        """Signals folded into an exam (directly or after waiting)."""
        return self.signals - self.held - self.outside + self.claimed - self.ungradable

    def as_dict(self) -> dict[str, int]:
        return {
            "control": self.control,
            "signals": self.signals,
            "bound": self.bound,
            "held": self.held,
            "claimed": self.claimed,
            "dropped": self.dropped,
            "outside": self.outside,
            "conflicts": self.conflicts,
            "ignored": self.ignored,
            "ungradable": self.ungradable,
        }


def strip_heartbeat(ev: Event) -> Event:
    """A held heartbeat keeps only what coverage reads: collector, health, error."""
    data = {k: ev.data.get(k) for k in ("collector", "healthy", "error", "error_kind")}
    err = data["error"]
    if isinstance(err, str) and len(err) > 80:
        data["error"] = err[:80]
    return Event(ev.type, ev.platform_id, ev.event_id, ev.ts_ms, data, ev.source)


def digest(ev: Event) -> int:
    """A stable 32-bit digest of an event's body (the same in every process)."""
    return zlib.crc32(orjson.dumps([ev.type, ev.ts_ms, dict(ev.data)], option=orjson.OPT_SORT_KEYS))


#: signals whose body digest is not computed yet, across an engine's platforms: a
#: signal's id is remembered with the event itself and digested only when its id comes
#: again, when its platform's state is written, or when this many newer ones wait (so
#: the memory they hold is bounded); most ids leave the window undigested
UNDIGESTED = 4096

#: a platform's remembered signal ids: the body's digest, or the event not digested yet
Recent = dict[str, int | Event]


class PlatformState:
    """The exams of one platform and the signals that no exam has claimed yet.

    Held signals are bounded in bytes (:class:`Limits`): heartbeats are held with only
    what coverage reads, signals after the end of the platform's latest exam are not
    held at all, and past the bound the oldest are dropped (counted, and an exam that
    starts before a dropped signal is flagged for review).
    """

    def __init__(self, platform_id: str) -> None:
        self.platform_id = platform_id
        self.exams: dict[str, ExamState] = {}
        self.started: list[ExamState] = []
        self.unbound: dict[str, Event] = {}
        self.unbound_size = 0
        self.dropped_max_ts: int | None = None
        self.bound_exam: ExamState | None = None
        self.bound_lo = 0
        self.bound_hi = -1
        #: event id -> digest of the body (or the event, not digested yet), of the
        #: latest signals (oldest first)
        self.recent: Recent = {}

    def reindex(self) -> None:
        self.started = sorted(
            (e for e in self.exams.values() if e.ctx.start_ms is not None),
            key=lambda e: (e.ctx.start_ms or 0, e.exam_id),
        )
        self.bound_exam = None
        self.bound_hi = -1

    def recount(self) -> None:
        self.unbound_size = sum(event_bytes(e) for e in self.unbound.values())

    def bind(self, ts: int) -> ExamState | None:
        """The exam with the latest start at or before ``ts``, if ``ts`` is not after its end."""
        if self.bound_lo <= ts <= self.bound_hi:
            return self.bound_exam
        found: ExamState | None = None
        nxt: int | None = None
        for ex in reversed(self.started):
            start = ex.ctx.start_ms or 0
            if start <= ts:
                found = ex
                break
            nxt = start
        if found is None or not found.ctx.contains(ts):
            return None
        start = found.ctx.start_ms or 0
        end = found.ctx.end_ms
        hi = 2**62 if end is None else end
        if nxt is not None:
            hi = min(hi, nxt - 1)
        self.bound_exam, self.bound_lo, self.bound_hi = found, start, hi
        return found

    def seen(self, ev: Event, limits: Limits, undigested: deque[tuple[Recent, str]]) -> bool | None:
        """Remember a signal's id; None when new, else whether the body is the same.

        The body's digest is taken only when the id comes again (both sides digested, so
        the answer is the one an eager digest gives); a new id is remembered with its
        event and queued on ``undigested``, the engine's bound on events so held.
        """
        recent = self.recent
        eid = ev.event_id
        known = recent.get(eid)
        if known is not None:
            if isinstance(known, Event):
                known = recent[eid] = digest(known)
            return known == digest(ev)
        recent[eid] = ev
        if len(recent) > limits.recent_ids:
            del recent[next(iter(recent))]
        undigested.append((recent, eid))
        if len(undigested) > UNDIGESTED:
            older, old = undigested.popleft()
            held = older.get(old)
            if isinstance(held, Event):
                older[old] = digest(held)
        return None

    def recent_digests(self) -> list[tuple[str, int]]:
        """The remembered ids with their digests, oldest first (what a state keeps)."""
        out = [(eid, digest(h) if isinstance(h, Event) else h) for eid, h in self.recent.items()]
        self.recent.update(out)
        return out

    def hold(self, ev: Event, limits: Limits, audit: Audit) -> bool:
        """Hold a signal no exam covers yet; False when it conflicts with a held one."""
        if ev.type == HEARTBEAT:
            ev = strip_heartbeat(ev)
        known = self.unbound.get(ev.event_id)
        if known is not None:
            return same_body(known, ev)
        if self.started:
            end = self.started[-1].ctx.end_ms
            if end is not None and ev.ts_ms > end:
                audit.outside += 1
                return True
        self.unbound[ev.event_id] = ev
        self.unbound_size += event_bytes(ev)
        audit.held += 1
        if len(self.unbound) > limits.unbound_per_platform or self.unbound_size > limits.held_bytes:
            self._drop_oldest(limits, audit)
        return True

    def _drop_oldest(self, limits: Limits, audit: Audit) -> None:
        """Drop the oldest held signals until a tenth under both bounds."""
        count_goal = limits.unbound_per_platform - limits.unbound_per_platform // 10
        bytes_goal = limits.held_bytes - limits.held_bytes // 10
        for old in sorted(self.unbound.values(), key=lambda e: (e.ts_ms, e.event_id)):
            if len(self.unbound) <= count_goal and self.unbound_size <= bytes_goal:
                break
            del self.unbound[old.event_id]
            self.unbound_size -= event_bytes(old)
            audit.dropped += 1
            if self.dropped_max_ts is None or old.ts_ms > self.dropped_max_ts:
                self.dropped_max_ts = old.ts_ms

    def review_for(self, ex: ExamState) -> list[str]:
        start = ex.ctx.start_ms
        if self.dropped_max_ts is not None and start is not None and self.dropped_max_ts >= start:
            return ["signals of this platform were dropped while waiting for an exam.started"]
        return []


class Engine:
    """Grades every exam it sees. Not thread-safe: one engine per partition/worker."""

    def __init__(
        self,
        rubrics: RubricResolver,
        judge: TextJudge,
        *,
        rubric_version: str | None = None,
        limits: Limits | None = None,
        clocked: bool = False,
    ) -> None:
        self.rubrics = rubrics
        self.judge = judge
        self.rubric_version = rubric_version
        self.limits = limits or Limits()
        #: exams are decided at the engine's clock only, exam.ended included (the stream
        #: worker, whose clocks are honest); unclocked (a replay), an exam.ended closes
        #: every box of its exam on arrival
        self.clocked = clocked
        self.platforms: dict[str, PlatformState] = {}
        #: signals remembered by id whose digest is not taken yet (see :data:`UNDIGESTED`)
        self.undigested: deque[tuple[Recent, str]] = deque()
        self.clock = NEVER
        self.audit = Audit()
        #: the last :meth:`apply` met an event id seen before with another body (the
        #: first is kept, the event graded nothing): a driver reports it
        self.conflict = False
        #: cache of :meth:`next_deadline_ms` (valid while ``_deadline_ok``)
        self._deadline: int | None = None
        self._deadline_ok = False

    def invalidate_deadline(self) -> None:
        """Time marks or the clock changed outside :meth:`evaluate` (restore, control)."""
        self._deadline_ok = False

    # ------------------------------------------------------------------ input
    def apply(self, event: Event) -> list[Transition]:
        """Grade one event; the transitions of every criterion whose state changed.

        Sets :attr:`conflict` when the event's id was seen before with another body:
        the first is kept and this one grades nothing.
        """
        self.conflict = False
        if event.type in CONTROL_TYPES:
            return self._control(event)
        dirty: set[int] = set()
        ex = self._signal(event, dirty)
        if ex is None or not dirty:
            return []
        return ex.redecide(dirty, self.clock, event.ts_ms)

    def apply_many(self, events: Iterable[Event]) -> list[Transition]:
        """Grade a batch; criteria are decided once per batch, so a state that flips and
        flips back inside the batch yields no transition. Final states equal :meth:`apply`'s."""
        out: list[Transition] = []
        dirty: dict[int, tuple[ExamState, set[int], int]] = {}
        for ev in events:
            if ev.type in CONTROL_TYPES:
                out += self._flush(dirty)
                out += self._control(ev)
                continue
            ds: set[int] = set()
            ex = self._signal(ev, ds)
            if ex is not None and ds:
                entry = dirty.get(id(ex))
                if entry is None:
                    dirty[id(ex)] = (ex, ds, ev.ts_ms)
                else:
                    entry[1].update(ds)
                    if ev.ts_ms > entry[2]:
                        dirty[id(ex)] = (ex, entry[1], ev.ts_ms)
        out += self._flush(dirty)
        return out

    def _flush(self, dirty: dict[int, tuple[ExamState, set[int], int]]) -> list[Transition]:
        out: list[Transition] = []
        for ex, ds, ts in dirty.values():
            out += ex.redecide(ds, self.clock, ts)
        dirty.clear()
        return out

    def evaluate(self, at_ms: int) -> list[Transition]:
        """Advance event time to ``at_ms`` (never backwards) and close the time boxes it passes.

        Only exams with a time box close (or their end) between the old and the new time
        are decided again: nothing else depends on the passing of time, so a driver may
        call this after every batch with its watermark.
        """
        old = self.clock
        if at_ms <= old:
            return []
        deadline = self.next_deadline_ms()
        self.clock = at_ms
        if deadline is None or at_ms < deadline:
            return []  # no box closes in (old, at_ms]: the next deadline stays ahead
        self._deadline_ok = False
        out: list[Transition] = []
        for p in self.platforms.values():
            for ex in p.exams.values():
                if ex.closes_between(old, at_ms):
                    out += ex.redecide_all(at_ms, at_ms)
        return out

    # ------------------------------------------------------------------ output
    def results(self) -> list[ExamResult]:
        """Every started exam, fully evaluated at the engine's clock, by platform then start."""
        out: list[ExamResult] = []
        for pid in sorted(self.platforms):
            p = self.platforms[pid]
            for ex in p.started:
                out.append(ex.result(self.clock, p.review_for(ex)))
        return out

    def exams(self) -> Iterable[ExamState]:
        for p in self.platforms.values():
            yield from p.exams.values()

    # ------------------------------------------------------------------ internals
    def _platform(self, pid: str) -> PlatformState:
        p = self.platforms.get(pid)
        if p is None:
            p = self.platforms[pid] = PlatformState(pid)
        return p

    def _signal(self, ev: Event, dirty: set[int]) -> ExamState | None:
        self.audit.signals += 1
        p = self.platforms.get(ev.platform_id)
        if p is None:
            p = self._platform(ev.platform_id)
        ts = ev.ts_ms
        if ev.type != HEARTBEAT and p.seen(ev, self.limits, self.undigested) is False:
            self._conflict()
            return None
        ex = p.bound_exam if p.bound_lo <= ts <= p.bound_hi else p.bind(ts)
        if ex is None:
            if not p.hold(ev, self.limits, self.audit):
                self._conflict()
            self.audit.unclaimed[p.platform_id] = len(p.unbound)
            return None
        if ex.rubric is None:
            self.audit.ungradable += 1
            return None
        ex.fold_signal(ev, dirty, self.limits, self.clock)
        return ex

    def _control(self, ev: Event) -> list[Transition]:
        self.audit.control += 1
        exam_id = ev.get("exam_id")
        if not isinstance(exam_id, str) or not exam_id:
            self.audit.ignored += 1
            return []
        p = self._platform(ev.platform_id)
        ex = p.exams.get(exam_id)
        if ex is None:
            ex = p.exams[exam_id] = ExamState(ev.platform_id, exam_id, clocked=self.clocked)
        added = ex.add_control(ev, self.judge, self.limits)
        if added == "conflict":
            self._conflict()
        if added != "added":
            return []
        self._deadline_ok = False
        had_rubric = ex.rubric is not None
        window = (ex.ctx.start_ms, ex.ctx.end_ms)
        ex.ensure_rubric(self.rubrics, self.rubric_version)
        ex.refresh_context()
        out: list[Transition] = []
        if (ex.ctx.start_ms, ex.ctx.end_ms) != window or (ex.rubric is not None) != had_rubric:
            p.reindex()
            out += self._claim_unbound(p)
        out += ex.redecide_all(self.clock, ev.ts_ms)
        return out

    def _conflict(self) -> None:
        self.conflict = True
        self.audit.conflicts += 1

    def _claim_unbound(self, p: PlatformState) -> list[Transition]:
        """Bind held signals that an exam now covers (after an exam.started arrived)."""
        if not p.unbound:
            return []
        claimed: dict[int, tuple[ExamState, set[int]]] = {}
        for ev in sorted(p.unbound.values(), key=lambda e: (e.ts_ms, e.event_id)):
            ex = p.bind(ev.ts_ms)
            if ex is None or ex.rubric is None:
                continue
            del p.unbound[ev.event_id]
            p.unbound_size -= event_bytes(ev)
            self.audit.claimed += 1
            entry = claimed.setdefault(id(ex), (ex, set()))
            ex.fold_signal(ev, entry[1], self.limits, self.clock)
        self.audit.unclaimed[p.platform_id] = len(p.unbound)
        out: list[Transition] = []
        for ex, ds in claimed.values():
            out += ex.redecide(ds, self.clock, ex.ctx.start_ms or 0)
        return out

    def next_deadline_ms(self) -> int | None:
        """The next time box close (or exam end) after the clock; None when none is ahead.

        A driver may skip :meth:`evaluate` until its watermark reaches this. Cached:
        time marks change only with control events (and restores), the clock only in
        :meth:`evaluate`.
        """
        if self._deadline_ok:
            return self._deadline
        clock = self.clock
        ahead = [
            m
            for p in self.platforms.values()
            for ex in p.exams.values()
            for m in ex.time_marks()
            if m > clock
        ]
        self._deadline = min(ahead, default=None)
        self._deadline_ok = True
        return self._deadline
