"""A proctor's override or appeal decision on one criterion (``grade.overridden``).

The proctor signs a ``grade.overridden`` (exam_id, criterion_id, state, reason, by, kind):
``kind`` is ``override`` (the proctor corrects a grade) or ``appeal`` (the decision on a
candidate's appeal); ``state`` is ``met``, ``partial`` or ``failed``, or ``graded`` to
withdraw an earlier override (the grader's own decision applies again). Per criterion
the latest by (time, event id) wins, so the result is the same for any delivery order.

``kind`` ``confirm`` (state ``graded``) is a proctor's sign-off on a text verdict the
review queue held: the grader's decision applies, and the criterion's review note closes
(:class:`Confirmation`). A confirm with another state is ignored with a review note.

An overridden criterion keeps what the grader decided in its reason and evidence, after
who overrode it and why: the scoreboard and the report show both. Ignored, each with a
review note: an override of a criterion the rubric does not have, of an overall verdict
(those follow from the criteria), or with a state outside the four above.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, cast

from services.core.events import Event
from services.core.matching import clock, text
from services.core.model import OVERALL_PART, Outcome, State

if TYPE_CHECKING:
    from services.core.rubric import Rubric

OVERRIDDEN = "grade.overridden"
#: states a proctor may set; ``graded`` withdraws the override
OVERRIDE_STATES = ("met", "partial", "failed")
WITHDRAW = "graded"
KINDS = ("override", "appeal")
#: a proctor's sign-off on the grader's own decision (state ``graded``)
CONFIRM = "confirm"


@dataclass(frozen=True, slots=True)
class Confirmation:
    """A proctor confirmed the grader's decision on a criterion (the review queue)."""

    criterion_id: str
    reason: str
    by: str
    ts_ms: int
    event_id: str

    def describe(self) -> str:
        return f"Confirmed by {self.by} at {clock(self.ts_ms)}: {self.reason}"


@dataclass(frozen=True, slots=True)
class Override:
    criterion_id: str
    state: State
    reason: str
    by: str
    kind: str
    ts_ms: int
    event_id: str

    def describe(self) -> str:
        what = "Appeal decided" if self.kind == "appeal" else "Overridden"
        return f"{what} by {self.by} at {clock(self.ts_ms)}: {self.reason}"


def derive_overrides(
    rubric: Rubric, events: Iterable[Event], conflicts: list[str]
) -> dict[str, Override]:
    """The override in force per criterion id; problems go to ``conflicts``."""
    overall = {c.criterion_id for c in rubric.criteria if c.part == OVERALL_PART}
    known = {c.criterion_id for c in rubric.criteria}
    latest: dict[str, Event] = {}
    for e in sorted(events, key=lambda e: (e.ts_ms, e.event_id)):
        cid, state = text(e.get("criterion_id")), text(e.get("state"))
        where = f"grade.overridden of {cid or '?'} at {clock(e.ts_ms)}"
        if cid not in known:
            conflicts.append(f"{where}: the rubric has no such criterion: ignored")
        elif cid in overall:
            conflicts.append(f"{where}: overall verdicts follow the criteria: ignored")
        elif state not in (*OVERRIDE_STATES, WITHDRAW):
            conflicts.append(f"{where}: state {state!r} is not met, partial, failed or graded")
        elif text(e.get("kind")) == CONFIRM and state != WITHDRAW:
            conflicts.append(f"{where}: a confirm keeps the grader's decision (state graded)")
        else:
            latest[cid] = e
    out: dict[str, Override] = {}
    for cid, e in latest.items():
        state = text(e.get("state"))
        if state == WITHDRAW:
            continue
        kind = text(e.get("kind"))
        out[cid] = Override(
            cid,
            cast(State, state),
            text(e.get("reason")),
            text(e.get("by")) or "the proctor",
            kind if kind in KINDS else "override",
            e.ts_ms,
            e.event_id,
        )
    return out


def derive_confirmations(rubric: Rubric, events: Iterable[Event]) -> dict[str, Confirmation]:
    """The confirmation in force per criterion: its latest ``grade.overridden`` is a
    confirm (a later override or withdrawal replaces it; the rest as :func:`derive_overrides`)."""
    known = {c.criterion_id for c in rubric.criteria if c.part != OVERALL_PART}
    latest: dict[str, Event] = {}
    for e in sorted(events, key=lambda e: (e.ts_ms, e.event_id)):
        cid, state = text(e.get("criterion_id")), text(e.get("state"))
        if cid not in known or state not in (*OVERRIDE_STATES, WITHDRAW):
            continue
        if text(e.get("kind")) == CONFIRM and state != WITHDRAW:
            continue
        latest[cid] = e
    return {
        cid: Confirmation(
            cid, text(e.get("reason")), text(e.get("by")) or "the proctor", e.ts_ms, e.event_id
        )
        for cid, e in latest.items()
        if text(e.get("kind")) == CONFIRM
    }


def apply_override(graded: Outcome, override: Override | None) -> Outcome:
    """The outcome shown: the override's state, who and why, then what was graded."""
    if override is None:
        return graded
    return Outcome(
        override.state,
        f"{override.describe()} (graded {graded.state}: {graded.reason})",
        (override.event_id, *graded.evidence),
        override.ts_ms,
    )
