"""What a receiver checks before it trusts a request: the platform, replays, and the body's size.

- :class:`KnownPlatforms`: which platforms exist (the roster), and their generation. A
  platform that is not known gets 404 and leaves no state, so made-up platform ids cannot
  make the receiver send heartbeats for them.
- :class:`ReplayGuard`: a delivery id seen before (within the window) is refused, and so is
  a delivery whose signed timestamp is older than the window. The seen-set only holds
  the window, so it stays bounded.
- :func:`read_capped`: the body streamed in chunks under a deadline, at most ``cap``
  bytes kept, so a large or slow upload costs neither memory nor a worker forever.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Protocol

from aiohttp import web

#: Delivery id headers, in order of preference: the Git hosts' own, then proctor's.
DELIVERY_HEADERS = (
    "x-github-delivery",
    "x-gitlab-event-uuid",
    "x-gitea-delivery",
    "x-gogs-delivery",
    "x-proctor-delivery",
)
#: Unix seconds of the delivery; only trusted when the HMAC covers it (X-Proctor-Signature).
TIMESTAMP_HEADER = "x-proctor-timestamp"
DEFAULT_REPLAY_WINDOW_S = 300.0
#: A safety net on memory: authenticated senders only, so this is never reached honestly.
MAX_SEEN = 200_000
READ_CHUNK = 64 * 1024


class KnownPlatforms(Protocol):
    """The generation of a platform of the roster, or None when it is unknown or revoked."""

    def __call__(self, platform_id: str) -> int | None: ...


@dataclass(frozen=True, slots=True)
class StaticRoster:
    """A fixed allow-list (config or flags), for deployments without the roster topic."""

    generations: Mapping[str, int]

    @classmethod
    def of(cls, platforms: Iterable[str], generation: int = 1) -> StaticRoster:
        return cls({p: generation for p in platforms})

    def __call__(self, platform_id: str) -> int | None:
        return self.generations.get(platform_id)


class _Entry(Protocol):
    @property
    def generation(self) -> int: ...
    @property
    def revoked(self) -> bool: ...


class RosterLookup(Protocol):
    """What a roster view offers (services.trust.roster.RosterView): the entry of a platform."""

    def get(self, platform_id: str) -> _Entry | None: ...


def roster_platforms(view: RosterLookup) -> KnownPlatforms:
    """The known platforms of a roster view: its entries that are not revoked."""

    def known(platform_id: str) -> int | None:
        entry = view.get(platform_id)
        if entry is None or entry.revoked:
            return None
        return entry.generation

    return known


@dataclass(frozen=True, slots=True)
class Replay:
    """Why a delivery was refused: 409 for a delivery id seen before, 401 for a stale one."""

    status: int
    message: str


class ReplayGuard:
    """Delivery ids seen within ``window_s``, evicted by age; thread-unsafe (one event loop)."""

    def __init__(
        self,
        window_s: float = DEFAULT_REPLAY_WINDOW_S,
        clock: Callable[[], float] = time.time,
        max_seen: int = MAX_SEEN,
    ) -> None:
        self.window_s = window_s
        self._clock = clock
        self._max_seen = max_seen
        self._seen: OrderedDict[tuple[str, str, str], float] = OrderedDict()

    def __len__(self) -> int:
        return len(self._seen)

    def _evict(self, now: float) -> None:
        while self._seen:
            key, at = next(iter(self._seen.items()))
            if now - at <= self.window_s and len(self._seen) <= self._max_seen:
                return
            del self._seen[key]

    def check_time(self, signed_ts_s: float | None) -> Replay | None:
        """A signed timestamp outside the window (either way) is a replay or a forged clock."""
        if signed_ts_s is None:
            return None
        skew = self._clock() - signed_ts_s
        if abs(skew) > self.window_s:
            return Replay(
                401,
                f"the delivery's {TIMESTAMP_HEADER} is {skew:.0f}s from the receiver's clock; "
                f"deliveries older than {self.window_s:.0f}s are refused as replays",
            )
        return None

    def reserve(self, source: str, platform_id: str, delivery_id: str | None) -> Replay | None:
        """Record ``delivery_id``; a Replay when it was seen within the window."""
        if delivery_id is None:
            return None
        now = self._clock()
        self._evict(now)
        key = (source, platform_id, delivery_id)
        if key in self._seen:
            return Replay(409, "this delivery id was received before; a replay is not accepted")
        self._seen[key] = now
        return None

    def release(self, source: str, platform_id: str, delivery_id: str | None) -> None:
        """Forget a delivery that was not accepted (a 503), so the sender's retry gets in."""
        if delivery_id is not None:
            self._seen.pop((source, platform_id, delivery_id), None)


def delivery_id(headers: Mapping[str, str]) -> str | None:
    """The sender's delivery id (lower-case header names), if it sends one."""
    for name in DELIVERY_HEADERS:
        value = headers.get(name)
        if value and value.strip():
            return f"{name}:{value.strip()[:200]}"
    return None


@dataclass(frozen=True, slots=True)
class Body:
    """What was read: at most ``cap`` bytes kept, and how many the sender sent in all."""

    kept: bytes
    total: int
    complete: bool

    @property
    def oversized(self) -> bool:
        return self.total > len(self.kept)


class BodyTimeout(Exception):
    """The sender did not finish its body within the read timeout."""


async def read_capped(
    request: web.Request,
    cap: int,
    timeout_s: float,
    *,
    drain_to: int | None = None,
    feed: Callable[[bytes], None] | None = None,
) -> Body:
    """Stream the body under one deadline, keeping at most ``cap`` bytes.

    ``feed`` sees every byte read (a streaming HMAC); with ``drain_to`` reading goes on past
    the cap, without keeping it, up to that many bytes in all (so a signature over an
    oversized body can still be checked), else it stops at the first byte past the cap.
    ``complete`` says whether the whole body was read.
    """
    limit = max(cap, drain_to or 0)
    kept = bytearray()
    total = 0
    try:
        async with asyncio.timeout(timeout_s):
            while True:
                chunk = await request.content.readany()
                if not chunk:
                    return Body(bytes(kept), total, True)
                total += len(chunk)
                if feed is not None:
                    feed(chunk)
                room = cap - len(kept)
                if room > 0:
                    kept += chunk[:room]
                if total > limit:
                    return Body(bytes(kept), total, False)
    except TimeoutError as exc:
        raise BodyTimeout(f"the body did not arrive within {timeout_s:g}s") from exc
