"""Part 1 rules about the data path: CDC growth, exactly-once, the Superset alert."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import Field

from services.core.facts.base import FactSpec
from services.core.facts.counters import CounterGrowth, CounterGrowthSpec
from services.core.facts.keyed import SEP, Earliest, EarliestSpec, KeyRule, TopK, TopKSpec
from services.core.matching import clock, count, matching_keys
from services.core.model import Outcome, State
from services.core.rules.base import Params, Query, Rule, earliest_for, met, pending
from services.core.rules.registry import register
from services.core.where import Cond

if TYPE_CHECKING:
    from services.core.rubric import CriterionSpec


class OffsetsParams(Params):
    """Which counter: by default the high watermark of each partition of the CDC topic."""

    event: str = "cdc.offsets"
    asset: str = "cdc_topic"
    key_field: str = "topic"
    sub_field: str = "partition"
    value_field: str = "high_watermark"

    def fact_spec(self, part: str) -> CounterGrowthSpec:
        return CounterGrowthSpec(self.event, self.key_field, self.sub_field, self.value_field, part)


class CounterGrowthParams(OffsetsParams):
    at_least: int = Field(default=1, gt=0)


@register
class CounterGrowthRule(Rule[CounterGrowthParams]):
    """The declared topic's offsets grew by at least N since the part started."""

    kind = "counter_growth"
    params_model = CounterGrowthParams

    def __init__(self, spec: CriterionSpec) -> None:
        super().__init__(spec)
        self._fs = self.p.fact_spec(spec.part)

    def facts(self) -> tuple[FactSpec, ...]:
        return (self._fs,)

    def quick(self, q: Query) -> State | None:
        name = q.ctx.asset(self.p.asset)
        fact = q.fact(self._fs, CounterGrowth)
        total = sum(fact.totals.get(k, 0) for k in matching_keys(fact.totals, name)) if name else 0
        return "met" if total >= self.p.at_least else None

    def decide(self, q: Query) -> Outcome:
        name = q.ctx.asset(self.p.asset)
        if not name:
            return pending(f"Waiting for pipeline.declared to name the {self.p.asset}.")
        fact = q.fact(self._fs, CounterGrowth)
        total, evidence, latest = fact.growth(matching_keys(fact.keys, name))
        if total >= self.p.at_least:
            return met(
                f"Offsets of {name} grew by {count(total)} since Part {self.spec.part} started "
                f"(at least {count(self.p.at_least)} needed).",
                evidence,
                latest,
            )
        return pending(
            f"Offsets of {name} grew by {count(total)} of {count(self.p.at_least)} "
            f"since Part {self.spec.part} started.",
            evidence,
        )


class ExactlyOnceParams(Params):
    job_asset: str = "flink_job"
    sink_asset: str = "sink_table"
    mode: str = "exactly_once"
    min_checkpoints: int = Field(default=3, gt=0)
    checkpoint_status: str = "COMPLETED"
    summary_key: str = "flink.max-committed-checkpoint-id"


