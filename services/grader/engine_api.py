"""The grading core as the worker sees it: an engine per platform, and a store that
makes engines and moves their state to and from bytes (``engines.py`` gives the core's)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from services.core.events import Event
from services.core.model import Transition


class GradingEngine(Protocol):
    """The grading core as the worker drives it (one engine per platform)."""

    def apply(self, event: Event) -> Sequence[Transition]: ...

    def evaluate(self, at_ms: int) -> Sequence[Transition]: ...


class EngineStore(Protocol):
    """Creates engines and moves their state to and from bytes."""

    def new(self, platform_id: str) -> GradingEngine: ...

    def dump(self, engine: GradingEngine) -> bytes: ...

    def load(self, data: bytes) -> GradingEngine: ...


def next_deadline(engine: GradingEngine, clock: int) -> int | None:
    """When ``evaluate`` can next change anything: engines that know it
    (``next_deadline_ms()``, None when none is ahead) say so; any other engine may
    change with every step of time."""
    next_deadline = getattr(engine, "next_deadline_ms", None)
    if next_deadline is None:
        return clock + 1
    deadline: int | None = next_deadline()
    return deadline
