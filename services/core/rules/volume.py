"""The 100k end-to-end criterion: N events from the CDC topic through the sink to dbt."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from pydantic import Field

from services.core.context import Point
from services.core.facts.base import FactSpec
from services.core.facts.counters import CounterGrowth, Entry, RunningTotal, RunningTotalSpec
from services.core.facts.dbt import DbtGraph, DbtGraphSpec, DbtLatestSuccess, DbtLatestSuccessSpec
from services.core.matching import clock, count, matching_keys
from services.core.model import Outcome, State
from services.core.rules.base import Query, Rule, met, pending
from services.core.rules.pipeline import OffsetsParams
from services.core.rules.registry import register

if TYPE_CHECKING:
    from services.core.rubric import CriterionSpec


@dataclass(frozen=True, slots=True)
class _Volume:
    topic: str
    sink: str
    model: str
    keys: list[str]
    grown: int
    crossing: Entry | None
    added: int
    built: Point | None


class EndToEndParams(OffsetsParams):
    at_least_offsets: int = Field(default=100_000, gt=0)
    sink_asset: str = "sink_table"
    sink_operations: tuple[str, ...] = ("append", "overwrite")
    amount_key: str = "added-records"
    at_least_records: int = Field(default=100_000, gt=0)
    model_asset: str = "dbt_model"


@register
class EndToEndVolume(Rule[EndToEndParams]):
    """N events through the whole pipeline: topic offsets grew by N, the sink gained N
    records (commits de-duplicated by snapshot id), and the dbt model built after the
    sink crossed N."""

    kind = "end_to_end_volume"
    params_model = EndToEndParams
    _graph = DbtGraphSpec()

    def __init__(self, spec: CriterionSpec) -> None:
        super().__init__(spec)
        p = self.p
        self._offsets = p.fact_spec(spec.part)
        self._sink = RunningTotalSpec(
            "iceberg.commit",
            "table",
            "snapshot_id",
            "summary",
            p.amount_key,
            p.sink_operations,
            p.at_least_records,
            spec.part,
        )
        self._latest = DbtLatestSuccessSpec(spec.part)

    def facts(self) -> tuple[FactSpec, ...]:
        return (self._offsets, self._sink, self._latest, self._graph)

    def _measure(self, q: Query) -> _Volume | None:
        a = q.ctx.assets
        topic, sink, model = (
            a.get(self.p.asset, ""),
            a.get(self.p.sink_asset, ""),
            a.get(self.p.model_asset, ""),
        )
        if not (topic and sink and model):
            return None
        close = q.close_ms
        off = q.fact(self._offsets, CounterGrowth)
        keys = matching_keys(off.totals, topic)
        runs = q.fact(self._sink, RunningTotal).runs
        tables = matching_keys(runs, sink)
        crossings = [
            c for c in (runs[t].crossing for t in tables) if c is not None and c[0] <= close
        ]
        crossing = min(crossings) if crossings else None
        added = max((runs[t].total for t in tables), default=0)
        graph = q.fact(self._graph, DbtGraph)
        latest = q.fact(self._latest, DbtLatestSuccess).latest
        uids = set(graph.models(model, close)) | set(matching_keys(latest, model))
        built = max(
            (latest[u] for u in uids if u in latest and latest[u][0] <= close), default=None
        )
        grown = sum(off.totals.get(k, 0) for k in keys)
        return _Volume(topic, sink, model, keys, grown, crossing, added, built)

    def quick(self, q: Query) -> State | None:
        v = self._measure(q)
        return "met" if v is not None and self._met(v) else None

    def _met(self, v: _Volume) -> bool:
        return (
            v.grown >= self.p.at_least_offsets
            and v.crossing is not None
            and v.built is not None
            and v.built[:2] >= v.crossing[:2]
        )

    def decide(self, q: Query) -> Outcome:
        v = self._measure(q)
        if v is None:
            return pending(
                "Waiting for pipeline.declared to name the CDC topic, sink table and dbt model."
            )
        topic, sink, model, grown, crossing, added, built = (
            v.topic,
            v.sink,
            v.model,
            v.grown,
            v.crossing,
            v.added,
            v.built,
        )
        _, off_ev, _ = q.fact(self._offsets, CounterGrowth).growth(v.keys)
        need_off, need_rec = self.p.at_least_offsets, self.p.at_least_records
        if self._met(v) and crossing is not None and built is not None:
            return met(
                f"{count(grown)} offsets on {topic}, {count(need_rec)}+ records into {sink} by "
                f"{clock(crossing[0])}, and dbt built {model} after that at {clock(built[0])}.",
                (*off_ev[-1:], crossing[1], built[1]),
                built[0],
            )
        if crossing is None:
            sink_part = f"{sink} gained {count(added)} of {count(need_rec)} records"
            dbt_part = f"dbt must build {model} after that"
        else:
            sink_part = f"{sink} reached {count(need_rec)} records at {clock(crossing[0])}"
            dbt_part = (
                f"dbt built {model} after that at {clock(built[0])}"
                if built is not None and built[:2] >= crossing[:2]
                else f"no successful build of {model} after that yet"
            )
        return pending(
            f"Offsets of {topic} grew by {count(grown)} of {count(need_off)}, {sink_part}, {dbt_part}.",
            off_ev[-1:],
        )
