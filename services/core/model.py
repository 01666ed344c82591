"""What grading produces: criterion outcomes, transitions and exam results.

Plain frozen dataclasses so the engine, the replay and the service share one vocabulary
and a result can be compared field by field (the property tests do exactly that).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

State = Literal["pending", "met", "partial", "failed", "expired", "unknown"]

STATES: tuple[State, ...] = ("pending", "met", "partial", "failed", "expired", "unknown")

#: The keys of ``parts`` in a result; the overall verdicts are not a scored part.
OVERALL_PART = "overall"

ReviewKind = Literal["conflict", "blind", "flag", "override", "judge"]
#: criterion ids of review notes start with this (no rubric criterion can: ids are dotted)
REVIEW_PREFIX = "review:"


@dataclass(frozen=True, slots=True)
class ReviewNote:
    """One reason to review an exam: its kind, what it is about, and one sentence why
    (see :mod:`services.core.review`)."""

    kind: ReviewKind
    subject: str
    reason: str

    @property
    def note_id(self) -> str:
        """The pseudo-criterion id of the note: stable while its subject is the same."""
        return f"{REVIEW_PREFIX}{self.kind}:{self.subject}"


@dataclass(frozen=True, slots=True)
class Outcome:
    """What a rule decided about one criterion, before scoring.

    ``reason`` is one sentence a person can read; ``evidence`` holds the ids of the
    events that decided it; ``decided_ms`` is the event time the state was reached
    (for example the time of the third checkpoint), or None while nothing decided it.
    """

    state: State
    reason: str
    evidence: tuple[str, ...] = ()
    decided_ms: int | None = None
    #: a text criterion's confidence in its state (the judge's), else None
    confidence: float | None = None
    #: set when the state waits for a proctor's review (a text verdict under the threshold)
    review: TextReview | None = None


@dataclass(frozen=True, slots=True)
class TextReview:
    """Why a text criterion's state waits for a proctor: what the judge said and how sure."""

    verdict: State
    confidence: float
    threshold: float
    judge: str
    text_digest: str
    artifact_event_id: str

    def describe(self, criterion_id: str) -> str:
        return (
            f"{criterion_id}: the {self.judge} judge's {self.verdict} is at confidence "
            f"{self.confidence:.2f}, under the review threshold {self.threshold:.2f}: "
            "a proctor confirms or overrides it (proctor review)"
        )


@dataclass(frozen=True, slots=True)
class CriterionResult:
    """A scored outcome of one criterion."""

    criterion_id: str
    part: str
    state: State
    score: float
    max_score: float
    reason: str
    evidence: tuple[str, ...] = ()
    decided_ms: int | None = None
    confidence: float | None = None
    review: TextReview | None = None


@dataclass(frozen=True, slots=True)
class ExamFacts:
    """What the engine knew of an exam's clock and fault when it made a transition.

    ``part_closes_ms`` is when the row's part box closes (the earliest of its limit plus
    accepted extensions, its ``part.ended`` and the exam's end); all None/empty while the
    part has not opened or the row is not a part's (overall verdicts, review notes).
    """

    part_opened_ms: int | None = None
    part_closes_ms: int | None = None
    part_extended_minutes: int = 0
    fault_layer: str = ""
    fault_kind: str = ""
    fault_ms: int | None = None


NO_FACTS = ExamFacts()


@dataclass(frozen=True, slots=True)
class Transition:
    """One change of a criterion's state, as the service publishes it."""

    exam_id: str
    candidate_id: str
    platform_id: str
    rubric_id: str
    rubric_version: str
    part: str
    criterion_id: str
    state: State
    previous_state: State | None
    score: float
    max_score: float
    reason: str
    evidence: tuple[str, ...]
    event_ts_ms: int
    #: a text criterion's confidence in its state; None for every other criterion
    confidence: float | None = None
    #: a review-queue note (``review:judge:<criterion>``): what waits or was decided
    queue: QueueEntry | None = None
    #: the exam's facts when the change was made, for the scoreboard (columns, not
    #: text): the row's part window (opened, closes, minutes added by extensions) and
    #: the injected fault. Not part of what the change *is*: equality leaves them out.
    facts: ExamFacts = field(default=NO_FACTS, compare=False)


@dataclass(frozen=True, slots=True)
class QueueEntry:
    """The review queue's columns carried by a ``review:judge:`` note's change."""

    criterion_id: str
    verdict: State
    confidence: float
    threshold: float
    judge: str
    text_digest: str
    #: pending, confirmed, overridden, or superseded (a later text, or none, replaced it)
    status: str
    decided_by: str = ""
    decision_reason: str = ""


@dataclass(frozen=True, slots=True)
class PartScore:
    score: float
    max_score: float


@dataclass(frozen=True, slots=True)
class ExamResult:
    """The grade of one exam at one evaluation time."""

    exam_id: str
    candidate_id: str
    platform_id: str
    rubric_id: str
    rubric_version: str
    started_ms: int
    ended_ms: int | None
    criteria: tuple[CriterionResult, ...]
    parts: dict[str, PartScore]
    total_pct: float
    passed: bool
    #: why a person should look at this exam (unknown criteria, conflicting control events...)
    review: tuple[str, ...] = field(default_factory=tuple)
    #: set when the exam could not be graded at all (e.g. its rubric is unknown)
    error: str | None = None
    #: the open review notes, structured (kind, subject, why): what the worker writes
    notes: tuple[ReviewNote, ...] = field(default_factory=tuple)

    def criterion(self, criterion_id: str) -> CriterionResult:
        for c in self.criteria:
            if c.criterion_id == criterion_id:
                return c
        raise KeyError(criterion_id)


def exam_status(r: ExamResult) -> str:
    """pass, fail, review (a note is open or the grade is unknown) or in progress."""
    if r.error:
        return "error"
    if r.notes or r.review:
        return "review"
    try:
        state = r.criterion("overall.pass").state
    except KeyError:
        state = "pending"
    if state == "met":
        return "pass"
    if state in ("failed", "expired"):
        return "fail"
    return "review" if state == "unknown" else "in progress"
