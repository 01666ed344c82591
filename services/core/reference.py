"""The reference grader: the rubric read literally over the full history, no increments.

It binds every signal from scratch, builds every fact with :meth:`FactSpec.scan` (a
direct definition over all events) and decides every criterion. It is slow on purpose
-- O(history) per evaluation -- and serves two ends:

* the oracle of the property tests: the incremental :class:`~services.core.engine.Engine`
  must give the same results for any delivery order, with duplicates;
* the baseline of ``bench/engine.py``: :class:`NaiveGrader` re-grades the whole history
  on every event, the way a check script would.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Sequence

from services.core.context import derive_context
from services.core.contract_fields import CONTROL_TYPES, HEARTBEAT
from services.core.events import Event
from services.core.exam_state import RubricResolver, judge_artifact
from services.core.facts.base import Fact, FactSpec
from services.core.heartbeats import error_clause, heartbeat_status
from services.core.matching import clock
from services.core.model import CriterionResult, ExamResult
from services.core.rubric import Rubric
from services.core.rules.base import NEVER, Query, evaluate
from services.core.scoring import exam_result, score, unusable_result, with_overall
from services.core.textjudge import TextJudge, TextVerdict
from services.errors import RubricError


class LiteralCoverage:
    """Blindness by definition: no seeing heartbeat in [C - grace, C], or a proctor-side
    error in it (an error the candidate's platform caused is evidence, not blindness)."""

    def __init__(self, heartbeats: Sequence[Event], grace_ms: int) -> None:
        self.grace_ms = grace_ms
        self.healthy: dict[str, list[int]] = {}
        self.errors: dict[str, list[tuple[int, str]]] = {}
        for ev in heartbeats:
            status = heartbeat_status(ev)
            if status is None:
                continue
            if status.blind is None:
                self.healthy.setdefault(status.collector, []).append(ev.ts_ms)
            else:
                self.errors.setdefault(status.collector, []).append((ev.ts_ms, status.blind))
        for v in self.healthy.values():
            v.sort()

    def _error_in(self, name: str, lo: int, hi: int) -> str | None:
        errs = [(t, s) for t, s in self.errors.get(name, []) if lo <= t <= hi]
        if not errs:
            return None
        latest = max(t for t, _ in errs)
        said = [s for t, s in errs if t == latest and s]
        return error_clause(name, latest, min(said) if said else "")

    def blind_at(self, name: str, at_ms: int) -> str | None:
        why = self._error_in(name, at_ms - self.grace_ms, at_ms)
        if why is not None:
            return why
        lo = at_ms - self.grace_ms
        ok = self.healthy.get(name, [])
        i = bisect.bisect_right(ok, at_ms)
        if i > 0 and ok[i - 1] >= lo:
            return None
        if i > 0:
            return f"the {name} collector was silent (last healthy heartbeat {clock(ok[i - 1])})"
        return f"the {name} collector sent no healthy heartbeat"

    def blind_during(self, name: str, lo_ms: int, hi_ms: int) -> str | None:
        return self._error_in(name, lo_ms - self.grace_ms, hi_ms)


def grade_history(
    events: Iterable[Event],
    rubrics: RubricResolver,
    judge: TextJudge,
    *,
    at_ms: int | None = None,
    rubric_version: str | None = None,
    verdict_cache: dict[str, TextVerdict | None] | None = None,
) -> list[ExamResult]:
    """Grade the whole history at once, at event time ``at_ms`` (None: no time has passed)."""
    uniq: dict[str, Event] = {}
    for ev in events:
        uniq.setdefault(ev.event_id, ev)
    control: dict[tuple[str, str], list[Event]] = {}
    signals: list[Event] = []
    for ev in uniq.values():
        if ev.type in CONTROL_TYPES:
            exam_id = ev.get("exam_id")
            if isinstance(exam_id, str) and exam_id:
                control.setdefault((ev.platform_id, exam_id), []).append(ev)
        else:
            signals.append(ev)
    cache = verdict_cache if verdict_cache is not None else {}
    exams = []
    for (pid, exam_id), evs in control.items():
        verdicts: dict[str, TextVerdict] = {}
        for ev in evs:
            if ev.type == "artifact.submitted":
                if ev.event_id not in cache:
                    cache[ev.event_id] = judge_artifact(judge, ev)
                v = cache[ev.event_id]
                if v is not None:
                    verdicts[ev.event_id] = v
        started = [e for e in evs if e.type == "exam.started"]
        rubric: Rubric | None = None
        error = None
        if started:
            first = min(started, key=lambda e: (e.ts_ms, e.event_id))
            version = (
                rubric_version
                if rubric_version is not None
                else str(first.get("rubric_version") or "")
            )
            try:
                rubric = rubrics(str(first.get("rubric_id") or ""), version)
            except RubricError as exc:
                error = f"cannot grade: {exc}"
        ctx = derive_context(exam_id, pid, evs, rubric, verdicts)
        if ctx.start_ms is not None:
            exams.append((ctx, rubric, error))
    by_platform: dict[str, list[int]] = {}
    exams.sort(key=lambda x: (x[0].platform_id, x[0].start_ms or 0, x[0].exam_id))
    for i, (ctx, _, _) in enumerate(exams):
        by_platform.setdefault(ctx.platform_id, []).append(i)
    bound: dict[int, list[Event]] = {i: [] for i in range(len(exams))}
    for ev in signals:
        candidates = [
            i
            for i in by_platform.get(ev.platform_id, [])
            if (exams[i][0].start_ms or 0) <= ev.ts_ms
        ]
        if candidates:
            i = candidates[-1]
            if exams[i][0].contains(ev.ts_ms):
                bound[i].append(ev)
    now_clock = at_ms if at_ms is not None else NEVER
    out = []
    for i, (ctx, rubric, error) in enumerate(exams):
        if rubric is None:
            out.append(unusable_result(ctx, error or "no rubric"))
            continue
        evs = bound[i]
        specs: dict[FactSpec, Fact] = {}
        for rule in rubric.rules:
            for spec in rule.facts():
                if spec not in specs:
                    gate = spec.gate
                    if gate is not None and gate not in ctx.anchors:
                        specs[spec] = spec.make()
                    else:
                        specs[spec] = spec.scan([e for e in evs if e.type in spec.event_types], ctx)
        coverage = LiteralCoverage(
            [e for e in evs if e.type == HEARTBEAT], rubric.heartbeat_grace_ms
        )
        now = now_clock if ctx.end_ms is None or now_clock >= ctx.end_ms else ctx.end_ms
        base: list[CriterionResult | None] = []
        for spec_c, rule in zip(rubric.criteria, rubric.rules, strict=True):
            if rule.overall:
                base.append(None)
                continue
            q = Query(specs, ctx, ctx.windows.get(spec_c.part), now, (rule,))
            base.append(score(spec_c, evaluate(rule, q, rubric, coverage)))
        full, parts, pct = with_overall(rubric, ctx, base, now)
        out.append(exam_result(rubric, ctx, full, parts, pct))
    return out


class NaiveGrader:
    """Re-grades the whole history after every event: the check-script approach."""

    def __init__(self, rubrics: RubricResolver, judge: TextJudge) -> None:
        self.rubrics = rubrics
        self.judge = judge
        self.history: list[Event] = []
        self._verdicts: dict[str, TextVerdict | None] = {}
        self.last: list[ExamResult] = []

    def apply(self, event: Event) -> list[ExamResult]:
        self.history.append(event)
        self.last = grade_history(
            self.history, self.rubrics, self.judge, at_ms=None, verdict_cache=self._verdicts
        )
        return self.last
