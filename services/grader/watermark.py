"""One partition's positions and event-time clock: what a flushed marker keeps.

All input topics share the partition count and are keyed by platform id, so partition
``p`` of every topic holds the same platforms. The partition's *aligned watermark* is
the minimum, over its input topics, of the highest event time read on each; a topic
read to its log end (the worker's tick reports log ends) is idle and does not hold the
others back. A backlog read one topic first cannot close a time box before the other
topics' records of that time have been read.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

#: "no event time yet" for clocks (earlier than any event; the watermark starts at 0)
NO_TIME = 0


class PartitionClock:
    """Next offset and highest event time per input topic, log ends, the watermark.

    Without log ends (tests, replays) a topic is never idle: the watermark is the
    minimum of the topics read so far. A topic not met yet (no record read, no log end
    noted, not in the restored marker) does not hold the clock; ``topics`` names input
    topics up front that do hold it until read or noted idle.
    """

    __slots__ = ("_ends", "_ends_changed", "highs", "positions", "watermark_ms")

    def __init__(self, topics: Iterable[str] = ()) -> None:
        #: the next offset to grade of each input topic
        self.positions: dict[str, int] = {}
        #: the highest event time read on each input topic
        self.highs: dict[str, int] = dict.fromkeys(topics, NO_TIME)
        #: the aligned watermark (never moves back)
        self.watermark_ms = NO_TIME
        #: log-end offsets the worker noted (a topic read up to its end is idle)
        self._ends: dict[str, int] = {}
        self._ends_changed = False

    def restore(
        self, positions: Mapping[str, int], highs: Mapping[str, int], watermark_ms: int
    ) -> None:
        """Resume from a flushed marker's positions, highs and watermark."""
        self.positions = dict(positions)
        self.watermark_ms = watermark_ms
        for topic, high in highs.items():
            self.highs[topic] = max(self.highs.get(topic, NO_TIME), high)
        for topic in self.positions:
            self.highs.setdefault(topic, NO_TIME)
        self._ends_changed = True

    def note_log_ends(self, ends: Mapping[str, int]) -> None:
        """Each input topic's log-end offset of this partition (the worker's tick)."""
        for topic, end in ends.items():
            if self._ends.get(topic) != end:
                self._ends[topic] = end
                self._ends_changed = True
            self.highs.setdefault(topic, NO_TIME)

    def aligned(self) -> int:
        """min over topics with records left of their highest event time read; the
        highest of all when every topic is idle."""
        low: int | None = None
        top = NO_TIME
        positions = self.positions
        ends = self._ends
        for topic, high in self.highs.items():
            if high > top:
                top = high
            end = ends.get(topic)
            if end is not None and positions.get(topic, 0) >= end:
                continue
            if low is None or high < low:
                low = high
        return top if low is None else low

    def read(self, topic: str, offset: int, ts: int) -> bool:
        """A record read: its topic moves past it. True when the watermark may have
        moved with it and must be computed again.

        It can move only when the topic was at or below it and rose (it may have held
        the minimum), the topic became idle, an idle topic rose past it (every topic
        idle: the highest counts), or the log ends changed.
        """
        nxt = offset + 1
        self.positions[topic] = nxt
        highs = self.highs
        high = highs.get(topic)
        moved = high is None or ts > high
        if moved:
            highs[topic] = ts
        end = self._ends.get(topic)
        if end is not None and nxt >= end:
            recompute = nxt == end or ts > self.watermark_ms
        else:
            recompute = moved and (high is None or high <= self.watermark_ms)
        if self._ends_changed:
            self._ends_changed = False
            return True
        return recompute

    def skip(self, topic: str, offset: int) -> None:
        """A record that grades nothing (a dead letter) still moves its topic on; the
        watermark is computed again after it (its topic may be idle now)."""
        self.positions[topic] = offset + 1
        self._ends_changed = False
