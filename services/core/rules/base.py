"""Rule kinds: the Python half of the rubric.

A rule kind turns a criterion's parameters (from the rubric file) into the facts it
needs and a ``decide`` that reads them. ``decide`` says met, partial, failed or
pending; time boxes, the Part-not-open case and collector blindness are handled once,
in :func:`evaluate`, so every kind treats them the same way.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar, Generic, Protocol, TypeVar, cast

from pydantic import BaseModel, ConfigDict

from services.core.context import ExamContext, Point, Window
from services.core.facts.base import Fact, FactSpec
from services.core.matching import clock, matching_keys
from services.core.model import CriterionResult, Outcome, State
from services.core.overrides import apply_override

if TYPE_CHECKING:
    from services.core.rubric import CriterionSpec, Rubric

#: "no evaluation time yet": earlier than any event
NEVER = -(2**62)

P = TypeVar("P", bound=BaseModel)
F = TypeVar("F", bound=Fact)


class Blindness(Protocol):
    """Anything that can say whether a collector was blind at a time (see heartbeats)."""

    def blind_at(self, name: str, at_ms: int) -> str | None: ...

    def blind_during(self, name: str, lo_ms: int, hi_ms: int) -> str | None: ...


class Params(BaseModel):
    """Base of every rule's parameters: frozen, and unknown keys are errors (typos)."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Query:
    """What a rule may look at when it decides.

    Facts are looked up by the identity of the spec object the rule holds (rules build
    their specs once), which spares hashing a spec on every decision; an equal spec
    built elsewhere still finds its fact through the hash.
    """

    __slots__ = ("_by_id", "ctx", "now", "view", "window")

    def __init__(
        self,
        view: Mapping[FactSpec, Fact],
        ctx: ExamContext,
        window: Window | None,
        now: int,
        rules: Iterable[Rule[Any]] = (),
    ) -> None:
        self.view = view
        self.ctx = ctx
        self.window = window
        self.now = now
        self._by_id = {id(s): view[s] for rule in rules for s in rule.facts() if s in view}

    @property
    def close_ms(self) -> int:
        return self.window.close_ms if self.window is not None else 2**62

    def fact(self, spec: FactSpec, kind: type[F]) -> F:
        got = self._by_id.get(id(spec))
        return cast(F, got if got is not None else self.view[spec])


class Rule(ABC, Generic[P]):
    """One criterion's rule. Stateless: all state lives in the facts it declares."""

    kind: ClassVar[str]
    params_model: ClassVar[type[BaseModel]]
    #: overall verdicts read other criteria, not facts
    overall: ClassVar[bool] = False
    #: whether a blind collector at the close turns expired/met-by-absence into unknown
    blind_sensitive: ClassVar[bool] = True

    def __init__(self, spec: CriterionSpec) -> None:
        self.spec = spec
        self.p: P = cast(P, spec.params)

    def facts(self) -> tuple[FactSpec, ...]:
        return ()

    def check(self, rubric: Rubric) -> list[str]:
        """Problems that need the whole rubric to see (references to other criteria)."""
        return []

    @abstractmethod
    def decide(self, q: Query) -> Outcome:
        """met, partial, failed or pending from the facts; evidence after the close ignored."""

    def quick(self, q: Query) -> State | None:
        """A cheap answer for the hot path: "met" only when :meth:`decide` would say met.

        The engine skips the full decision (reasons, evidence) when this equals the
        current state; None means "decide properly". Rules fed by high-volume signals
        (offsets, commits) implement it; results are always recomputed in full.
        """
        return None

    def on_close(self, q: Query, pending: Outcome) -> Outcome:
        """What a still-pending criterion becomes when its time box closes."""
        close = q.close_ms
        return Outcome(
            "expired",
            f"The time box closed at {clock(close)} before this was met: {lower_first(pending.reason)}",
            pending.evidence,
            close,
        )


class OverallRule(Rule[P]):
    """A verdict over other criteria and the total score; it has no facts or time box."""

    overall = True
    blind_sensitive = False

    def decide(self, q: Query) -> Outcome:  # pragma: no cover - never called for overall rules
        raise NotImplementedError("overall rules decide with decide_overall")

    @abstractmethod
    def decide_overall(
        self,
        rubric: Rubric,
        results: Mapping[str, CriterionResult],
        total_pct: float,
        ctx: ExamContext,
        now: int,
    ) -> Outcome: ...


def lower_first(s: str) -> str:
    return s[:1].lower() + s[1:] if s and not s[:2].isupper() else s


def evaluate(rule: Rule[Any], q: Query, rubric: Rubric, coverage: Blindness | None) -> Outcome:
    """The state of one (non-overall) criterion at ``q.now``, time box, blindness and a
    proctor's override included."""
    graded = _graded(rule, q, rubric, coverage)
    return apply_override(graded, q.ctx.overrides.get(rule.spec.criterion_id))


def _graded(rule: Rule[Any], q: Query, rubric: Rubric, coverage: Blindness | None) -> Outcome:
    spec = rule.spec
    ctx = q.ctx
    if q.window is None:
        part = rubric.part(spec.part)
        opens = part.opens_on.describe() if part is not None else "its anchor"
        if ctx.end_ms is not None and q.now >= ctx.end_ms:
            return Outcome(
                "expired",
                f"Part {spec.part} never opened (no {opens}) before the exam ended at {clock(ctx.end_ms)}.",
                (ctx.end_event,),
                ctx.end_ms,
            )
        return Outcome("pending", f"Part {spec.part} has not opened yet (waiting for {opens}).")
    out = rule.decide(q)
    if out.state != "pending" or q.now < q.window.close_ms:
        return out
    closed = rule.on_close(q, out)
    if rule.blind_sensitive and closed.state in ("expired", "met") and coverage is not None:
        close = q.window.close_ms
        for name in spec.collectors:
            why = coverage.blind_at(name, close)
            when = f"when the time box closed at {clock(close)}"
            if why is None and closed.state == "met":
                # met by absence: a stretch of proctor-side blindness anywhere in the box
                # may hide the very event whose absence would be rewarded
                why = coverage.blind_during(name, q.window.anchor_ms, close)
                when = f"during the time box (which closed at {clock(close)})"
            if why is not None:
                return Outcome(
                    "unknown",
                    f"Cannot judge: {why} {when}.",
                    closed.evidence,
                    close,
                )
    return closed


def earliest_for(
    best: Mapping[str, Point], declared: str | None, close_ms: int
) -> tuple[Point, str] | None:
    """The earliest point, up to the close, among keys naming ``declared`` (all keys if None)."""
    keys = list(best) if declared is None else matching_keys(best, declared)
    hits = [(best[k], k) for k in keys if best[k][0] <= close_ms]
    return min(hits) if hits else None


def met(reason: str, evidence: tuple[str, ...], at: int | None) -> Outcome:
    return Outcome("met", reason, evidence, at)


def pending(reason: str, evidence: tuple[str, ...] = ()) -> Outcome:
    return Outcome("pending", reason, evidence, None)
