"""Replay: grade recorded exams offline with the same engine the live service runs.

Control events are fed first (they are few), then the signals in file order; the
engine gives the same result for any order, and feeding the anchors first means no
signal ever waits in a buffer, so replay is exact for any shuffle of a recording.
A file is streamed in two passes (control lines, then the rest, in batches), so a
recording of millions of events is never held in memory.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from services.core.contract_fields import CONTROL_TYPES
from services.core.engine import Audit, Engine, RubricResolver
from services.core.events import Event
from services.core.model import ExamResult
from services.core.textjudge import TextJudge
from services.offline.reader import BadLine, Recording, Verifier, paused_gc

BATCH = 4096


@dataclass(frozen=True)
class Replay:
    results: list[ExamResult]
    audit: Audit
    at_ms: int | None
    events: int
    #: lines refused as the live worker would have refused them (file order)
    refused: tuple[BadLine, ...] = ()
    #: exact repeats of an event, delivered once
    repeats: int = 0


def replay_events(
    events: Iterable[Event],
    rubrics: RubricResolver,
    judge: TextJudge,
    *,
    at_ms: int | None = None,
    rubric_version: str | None = None,
) -> Replay:
    """Grade the events as of event time ``at_ms`` (default: the latest event time).

    Events after ``at_ms`` are left out: the grade is what the service showed at that time.
    """
    control: list[Event] = []
    signals: list[Event] = []
    latest: int | None = None
    n = 0
    for ev in events:
        if at_ms is not None and ev.ts_ms > at_ms:
            continue
        n += 1
        if latest is None or ev.ts_ms > latest:
            latest = ev.ts_ms
        (control if ev.type in CONTROL_TYPES else signals).append(ev)
    engine = Engine(rubrics, judge, rubric_version=rubric_version)
    control.sort(key=lambda e: (e.ts_ms, e.event_id))
    with paused_gc():
        engine.apply_many(control)
        for i in range(0, len(signals), BATCH):
            engine.apply_many(signals[i : i + BATCH])
    at = at_ms if at_ms is not None else latest
    if at is not None:
        engine.evaluate(at)
    return Replay(engine.results(), engine.audit, at, n)


def replay_file(
    path: Path,
    rubrics: RubricResolver,
    judge: TextJudge,
    *,
    at_ms: int | None = None,
    rubric_version: str | None = None,
    bad: list[BadLine] | None = None,
    verify: Verifier | None = None,
) -> Replay:
    """:func:`replay_events` for a recording on disk, streamed (see the module docstring).

    Every line is checked as the live worker checks a record (:mod:`services.offline.reader`);
    refused lines grade nothing and are listed in :attr:`Replay.refused` (and appended to
    ``bad`` when given). ``verify`` checks the signatures a recording carries.
    """
    refuse: dict[int, BadLine] = {}
    while True:
        rec = Recording(path, verify=verify, refuse=dict(refuse))
        try:
            result = _replay_recording(rec, rubrics, judge, at_ms, rubric_version)
        finally:
            rec.close()
        if not rec.late:
            break
        # a line delivered in the control pass turned out to repeat, with another body,
        # an event id first seen on a later-read line: grade again without it
        refuse.update(rec.late)
    refused = tuple(sorted(rec.refused, key=lambda b: b.line))
    if bad is not None:
        bad += refused
    return Replay(result.results, result.audit, result.at_ms, result.events, refused, rec.repeats)


def _replay_recording(
    rec: Recording,
    rubrics: RubricResolver,
    judge: TextJudge,
    at_ms: int | None,
    rubric_version: str | None,
) -> Replay:
    engine = Engine(rubrics, judge, rubric_version=rubric_version)
    cutoff = at_ms if at_ms is not None else 2**62
    n = 0
    latest: int | None = None
    with paused_gc():
        control: list[Event] = []
        # a line with "exam_id" that is not a control event is a (rare) signal
        marked: list[Event] = []
        for ev in rec.events("control"):
            if ev.ts_ms <= cutoff:
                (control if ev.type in CONTROL_TYPES else marked).append(ev)
        control.sort(key=lambda e: (e.ts_ms, e.event_id))
        engine.apply_many(control)
        if control:
            n, latest = len(control), control[-1].ts_ms
        for ev in marked:
            if latest is None or ev.ts_ms > latest:
                latest = ev.ts_ms
        batch: list[Event] = marked
        for ev in rec.events("rest"):
            ts = ev.ts_ms
            if ts > cutoff:
                continue
            if latest is None or ts > latest:
                latest = ts
            if ev.type in CONTROL_TYPES:
                # a control event whose "exam_id" key is escaped: graded as live grades it
                n += 1
                engine.apply(ev)
                continue
            batch.append(ev)
            if len(batch) >= BATCH:
                n += len(batch)
                engine.apply_many(batch)
                batch = []
        n += len(batch)
        engine.apply_many(batch)
    at = at_ms if at_ms is not None else latest
    if at is not None:
        engine.evaluate(at)
    return Replay(engine.results(), engine.audit, at, n)


def result_json(r: ExamResult) -> dict[str, Any]:
    """One exam in exactly the shape ``proctor replay --json`` promises."""
    return {
        "exam_id": r.exam_id,
        "candidate_id": r.candidate_id,
        "platform_id": r.platform_id,
        "rubric_id": r.rubric_id,
        "rubric_version": r.rubric_version,
        "criteria": {
            c.criterion_id: {
                "state": c.state,
                "score": float(c.score),
                "max_score": float(c.max_score),
                "reason": c.reason,
                "evidence": list(c.evidence),
            }
            for c in r.criteria
        },
        "parts": {
            k: {"score": float(v.score), "max_score": float(v.max_score)}
            for k, v in r.parts.items()
        },
        "total_pct": float(r.total_pct),
        "passed": r.passed,
        "review": [{"kind": n.kind, "subject": n.subject, "reason": n.reason} for n in r.notes],
    }


def results_json(results: Iterable[ExamResult]) -> dict[str, Any]:
    return {"exams": [result_json(r) for r in results]}
