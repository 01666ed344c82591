"""Why a person should look at an exam: review notes, pure and order-insensitive.

A note is derived from an exam's state, never stored on its own: conflicting control
events (two different ``fault.injected``, a second ``exam.started``), criteria the grader
was blind for (``unknown``, with why), the engine's own flags (signals dropped, an anchor
that moved) and overrides. The engine reports a note as a change of a pseudo-criterion
``review:<kind>:<subject>`` (part :data:`REVIEW_PART`, no score): state ``unknown`` while
the note is open ("a person must look"), ``met`` once its cause went away (a late
heartbeat, a retracted event). A text criterion whose judge was less sure than the
review threshold opens a ``review:judge:<criterion>`` note (the review queue) until a
proctor confirms or overrides it. The worker writes those changes as rows of the same
Iceberg commit as the criterion changes, so they share the exactly-once protocol; the
``exam_scores`` view says ``review`` while any note of an exam is open.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence

from services.core.model import OVERALL_PART, REVIEW_PREFIX, CriterionResult, ReviewNote, State

__all__ = ["JUDGE_PREFIX", "REVIEW_PREFIX", "ReviewNote", "is_review_id", "review_notes"]

#: ids of review-queue notes (a text verdict under the threshold): ``review:judge:<criterion>``
JUDGE_PREFIX = f"{REVIEW_PREFIX}judge:"

#: the ``part`` of a review note's transition; the table stores it as null with overall
REVIEW_PART = "review"
#: the state of an open note, and of one whose cause went away
OPEN_STATE: State = "unknown"
CLOSED_STATE: State = "met"


def is_review_id(criterion_id: str) -> bool:
    return criterion_id.startswith(REVIEW_PREFIX)


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def conflict_subject(conflict: str) -> str:
    """What a conflict is about: the control event type it names, else a digest of it."""
    for t in (
        "grade.overridden",
        "part.extended",
        "part.ended",
        "fault.injected",
        "exam.started",
        "part.started",
        "row.broken",
    ):
        if conflict.startswith(t) or f" {t}" in conflict:
            return t
    return _digest(conflict)


def review_notes(
    conflicts: Iterable[str],
    results: Sequence[CriterionResult],
    flags: Iterable[str] = (),
    overrides: Iterable[tuple[str, str]] = (),
) -> tuple[ReviewNote, ...]:
    """Every open review note of an exam, sorted by id (the same for any delivery order).

    ``overrides`` are (criterion id, why) pairs of a proctor's overrides, when they exist.
    """
    notes: dict[str, ReviewNote] = {}

    def add(note: ReviewNote) -> None:
        old = notes.get(note.note_id)
        if old is None:
            notes[note.note_id] = note
        else:  # two conflicts about one event type: one note saying both
            reasons = sorted({*old.reason.split("; "), note.reason})
            notes[note.note_id] = ReviewNote(note.kind, note.subject, "; ".join(reasons))

    for c in conflicts:
        add(ReviewNote("conflict", conflict_subject(c), c))
    for r in results:
        if r.state == "unknown" and r.part != OVERALL_PART:
            add(ReviewNote("blind", r.criterion_id, f"{r.criterion_id}: {r.reason}"))
        if r.review is not None:
            add(ReviewNote("judge", r.criterion_id, r.review.describe(r.criterion_id)))
    for f in flags:
        add(ReviewNote("flag", _digest(f), f))
    for criterion_id, why in overrides:
        add(ReviewNote("override", criterion_id, f"{criterion_id} was overridden: {why}"))
    return tuple(notes[k] for k in sorted(notes))
