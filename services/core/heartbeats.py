"""Is a collector seeing? Coverage of each collector by its heartbeats, in event time.

A healthy heartbeat at t vouches for [t, t + grace]; the union of those intervals is
kept merged (one interval per healthy stretch, so a whole exam is typically a handful
of numbers). A collector is *blind* at time C when C is not covered, or when it
reported an error in the grace period before C. Unions and sets are order-insensitive
and idempotent, so this needs no knowledge of when time boxes close: a late heartbeat
is simply merged in.
"""

from __future__ import annotations

import bisect
from typing import Any

from services.core.events import Event
from services.core.matching import clock, text

#: error timestamps kept per collector; errors are rare and only the latest matter
MAX_ERRORS = 512


def heartbeat_status(ev: Event) -> tuple[str, bool] | None:
    """(collector name, healthy) of a heartbeat; healthy means healthy=true and no error."""
    name = text(ev.data.get("collector"))
    if not name:
        return None
    return name, ev.data.get("healthy") is True and not text(ev.data.get("error"))


class Coverage:
    __slots__ = ("errors", "grace_ms", "intervals")

    def __init__(self, grace_ms: int) -> None:
        self.grace_ms = grace_ms
        self.intervals: dict[str, list[list[int]]] = {}
        self.errors: dict[str, list[int]] = {}

    def fold(self, ev: Event) -> str | None:
        """Add a heartbeat; returns the collector name when anything changed."""
        status = heartbeat_status(ev)
        if status is None:
            return None
        name, healthy = status
        ts = ev.ts_ms
        if healthy:
            return name if self._cover(name, ts, ts + self.grace_ms) else None
        errs = self.errors.setdefault(name, [])
        i = bisect.bisect_left(errs, ts)
        if i < len(errs) and errs[i] == ts:
            return None
        errs.insert(i, ts)
        if len(errs) > MAX_ERRORS:
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

    def blind_at(self, name: str, at_ms: int) -> str | None:
        """Why the collector was blind at ``at_ms`` (one clause), or None if it was seeing."""
        errs = self.errors.get(name, [])
        i = bisect.bisect_right(errs, at_ms)
        if i > 0 and errs[i - 1] >= at_ms - self.grace_ms:
            return f"the {name} collector reported an error at {clock(errs[i - 1])}"
        ivs = self.intervals.get(name, [])
        j = bisect.bisect_right(ivs, [at_ms, 2**62]) - 1
        if j >= 0 and ivs[j][0] <= at_ms <= ivs[j][1]:
            return None
        if j >= 0:
            last = ivs[j][1] - self.grace_ms
            return f"the {name} collector was silent (last healthy heartbeat {clock(last)})"
        return f"the {name} collector sent no healthy heartbeat"

    def dump(self) -> Any:
        return {"i": self.intervals, "e": self.errors}

    def load(self, obj: Any) -> None:
        self.intervals = {k: [[int(a), int(b)] for a, b in v] for k, v in obj["i"].items()}
        self.errors = {k: [int(x) for x in v] for k, v in obj["e"].items()}
