"""Rules on the lineage graph and on observability: hops, paths, lineage walks, correlation."""

from __future__ import annotations

from itertools import pairwise
from typing import TYPE_CHECKING

from pydantic import field_validator

from services.core.facts.base import FactSpec
from services.core.facts.keyed import Earliest, EarliestSpec, KeyRule
from services.core.facts.lineage import Lineage, LineageSpec, TraceCorrelation, TraceCorrelationSpec
from services.core.matching import ASSET_NAMES, clock, matching_keys, mentions
from services.core.model import Outcome
from services.core.rules.base import Params, Query, Rule, met, pending
from services.core.rules.params import check_asset
from services.core.rules.registry import register
from services.core.where import Cond

if TYPE_CHECKING:
    from services.core.rubric import CriterionSpec

_LINEAGE = LineageSpec()


class HopsParams(Params):
    hops: tuple[str, ...] = (
        "source_table",
        "cdc_topic",
        "sink_table",
        "dbt_model",
        "superset_chart",
    )

    @field_validator("hops")
    @classmethod
    def _hops(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        if len(v) < 2:
            raise ValueError("hops needs at least two assets")
        for name in v:
            check_asset(name)
        return v


@register
class LineageHops(Rule[HopsParams]):
    """OpenLineage runs show every consecutive hop of the declared pipeline as an edge."""

    kind = "lineage_hops"
    params_model = HopsParams

    def facts(self) -> tuple[FactSpec, ...]:
        return (_LINEAGE,)

    def decide(self, q: Query) -> Outcome:
        names = [q.ctx.asset(h) for h in self.p.hops]
        if not all(names):
            return pending("Waiting for pipeline.declared to name every asset of the pipeline.")
        graph = q.fact(_LINEAGE, Lineage)
        found: list[tuple[int, str]] = []
        missing: list[str] = []
        for a, b in pairwise(names):
            edge = graph.first_edge(a, b, q.close_ms)
            if edge is None:
                missing.append(f"{a} -> {b}")
            else:
                found.append(edge[0])
        if missing:
            return pending(
                f"Lineage is missing the hop(s) {', '.join(missing)}.", tuple(p[1] for p in found)
            )
        last = max(found)
        return met(
            f"Lineage shows every hop {' -> '.join(names)} (complete at {clock(last[0])}).",
            tuple(sorted({p[1] for p in found})),
            last[0],
        )


class PathParams(Params):
    source: str = "source_table"
    target: str = "superset_chart"

    @field_validator("source", "target")
    @classmethod
    def _asset(cls, v: str) -> str:
        return check_asset(v)


@register
class LineagePath(Rule[PathParams]):
    """The lineage graph has a directed path from the source table to the chart."""

    kind = "lineage_path"
    params_model = PathParams

    def facts(self) -> tuple[FactSpec, ...]:
        return (_LINEAGE,)

    def decide(self, q: Query) -> Outcome:
        src, dst = q.ctx.asset(self.p.source), q.ctx.asset(self.p.target)
        if not src or not dst:
            return pending(
                f"Waiting for pipeline.declared to name the {self.p.source} and {self.p.target}."
            )
        path = q.fact(_LINEAGE, Lineage).earliest_path(src, dst, q.close_ms)
        if path is None:
            return pending(f"No lineage path from {src} to {dst} yet.")
        last, ids = path
        return met(
            f"A lineage path from {src} to {dst} exists since {clock(last[0])} ({len(ids)} edges).",
            tuple(ids),
            last[0],
        )


class WalkedParams(Params):
    tool: str = "datahub"


@register
class LineageWalked(Rule[WalkedParams]):
    """After the fault, DataHub was used on the faulted target or a node one hop from it."""

    kind = "lineage_walked"
    params_model = WalkedParams

    def __init__(self, spec: CriterionSpec) -> None:
        super().__init__(spec)
        self._visits = EarliestSpec(
            "tool.used",
            (Cond("tool", "equals", self.p.tool),),
            KeyRule(("target",)),
            f"part:{spec.part}",
        )

    def facts(self) -> tuple[FactSpec, ...]:
        return (_LINEAGE, self._visits)

    def decide(self, q: Query) -> Outcome:
        fault = q.ctx.fault
        if fault is None:
            return pending("No fault.injected yet.")
        target = fault.target
        if target in ASSET_NAMES and q.ctx.asset(target):
            target = q.ctx.asset(target)
        graph = q.fact(_LINEAGE, Lineage)
        close = q.close_ms
        at_fault = matching_keys(graph.nodes(close), target) or [target]
        near = set(at_fault) | graph.neighbours(at_fault, close)
        visits = q.fact(self._visits, Earliest).best
        hits = [
            (p, t) for t, p in visits.items() if p[0] <= close and any(mentions(t, n) for n in near)
        ]
        if not hits:
            return pending(
                f"No {self.p.tool} visit of {target} or its {len(near) - len(at_fault)} lineage "
                f"neighbour(s) since the fault."
            )
        p, t = min(hits)
        return met(
            f"{self.p.tool} was used on {t} at {clock(p[0])}, one hop or less from {target}.",
            (p[1],),
            p[0],
        )


class CorrelatedParams(Params):
    pillars: tuple[str, ...] = ("trace", "log", "metric")


@register
class TraceCorrelated(Rule[CorrelatedParams]):
    """One trace id was seen in every pillar (its trace, its log line, its metric)."""

    kind = "trace_correlated"
    params_model = CorrelatedParams

    def __init__(self, spec: CriterionSpec) -> None:
        super().__init__(spec)
        self._fs = TraceCorrelationSpec(self.p.pillars)

    def facts(self) -> tuple[FactSpec, ...]:
        return (self._fs,)

    def decide(self, q: Query) -> Outcome:
        fact = q.fact(self._fs, TraceCorrelation)
        if fact.best is None or fact.best[0] > q.close_ms:
            return pending(f"No trace id has been seen in all of {', '.join(self.p.pillars)} yet.")
        rec = fact.traces[fact.best_trace]
        return met(
            f"Trace {fact.best_trace} was found in {', '.join(self.p.pillars)} by {clock(fact.best[0])}.",
            tuple(rec[p][1] for p in self.p.pillars),
            fact.best[0],
        )
