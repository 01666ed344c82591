"""Part 1 rules on dbt: the rollup built and tested, and the broken row caught."""

from __future__ import annotations

from services.core.facts.base import FactSpec
from services.core.facts.dbt import DbtGraph, DbtGraphSpec, FailingTests, FailingTestsSpec
from services.core.matching import clock
from services.core.model import Outcome
from services.core.rules.base import Params, Query, Rule, met, pending
from services.core.rules.registry import register


class DbtModelParams(Params):
    model_asset: str = "dbt_model"


@register
class DbtModelTested(Rule[DbtModelParams]):
    """The declared model built successfully and at least one test on it passed."""

    kind = "dbt_model_tested"
    params_model = DbtModelParams
    _graph = DbtGraphSpec()

    def facts(self) -> tuple[FactSpec, ...]:
        return (self._graph,)

    def decide(self, q: Query) -> Outcome:
        model = q.ctx.asset(self.p.model_asset)
        if not model:
            return pending(f"Waiting for pipeline.declared to name the {self.p.model_asset}.")
        graph = q.fact(self._graph, DbtGraph)
        close = q.close_ms
        uids = graph.models(model, close)
        built = [
            graph.model_ok[u] for u in uids if u in graph.model_ok and graph.model_ok[u][0] <= close
        ]
        tested = [
            graph.test_pass[u]
            for u in uids
            if u in graph.test_pass and graph.test_pass[u][0] <= close
        ]
        if built and tested:
            b, t = min(built), min(tested)
            return met(
                f"dbt built {model} at {clock(b[0])} and a test on it passed at {clock(t[0])}.",
                (b[1], t[1]),
                max(b, t)[0],
            )
        if built:
            return pending(
                f"dbt built {model}, but no test on it has passed yet.", (min(built)[1],)
            )
        return pending(f"No successful dbt build of {model} yet.")


@register
class DbtCatchesBrokenRow(Rule[DbtModelParams]):
    """After row.broken, a dbt test on the model or upstream of it failed with failures >= 1."""

    kind = "dbt_catches_broken_row"
    params_model = DbtModelParams
    _graph = DbtGraphSpec()
    _failing = FailingTestsSpec()

    def facts(self) -> tuple[FactSpec, ...]:
        return (self._graph, self._failing)

    def decide(self, q: Query) -> Outcome:
        rb = q.ctx.row_broken
        if rb is None:
            return pending("No row.broken yet: the proctor has not broken an upstream row.")
        model = q.ctx.asset(self.p.model_asset)
        if not model:
            return pending(f"Waiting for pipeline.declared to name the {self.p.model_asset}.")
        graph = q.fact(self._graph, DbtGraph)
        failing = q.fact(self._failing, FailingTests)
        close = q.close_ms
        watched: set[str] = set()
        for uid in graph.models(model, close):
            watched |= {uid} | graph.upstream(uid, close)
        hits = [
            (p, test)
            for test, p in failing.first.items()
            if p[0] <= close and failing.tested(test, close) & watched
        ]
        if not hits:
            return pending(
                f"No dbt test on {model} or upstream of it has failed since the row was broken "
                f"at {clock(rb[0])}.",
                (rb[1],),
            )
        p, test = min(hits)
        return met(
            f"dbt test {test} failed at {clock(p[0])}, after the row was broken at {clock(rb[0])}.",
            (rb[1], p[1]),
            p[0],
        )
