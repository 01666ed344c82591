"""When to read a partition again from its state's position: a pure policy.

Faust and its Kafka client can drop fetched records around a rebalance or a restart and
still move the read offset past them. Two symptoms show it: a record past the state's
position arrives (a *gap*: the records before it were dropped), or the log holds records
past the position and none arrives for a while (a *stall*: the stale in-flight batch
carried the read offset to the end of the log, so no later record reveals the gap). Both
end in a seek back to the position, repeated every ``gap_seek_s`` until the record at
the position arrives (a needless seek only makes records arrive twice; the second copy
is skipped).

The policy holds what it has seen and nothing else: the caller passes the clock and the
positions in and performs the seeks it returns, so every rule here is tested without a
consumer (tests/unit/grader/test_rewind.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from services.grader.offsets import TopicPartition

#: how long after records past a state position arrived the worker seeks back (again)
GAP_SEEK_S = 1.0
#: how long an assigned partition may hold records past its state's position without
#: delivering any before the worker seeks back to that position
STALL_SEEK_S = 3.0


@dataclass(frozen=True, slots=True)
class Mark:
    """Where an assigned input partition stands: the next offset its state grades (0
    without state) and the log's high-water mark."""

    resume: int
    high: int


@dataclass(frozen=True, slots=True)
class Seek:
    """Read ``tp`` again from ``offset``; ``stalled_s`` is set when a stall was found
    just now (how long the partition delivered nothing), for the caller's log."""

    tp: TopicPartition
    offset: int
    stalled_s: float | None = None
    high: int | None = None

    def describe(self) -> str:
        topic, partition = self.tp
        if self.stalled_s is None:
            return f"{topic}[{partition}]: seeking back to {self.offset}"
        return (
            f"{topic}[{partition}] holds records up to offset {(self.high or 0) - 1}, past "
            f"{self.offset} where the grader state resumes, but delivered none for "
            f"{self.stalled_s:.0f} s; reading from {self.offset} again"
        )


class RewindPolicy:
    """Gaps and stalls of the input partitions, and the seeks they call for."""

    def __init__(self, gap_seek_s: float = GAP_SEEK_S, stall_seek_s: float = STALL_SEEK_S) -> None:
        self.gap_seek_s = gap_seek_s
        self.stall_seek_s = stall_seek_s
        #: since when a partition has had a gap, and the position to seek back to
        self._gaps: dict[TopicPartition, tuple[float, int]] = {}
        #: when each partition last delivered a record (absent: none since assigned)
        self._last_seen: dict[TopicPartition, float] = {}
        #: since when each partition's log has held records past its state's position
        self._behind_since: dict[TopicPartition, float] = {}

    def delivered(self, tp: TopicPartition, now: float) -> bool:
        """A record of ``tp`` arrived; True when it is the first since assignment."""
        first = tp not in self._last_seen
        self._last_seen[tp] = now
        return first

    def past_position(self, tp: TopicPartition, resume: int, now: float) -> bool:
        """A record past the state's position ``resume`` arrived (it is not graded);
        True when this opens a gap (the caller logs it once)."""
        if tp in self._gaps:
            return False
        self._gaps[tp] = (now, resume)
        return True

    def at_position(self, tp: TopicPartition) -> None:
        """The record at the state's position arrived: the gap of ``tp`` is closed."""
        self._gaps.pop(tp, None)

    def open_gaps(self) -> dict[TopicPartition, int]:
        """Partitions with a gap and the positions they are read again from."""
        return {tp: resume for tp, (_since, resume) in self._gaps.items()}

    def seeks(self, now: float, marks: Mapping[TopicPartition, Mark], settled: bool) -> list[Seek]:
        """The seeks due at ``now``. ``marks`` are the assigned partitions with a state and
        a known high-water mark; stalls are looked for only when ``settled`` (no
        rebalance under way and the assigned partitions' state read back)."""
        out: list[Seek] = []
        if settled:
            out += self._stalls(now, marks)
        stalled = {s.tp for s in out}
        for tp, (since, resume) in list(self._gaps.items()):
            if tp in stalled or now - since < self.gap_seek_s:
                continue
            self._gaps[tp] = (now, resume)
            out.append(Seek(tp, resume))
        return out

    def _stalls(self, now: float, marks: Mapping[TopicPartition, Mark]) -> list[Seek]:
        found: list[Seek] = []
        for tp, mark in marks.items():
            if tp in self._gaps:
                continue
            if mark.high <= mark.resume:
                self._behind_since.pop(tp, None)
                continue
            since = max(self._behind_since.setdefault(tp, now), self._last_seen.get(tp, 0.0))
            if now - since < self.stall_seek_s:
                continue
            found.append(Seek(tp, mark.resume, stalled_s=now - since, high=mark.high))
            self._gaps[tp] = (now, mark.resume)
            self._behind_since[tp] = now
        return found

    def forget(self, tps: set[TopicPartition]) -> None:
        """Partitions revoked: their new owner watches them."""
        for tp in tps:
            self._gaps.pop(tp, None)
            self._last_seen.pop(tp, None)
            self._behind_since.pop(tp, None)
