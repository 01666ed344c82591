"""The proctor's exam actions as control events, for one exam or a whole cohort.

Pure: the roster entries in, the events out; the CLI signs and publishes them. Each
action validates what the contract and the rubric's "Part windows" would refuse later
(a part outside 1-3, minutes outside 1-1440, a fault kind of another layer), so a typo
is an error at the proctor's terminal, not a dead letter at the worker.

Event ids of the once-per-exam events are derived from the exam (``<exam>/exam.started``,
``<exam>/part.ended/1``, ...): running ``proctor exam start`` twice sends the same id, and
the worker keeps the first (a second body is a ``conflicting_duplicate`` dead letter), so
a repeated command cannot restart an exam or move a part's start.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from services.contract.rules import (
    FAULT_KINDS,
    MAX_EXTENSION_MINUTES,
    OVERRIDE_KINDS,
    OVERRIDE_STATES,
    PARTS,
)
from services.core.events import Event
from services.errors import CohortError
from services.trust.roster import RosterEntry

#: the reason part.extended carries for an accommodation from the roster
ACCOMMODATION = "accommodation from the roster"


@dataclass(frozen=True, slots=True)
class Selection:
    """The exams an action applies to, and what was skipped (revoked platforms)."""

    entries: tuple[RosterEntry, ...]
    skipped: tuple[str, ...] = ()


def cohorts(entries: Iterable[RosterEntry]) -> dict[str, list[RosterEntry]]:
    """Roster entries by cohort name (entries of no cohort left out), sorted by platform."""
    out: dict[str, list[RosterEntry]] = {}
    for e in sorted(entries, key=lambda e: e.platform_id):
        if e.cohort:
            out.setdefault(e.cohort, []).append(e)
    return out


def select(
    roster: Mapping[str, RosterEntry],
    *,
    cohort: str | None = None,
    candidates: Iterable[str] = (),
) -> Selection:
    """The exams of ``cohort`` (all of it, or only ``candidates``: candidate or platform
    ids), or the named candidates anywhere in the roster. Revoked platforms are skipped."""
    wanted = list(dict.fromkeys(candidates))
    if cohort is None and not wanted:
        raise CohortError("name a cohort (--cohort NAME) or one or more candidates (--candidate)")
    pool = list(roster.values())
    if cohort is not None:
        pool = [e for e in pool if e.cohort == cohort]
        if not pool:
            known = ", ".join(sorted(cohorts(roster.values()))) or "none yet"
            raise CohortError(
                f"no cohort {cohort!r} in the roster (cohorts: {known}; `proctor cohort add`)"
            )
    chosen: list[RosterEntry] = []
    for who in wanted:
        hits = [e for e in pool if who in (e.candidate_id, e.platform_id)]
        if not hits:
            where = f"cohort {cohort!r}" if cohort is not None else "the roster"
            raise CohortError(f"{who!r} is neither a candidate nor a platform of {where}")
        chosen += hits
    if not wanted:
        chosen = pool
    unique = {e.platform_id: e for e in chosen}
    live = tuple(e for p, e in sorted(unique.items()) if not e.revoked)
    skipped = tuple(p for p, e in sorted(unique.items()) if e.revoked)
    if not live:
        raise CohortError(f"every selected platform is revoked ({', '.join(skipped)})")
    return Selection(live, skipped)


def _check_part(part: int) -> int:
    if part not in PARTS:
        raise CohortError(f"part {part} is not an exam part (1, 2 or 3)")
    return part


def _event(type_: str, e: RosterEntry, now_ms: int, event_id: str | None, **data: object) -> Event:
    return Event(
        type_,
        e.platform_id,
        event_id or str(uuid.uuid4()),
        now_ms,
        {"exam_id": e.exam_id, **data},
    )


def start(
    e: RosterEntry, now_ms: int, *, rubric_id: str = "y3-final", rubric_version: str = "1"
) -> list[Event]:
    """exam.started, part.started of Part 1, and a part.extended per accommodation."""
    out = [
        _event(
            "exam.started",
            e,
            now_ms,
            f"{e.exam_id}/exam.started",
            candidate_id=e.candidate_id,
            rubric_id=rubric_id,
            rubric_version=rubric_version,
        ),
        _event("part.started", e, now_ms, f"{e.exam_id}/part.started/1", part=1),
    ]
    for part, minutes in sorted(e.extra_minutes.items()):
        out += extend(e, part, minutes, ACCOMMODATION, now_ms, f"{e.exam_id}/accommodation/{part}")
    return out


def start_part(e: RosterEntry, part: int, now_ms: int) -> list[Event]:
    """part.started of a later part (Part 2 opens with the fault, Part 3 with this)."""
    _check_part(part)
    return [_event("part.started", e, now_ms, f"{e.exam_id}/part.started/{part}", part=part)]


def end_part(e: RosterEntry, part: int, now_ms: int) -> list[Event]:
    """part.ended: the proctor ends a part now (its box closes at once)."""
    _check_part(part)
    return [_event("part.ended", e, now_ms, f"{e.exam_id}/part.ended/{part}", part=part)]


def extend(
    e: RosterEntry,
    part: int,
    minutes: int,
    reason: str,
    now_ms: int,
    event_id: str | None = None,
) -> list[Event]:
    """part.extended: ``minutes`` more for ``part`` (1 to 1440, with a reason)."""
    _check_part(part)
    if not 0 < minutes <= MAX_EXTENSION_MINUTES:
        raise CohortError(
            f"an extension is 1 to {MAX_EXTENSION_MINUTES} minutes, not {minutes} "
            "(a part cannot be shortened: end it with `proctor exam end-part`)"
        )
    if not reason.strip():
        raise CohortError("say why the part is extended (--reason), for the record")
    return [_event("part.extended", e, now_ms, event_id, part=part, minutes=minutes, reason=reason)]


def inject_fault(
    e: RosterEntry,
    layer: str,
    kind: str,
    target: str,
    now_ms: int,
    *,
    fault_id: str = "fault-1",
    note: str = "",
) -> list[Event]:
    """fault.injected: opens Part 2 (the rubric's anchor of the incident)."""
    kinds = FAULT_KINDS.get(layer)
    if kinds is None:
        raise CohortError(f"layer {layer!r} is not one of {', '.join(sorted(FAULT_KINDS))}")
    if kind not in kinds:
        raise CohortError(
            f"{kind!r} is not a fault of layer {layer!r}; its kinds: {', '.join(sorted(kinds))}"
        )
    if not target.strip():
        raise CohortError("name the faulted dataset or asset (--target)")
    return [
        _event(
            "fault.injected",
            e,
            now_ms,
            f"{e.exam_id}/fault.injected/{fault_id}",
            fault_id=fault_id,
            layer=layer,
            kind=kind,
            target=target,
            note=note or f"{layer}/{kind} injected by the proctor",
        )
    ]


def override(
    e: RosterEntry,
    criterion_id: str,
    state: str,
    reason: str,
    by: str,
    now_ms: int,
    *,
    kind: str = "override",
) -> list[Event]:
    """grade.overridden: the proctor sets one criterion's state (or, with ``graded``,
    withdraws an earlier override); ``kind`` ``appeal`` records an appeal's decision."""
    if state not in OVERRIDE_STATES:
        raise CohortError(f"state {state!r} is not one of {', '.join(OVERRIDE_STATES)}")
    if kind not in OVERRIDE_KINDS or kind == "confirm":
        raise CohortError(f"kind {kind!r} is not override or appeal (a confirm: confirm())")
    if not criterion_id.strip() or criterion_id.startswith("overall."):
        raise CohortError(
            f"{criterion_id!r} cannot be overridden: name a criterion such as p2.root_cause "
            "(overall verdicts follow from the criteria)"
        )
    return _decision(e, criterion_id, state, reason, by, kind, now_ms)


def confirm(e: RosterEntry, criterion_id: str, reason: str, by: str, now_ms: int) -> list[Event]:
    """grade.overridden, kind confirm (state graded): the proctor signs off the grader's
    decision on a criterion the review queue holds; the grader's state stands."""
    if not criterion_id.strip() or criterion_id.startswith("overall."):
        raise CohortError(f"{criterion_id!r} is not a criterion the review queue holds")
    return _decision(e, criterion_id, "graded", reason, by, "confirm", now_ms)


def _decision(
    e: RosterEntry, criterion_id: str, state: str, reason: str, by: str, kind: str, now_ms: int
) -> list[Event]:
    """The grade.overridden of a proctor's decision, once it says why and who."""
    if not reason.strip():
        raise CohortError("say why (--reason): the candidate and a reviewer will read it")
    if not by.strip():
        raise CohortError("say who decided (--by)")
    return [
        _event(
            "grade.overridden",
            e,
            now_ms,
            None,
            criterion_id=criterion_id,
            state=state,
            reason=reason,
            by=by,
            kind=kind,
        )
    ]


def end(e: RosterEntry, now_ms: int) -> list[Event]:
    """exam.ended: every box still open closes now."""
    return [_event("exam.ended", e, now_ms, f"{e.exam_id}/exam.ended")]
