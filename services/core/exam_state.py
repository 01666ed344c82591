"""The grading state of one exam: its control ledger, its facts, and its criterion results.

Control events are kept whole (a few dozen; artifacts without their text, which is
judged once on arrival) and the context is derived from their set. Signals are folded
into facts; a signal that a gated fact needs before the fact's anchor is known waits
in a small per-gate buffer and is folded when the anchor arrives, so the result does
not depend on whether the part start or the signal came first.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import orjson

from services.core.context import Answers, ExamContext, Window, derive_context, diagnosis
from services.core.contract_fields import HEARTBEAT
from services.core.events import Event
from services.core.facts.base import Fact, FactSpec
from services.core.heartbeats import Coverage
from services.core.matching import clock as clock_text
from services.core.model import (
    NO_FACTS,
    CriterionResult,
    ExamFacts,
    ExamResult,
    Outcome,
    QueueEntry,
    State,
    TextReview,
    Transition,
)
from services.core.review import CLOSED_STATE, JUDGE_PREFIX, OPEN_STATE, REVIEW_PART, review_notes
from services.core.rubric import Rubric
from services.core.rules.base import NEVER, Query, evaluate
from services.core.scoring import exam_result, score, unusable_result, with_overall
from services.core.textjudge import Finding, TextJudge, TextVerdict
from services.errors import RubricError

RubricResolver = Callable[[str, str], Rubric]

#: keep judged sentences short in state: reasons quote at most 100 characters
_SENTENCE_CHARS = 160


@dataclass(frozen=True, slots=True)
class Limits:
    """Bounds on what the engine holds back; exceeding one drops the oldest and flags review.

    The byte bounds keep one platform's state record (what the worker writes to its
    changelog, base64 in JSON, plus its outbox) under the broker's message limit (1 MB
    by default) whatever the platform sends: held signals are bounded in bytes, not only
    in count, since one signal may be 100 KB. Sizes are those of the events' JSON.
    """

    #: signals of a platform waiting for an exam.started that covers them
    unbound_per_platform: int = 20_000
    #: signals of an exam waiting for a gate's anchor (part start, fault, row.broken)
    pending_per_gate: int = 20_000
    #: bytes of the signals a platform holds while no exam covers them
    held_bytes: int = 128 * 1024
    #: bytes of the signals an exam holds for its gates' anchors (all gates)
    pending_bytes: int = 128 * 1024
    #: bytes of the candidate's submissions an exam keeps (diagnoses, artifacts without
    #: their text, self grades, pipeline declarations); beyond it they are refused
    submission_bytes: int = 128 * 1024
    #: event ids (with a digest of their body) of recent signals kept per platform, to
    #: tell a conflicting duplicate (same id, another body) from a redelivery
    recent_ids: int = 128

    @classmethod
    def within(cls, state_bytes: int) -> Limits:
        """Limits whose held state fits one platform record of ``state_bytes`` (the
        changelog's message limit, well under it): a quarter each for held signals,
        gate buffers and submissions, the rest for facts, results and the outbox; the
        record carries the state in base64 (4/3 larger)."""
        share = max(4096, (state_bytes * 3 // 4) // 4)
        return cls(held_bytes=share, pending_bytes=share, submission_bytes=share)


#: control events a candidate sends (through the submission endpoint): bounded in bytes
SUBMISSION_TYPES = frozenset(
    {"pipeline.declared", "diagnosis.submitted", "artifact.submitted", "self_grade.submitted"}
)


def event_bytes(ev: Event) -> int:
    """The size of an event as state keeps it (its JSON, roughly)."""
    return len(ev.event_id) + len(ev.type) + 24 + len(orjson.dumps(dict(ev.data)))


def same_body(a: Event, b: Event) -> bool:
    """Two deliveries of one event id carry the same event (type, time and data)."""
    return a.type == b.type and a.ts_ms == b.ts_ms and dict(a.data) == dict(b.data)


def compact_verdict(v: TextVerdict) -> TextVerdict:
    """The verdict as state keeps it: every point, its first two sentences, trimmed."""
    return TextVerdict(
        kind=v.kind,
        judge=v.judge,
        findings=tuple(
            Finding(
                f.point,
                tuple(s[:_SENTENCE_CHARS] for s in f.sentences[:2]),
                f.why[:_SENTENCE_CHARS],
            )
            for f in v.findings
        ),
        confidence=v.confidence,
        review_below=v.review_below,
        text_digest=v.text_digest,
    )


def judge_artifact(judge: TextJudge, ev: Event) -> TextVerdict | None:
    """Ask the judge about an artifact; None for kinds no criterion judges or a failing judge.

    The judge is pluggable code (later possibly a remote model); whatever it raises must
    not stop grading, so any exception becomes "no verdict" and the criterion stays
    pending with that reason.
    """
    kind = ev.get("kind")
    content = ev.get("content")
    if kind not in ("postmortem", "design_review") or not isinstance(content, str):
        return None
    try:
        verdict = compact_verdict(judge.judge(kind, content))
    except Exception:
        return None
    digest = hashlib.sha256(content.encode()).hexdigest()
    return dataclasses.replace(verdict, text_digest=digest)


def _entry(cid: str, review: TextReview, status: str, by: str = "", why: str = "") -> QueueEntry:
    return QueueEntry(
        cid,
        review.verdict,
        review.confidence,
        review.threshold,
        review.judge,
        review.text_digest,
        status,
        by,
        why,
    )


def strip_content(ev: Event) -> Event:
    """A submission as the ledger keeps it: an artifact without its text (judged once on
    arrival), a diagnosis with its summary cut short (no rule reads it)."""
    if ev.type == "artifact.submitted" and ev.get("content"):
        data = dict(ev.data)
        data["content"] = ""
        return Event(ev.type, ev.platform_id, ev.event_id, ev.ts_ms, data, ev.source)
    summary = ev.get("summary")
    if (
        ev.type == "diagnosis.submitted"
        and isinstance(summary, str)
        and len(summary) > _SENTENCE_CHARS
    ):
        data = dict(ev.data)
        data["summary"] = summary[:_SENTENCE_CHARS]
        return Event(ev.type, ev.platform_id, ev.event_id, ev.ts_ms, data, ev.source)
    return ev


class ExamState:
    """Everything the engine knows about one exam (one exam_id on one platform)."""

    def __init__(self, platform_id: str, exam_id: str, *, clocked: bool = False) -> None:
        self.platform_id = platform_id
        self.exam_id = exam_id
        #: see :attr:`Engine.clocked`
        self.clocked = clocked
        self.ledger: dict[str, Event] = {}
        #: the ledger grouped by type, and its diagnoses indexed (kept as events arrive)
        self.by_type: dict[str, list[Event]] = {}
        self.answers = Answers()
        self.verdicts: dict[str, TextVerdict] = {}
        self.ctx = ExamContext(exam_id=exam_id, platform_id=platform_id)
        self.rubric: Rubric | None = None
        self.error: str | None = None
        self.specs: list[FactSpec] = []
        self.facts: dict[FactSpec, Fact] = {}
        #: event type -> (fact, gate, indices of criteria that read it)
        self.routes: dict[str, list[tuple[Fact, str | None, tuple[int, ...]]]] = {}
        self.by_collector: dict[str, tuple[int, ...]] = {}
        self.coverage: Coverage | None = None
        self.pending: dict[str, dict[str, Event]] = {}
        #: gate -> anchor ts at which its held-back signals were folded
        self.opened: dict[str, int] = {}
        self.results: list[CriterionResult] = []
        self.flags: list[str] = []
        #: the open review notes last reported (note id -> reason)
        self.notes: dict[str, str] = {}
        #: criterion id -> the text review its open ``review:judge:`` note reported
        self.queued: dict[str, TextReview] = {}
        self.query: Query | None = None
        #: bytes of the gate buffers and of the kept submissions (see :class:`Limits`)
        self.pending_size = 0
        self.submission_size = 0
        #: the latest event time of a signal folded into this exam: an extension that
        #: moves a box's end past signals already graded is flagged (see refresh_context)
        self.signal_hi = NEVER

    # ------------------------------------------------------------------ building
    def _build(self, rubric: Rubric) -> None:
        self.rubric = rubric
        self.coverage = Coverage(rubric.heartbeat_grace_ms)
        index: dict[FactSpec, list[int]] = {}
        for i, rule in enumerate(rubric.rules):
            for spec in rule.facts():
                if spec not in index:
                    index[spec] = []
                    self.specs.append(spec)
                index[spec].append(i)
        self.facts = {spec: spec.make() for spec in self.specs}
        for spec in self.specs:
            entry = (self.facts[spec], spec.gate, tuple(index[spec]))
            for t in spec.event_types:
                self.routes.setdefault(t, []).append(entry)
        cols: dict[str, list[int]] = {}
        for i, c in enumerate(rubric.criteria):
            for name in c.collectors:
                cols.setdefault(name, []).append(i)
        self.by_collector = {k: tuple(v) for k, v in cols.items()}
        self.query = Query(self.facts, self.ctx, None, NEVER, rubric.rules)
        self.results = [score(c, Outcome("pending", "Not evaluated yet.")) for c in rubric.criteria]

    def ensure_rubric(
        self, resolve: RubricResolver, override: str | None, ref: tuple[str, str] | None = None
    ) -> None:
        """Pick the exam's rubric once, from the first exam.started (or ``ref`` on restore).

        A second exam.started naming another version does not switch rubrics mid-exam:
        the context lists it as a conflict and the exam is flagged for review.
        """
        if self.rubric is not None or self.error is not None:
            return
        if ref is None:
            started = self.by_type.get("exam.started", [])
            if not started:
                return
            first = min(started, key=lambda e: (e.ts_ms, e.event_id))
            rid = str(first.get("rubric_id") or "")
            version = override if override is not None else str(first.get("rubric_version") or "")
        else:
            rid, version = ref
        try:
            self._build(resolve(rid, version))
        except RubricError as exc:
            self.error = f"cannot grade: {exc}"

    # ------------------------------------------------------------------ time
    def now(self, clock: int) -> int:
        """The time the exam is decided at: the clock, or (unclocked) its end once it
        ended, so a replay without a clock closes every box at exam.ended."""
        if self.clocked:
            return clock
        end = self.ctx.end_ms
        return clock if end is None or clock >= end else end

    def time_marks(self) -> list[int]:
        """When something depends on the passing of time: each box's close, the exam's end."""
        marks = [w.close_ms for w in self.ctx.windows.values()]
        if self.ctx.end_ms is not None:
            marks.append(self.ctx.end_ms)
        return marks

    def closes_between(self, old: int, new: int) -> bool:
        """Whether a time box closes, or the exam ends, in (old, new]."""
        return any(old < m <= new for m in self.time_marks())

    # ------------------------------------------------------------------ control
    def add_control(
        self, ev: Event, judge: TextJudge, limits: Limits | None = None
    ) -> Literal["added", "known", "conflict", "refused"]:
        """Add a control event to the ledger.

        "known": the same event was there (a redelivery); "conflict": its id was there
        with another body (the first is kept); "refused": a submission past the exam's
        submission bytes (the exam is flagged).
        """
        known = self.ledger.get(ev.event_id)
        if known is not None:
            return "known" if same_body(known, strip_content(ev)) else "conflict"
        kept = strip_content(ev)
        if ev.type in SUBMISSION_TYPES:
            size = event_bytes(kept)
            cap = (limits or Limits()).submission_bytes
            if self.submission_size + size > cap:
                self._flag(f"submissions past {cap} bytes were refused")
                return "refused"
            self.submission_size += size
        if ev.type == "artifact.submitted":
            verdict = judge_artifact(judge, ev)
            if verdict is not None:
                self.verdicts[ev.event_id] = verdict
        self._index(kept)
        return "added"

    def _index(self, ev: Event) -> None:
        self.ledger[ev.event_id] = ev
        self.by_type.setdefault(ev.type, []).append(ev)
        if ev.type == "diagnosis.submitted":
            self.answers.add(diagnosis(ev))

    def set_ledger(self, events: Iterable[Event]) -> None:
        """Replace the ledger (a restore)."""
        self.ledger, self.by_type, self.answers = {}, {}, Answers()
        for ev in events:
            self._index(ev)

    def _flag(self, flag: str) -> None:
        if flag not in self.flags:
            self.flags.append(flag)

    def refresh_context(self) -> None:
        before = self.ctx.windows
        self.ctx = derive_context(
            self.exam_id,
            self.platform_id,
            self.by_type,
            self.rubric,
            self.verdicts,
            self.answers,
            clocked=self.clocked,
        )
        if self.query is not None:
            self.query.ctx = self.ctx
        self._check_extensions(before)
        for gate, at in self.opened.items():
            now_at = self.ctx.anchors.get(gate)
            if now_at is not None and now_at != at:
                flag = f"the anchor of {gate} moved after grading started"
                if flag not in self.flags:
                    self.flags.append(flag)
        for gate, at in self.ctx.anchors.items():
            if gate not in self.opened:
                self.opened[gate] = at
                held = self.pending.pop(gate, {})
                for ev in held.values():
                    self.pending_size -= event_bytes(ev)
                for ev in sorted(held.values(), key=lambda e: (e.ts_ms, e.event_id)):
                    for fact, g, _ in self.routes.get(ev.type, ()):
                        if g == gate:
                            fact.fold(ev, self.ctx)

    def _check_extensions(self, before: Mapping[str, Window]) -> None:
        """Flag a box whose end moved past signals already folded.

        Facts that keep a value up to a box's end (the offsets' peak, the sink's running
        total, the latest dbt build) dropped signals past the old end when they arrived;
        a ``part.extended`` read after them cannot bring them back. The replay (control
        events first) is exact, so the flag says to regrade.
        """
        for part, w in self.ctx.windows.items():
            old = before.get(part)
            if old is not None and old.box_end_ms < min(w.box_end_ms, self.signal_hi):
                self._flag(
                    f"part {part}'s time box was extended after signals past its old end "
                    f"({clock_text(old.box_end_ms)}) were graded: regrade with proctor replay"
                )

    # ------------------------------------------------------------------ signals
    def fold_signal(self, ev: Event, dirty: set[int], limits: Limits, clock: int) -> None:
        """Fold a bound signal; adds the indices of criteria that may have changed to ``dirty``."""
        if ev.ts_ms > self.signal_hi:
            self.signal_hi = ev.ts_ms
        route = self.routes.get(ev.type)
        if route is None:
            if ev.type == HEARTBEAT and self.coverage is not None:
                name = self.coverage.fold(ev)
                if name is not None:
                    now = self.now(clock)
                    for i in self.by_collector.get(name, ()):
                        w = self.ctx.windows.get(self.results[i].part)
                        if w is not None and now >= w.close_ms:
                            dirty.add(i)
            return
        opened = self.opened
        for fact, gate, deps in route:
            if gate is not None and gate not in opened:
                if fact.accepts(ev):
                    self._hold(gate, ev, limits)
                continue
            if fact.fold(ev, self.ctx):
                dirty.update(deps)

    def _hold(self, gate: str, ev: Event, limits: Limits) -> None:
        held = self.pending.setdefault(gate, {})
        if ev.event_id in held:
            return  # the first delivery is kept
        held[ev.event_id] = ev
        self.pending_size += event_bytes(ev)
        if len(held) > limits.pending_per_gate:
            drop = sorted(held.values(), key=lambda e: (e.ts_ms, e.event_id))
            for old in drop[: max(1, len(drop) // 10)]:
                del held[old.event_id]
                self.pending_size -= event_bytes(old)
            self._flag(
                f"signals held for {gate} exceeded {limits.pending_per_gate}; the oldest were dropped"
            )
        if self.pending_size > limits.pending_bytes:
            self._trim_pending(limits.pending_bytes)

    def _trim_pending(self, cap: int) -> None:
        """Drop the oldest held signals (of any gate) until a tenth under ``cap``."""
        everything = sorted(
            ((e.ts_ms, e.event_id, g) for g, held in self.pending.items() for e in held.values()),
        )
        goal = cap - cap // 10
        for _, eid, gate in everything:
            if self.pending_size <= goal:
                break
            old = self.pending[gate].pop(eid)
            self.pending_size -= event_bytes(old)
            self._flag(f"signals held for {gate} exceeded {cap} bytes; the oldest were dropped")

    def recount(self) -> None:
        """Sizes after a restore (they are not stored)."""
        self.pending_size = sum(
            event_bytes(e) for held in self.pending.values() for e in held.values()
        )
        self.submission_size = sum(
            event_bytes(e) for e in self.ledger.values() if e.type in SUBMISSION_TYPES
        )

    # ------------------------------------------------------------------ deciding
    def decide(self, i: int, now: int) -> CriterionResult:
        assert self.rubric is not None and self.query is not None
        spec = self.rubric.criteria[i]
        q = self.query
        q.window = self.ctx.windows.get(spec.part)
        q.now = now
        return score(spec, evaluate(self.rubric.rules[i], q, self.rubric, self.coverage))

    def redecide(
        self, indices: Iterable[int], clock: int, trigger_ms: int, *, overall_too: bool = False
    ) -> list[Transition]:
        """Decide the given criteria again and report the state changes.

        The overall verdicts are decided again when a criterion changed state or when
        ``overall_too`` (time passed, or the context changed: self grade, exam end).
        """
        rubric = self.rubric
        if rubric is None:
            return []
        now = self.now(clock)
        out: list[Transition] = []
        changed = stale_notes = False
        results = self.results
        overall = rubric.rules
        q = self.query
        assert q is not None
        windows = self.ctx.windows
        for i in sorted(indices):
            rule = overall[i]
            if rule.overall:
                continue
            window = windows.get(results[i].part)
            if window is not None and not self.ctx.overrides:
                q.window = window
                q.now = now
                hint = rule.quick(q)
                if hint is not None and hint == results[i].state:
                    continue
            new = self.decide(i, now)
            old = results[i]
            results[i] = new
            if new.state != old.state:
                changed = True
                out.append(self._transition(new, old.state, trigger_ms))
            elif new.state == "unknown" and new.reason != old.reason:
                stale_notes = True  # still blind, for another reason: the note says why
            elif new.review != old.review or new.confidence != old.confidence:
                stale_notes = True  # a proctor decided, or a new text was judged
        if changed or overall_too:
            base: list[CriterionResult | None] = [
                None if rule.overall else r for rule, r in zip(overall, results, strict=True)
            ]
            full, _, _ = with_overall(rubric, self.ctx, base, now)
            for i, rule in enumerate(overall):
                if rule.overall:
                    old_state: State = results[i].state
                    results[i] = full[i]
                    if full[i].state != old_state:
                        out.append(self._transition(full[i], old_state, trigger_ms))
            out += self._review_changes(trigger_ms)
        elif stale_notes or len(self.flags) != self._flags_seen:
            out += self._review_changes(trigger_ms)
        return out

    @property
    def _flags_seen(self) -> int:
        return sum(1 for k in self.notes if k.startswith("review:flag:"))

    def _review_changes(self, trigger_ms: int) -> list[Transition]:
        """The review notes that opened, changed or closed since they were last reported."""
        rubric = self.rubric
        assert rubric is not None
        now = {
            n.note_id: n.reason for n in review_notes(self.ctx.conflicts, self.results, self.flags)
        }
        if now == self.notes:
            return []
        out: list[Transition] = []
        for note_id in sorted(set(now) | set(self.notes)):
            old, new = self.notes.get(note_id), now.get(note_id)
            if old == new:
                continue
            state: State = OPEN_STATE if new is not None else CLOSED_STATE
            entry = self._queue_entry(note_id, new is not None)
            out.append(
                Transition(
                    exam_id=self.exam_id,
                    candidate_id=self.ctx.candidate_id,
                    platform_id=self.platform_id,
                    rubric_id=rubric.rubric_id,
                    rubric_version=rubric.version,
                    part=REVIEW_PART,
                    criterion_id=note_id,
                    state=state,
                    previous_state=OPEN_STATE if old is not None else None,
                    score=0.0,
                    max_score=0.0,
                    reason=new if new is not None else f"No longer applies: {old}",
                    evidence=(),
                    event_ts_ms=trigger_ms,
                    confidence=entry.confidence if entry is not None else None,
                    queue=entry,
                    facts=self.exam_facts(REVIEW_PART),
                )
            )
        self.notes = now
        return out

    def _queue_entry(self, note_id: str, is_open: bool) -> QueueEntry | None:
        """The review queue's columns of a ``review:judge:`` note's change: what waits, or
        who decided it (an override or a confirmation), or that a later text replaced it."""
        if not note_id.startswith(JUDGE_PREFIX) or self.rubric is None:
            return None
        cid = note_id[len(JUDGE_PREFIX) :]
        i = next((k for k, c in enumerate(self.rubric.criteria) if c.criterion_id == cid), None)
        if i is None:
            return None
        r = self.results[i]
        review = r.review if is_open else self.queued.get(cid)
        if is_open and review is not None:
            self.queued[cid] = review
            return _entry(cid, review, "pending")
        if review is None:
            return None
        self.queued.pop(cid, None)
        override = self.ctx.overrides.get(cid)
        if override is not None:
            return _entry(cid, review, "overridden", override.by, override.reason)
        confirmed = self.ctx.confirmations.get(cid)
        if confirmed is not None:
            return _entry(cid, review, "confirmed", confirmed.by, confirmed.reason)
        return _entry(cid, review, "superseded")

    def redecide_all(self, clock: int, trigger_ms: int) -> list[Transition]:
        if self.rubric is None:
            return []
        return self.redecide(range(len(self.rubric.criteria)), clock, trigger_ms, overall_too=True)

    def _transition(self, r: CriterionResult, previous: State, trigger_ms: int) -> Transition:
        rubric = self.rubric
        assert rubric is not None
        return Transition(
            exam_id=self.exam_id,
            candidate_id=self.ctx.candidate_id,
            platform_id=self.platform_id,
            rubric_id=rubric.rubric_id,
            rubric_version=rubric.version,
            part=r.part,
            criterion_id=r.criterion_id,
            state=r.state,
            previous_state=previous,
            score=r.score,
            max_score=r.max_score,
            reason=r.reason,
            evidence=r.evidence,
            event_ts_ms=r.decided_ms if r.decided_ms is not None else trigger_ms,
            confidence=r.confidence,
            facts=self.exam_facts(r.part),
        )

    def exam_facts(self, part: str) -> ExamFacts:
        """The part's window and the exam's fault as the context says now."""
        window = self.ctx.windows.get(part)
        fault = self.ctx.fault
        if window is None and fault is None:
            return NO_FACTS
        return ExamFacts(
            part_opened_ms=None if window is None else window.anchor_ms,
            part_closes_ms=None if window is None else window.close_ms,
            part_extended_minutes=0 if window is None else window.extended_minutes,
            fault_layer="" if fault is None else fault.layer,
            fault_kind="" if fault is None else fault.kind,
            fault_ms=None if fault is None else fault.ts_ms,
        )

    def result(self, clock: int, extra_review: Iterable[str] = ()) -> ExamResult:
        """A fresh, complete evaluation of every criterion at ``clock`` (no transitions)."""
        if self.rubric is None:
            return unusable_result(self.ctx, self.error or "exam.started has not arrived")
        now = self.now(clock)
        base: list[CriterionResult | None] = [
            None if rule.overall else self.decide(i, now)
            for i, rule in enumerate(self.rubric.rules)
        ]
        full, parts, pct = with_overall(self.rubric, self.ctx, base, now)
        return exam_result(self.rubric, self.ctx, full, parts, pct, [*self.flags, *extra_review])

    # ------------------------------------------------------------------ state codec
    def dump_facts(self) -> list[Any]:
        return [self.facts[s].dump() for s in self.specs]

    def load_facts(self, dumps: list[Any]) -> None:
        for spec, obj in zip(self.specs, dumps, strict=True):
            self.facts[spec].load(obj)
