"""Part windows: when a part's time box opens and closes (the rubric's "Part windows").

A part's box opens at its anchor (``part.started`` of that part, or ``fault.injected``
for Part 2) and closes at the earliest of: the anchor plus the part's limit plus the
minutes of every accepted ``part.extended`` of that part; that part's ``part.ended``
(the proctor ending it early); ``exam.ended``. Like the rest of the context this is a
pure function of the *set* of control events, so any delivery order gives the same box.

What is ignored (and listed as a conflict, so the exam opens a review note):

* a ``part.extended`` for a part the rubric does not have, or whose minutes are not a
  positive whole number (at most :data:`MAX_EXTENSION_MINUTES`);
* a ``part.extended`` dated after the box it would extend had already closed (taken in
  time order, each accepted extension moving the close): a closed box is not reopened;
* a ``part.ended`` dated before its part's anchor (``part.ended`` before ``part.started``),
  or for a part the rubric does not have.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from services.core.events import Event
from services.core.matching import clock, integer

if TYPE_CHECKING:
    from services.core.rubric import PartSpec, Rubric

MINUTE_MS = 60_000
#: an extension longer than a day is a typo, not an accommodation
MAX_EXTENSION_MINUTES = 24 * 60

EXTENDED = "part.extended"
ENDED = "part.ended"


@dataclass(frozen=True, slots=True)
class Window:
    """A part's time box: opened by an anchor event; closed at ``close_ms``.

    ``box_end_ms`` is the anchor plus the limit plus the accepted extensions (what facts
    fold up to); ``close_ms`` is the earliest of that, the part's ``part.ended`` and the
    exam's end (what criteria are decided at).
    """

    part: str
    anchor_ms: int
    anchor_event: str
    box_end_ms: int
    close_ms: int
    #: minutes added by accepted part.extended events, and their event ids
    extended_minutes: int = 0
    extensions: tuple[str, ...] = ()
    #: the part.ended that closed the box early ("" when none did)
    ended_event: str = ""


def _earliest(events: Iterable[Event]) -> Event | None:
    return min(events, key=lambda e: (e.ts_ms, e.event_id), default=None)


def _of_part(events: Iterable[Event], part_id: str) -> list[Event]:
    return [e for e in events if str(integer(e.get("part"))) == part_id]


def extension_minutes(ev: Event) -> int | None:
    """The whole, positive minutes a part.extended asks for; None when it is not valid."""
    minutes = integer(ev.get("minutes"))
    if minutes is None or not 0 < minutes <= MAX_EXTENSION_MINUTES:
        return None
    return minutes


def part_window(
    spec: PartSpec,
    anchor: Event,
    by_type: Mapping[str, list[Event]],
    end_ms: int | None,
    conflicts: list[str],
) -> Window:
    """The window of one opened part; problems with its extensions and ends go to ``conflicts``."""
    pid = spec.part_id
    hard_end = end_ms
    ends = []
    for e in sorted(_of_part(by_type.get(ENDED, []), pid), key=lambda e: (e.ts_ms, e.event_id)):
        if e.ts_ms < anchor.ts_ms:
            conflicts.append(
                f"part.ended for part {pid} at {clock(e.ts_ms)} is before the part opened "
                f"({spec.opens_on.describe()} at {clock(anchor.ts_ms)}): ignored"
            )
        else:
            ends.append(e)
    ended = _earliest(ends)
    if ended is not None:
        hard_end = ended.ts_ms if hard_end is None else min(hard_end, ended.ts_ms)
    box_end = anchor.ts_ms + spec.minutes * MINUTE_MS
    added = 0
    taken: list[str] = []
    extensions = _of_part(by_type.get(EXTENDED, []), pid)
    for e in sorted(extensions, key=lambda e: (e.ts_ms, e.event_id)):
        minutes = extension_minutes(e)
        if minutes is None:
            conflicts.append(
                f"part.extended for part {pid} at {clock(e.ts_ms)} asks for "
                f"{e.get('minutes')!r} minutes (a whole number from 1 to "
                f"{MAX_EXTENSION_MINUTES}): ignored"
            )
            continue
        close_so_far = box_end if hard_end is None else min(box_end, hard_end)
        if e.ts_ms > close_so_far:
            conflicts.append(
                f"part.extended for part {pid} at {clock(e.ts_ms)} came after the part's "
                f"time box closed at {clock(close_so_far)}: ignored (a closed box is not reopened)"
            )
            continue
        box_end += minutes * MINUTE_MS
        added += minutes
        taken.append(e.event_id)
    close = box_end if hard_end is None else min(box_end, hard_end)
    early = ended is not None and ended.ts_ms == close and ended.ts_ms < box_end
    return Window(
        pid,
        anchor.ts_ms,
        anchor.event_id,
        box_end,
        close,
        added,
        tuple(taken),
        ended.event_id if early and ended is not None else "",
    )


def unknown_parts(rubric: Rubric, by_type: Mapping[str, list[Event]]) -> list[str]:
    """Conflicts for part.ended / part.extended naming a part the rubric does not have."""
    known = {p.part_id for p in rubric.parts}
    out = []
    for t in (ENDED, EXTENDED):
        for e in sorted(by_type.get(t, []), key=lambda e: (e.ts_ms, e.event_id)):
            part = integer(e.get("part"))
            if str(part) not in known:
                out.append(
                    f"{t} at {clock(e.ts_ms)} names part {e.get('part')!r}, which rubric "
                    f"{rubric.rubric_id} v{rubric.version} does not have "
                    f"(parts {', '.join(sorted(known))}): ignored"
                )
    return out
