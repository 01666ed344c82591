"""The lineage graph from OpenLineage run events, and traces seen in all three pillars."""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from services.core.context import ExamContext, Point
from services.core.events import Event
from services.core.facts.base import Fact, FactSpec, to_point
from services.core.matching import mapping, matching_keys, records, text

SEP = "\x1f"


def _names(items: Any) -> list[str]:
    return [n for n in (text(r.get("name")) for r in records(items)) if n]


class Lineage(Fact):
    """Directed edges between datasets and jobs, each with the earliest run that showed it.

    A run with inputs I, outputs O and job J adds I->O, I->J and J->O: a chart that
    only reads (a job with inputs and no outputs) still becomes a node of the graph.
    """

    __slots__ = ("edges", "spec")

    def __init__(self, spec: LineageSpec) -> None:
        self.spec = spec
        self.edges: dict[str, Point] = {}

    def accepts(self, ev: Event) -> bool:
        return (
            ev.type == "openlineage.run" and text(ev.data.get("eventType")) not in self.spec.ignore
        )

    def fold(self, ev: Event, ctx: ExamContext) -> bool:
        d = ev.data
        if text(d.get("eventType")) in self.spec.ignore:
            return False
        ins = _names(d.get("inputs"))
        outs = _names(d.get("outputs"))
        job = text(mapping(d.get("job")).get("name"))
        pairs = [(i, o) for i in ins for o in outs if i != o]
        if job:
            pairs += [(i, job) for i in ins if i != job] + [(job, o) for o in outs if o != job]
        p = (ev.ts_ms, ev.event_id)
        changed = False
        for a, b in pairs:
            k = a + SEP + b
            cur = self.edges.get(k)
            if cur is None or p < cur:
                self.edges[k] = p
                changed = True
        return changed

    def edge_list(self, close_ms: int | None) -> list[tuple[str, str, Point]]:
        out = []
        for k, p in self.edges.items():
            if close_ms is None or p[0] <= close_ms:
                a, b = k.split(SEP, 1)
                out.append((a, b, p))
        return out

    def nodes(self, close_ms: int | None) -> set[str]:
        return {n for a, b, _ in self.edge_list(close_ms) for n in (a, b)}

    def first_edge(self, src: str, dst: str, close_ms: int | None) -> tuple[Point, str, str] | None:
        """The earliest edge from a node naming ``src`` to one naming ``dst``."""
        edges = self.edge_list(close_ms)
        nodes = {n for a, b, _ in edges for n in (a, b)}
        srcs = set(matching_keys(nodes, src))
        dsts = set(matching_keys(nodes, dst))
        best = [(p, a, b) for a, b, p in edges if a in srcs and b in dsts]
        return min(best) if best else None

    def earliest_path(
        self, src: str, dst: str, close_ms: int | None
    ) -> tuple[Point, list[str]] | None:
        """The path that existed first: minimise the latest edge on it (a bottleneck search).

        Returns that latest edge's point and the event ids of the path's edges.
        """
        edges = self.edge_list(close_ms)
        nodes = {n for a, b, _ in edges for n in (a, b)}
        adj: dict[str, list[tuple[str, Point]]] = {}
        for a, b, p in edges:
            adj.setdefault(a, []).append((b, p))
        targets = set(matching_keys(nodes, dst))
        starts = matching_keys(nodes, src)
        if not targets or not starts:
            return None
        zero: Point = (-(2**62), "")
        best: dict[str, Point] = {s: zero for s in starts}
        via: dict[str, tuple[str, Point]] = {}
        heap: list[tuple[Point, str]] = [(zero, s) for s in sorted(starts)]
        while heap:
            cost, n = heapq.heappop(heap)
            if cost > best.get(n, cost):
                continue
            if n in targets and n not in starts:
                ids: list[str] = []
                cur = n
                while cur in via:
                    prev, p = via[cur]
                    ids.append(p[1])
                    cur = prev
                return cost, sorted(set(ids))
            for m, p in sorted(adj.get(n, ())):
                c = max(cost, p)
                if m not in best or c < best[m]:
                    best[m] = c
                    via[m] = (n, p)
                    heapq.heappush(heap, (c, m))
        return None

    def neighbours(self, names: Iterable[str], close_ms: int | None) -> set[str]:
        """Nodes one edge away (either direction) from any node in ``names``."""
        wanted = set(names)
        out: set[str] = set()
        for a, b, _ in self.edge_list(close_ms):
            if a in wanted:
                out.add(b)
            if b in wanted:
                out.add(a)
        return out

    def dump(self) -> Any:
        return {k: list(p) for k, p in self.edges.items()}

    def load(self, obj: Any) -> None:
        self.edges = {k: to_point(v) for k, v in obj.items()}


