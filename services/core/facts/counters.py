"""Growth of a monotone counter since a part started, and a running total to a threshold.

Both need the part's start to fold (growth "since the part started"), so both are gated
on the part's anchor; until it is known the engine holds their events back.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from services.core.context import ExamContext, Point
from services.core.events import Event
from services.core.facts.base import Fact, FactSpec
from services.core.matching import integer, mapping, text

Obs = tuple[int, str, int]  # (ts, event_id, value)


class _Sub:
    """One counter (a topic partition): value at the part start and the peak after it."""

    __slots__ = ("contrib", "first", "peak", "pre")

    def __init__(self) -> None:
        self.pre: Obs | None = None  # latest observation at or before the part start
        self.first: Obs | None = None  # earliest observation after it
        self.peak: Obs | None = None  # highest value after it (earliest on ties)
        self.contrib = 0

    def base(self) -> Obs | None:
        return self.pre if self.pre is not None else self.first

    def growth(self) -> int:
        base = self.base()
        if base is None or self.peak is None:
            return 0
        return max(0, self.peak[2] - base[2])


def _better_peak(cur: Obs | None, new: Obs) -> bool:
    return cur is None or new[2] > cur[2] or (new[2] == cur[2] and new[:2] < cur[:2])


class CounterGrowth(Fact):
    """Per key (topic), the sum over sub-keys (partitions) of value growth since the anchor.

    Growth of one partition = its highest value in (start, end of the time box] minus
    its base: the latest value at or before the start, or, when the partition was first
    seen after the start, its first value (the conservative choice: a pre-existing
    topic first polled late must not count as growth).
    """

    __slots__ = ("_gate", "keys", "spec", "totals")

    def __init__(self, spec: CounterGrowthSpec) -> None:
        self.spec = spec
        self._gate = spec.gate
        self.keys: dict[str, dict[str, _Sub]] = {}
        self.totals: dict[str, int] = {}

    def accepts(self, ev: Event) -> bool:
        return ev.type == self.spec.event

    def fold(self, ev: Event, ctx: ExamContext) -> bool:
        w = ctx.windows.get(self.spec.part)
        if w is None:
            return False
        d = ev.data
        ts = ev.ts_ms
        if ts > w.box_end_ms:
            return False
        v = integer(d.get(self.spec.value_field))
        key = text(d.get(self.spec.key_field))
        if v is None or not key:
            return False
        subs = self.keys.get(key)
        if subs is None:
            subs = self.keys[key] = {}
            self.totals[key] = 0
        skey = text(d.get(self.spec.sub_field))
        sub = subs.get(skey)
        if sub is None:
            sub = subs[skey] = _Sub()
        obs = (ts, ev.event_id, v)
        if ts <= w.anchor_ms:
            if sub.pre is not None and obs[:2] <= sub.pre[:2]:
                return False
            sub.pre = obs
        else:
            changed = False
            if sub.first is None or obs[:2] < sub.first[:2]:
                sub.first = obs
                changed = True
            if _better_peak(sub.peak, obs):
                sub.peak = obs
                changed = True
            if not changed:
                return False
        g = sub.growth()
        if g != sub.contrib:
            self.totals[key] += g - sub.contrib
            sub.contrib = g
        return True

    def growth(self, keys: Sequence[str]) -> tuple[int, tuple[str, ...], int | None]:
        """Total growth over ``keys``, the deciding event ids and the latest peak time."""
        total = 0
        grown: list[tuple[int, Obs, Obs]] = []
        for k in keys:
            total += self.totals.get(k, 0)
            for sub in self.keys.get(k, {}).values():
                base = sub.base()
                if sub.contrib > 0 and sub.peak is not None and base is not None:
                    grown.append((sub.contrib, sub.peak, base))
        grown.sort(key=lambda x: (-x[0], x[1][:2]))
        evidence: list[str] = []
        for _, peak, base in grown[:2]:
            evidence += [base[1], peak[1]]
        latest = max((g[1][0] for g in grown), default=None)
        return total, tuple(evidence), latest

    def dump(self) -> Any:
        def o(x: Obs | None) -> Any:
            return None if x is None else [x[0], x[1], x[2]]

        return {
            k: {s: [o(sub.pre), o(sub.first), o(sub.peak)] for s, sub in subs.items()}
            for k, subs in self.keys.items()
        }

    def load(self, obj: Any) -> None:
        def o(x: Any) -> Obs | None:
            return None if x is None else (int(x[0]), str(x[1]), int(x[2]))

        self.keys, self.totals = {}, {}
        for k, subs in obj.items():
            self.keys[k] = {}
            for s, (pre, first, peak) in subs.items():
                sub = _Sub()
                sub.pre, sub.first, sub.peak = o(pre), o(first), o(peak)
                sub.contrib = sub.growth()
                self.keys[k][s] = sub
            self.totals[k] = sum(sub.contrib for sub in self.keys[k].values())


@dataclass(frozen=True, slots=True)
class CounterGrowthSpec(FactSpec):
    event: str
    key_field: str
    sub_field: str
    value_field: str
    part: str

    @property
    def gate(self) -> str | None:
        return f"part:{self.part}"

    @property
    def event_types(self) -> tuple[str, ...]:
        return (self.event,)

    def make(self) -> CounterGrowth:
        return CounterGrowth(self)

    def scan(self, events: Sequence[Event], ctx: ExamContext) -> CounterGrowth:
        """Literal definition over the whole history (no incremental bookkeeping)."""
        fact = CounterGrowth(self)
        w = ctx.windows.get(self.part)
        if w is None:
            return fact
        groups: dict[tuple[str, str], list[Obs]] = {}
        for ev in events:
            if ev.type != self.event or ev.ts_ms > w.box_end_ms:
                continue
            v = integer(ev.data.get(self.value_field))
            key = text(ev.data.get(self.key_field))
            if v is None or not key:
                continue
            groups.setdefault((key, text(ev.data.get(self.sub_field))), []).append(
                (ev.ts_ms, ev.event_id, v)
            )
        for (key, skey), obs in groups.items():
            sub = _Sub()
            before = [o for o in obs if o[0] <= w.anchor_ms]
            after = [o for o in obs if o[0] > w.anchor_ms]
            sub.pre = max(before, key=lambda o: o[:2]) if before else None
            sub.first = min(after, key=lambda o: o[:2]) if after else None
            sub.peak = max(after, key=lambda o: (o[2], -o[0]), default=None)
            if sub.peak is not None:
                ties = [o for o in after if o[2] == sub.peak[2]]
                sub.peak = min(ties, key=lambda o: o[:2])
            sub.contrib = sub.growth()
            fact.keys.setdefault(key, {})[skey] = sub
            fact.totals[key] = fact.totals.get(key, 0) + sub.contrib
        return fact


Entry = tuple[int, str, str, int]  # (ts, event_id, natural id, amount)


class _Run:
    __slots__ = ("crossing", "entries", "members", "total")

    def __init__(self) -> None:
        self.entries: list[Entry] = []
        self.members: dict[str, Point] = {}
        self.total = 0
        self.crossing: Entry | None = None


class RunningTotal(Fact):
    """Per key, when a running total of per-event amounts first reached a threshold.

    Amounts are de-duplicated by a natural id (the Iceberg snapshot id), so a commit
    seen twice counts once, at its earliest sighting. Only the time-ordered prefix up
    to the crossing is kept: a late event can only move an entry earlier (or, for a
    re-reported id, raise its amount to the largest reported), so the crossing only
    ever moves earlier and nothing cut after it is needed again. The kept prefix is a
    pure function of the event set, and small. (A snapshot id names one immutable
    commit; if a source reported one id with different amounts on both sides of the
    crossing, the forgotten amount could not be taken into account.)
    """

    __slots__ = ("runs", "spec")

    def __init__(self, spec: RunningTotalSpec) -> None:
        self.spec = spec
        self.runs: dict[str, _Run] = {}

    def accepts(self, ev: Event) -> bool:
        return ev.type == self.spec.event and text(ev.data.get("operation")) in self.spec.operations

    def _amount(self, ev: Event) -> tuple[str, str, int] | None:
        d = ev.data
        if text(d.get("operation")) not in self.spec.operations:
            return None
        amount = integer(mapping(d.get(self.spec.map_field)).get(self.spec.amount_key))
        key = text(d.get(self.spec.key_field))
        if amount is None or amount <= 0 or not key:
            return None
        nid = text(d.get(self.spec.id_field)) or ev.event_id
        return key, nid, amount

    def fold(self, ev: Event, ctx: ExamContext) -> bool:
        w = ctx.windows.get(self.spec.part)
        if w is None or ev.ts_ms < w.anchor_ms or ev.ts_ms > w.box_end_ms:
            return False
        got = self._amount(ev)
        if got is None:
            return False
        key, nid, amount = got
        run = self.runs.get(key)
        if run is None:
            run = self.runs[key] = _Run()
        p = (ev.ts_ms, ev.event_id)
        old = run.members.get(nid)
        if old is not None:
            cur = next(e for e in run.entries if e[2] == nid)
            p, amount = min(p, old), max(amount, cur[3])
            if p == old and amount == cur[3]:
                return False
            run.entries.remove(cur)
        elif run.crossing is not None and p > run.crossing[:2]:
            return False
        bisect.insort(run.entries, (p[0], p[1], nid, amount))
        run.members[nid] = p
        self._settle(run)
        return True

    def _settle(self, run: _Run) -> None:
        total = 0
        for i, e in enumerate(run.entries):
            total += e[3]
            if total >= self.spec.threshold:
                for cut in run.entries[i + 1 :]:
                    del run.members[cut[2]]
                del run.entries[i + 1 :]
                run.total, run.crossing = total, e
                return
        run.total, run.crossing = total, None

    def dump(self) -> Any:
        return {k: [list(e) for e in run.entries] for k, run in self.runs.items()}

    def load(self, obj: Any) -> None:
        self.runs = {}
        for k, entries in obj.items():
            run = _Run()
            run.entries = [(int(e[0]), str(e[1]), str(e[2]), int(e[3])) for e in entries]
            run.members = {e[2]: (e[0], e[1]) for e in run.entries}
            self._settle(run)
            self.runs[k] = run


@dataclass(frozen=True, slots=True)
class RunningTotalSpec(FactSpec):
    event: str
    key_field: str
    id_field: str
    map_field: str
    amount_key: str
    operations: tuple[str, ...]
    threshold: int
    part: str

    @property
    def gate(self) -> str | None:
        return f"part:{self.part}"

    @property
    def event_types(self) -> tuple[str, ...]:
        return (self.event,)

    def make(self) -> RunningTotal:
        return RunningTotal(self)

    def scan(self, events: Sequence[Event], ctx: ExamContext) -> RunningTotal:
        """Literal definition: de-duplicate by natural id (earliest point, largest amount),
        sort, accumulate."""
        fact = RunningTotal(self)
        w = ctx.windows.get(self.part)
        if w is None:
            return fact
        firsts: dict[str, dict[str, tuple[Point, int]]] = {}
        for ev in events:
            if ev.type != self.event or not (w.anchor_ms <= ev.ts_ms <= w.box_end_ms):
                continue
            got = fact._amount(ev)
            if got is None:
                continue
            key, nid, amount = got
            p = (ev.ts_ms, ev.event_id)
            cur = firsts.setdefault(key, {}).get(nid)
            firsts[key][nid] = (p, amount) if cur is None else (min(p, cur[0]), max(amount, cur[1]))
        for key, by_id in firsts.items():
            run = _Run()
            ordered = sorted((p[0], p[1], nid, amount) for nid, (p, amount) in by_id.items())
            total = 0
            for e in ordered:
                total += e[3]
                run.entries.append(e)
                if total >= self.threshold:
                    run.crossing = e
                    break
            run.total = total
            run.members = {e[2]: (e[0], e[1]) for e in run.entries}
            fact.runs[key] = run
        return fact
