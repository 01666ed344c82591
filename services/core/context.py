"""An exam's context, derived from its control events: window, parts, assets, fault, answers.

Control events are few (tens per exam), so the engine keeps all of them (keyed by
event id, so duplicates vanish) and derives the context from the whole set each time
one arrives. That makes the context a pure function of the *set* of control events:
the same under any delivery order. Where the contract allows only one of a thing
(one exam.started, one fault), the earliest by (ts, event id) wins and any disagreeing
extra is listed in ``conflicts`` so the exam is flagged for review.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from services.core.events import Event
from services.core.matching import clock, integer, mapping, norm, number, strings, text
from services.core.overrides import (
    OVERRIDDEN,
    Confirmation,
    Override,
    derive_confirmations,
    derive_overrides,
)
from services.core.textjudge import TextVerdict
from services.core.windows import Window, part_window, unknown_parts

if TYPE_CHECKING:
    from services.core.rubric import PartSpec, Rubric

Point = tuple[int, str]  # (ts_ms, event_id): orders evidence by time, then id

__all__ = [
    "Answers",
    "Artifact",
    "Diagnosis",
    "ExamContext",
    "Fault",
    "Point",
    "SelfGrade",
    "Window",
    "derive_context",
    "diagnosis",
]


@dataclass(frozen=True, slots=True)
class Fault:
    fault_id: str
    layer: str
    kind: str
    target: str
    ts_ms: int
    event_id: str


@dataclass(frozen=True, slots=True)
class Diagnosis:
    fault_id: str
    layer: str
    kind: str
    ts_ms: int
    event_id: str


def _diag_key(d: Diagnosis) -> tuple[int, str]:
    return (d.ts_ms, d.event_id)


class Answers:
    """An exam's diagnoses, sorted by (time, event id), indexed for the questions the
    rubric asks: the first answer to a fault in a time range, and the first right one.

    Built incrementally as diagnoses arrive (each is added once, in O(log n) lookups),
    so an exam with thousands of diagnoses is graded in linear time: the context used
    to rebuild every diagnosis and the rules to scan all of them on each new one.
    """

    __slots__ = ("_all", "_by_answer", "_by_fault")

    def __init__(self, diagnoses: Iterable[Diagnosis] = ()) -> None:
        self._all: list[Diagnosis] = []
        #: fault id ("" answers the exam's only fault) -> diagnoses
        self._by_fault: dict[str, list[Diagnosis]] = {}
        #: (fault id, layer, kind) normalised -> diagnoses
        self._by_answer: dict[tuple[str, str, str], list[Diagnosis]] = {}
        for d in diagnoses:
            self.add(d)

    def add(self, d: Diagnosis) -> None:
        bisect.insort(self._all, d, key=_diag_key)
        bisect.insort(self._by_fault.setdefault(d.fault_id, []), d, key=_diag_key)
        answer = (d.fault_id, norm(d.layer), norm(d.kind))
        bisect.insort(self._by_answer.setdefault(answer, []), d, key=_diag_key)

    def __iter__(self) -> Iterator[Diagnosis]:
        return iter(self._all)

    def __len__(self) -> int:
        return len(self._all)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Answers) and self._all == other._all

    __hash__ = None  # type: ignore[assignment]

    @staticmethod
    def _first(lists: Iterable[list[Diagnosis] | None], lo: int, hi: int) -> Diagnosis | None:
        best: Diagnosis | None = None
        for ds in lists:
            if not ds:
                continue
            i = bisect.bisect_left(ds, (lo, ""), key=_diag_key)
            if (
                i < len(ds)
                and ds[i].ts_ms <= hi
                and (best is None or _diag_key(ds[i]) < _diag_key(best))
            ):
                best = ds[i]
        return best

    def first(self, fault_id: str, lo: int, hi: int) -> Diagnosis | None:
        """The earliest diagnosis answering ``fault_id`` (or no fault id) in [lo, hi]."""
        lists = [self._by_fault.get("")]
        if fault_id:
            lists.append(self._by_fault.get(fault_id))
        return self._first(lists, lo, hi)

    def first_naming(
        self, fault_id: str, layer: str, kind: str, lo: int, hi: int
    ) -> Diagnosis | None:
        """The earliest diagnosis of ``fault_id`` (or none) naming this layer and kind."""
        lists = [self._by_answer.get(("", norm(layer), norm(kind)))]
        if fault_id:
            lists.append(self._by_answer.get((fault_id, norm(layer), norm(kind))))
        return self._first(lists, lo, hi)


@dataclass(frozen=True, slots=True)
class Artifact:
    part: int | None
    kind: str
    ts_ms: int
    event_id: str
    verdict: TextVerdict | None


@dataclass(frozen=True, slots=True)
class SelfGrade:
    score_pct: float
    ts_ms: int
    event_id: str


@dataclass(frozen=True, slots=True)
class ExamContext:
    exam_id: str
    platform_id: str
    candidate_id: str = ""
    rubric_id: str = ""
    rubric_version: str = ""
    start_ms: int | None = None
    start_event: str = ""
    end_ms: int | None = None
    end_event: str = ""
    windows: Mapping[str, Window] = field(default_factory=dict)
    #: gate name -> ts of the control event that opens it ("part:1", "part:2", "row.broken")
    anchors: Mapping[str, int] = field(default_factory=dict)
    assets: Mapping[str, str] = field(default_factory=dict)
    namespaces: tuple[str, ...] = ()
    declared_event: str = ""
    fault: Fault | None = None
    row_broken: Point | None = None
    diagnoses: Answers = field(default_factory=Answers)
    artifacts: tuple[Artifact, ...] = ()
    self_grades: tuple[SelfGrade, ...] = ()
    conflicts: tuple[str, ...] = ()
    #: criterion id -> the proctor's override (or appeal decision) in force
    overrides: Mapping[str, Override] = field(default_factory=dict)
    #: criterion id -> the proctor's confirmation of the grader's decision (review queue)
    confirmations: Mapping[str, Confirmation] = field(default_factory=dict)
    #: decided at an honest event-time clock (the stream worker): what lies ahead of
    #: the clock (a self grade) is not read yet
    clocked: bool = False

    @property
    def started(self) -> bool:
        return self.start_ms is not None

    def contains(self, ts_ms: int) -> bool:
        """Whether a signal at ``ts_ms`` belongs to this exam's window."""
        if self.start_ms is None or ts_ms < self.start_ms:
            return False
        return self.end_ms is None or ts_ms <= self.end_ms

    def window(self, part: str) -> Window | None:
        return self.windows.get(part)

    def asset(self, name: str) -> str:
        return self.assets.get(name, "")