@dataclass(frozen=True, slots=True)
class LineageSpec(FactSpec):
    ignore: tuple[str, ...] = ("FAIL", "ABORT")
    types = ("openlineage.run",)

    def make(self) -> Lineage:
        return Lineage(self)


class TraceCorrelation(Fact):
    """The trace id that first had every pillar (trace, log, metric) seen.

    Keeps per trace id the earliest sighting of each pillar, but only sightings that
    are not later than the best complete trace so far: those can never be part of a
    better one, and the best can only get earlier, so the kept part is a pure function
    of the event set and stays small once one trace is complete.
    """

    __slots__ = ("best", "best_trace", "spec", "traces")

    def __init__(self, spec: TraceCorrelationSpec) -> None:
        self.spec = spec
        self.traces: dict[str, dict[str, Point]] = {}
        self.best: Point | None = None
        self.best_trace = ""

    def accepts(self, ev: Event) -> bool:
        return ev.type == "pillar.seen" and text(ev.data.get("pillar")) in self.spec.pillars

    def fold(self, ev: Event, ctx: ExamContext) -> bool:
        d = ev.data
        pillar = text(d.get("pillar"))
        trace = text(d.get("trace_id"))
        if pillar not in self.spec.pillars or not trace:
            return False
        p = (ev.ts_ms, ev.event_id)
        if self.best is not None and p > self.best:
            return False
        rec = self.traces.setdefault(trace, {})
        cur = rec.get(pillar)
        if cur is not None and cur <= p:
            return False
        rec[pillar] = p
        if len(rec) == len(self.spec.pillars):
            done = max(rec.values())
            if self.best is None or (done, trace) < (self.best, self.best_trace):
                self.best, self.best_trace = done, trace
                self._prune(done)
        return True

    def _prune(self, limit: Point) -> None:
        for trace in list(self.traces):
            rec = {k: p for k, p in self.traces[trace].items() if p <= limit}
            if rec:
                self.traces[trace] = rec
            else:
                del self.traces[trace]

    def dump(self) -> Any:
        return {t: {k: list(p) for k, p in rec.items()} for t, rec in self.traces.items()}

    def load(self, obj: Any) -> None:
        self.traces = {t: {k: to_point(p) for k, p in rec.items()} for t, rec in obj.items()}
        self.best, self.best_trace = None, ""
        for t, rec in self.traces.items():
            if len(rec) == len(self.spec.pillars):
                done = max(rec.values())
                if self.best is None or (done, t) < (self.best, self.best_trace):
                    self.best, self.best_trace = done, t


@dataclass(frozen=True, slots=True)
class TraceCorrelationSpec(FactSpec):
    pillars: tuple[str, ...] = ("trace", "log", "metric")
    types = ("pillar.seen",)

    def make(self) -> TraceCorrelation:
        return TraceCorrelation(self)

    def scan(self, events: Sequence[Event], ctx: ExamContext) -> TraceCorrelation:
        """Literal definition: earliest sighting per trace and pillar, best complete trace."""
        fact = TraceCorrelation(self)
        firsts: dict[str, dict[str, Point]] = {}
        for ev in events:
            pillar = text(ev.data.get("pillar"))
            trace = text(ev.data.get("trace_id"))
            if ev.type != "pillar.seen" or pillar not in self.pillars or not trace:
                continue
            p = (ev.ts_ms, ev.event_id)
            cur = firsts.setdefault(trace, {}).get(pillar)
            if cur is None or p < cur:
                firsts[trace][pillar] = p
        for t, rec in firsts.items():
            if len(rec) == len(self.pillars):
                done = max(rec.values())
                if fact.best is None or (done, t) < (fact.best, fact.best_trace):
                    fact.best, fact.best_trace = done, t
        fact.traces = firsts
        if fact.best is not None:
            fact._prune(fact.best)
        return fact
