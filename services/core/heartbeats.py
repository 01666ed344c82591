"""Is a collector seeing? Coverage of each collector by its heartbeats, in event time.

A heartbeat that vouches for seeing at t covers [t, t + grace]; the union of those
intervals is kept merged (one interval per seeing stretch, so a whole exam is typically
a handful of numbers). A collector is *blind* at time C when C is not covered, or when
it reported a proctor-side error in the grace period before C. Unions and sets are
order-insensitive and idempotent, so this needs no knowledge of when time boxes close:
a late heartbeat is simply merged in.

Blindness is the grader's, not the candidate's. A heartbeat's ``error_kind`` says whose
failure an unhealthy heartbeat reports:

* ``proctor_side`` (or no kind, as older collectors send): the collector cannot reach its
  source, the broker refused it, a push source's canary went missing. The grader is
  blind: a criterion that would expire or be met by absence becomes ``unknown``.
* ``platform`` (the candidate's service is down) or ``payload`` (the candidate's platform
  sent something malformed or oversized): the collector is seeing, and what it sees is
  evidence about the candidate's platform. Such a heartbeat covers like a healthy one.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from typing import Any

from services.core.events import Event
from services.core.matching import clock, text

#: error timestamps kept per collector; errors are rare and only the latest matter
MAX_ERRORS = 512
#: characters of a collector's error text kept in state and quoted in reasons
ERROR_CHARS = 160

#: error kinds of collector.heartbeat (schemas/collector.heartbeat.avsc)
PROCTOR_SIDE = "proctor_side"
PLATFORM = "platform"
PAYLOAD = "payload"
#: kinds that are evidence about the candidate's platform, not blindness of the grader
EVIDENCE_KINDS: frozenset[str] = frozenset({PLATFORM, PAYLOAD})
ERROR_KINDS: frozenset[str] = frozenset({PROCTOR_SIDE, PLATFORM, PAYLOAD})


@dataclass(frozen=True, slots=True)
class HeartbeatStatus:
    """What one heartbeat says: the collector, and whether it vouches for seeing.

    ``blind`` is the collector's own error text when it reports a proctor-side failure
    (an empty string when it gave none); None when the heartbeat vouches for seeing.
    """

    collector: str
    blind: str | None


def heartbeat_status(ev: Event) -> HeartbeatStatus | None:
    """The status of a heartbeat; None when it names no collector."""
    name = text(ev.data.get("collector"))
    if not name:
        return None
    error = text(ev.data.get("error"))
    if ev.data.get("healthy") is True and not error:
        return HeartbeatStatus(name, None)
    kind = text(ev.data.get("error_kind"))
    if kind in EVIDENCE_KINDS:
        return HeartbeatStatus(name, None)
    return HeartbeatStatus(name, error[:ERROR_CHARS])


def error_clause(name: str, ts_ms: int, error: str) -> str:
    """Why a collector is blind after a proctor-side error, as one clause of a reason."""
    said = f" ({error})" if error else ""
    return f"the {name} collector reported an error at {clock(ts_ms)}{said}"


def _better(new: str, old: str) -> bool:
    """Which text an error time keeps when several arrive: the smallest non-empty one,
    so the result does not depend on the order they came in."""
    return bool(new) and (not old or new < old)


class Coverage:
    __slots__ = ("errors", "grace_ms", "intervals", "texts")

    def __init__(self, grace_ms: int) -> None:
        self.grace_ms = grace_ms
        self.intervals: dict[str, list[list[int]]] = {}
        self.errors: dict[str, list[int]] = {}
        #: the error text of each kept error time (the smallest, if several share one)
        self.texts: dict[str, dict[int, str]] = {}

    def fold(self, ev: Event) -> str | None:
        """Add a heartbeat; returns the collector name when anything changed."""
        status = heartbeat_status(ev)
        if status is None:
            return None
        name = status.collector
        ts = ev.ts_ms
        if status.blind is None:
            return name if self._cover(name, ts, ts + self.grace_ms) else None
        errs = self.errors.setdefault(name, [])
        texts = self.texts.setdefault(name, {})
        i = bisect.bisect_left(errs, ts)
        if i < len(errs) and errs[i] == ts:
            if not _better(status.blind, texts.get(ts, "")):
                return None
            texts[ts] = status.blind
            return name
        errs.insert(i, ts)
        texts[ts] = status.blind
        if len(errs) > MAX_ERRORS:
            texts.pop(errs[0], None)
            del errs[0]
        return name

    def _cover(self, name: str, lo: int, hi: int) -> bool:
        ivs = self.intervals.setdefault(name, [])
        if ivs:
            last = ivs[-1]
            if last[0] <= lo <= last[1] + 1:  # the common case: the next heartbeat in order
                if hi <= last[1]:
                    return False
                last[1] = hi
                return True
        i = bisect.bisect_left(ivs, [lo, lo])
        if i < len(ivs) and ivs[i][0] <= lo and ivs[i][1] >= hi:
            return False
        # merge with the neighbour before when it touches
        if i > 0 and ivs[i - 1][1] + 1 >= lo:
            i -= 1
            if ivs[i][1] >= hi:
                return False
            lo = ivs[i][0]
        j = i
        while j < len(ivs) and ivs[j][0] <= hi + 1:
            hi = max(hi, ivs[j][1])
            j += 1
        ivs[i:j] = [[lo, hi]]
        return True

    def _error_in(self, name: str, lo: int, hi: int) -> str | None:
        """The latest proctor-side error in [lo, hi], as a clause."""
        errs = self.errors.get(name, [])
        i = bisect.bisect_right(errs, hi)
        if i > 0 and errs[i - 1] >= lo:
            ts = errs[i - 1]
            return error_clause(name, ts, self.texts.get(name, {}).get(ts, ""))
        return None

    def blind_at(self, name: str, at_ms: int) -> str | None:
        """Why the collector was blind at ``at_ms`` (one clause), or None if it was seeing."""
        why = self._error_in(name, at_ms - self.grace_ms, at_ms)
        if why is not None:
            return why
        ivs = self.intervals.get(name, [])
        j = bisect.bisect_right(ivs, [at_ms, 2**62]) - 1
        if j >= 0 and ivs[j][0] <= at_ms <= ivs[j][1]:
            return None
        if j >= 0:
            last = ivs[j][1] - self.grace_ms
            return f"the {name} collector was silent (last healthy heartbeat {clock(last)})"
        return f"the {name} collector sent no healthy heartbeat"

    def blind_during(self, name: str, lo_ms: int, hi_ms: int) -> str | None:
        """Why the collector was blind at some time in [lo_ms, hi_ms], or None.

        Only a proctor-side error counts here (a push source that lost its canary, a
        broker that refused the collector): events of such a stretch may never arrive,
        so an absence over the whole box proves nothing. Silence is judged at the close
        (:meth:`blind_at`), as polled sources catch up on what they missed.
        """
        return self._error_in(name, lo_ms - self.grace_ms, hi_ms)

    def dump(self) -> Any:
        texts = {k: {str(t): s for t, s in v.items() if s} for k, v in self.texts.items()}
        return {"i": self.intervals, "e": self.errors, "t": {k: v for k, v in texts.items() if v}}

    def load(self, obj: Any) -> None:
        self.intervals = {k: [[int(a), int(b)] for a, b in v] for k, v in obj["i"].items()}
        self.errors = {k: [int(x) for x in v] for k, v in obj["e"].items()}
        saved = obj.get("t", {})
        self.texts = {
            k: {t: str(saved.get(k, {}).get(str(t), "")) for t in v} for k, v in self.errors.items()
        }
