"""The deadlines of a partition's platforms, so a record visits only the platforms whose
next time box the watermark passed, never every platform."""

from __future__ import annotations

import heapq
from collections.abc import Iterator


class DeadlineTimers:
    """A heap of (next deadline, platform id), one live entry per platform.

    Rescheduling a platform pushes a new entry; the one it supersedes stays in the heap
    and is skipped when it surfaces (cheaper than removing it).
    """

    __slots__ = ("_heap", "_queued")

    def __init__(self) -> None:
        self._heap: list[tuple[int, str]] = []
        #: the deadline each platform is queued for (absent: not queued)
        self._queued: dict[str, int] = {}

    def __len__(self) -> int:
        return len(self._queued)

    def schedule(self, platform_id: str, deadline: int | None) -> None:
        """Queue the platform at ``deadline`` (None: nothing ahead, leave it as it is)."""
        if deadline is not None and self._queued.get(platform_id) != deadline:
            self._queued[platform_id] = deadline
            heapq.heappush(self._heap, (deadline, platform_id))

    def due(self, watermark_ms: int) -> bool:
        """Whether some deadline is at or before the watermark (one comparison)."""
        heap = self._heap
        return bool(heap) and heap[0][0] <= watermark_ms

    def pop_due(self, watermark_ms: int) -> Iterator[tuple[int, str]]:
        """The (deadline, platform) entries due at the watermark, earliest first; each
        leaves the queue. Platforms scheduled meanwhile are seen if due too."""
        heap = self._heap
        queued = self._queued
        while heap and heap[0][0] <= watermark_ms:
            deadline, pid = heapq.heappop(heap)
            if queued.get(pid) != deadline:
                continue  # superseded
            del queued[pid]
            yield deadline, pid
