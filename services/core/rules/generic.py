"""Generic rule kinds: "an event like this happened" and "all of these happened"."""

from __future__ import annotations

from typing import TYPE_CHECKING

from services.core.facts.base import FactSpec
from services.core.facts.keyed import Earliest, EarliestSpec
from services.core.matching import clock
from services.core.model import Outcome
from services.core.rules.base import Params, Query, Rule, earliest_for, met, pending
from services.core.rules.params import Matcher
from services.core.rules.registry import register

if TYPE_CHECKING:
    from services.core.rubric import CriterionSpec


def _find(m: Matcher, fs: EarliestSpec, q: Query) -> tuple[tuple[int, str], str] | str | None:
    """The earliest matching point, None when none yet, or a reason string when undecidable."""
    declared = m.declared(q.ctx.assets)
    if declared == "":
        return f"no pipeline.declared names the {m.asset.name if m.asset else 'asset'} yet"
    fact = q.fact(fs, Earliest)
    return earliest_for(fact.best, declared, q.close_ms)


class FirstEventParams(Matcher):
    pass


@register
class FirstEvent(Rule[FirstEventParams]):
    """Met at the earliest event that matches (for example schema.registered of the topic)."""

    kind = "first_event"
    params_model = FirstEventParams

    def __init__(self, spec: CriterionSpec) -> None:
        super().__init__(spec)
        self._fs = self.p.fact_spec(spec.part)

    def facts(self) -> tuple[FactSpec, ...]:
        return (self._fs,)

    def decide(self, q: Query) -> Outcome:
        hit = _find(self.p, self._fs, q)
        if isinstance(hit, str):
            return pending(f"Waiting: {hit}.")
        if hit is None:
            return pending(f"Waiting for evidence that {self.p.says}.")
        (ts, eid), key = hit
        named = f" ({key})" if key else ""
        return met(f"Met at {clock(ts)}: {self.p.says}{named}.", (eid,), ts)


class AllEventsParams(Params):
    require: tuple[Matcher, ...]


@register
class AllEvents(Rule[AllEventsParams]):
    """Met when every listed kind of event has happened; met at the latest of them."""

    kind = "all_events"
    params_model = AllEventsParams

    def __init__(self, spec: CriterionSpec) -> None:
        super().__init__(spec)
        self._fs = tuple(m.fact_spec(spec.part) for m in self.p.require)

    def facts(self) -> tuple[FactSpec, ...]:
        return self._fs

    def decide(self, q: Query) -> Outcome:
        missing: list[str] = []
        points: list[tuple[int, str]] = []
        for m, fs in zip(self.p.require, self._fs, strict=True):
            hit = _find(m, fs, q)
            if isinstance(hit, str):
                missing.append(f"{m.says} ({hit})")
            elif hit is None:
                missing.append(m.says)
            else:
                points.append(hit[0])
        if missing:
            return pending(f"Waiting for: {'; '.join(missing)}.", tuple(p[1] for p in points))
        last = max(points)
        says = "; ".join(m.says for m in self.p.require)
        return met(f"Met at {clock(last[0])}: {says}.", tuple(p[1] for p in points), last[0])
