"""Event edits shared by the criterion tests: drop, change or move the evidence of one exam.

Each helper fails when it touches nothing, so a test whose selector no longer matches the
builder's events fails loudly instead of proving nothing.
"""

from __future__ import annotations

from collections.abc import Callable

from services.core.events import Event
from services.offline.scenarios import ExamBuilder

Pred = Callable[[Event], bool]


def of_type(t: str) -> Pred:
    return lambda e: e.type == t


def without(b: ExamBuilder, pred: Pred) -> list[Event]:
    """The builder's events except those ``pred`` selects."""
    out = [e for e in b.events if not pred(e)]
    assert len(out) < len(b.events), "the predicate removed nothing: the test would prove nothing"
    return out


def edited(events: list[Event], which: Pred, changes: dict[str, object]) -> list[Event]:
    """The events with ``changes`` applied to the fields of those ``which`` selects."""
    assert any(which(e) for e in events), (
        "the selector matched nothing: the test would prove nothing"
    )
    return [
        Event(e.type, e.platform_id, e.event_id, e.ts_ms, {**e.data, **changes}) if which(e) else e
        for e in events
    ]


def moved(b: ExamBuilder, pred: Pred, minutes: float) -> list[Event]:
    """The builder's events with those ``pred`` selects moved to ``minutes`` into the exam."""
    out = [
        Event(e.type, e.platform_id, e.event_id, b.at(minutes), e.data) if pred(e) else e
        for e in b.events
    ]
    assert out != b.events, "nothing moved: the test would prove nothing"
    return out