@register
class FlinkExactlyOnce(Rule[ExactlyOnceParams]):
    """Exactly-once mode, N completed checkpoints, and sink commits that carry the checkpoint id."""

    kind = "flink_exactly_once"
    params_model = ExactlyOnceParams

    def __init__(self, spec: CriterionSpec) -> None:
        super().__init__(spec)
        p = self.p
        self._jobs = EarliestSpec("flink.job", (), KeyRule(("job_name", "job_id")))
        self._mode = EarliestSpec(
            "flink.job", (Cond("checkpointing_mode", "equals_ci", p.mode),), KeyRule(("job_name",))
        )
        self._cps = TopKSpec(
            "flink.checkpoint",
            (
                Cond("status", "equals", p.checkpoint_status),
                Cond("is_savepoint", "not_equals", True),
            ),
            "job_id",
            "checkpoint_id",
            p.min_checkpoints,
        )
        self._commits = EarliestSpec(
            "iceberg.commit", (Cond("summary", "has_key", p.summary_key),), KeyRule(("table",))
        )
        self._modes = EarliestSpec("flink.job", (), KeyRule(special="flink_modes"))

    def facts(self) -> tuple[FactSpec, ...]:
        return (self._jobs, self._mode, self._cps, self._commits, self._modes)

    def _other_modes(self, q: Query, job: str) -> dict[str, tuple[int, str]]:
        """The checkpointing modes other than the wanted one that ``job`` reported by the
        close (``off`` for none), each with the earliest report."""
        found: dict[str, tuple[int, str]] = {}
        best = q.fact(self._modes, Earliest).best
        by_name: dict[str, list[tuple[str, tuple[int, str]]]] = {}
        for key, point in best.items():
            name, mode = key.rsplit(SEP, 1)
            by_name.setdefault(name, []).append((mode, point))
        for name in matching_keys(by_name, job):
            for mode, point in by_name[name]:
                if point[0] <= q.close_ms and mode != self.p.mode.lower():
                    found[mode] = min(point, found.get(mode, point))
        return found

    def on_close(self, q: Query, pending_out: Outcome) -> Outcome:
        """A job that ran only with another checkpointing mode is a wrong answer (failed),
        not a missing one (expired): its sink commits are not exactly once."""
        job = q.ctx.asset(self.p.job_asset)
        wanted = self.p.mode.lower()
        if job:
            close = q.close_ms
            if earliest_for(q.fact(self._mode, Earliest).best, job, close) is None:
                others = self._other_modes(q, job)
                if others:
                    said = " and ".join(_describe_mode(m) for m in sorted(others))
                    return Outcome(
                        "failed",
                        f"The time box closed at {clock(close)} and job {job} {said}, never "
                        f"{wanted.replace('_', ' ')}: its sink commits are not exactly once.",
                        tuple(p[1] for p in sorted(others.values())),
                        close,
                    )
        return super().on_close(q, pending_out)

    def decide(self, q: Query) -> Outcome:
        job = q.ctx.asset(self.p.job_asset)
        sink = q.ctx.asset(self.p.sink_asset)
        if not job or not sink:
            return pending(
                f"Waiting for pipeline.declared to name the {self.p.job_asset} and {self.p.sink_asset}."
            )
        close = q.close_ms
        missing: list[str] = []
        points: list[tuple[int, str]] = []
        mode = earliest_for(q.fact(self._mode, Earliest).best, job, close)
        if mode is None:
            others = self._other_modes(q, job)
            if others:
                said = " and ".join(_describe_mode(m) for m in sorted(others))
                missing.append(f"job {job} {said}, not {self.p.mode.replace('_', ' ')}")
            else:
                missing.append(f"job {job} has not reported {self.p.mode} checkpointing")
        else:
            points.append(mode[0])
        pairs = [k.split(SEP, 1) for k in q.fact(self._jobs, Earliest).best]
        names = set(matching_keys({n for n, _ in pairs}, job))
        ids = {i for n, i in pairs if n in names}
        groups = q.fact(self._cps, TopK).groups
        cps = sorted(x for i in ids for x in groups.get(i, ()) if x[0] <= close)
        need = self.p.min_checkpoints
        if len(cps) < need:
            missing.append(f"{len(cps)} of {need} checkpoints completed")
        else:
            points.append(cps[need - 1][:2])
        commit = earliest_for(q.fact(self._commits, Earliest).best, sink, close)
        if commit is None:
            missing.append(f"no commit on {sink} carries {self.p.summary_key}")
        else:
            points.append(commit[0])
        if missing:
            return pending(
                f"Not yet exactly once: {'; '.join(missing)}.", tuple(p[1] for p in points)
            )
        last = max(points)
        return met(
            f"Job {job} checkpoints {self.p.mode}, {need} checkpoints completed and commits on "
            f"{sink} carry {self.p.summary_key} (complete at {clock(last[0])}).",
            tuple(p[1] for p in points),
            last[0],
        )


def _describe_mode(mode: str) -> str:
    """``at_least_once`` -> "checkpoints at least once"; ``off`` -> "has checkpointing off"."""
    if mode == "off":
        return "has checkpointing off"
    return "checkpoints " + mode.replace("_", " ")


class SupersetAlertParams(Params):
    model_asset: str = "dbt_model"
    evaluated_states: tuple[str, ...] = ("Success", "Noop", "Grace")


@register
class SupersetAlert(Rule[SupersetAlertParams]):
    """A chart on the dbt model's table, with an alert on that chart that has evaluated."""

    kind = "superset_alert"
    params_model = SupersetAlertParams

    def __init__(self, spec: CriterionSpec) -> None:
        super().__init__(spec)
        self._charts = EarliestSpec("superset.chart", (), KeyRule(("chart_id", "dataset")))
        self._alerts = EarliestSpec(
            "superset.alert",
            (Cond("last_state", "in", self.p.evaluated_states),),
            KeyRule(("chart_id",)),
        )

    def facts(self) -> tuple[FactSpec, ...]:
        return (self._charts, self._alerts)

    def decide(self, q: Query) -> Outcome:
        model = q.ctx.asset(self.p.model_asset)
        if not model:
            return pending(f"Waiting for pipeline.declared to name the {self.p.model_asset}.")
        close = q.close_ms
        charts: dict[str, tuple[int, str]] = {}
        by_dataset: dict[str, list[str]] = {}
        for key, p in q.fact(self._charts, Earliest).best.items():
            cid, dataset = key.split(SEP, 1)
            if p[0] <= close:
                by_dataset.setdefault(dataset, []).append(cid)
                charts[cid] = min(p, charts.get(cid, p))
        ids = {c for d in matching_keys(by_dataset, model) for c in by_dataset[d]}
        if not ids:
            return pending(f"No Superset chart on {model} yet.")
        alerts = q.fact(self._alerts, Earliest).best
        pairs = [
            (max(charts[c], alerts[c]), c) for c in ids if c in alerts and alerts[c][0] <= close
        ]
        if not pairs:
            return pending(
                f"Chart {', '.join(sorted(ids))} shows {model}, but no alert on it has evaluated yet.",
                tuple(charts[c][1] for c in sorted(ids)),
            )
        last, cid = min(pairs)
        return met(
            f"Chart {cid} shows {model} and its alert evaluated at {clock(alerts[cid][0])}.",
            (charts[cid][1], alerts[cid][1]),
            last[0],
        )
