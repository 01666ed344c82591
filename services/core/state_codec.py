"""Compact bytes for engine state: one platform's exams, for a Faust table, or everything.

JSON (orjson) rather than a binary format: the state is small (see bench/engine.py for a
whole exam's size), readable when debugging, and portable. Facts are written in the
order the rubric declares them and restored into a runtime rebuilt from the same rubric,
so the rubric itself is never serialised. Of the criterion results only the last decided
state and score are stored: later decisions are compared with them (a transition is a
change from the last emitted state), and a result recomputed at restore time can differ
from the one last emitted (a criterion is decided again only when its inputs or time box
change), which would make a restarted worker grade differently from an uninterrupted one.
Reasons and evidence are recomputed.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import orjson

from services.core.engine import Engine, PlatformState
from services.core.events import Event
from services.core.exam_state import ExamState
from services.core.model import TextReview
from services.core.rules.base import NEVER
from services.core.textjudge import Finding, TextVerdict
from services.errors import GradingError

#: 2: the Flink checkpointing-mode fact, part windows (a part's highest signal time) and
#: overrides joined the state; a state of format 1 is refused with how to start afresh
FORMAT = 2


def _ev(ev: Event) -> list[Any]:
    return [ev.type, ev.event_id, ev.ts_ms, dict(ev.data)]


def _unev(pid: str, obj: list[Any]) -> Event:
    return Event(type=obj[0], platform_id=pid, event_id=obj[1], ts_ms=int(obj[2]), data=obj[3])


def _verdict(v: TextVerdict) -> list[Any]:
    return [
        v.kind,
        v.judge,
        [[f.point, list(f.sentences), f.why] for f in v.findings],
        {"c": [[p, c] for p, c in v.confidence], "t": v.review_below, "d": v.text_digest},
    ]


def _unverdict(obj: list[Any]) -> TextVerdict:
    # a verdict written before confidences existed has none: every call at full confidence
    extra: dict[str, Any] = obj[3] if len(obj) > 3 else {}
    return TextVerdict(
        kind=obj[0],
        judge=obj[1],
        findings=tuple(Finding(p, tuple(s), w) for p, s, w in obj[2]),
        confidence=tuple((str(p), float(c)) for p, c in extra.get("c", [])),
        review_below=float(extra.get("t", 0.0)),
        text_digest=str(extra.get("d", "")),
    )


def _queued(r: TextReview) -> list[Any]:
    return [r.verdict, r.confidence, r.threshold, r.judge, r.text_digest, r.artifact_event_id]


def _unqueued(obj: list[Any]) -> TextReview:
    return TextReview(obj[0], float(obj[1]), float(obj[2]), obj[3], obj[4], obj[5])


def _exam(ex: ExamState) -> dict[str, Any]:
    return {
        "id": ex.exam_id,
        "r": [ex.rubric.rubric_id, ex.rubric.version] if ex.rubric is not None else None,
        "e": ex.error,
        "l": [_ev(e) for e in ex.ledger.values()],
        "v": {k: _verdict(v) for k, v in ex.verdicts.items()},
        "f": ex.dump_facts() if ex.rubric is not None else [],
        "h": ex.coverage.dump() if ex.coverage is not None else None,
        "q": {g: [_ev(e) for e in held.values()] for g, held in ex.pending.items()},
        "o": ex.opened,
        "g": ex.flags,
        "s": [[r.state, r.score, r.max_score, r.decided_ms] for r in ex.results],
        "n": ex.notes,
        "hi": ex.signal_hi,
        "rq": {k: _queued(v) for k, v in ex.queued.items()},
    }


def _unexam(engine: Engine, pid: str, obj: dict[str, Any]) -> ExamState:
    ex = ExamState(pid, obj["id"], clocked=engine.clocked)
    ex.set_ledger(_unev(pid, e) for e in obj["l"])
    ex.verdicts = {k: _unverdict(v) for k, v in obj["v"].items()}
    ex.opened = {k: int(v) for k, v in obj["o"].items()}
    ex.flags = list(obj["g"])
    # state written before part extensions existed: no signal seen is the safe reading
    ex.signal_hi = int(obj.get("hi", NEVER))
    # state written before review notes existed has none: they are reported at the next change
    ex.notes = {str(k): str(v) for k, v in obj.get("n", {}).items()}
    # state written before the review queue existed has no queued text verdicts
    ex.queued = {str(k): _unqueued(v) for k, v in obj.get("rq", {}).items()}
    if obj["r"] is not None:
        ex.ensure_rubric(
            engine.rubrics, engine.rubric_version, (str(obj["r"][0]), str(obj["r"][1]))
        )
    elif obj["e"] is not None:
        ex.error = str(obj["e"])
    ex.refresh_context()
    if ex.rubric is not None:
        ex.load_facts(obj["f"])
        if obj["h"] is not None and ex.coverage is not None:
            ex.coverage.load(obj["h"])
    ex.pending = {g: {e[1]: _unev(pid, e) for e in held} for g, held in obj["q"].items()}
    ex.recount()
    return ex


def platform_state(engine: Engine, platform_id: str) -> dict[str, Any]:
    p = engine.platforms.get(platform_id)
    if p is None:
        return {"v": FORMAT, "p": platform_id, "c": engine.clock, "u": [], "d": None, "x": []}
    return {
        "v": FORMAT,
        "p": platform_id,
        "c": engine.clock,
        "u": [_ev(e) for e in p.unbound.values()],
        "d": p.dropped_max_ts,
        "r": p.recent_digests(),
        "x": [_exam(ex) for ex in p.exams.values()],
    }


def platform_to_bytes(engine: Engine, platform_id: str) -> bytes:
    """One platform's whole state (all its exams): the value of a Faust table keyed by platform."""
    return orjson.dumps(platform_state(engine, platform_id))