def _earliest(events: list[Event]) -> Event | None:
    return min(events, key=lambda e: (e.ts_ms, e.event_id)) if events else None


def _latest(events: list[Event]) -> Event | None:
    return max(events, key=lambda e: (e.ts_ms, e.event_id)) if events else None


def _anchor_event(spec: PartSpec, by_type: Mapping[str, list[Event]]) -> list[Event]:
    events = by_type.get(spec.opens_on.type, [])
    if spec.opens_on.part is None:
        return events
    return [e for e in events if integer(e.get("part")) == spec.opens_on.part]


def diagnosis(e: Event) -> Diagnosis:
    return Diagnosis(
        fault_id=text(e.get("fault_id")),
        layer=text(e.get("layer")),
        kind=text(e.get("kind")),
        ts_ms=e.ts_ms,
        event_id=e.event_id,
    )


def derive_context(
    exam_id: str,
    platform_id: str,
    control: Iterable[Event] | Mapping[str, list[Event]],
    rubric: Rubric | None,
    verdicts: Mapping[str, TextVerdict],
    answers: Answers | None = None,
    *,
    clocked: bool = False,
) -> ExamContext:
    """The context of one exam from the set of its control events.

    ``verdicts`` maps artifact event ids to their text verdicts (judged once, on arrival).
    ``control`` may come grouped by type and the diagnoses as an :class:`Answers` kept
    by the caller (the engine keeps both as events arrive, so a new control event does
    not cost a pass over all of them).
    """
    by_type: Mapping[str, list[Event]]
    if isinstance(control, Mapping):
        by_type = control
    else:
        grouped: dict[str, list[Event]] = {}
        for ev in control:
            grouped.setdefault(ev.type, []).append(ev)
        by_type = grouped
    conflicts: list[str] = []

    started = _earliest(by_type.get("exam.started", []))
    if started is not None:
        others = {
            (e.ts_ms, text(e.get("candidate_id")), text(e.get("rubric_version")))
            for e in by_type["exam.started"]
        }
        if len(others) > 1:
            conflicts.append("exam.started was sent more than once with different content")
        elif len({e.event_id for e in by_type["exam.started"]}) > 1:
            conflicts.append(
                f"exam.started was sent {len({e.event_id for e in by_type['exam.started']})} "
                "times (different event ids): the earliest is graded"
            )
    ended = _earliest(by_type.get("exam.ended", []))
    end_ms = ended.ts_ms if ended is not None else None

    windows: dict[str, Window] = {}
    anchors: dict[str, int] = {}
    if rubric is not None:
        for spec in rubric.parts:
            candidates = _anchor_event(spec, by_type)
            first = _earliest(candidates)
            if first is None:
                continue
            if len({e.ts_ms for e in candidates}) > 1:
                conflicts.append(
                    f"{spec.opens_on.describe()} was sent more than once at different times"
                )
            windows[spec.part_id] = part_window(spec, first, by_type, end_ms, conflicts)
            anchors[spec.gate] = first.ts_ms
        conflicts.extend(unknown_parts(rubric, by_type))
    overrides = (
        derive_overrides(rubric, by_type.get(OVERRIDDEN, []), conflicts)
        if rubric is not None
        else {}
    )
    confirmations = (
        derive_confirmations(rubric, by_type.get(OVERRIDDEN, [])) if rubric is not None else {}
    )

    declared = _latest(by_type.get("pipeline.declared", []))
    assets: dict[str, str] = {}
    namespaces: tuple[str, ...] = ()
    if declared is not None:
        raw = mapping(declared.get("assets"))
        assets = {k: v for k, v in raw.items() if isinstance(v, str)}
        namespaces = strings(raw.get("namespaces"))

    faults = by_type.get("fault.injected", [])
    fe = _earliest(faults)
    fault = None
    if fe is not None:
        if len({e.event_id for e in faults}) > 1:
            seen = sorted({(e.ts_ms, text(e.get("layer")), text(e.get("kind"))) for e in faults})
            listed = ", ".join(f"{layer}/{kind} at {clock(ts)}" for ts, layer, kind in seen)
            conflicts.append(f"more than one fault.injected ({listed}): the earliest is graded")
        fault = Fault(
            fault_id=text(fe.get("fault_id")),
            layer=text(fe.get("layer")),
            kind=text(fe.get("kind")),
            target=text(fe.get("target")),
            ts_ms=fe.ts_ms,
            event_id=fe.event_id,
        )

    rb = _earliest(by_type.get("row.broken", []))
    row_broken = (rb.ts_ms, rb.event_id) if rb is not None else None
    if rb is not None:
        anchors["row.broken"] = rb.ts_ms

    diagnoses = (
        answers
        if answers is not None
        else Answers(diagnosis(e) for e in by_type.get("diagnosis.submitted", []))
    )
    artifacts = tuple(
        Artifact(
            part=integer(e.get("part")),
            kind=text(e.get("kind")),
            ts_ms=e.ts_ms,
            event_id=e.event_id,
            verdict=verdicts.get(e.event_id),
        )
        for e in sorted(by_type.get("artifact.submitted", []), key=lambda e: (e.ts_ms, e.event_id))
    )
    grades = []
    for e in sorted(by_type.get("self_grade.submitted", []), key=lambda e: (e.ts_ms, e.event_id)):
        pct = number(e.get("score_pct"))
        if pct is not None:
            grades.append(SelfGrade(pct, e.ts_ms, e.event_id))

    return ExamContext(
        exam_id=exam_id,
        platform_id=platform_id,
        candidate_id=text(started.get("candidate_id")) if started else "",
        rubric_id=text(started.get("rubric_id")) if started else "",
        rubric_version=text(started.get("rubric_version")) if started else "",
        start_ms=started.ts_ms if started else None,
        start_event=started.event_id if started else "",
        end_ms=end_ms,
        end_event=ended.event_id if ended else "",
        windows=windows,
        anchors=anchors,
        assets=assets,
        namespaces=namespaces,
        declared_event=declared.event_id if declared else "",
        fault=fault,
        row_broken=row_broken,
        diagnoses=diagnoses,
        artifacts=artifacts,
        self_grades=tuple(grades),
        conflicts=tuple(conflicts),
        overrides=overrides,
        confirmations=confirmations,
        clocked=clocked,
    )
