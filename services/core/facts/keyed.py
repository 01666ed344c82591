"""Earliest-by-key and k-earliest-distinct: the workhorse aggregates.

``EarliestSpec`` keeps, per key, the earliest (ts, event id) of the events that pass a
filter. Keys are the asset-bearing field (subject, job name, table...), not the declared
asset itself, so the value does not depend on ``pipeline.declared`` having arrived: the
criterion picks the keys that name its asset when it decides. The number of keys is the
number of distinct subjects/jobs/tables on the platform, small by nature.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from services.core.context import ExamContext, Point
from services.core.events import Event
from services.core.facts.base import Fact, FactSpec, to_point
from services.core.matching import records, strings, text
from services.core.where import Cond, compile_where

SEP = "\x1f"
#: the last part of a ``columns_by_user`` key for a column Trino masked in that query
MASKED = "masked"


def synced_revisions(d: Mapping[str, Any]) -> list[str]:
    """The revisions an argocd.sync synced: every source's (``revisions``, one per source of
    a multi-source application), else the single ``revision``."""
    revs = [r for r in strings(d.get("revisions")) if r]
    if not revs:
        rev = text(d.get("revision"))
        revs = [rev] if rev else [""]
    return list(dict.fromkeys(revs))


@dataclass(frozen=True, slots=True)
class KeyRule:
    """Which key(s) an event files under. ``fields`` joined by SEP; "" key when no fields."""

    fields: tuple[str, ...] = ()
    #: special multi-key rules: "argocd_namespaces" (one key per resource namespace and
    #: synced revision, joined with whether the sync was automated), "argocd_revisions"
    #: (one key per synced revision: a multi-source application syncs several),
    #: "columns_by_user" (one key per column read, joined with the user; when the query
    #: says which columns Trino masked, ``masked_columns``, one key per masked column
    #: under column, user and MASKED instead), "flink_modes" (one key per job name and
    #: checkpointing mode, "off" when the job reported none)
    special: str = ""

    def keys(self, d: Mapping[str, Any]) -> Iterable[str]:
        if self.special == "argocd_namespaces":
            auto = "auto" if text(d.get("initiated_by")) == "automated" else "manual"
            nss = {text(r.get("namespace")) for r in records(d.get("resources"))}
            revs = synced_revisions(d)
            return [SEP.join((ns, rev, auto)) for ns in sorted(nss) if ns for rev in revs]
        if self.special == "argocd_revisions":
            return [r for r in synced_revisions(d) if r]
        if self.special == "flink_modes":
            # one key per job and the checkpointing it reported; none reported means off
            job = text(d.get("job_name"))
            mode = text(d.get("checkpointing_mode")).lower() or "off"
            return (job + SEP + mode,) if job else ()
        if self.special == "columns_by_user":
            user = text(d.get("user"))
            if not user:
                return []
            if d.get("masked_columns") is None:  # the producer cannot say what Trino masked
                return [c + SEP + user for c in strings(d.get("columns"))]
            # Trino said which columns it masked: only those are masked reads
            return [SEP.join((c, user, MASKED)) for c in strings(d.get("masked_columns")) if c]
        if not self.fields:
            return ("",)
        if len(self.fields) == 1:
            k = text(d.get(self.fields[0]))
            return (k,) if k else ()
        parts = [text(d.get(f)) for f in self.fields]
        return (SEP.join(parts),) if all(parts) else ()


class Earliest(Fact):
    __slots__ = ("_gate", "_keys", "_pred", "best", "spec")

    def __init__(self, spec: EarliestSpec) -> None:
        self.spec = spec
        self._pred = compile_where(spec.where)
        self._keys = spec.key.keys
        self._gate = spec.gate
        self.best: dict[str, Point] = {}

    def accepts(self, ev: Event) -> bool:
        return ev.type == self.spec.event and self._pred(ev.data)

    def fold(self, ev: Event, ctx: ExamContext) -> bool:
        d = ev.data
        if not self._pred(d):
            return False
        if self._gate is not None:
            anchor = ctx.anchors.get(self._gate)
            if anchor is None or ev.ts_ms < anchor:
                return False
        p = (ev.ts_ms, ev.event_id)
        changed = False
        best = self.best
        for k in self._keys(d):
            cur = best.get(k)
            if cur is None or p < cur:
                best[k] = p
                changed = True
        return changed

    def dump(self) -> Any:
        return {k: [p[0], p[1]] for k, p in self.best.items()}

    def load(self, obj: Any) -> None:
        self.best = {k: to_point(v) for k, v in obj.items()}


@dataclass(frozen=True, slots=True)
class EarliestSpec(FactSpec):
    """Earliest event per key among ``event`` events passing ``where``.

    With ``after`` set to a gate name (e.g. "part:2"), only events at or after that
    anchor count, and the engine holds events back until the anchor is known.
    """

    event: str
    where: tuple[Cond, ...] = ()
    key: KeyRule = KeyRule()
    after: str | None = None

    @property
    def gate(self) -> str | None:
        return self.after

    @property
    def event_types(self) -> tuple[str, ...]:
        return (self.event,)

    def make(self) -> Earliest:
        return Earliest(self)


class TopK(Fact):
    """Per group, the k earliest distinct values (e.g. the 3 first checkpoint ids of a job)."""

    __slots__ = ("_pred", "groups", "spec")

    def __init__(self, spec: TopKSpec) -> None:
        self.spec = spec
        self._pred = compile_where(spec.where)
        #: group -> sorted [(ts, event_id, distinct value)], at most k, distinct values unique
        self.groups: dict[str, list[tuple[int, str, str]]] = {}

    def accepts(self, ev: Event) -> bool:
        return ev.type == self.spec.event and self._pred(ev.data)

    def fold(self, ev: Event, ctx: ExamContext) -> bool:
        d = ev.data
        if not self._pred(d):
            return False
        group = text(d.get(self.spec.group_field))
        value = text(d.get(self.spec.distinct_field))
        if not group or not value:
            return False
        item = (ev.ts_ms, ev.event_id, value)
        lst = self.groups.get(group)
        if lst is None:
            self.groups[group] = [item]
            return True
        for i, old in enumerate(lst):
            if old[2] == value:
                if item[:2] >= old[:2]:
                    return False
                del lst[i]
                bisect.insort(lst, item)
                return True
        k = self.spec.k
        if len(lst) >= k and item >= lst[-1]:
            return False
        bisect.insort(lst, item)
        if len(lst) > k:
            lst.pop()
        return True

    def dump(self) -> Any:
        return {g: [list(x) for x in lst] for g, lst in self.groups.items()}

    def load(self, obj: Any) -> None:
        self.groups = {
            g: [(int(x[0]), str(x[1]), str(x[2])) for x in lst] for g, lst in obj.items()
        }


@dataclass(frozen=True, slots=True)
class TopKSpec(FactSpec):
    event: str
    where: tuple[Cond, ...]
    group_field: str
    distinct_field: str
    k: int

    @property
    def event_types(self) -> tuple[str, ...]:
        return (self.event,)

    def make(self) -> TopK:
        return TopK(self)

    def scan(self, events: Any, ctx: ExamContext) -> TopK:
        """Literal definition: per group, the earliest point of each distinct value, k first."""
        fact = TopK(self)
        pred = compile_where(self.where)
        firsts: dict[str, dict[str, Point]] = {}
        for ev in events:
            if ev.type != self.event or not pred(ev.data):
                continue
            g = text(ev.data.get(self.group_field))
            v = text(ev.data.get(self.distinct_field))
            if not g or not v:
                continue
            p = (ev.ts_ms, ev.event_id)
            cur = firsts.setdefault(g, {}).get(v)
            if cur is None or p < cur:
                firsts[g][v] = p
        for g, by_value in firsts.items():
            fact.groups[g] = sorted((p[0], p[1], v) for v, p in by_value.items())[: self.k]
        return fact