def restore_platform(engine: Engine, data: bytes | dict[str, Any]) -> None:
    """Put a platform's state (from :func:`platform_to_bytes`) into ``engine``, replacing it."""
    try:
        obj = orjson.loads(data) if isinstance(data, bytes | bytearray) else data
        if obj.get("v") != FORMAT:
            raise GradingError(
                f"state format {obj.get('v')!r} is not {FORMAT} (written by another version of "
                "proctor): start this worker under a new PROCTOR_APP_ID, which grades the "
                "topics from their start, or regrade from the recordings"
            )
        pid = obj["p"]
        p = PlatformState(pid)
        p.unbound = {e[1]: _unev(pid, e) for e in obj["u"]}
        p.dropped_max_ts = obj["d"]
        p.recent = {str(k): int(v) for k, v in obj.get("r", [])}
        p.recount()
        decided: list[list[Any] | None] = []
        for x in obj["x"]:
            ex = _unexam(engine, pid, x)
            p.exams[ex.exam_id] = ex
            decided.append(x.get("s"))
    except (KeyError, TypeError, ValueError, IndexError, orjson.JSONDecodeError) as exc:
        raise GradingError(f"corrupt engine state: {exc}") from exc
    engine.platforms[pid] = p
    engine.clock = max(engine.clock, int(obj.get("c", NEVER)))
    engine.invalidate_deadline()
    p.reindex()
    for ex, saved in zip(p.exams.values(), decided, strict=True):
        if ex.rubric is not None:
            fresh = list(ex.result(engine.clock).criteria)
            if saved is not None and len(saved) == len(fresh):
                fresh = [
                    replace(
                        r, state=d[0], score=float(d[1]), max_score=float(d[2]), decided_ms=d[3]
                    )
                    for r, d in zip(fresh, saved, strict=True)
                ]
            ex.results = fresh


def engine_to_bytes(engine: Engine) -> bytes:
    return orjson.dumps(
        {
            "v": FORMAT,
            "c": engine.clock,
            "p": [platform_state(engine, pid) for pid in sorted(engine.platforms)],
        }
    )


def engine_from_bytes(data: bytes, like: Engine) -> Engine:
    """A new engine with ``like``'s rubrics, judge and limits, holding the saved state."""
    try:
        obj = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise GradingError(f"corrupt engine state: {exc}") from exc
    engine = Engine(
        like.rubrics,
        like.judge,
        rubric_version=like.rubric_version,
        limits=like.limits,
        clocked=like.clocked,
    )
    engine.clock = int(obj.get("c", NEVER))
    for p in obj.get("p", []):
        restore_platform(engine, p)
    return engine
